"""The authoring checks of `lamsim check`: mistakes that load and run without an error but make
wrong training data. Each finding names the file and line, says what is wrong and how to fix it;
errors fail the check (exit status 1), warnings are judgement calls.

| code | severity | finds |
| --- | --- | --- |
| `slot.unmentioned` | error | the gold program reads a slot whose value the query never shows |
| `slot.unused` | warning | a slot neither in the query nor read by the gold program |
| `state.no_change` | error | `state=True`, but the gold program changes nothing |
| `state.changed` | error | `state="unchanged"`, but the gold program changes something |
| `state.unjudged` | error | `state=False`, but the gold program changes something |
| `state_fields.table` | error | `state_fields` names a table the pack does not have |
| `state_fields.field` | error | `state_fields` names a field no row of the table has |
| `state_fields.unjudged` | error | `state_fields` given, but the template does not judge state |
| `state_fields.leaves_out` | warning | the gold program changes a table `state_fields` leaves out |
| `answer.type` | error | the gold answer cannot be read as the declared answer type |
| `answer.structured` | warning | `answer="text"` with a list or object as gold answer |
| `answer.ignored` | warning | an action-only template whose gold program returns a value other than text |
| `answer.unjudged` | warning | the gold program hands off (ends the episode), so its answer is never judged |
| `sampler.global_random` | error | the sampler draws with the `random` module instead of `rng` |
| `sampler.nondeterministic` | error | the same seed gives different slots |
| `sampler.hash_order` | error | the same seed gives other slots in another Python process (the order of a set) |
| `gold.global_random` | error | the gold program draws with the `random` module |
| `gold.ambiguous_row` | warning | the gold program picks a row by position from rows its call cannot tell apart |
| `gold.long_result` | warning | a gold call's result is longer than `budget.observation_chars` |
| `gold.slow` | warning | a gold program took more than 0.5 s |
| `template.narrow` | warning | fewer than 10 distinct tasks |
| `tool.undeclared_write` | error | a tool wrote to the sandbox without `changes_state=True` |
"""

from __future__ import annotations

import ast
import inspect
import json
import random
import textwrap
from dataclasses import dataclass, field
from typing import Any

from lamsim_tui.names import nearest_names
from lamsim_tui.packs import Pack, TemplateSpec
from lamsim_tui.record import GoldCall, Task
from lamsim_tui.simulator.judge import Malformed, coerce
from lamsim_tui.text import shorten

SLOW_GOLD_S = 0.5


@dataclass(frozen=True)
class Problem:
    """One finding of the authoring checks."""

    severity: str  # "error" or "warning"
    code: str
    where: str  # file:line
    message: str
    fix: str = ""


def _shown(value: Any, limit: int = 60) -> str:
    return shorten(json.dumps(value, ensure_ascii=False, default=str), limit, "...")


def _call_text(call: GoldCall) -> str:
    args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in call.arguments.items())
    return shorten(f"{call.tool}({args})", 100, "...)")


# ----- where things are ---------------------------------------------------------------------------------

_TREES: dict[str, ast.Module | None] = {}


def _tree(path: str) -> ast.Module | None:
    if path not in _TREES:
        try:
            with open(path, encoding="utf-8") as handle:
                _TREES[path] = ast.parse(handle.read())
        except (OSError, SyntaxError, ValueError):
            _TREES[path] = None
    return _TREES[path]


def option_where(spec: TemplateSpec, option: str) -> str:
    """file:line of one option of a template's declaration (`state_fields=...`), else the declaration's."""
    if option in spec.option_sources:
        return spec.option_sources[option]
    if not spec.source or ":" not in spec.source:
        return spec.source
    path, _, line = spec.source.rpartition(":")
    tree = _tree(path)
    if tree is None or not line.isdigit():
        return spec.source
    first = int(line)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.decorator_list \
                and min(d.lineno for d in node.decorator_list) == first:
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call):
                    for keyword in decorator.keywords:
                        if keyword.arg == option:
                            return f"{path}:{keyword.value.lineno}"
    return spec.source


def _global_random_line(func: Any) -> str | None:
    """file:line where a function calls the `random` module's functions (not an `rng` it was given)."""
    try:
        lines, start = inspect.getsourcelines(func)
        path = inspect.getsourcefile(func)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    names = getattr(func, "__globals__", {})
    shared = getattr(random, "_inst", None)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        target = node.func
        hit = False
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
            hit = names.get(target.value.id) is random
        elif isinstance(target, ast.Name):
            value = names.get(target.id)
            hit = getattr(value, "__self__", None) is shared and shared is not None
        if hit:
            return f"{path}:{start + node.lineno - 1}"
    return None


# ----- what the samples showed -----------------------------------------------------------------------------


def _leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [] if value is None else [str(value)]


@dataclass
class TemplateEvidence:
    """What the sampled tasks of one template showed."""

    spec: TemplateSpec
    samples: int = 0
    unmentioned: dict[str, tuple[Any, str]] = field(default_factory=dict)  # slot -> (value, query)
    unused: dict[str, int] = field(default_factory=dict)  # slot -> tasks where it was neither shown nor read
    changed: int = 0
    tables_changed: dict[str, int] = field(default_factory=dict)
    changed_rows: dict[str, list[dict]] = field(default_factory=dict)
    bad_answer: tuple[Any, dict] | None = None
    structured_answer: Any = None
    ignored_answer: Any = None
    ends_with: set[str] = field(default_factory=set)
    undeclared_writes: dict[str, str] = field(default_factory=dict)
    ambiguous: list = field(default_factory=list)  # tasks.PickedRow with indistinct rows, and the slots
    sampler_uses_global_random: bool = False
    sampler_differs: tuple[dict, dict] | None = None
    sampler_hash_order: tuple[dict, dict] | None = None  # (slots here, slots in a process with another hash seed)
    gold_uses_global_random: bool = False
    long_result: tuple[GoldCall, dict] | None = None

    def add(self, task: Task, watch) -> None:
        spec = self.spec
        self.samples += 1
        query = task.query.casefold()
        for name, value in task.slots.items():
            if name in spec.slot_names:
                continue
            shown = bool(_leaves(value)) and all(leaf.casefold() in query for leaf in _leaves(value))
            if shown:
                continue
            if name in watch.slots_read:
                self.unmentioned.setdefault(name, (value, task.query))
            else:
                self.unused[name] = self.unused.get(name, 0) + 1
        if task.gold_state:
            self.changed += 1
            for table, rows in task.gold_state.items():
                self.tables_changed[table] = self.tables_changed.get(table, 0) + 1
                kept = self.changed_rows.setdefault(table, [])
                if len(kept) < 20:
                    kept.extend(r for r in rows.values() if isinstance(r, dict))
        if watch.ended_by:
            self.ends_with.add(watch.ended_by)
        if spec.answer == "none" or watch.ended_by:
            if watch.ignored_answer is not None and self.ignored_answer is None:
                self.ignored_answer = watch.ignored_answer
        else:
            try:
                coerce(spec.answer, task.gold_answer)
            except Malformed:
                if self.bad_answer is None:
                    self.bad_answer = (task.gold_answer, task.slots)
            if spec.answer == "text" and isinstance(task.gold_answer, (list, dict)) and self.structured_answer is None:
                self.structured_answer = task.gold_answer
        self.undeclared_writes.update(watch.undeclared_writes)
        if watch.global_random_used:
            self.gold_uses_global_random = True
        for pick in watch.picked:
            if pick.indistinct and len(self.ambiguous) < 3:
                self.ambiguous.append((pick, task.slots))


def _field_problem(pack: Pack, table: str, path: str, changed: list[dict]) -> tuple[str, list[str]] | None:
    """Why a `state_fields` entry selects nothing: (the missing part, names offered there), or None."""
    rows = list(pack.seed.tables.get(table, {}).values()) + changed
    parts = path.split(".")
    level: list[Any] = rows
    for depth, part in enumerate(parts):
        if depth == 0 and any(isinstance(r, dict) and path in r for r in rows):
            return None
        dicts = [v for v in level if isinstance(v, dict)]
        lists = [v for v in level if isinstance(v, list)]
        if part == "*":
            level = [x for v in lists for x in v] + [x for v in dicts for x in v.values()]
        elif part.lstrip("-").isdigit() and lists:
            index = int(part)
            level = [v[index] for v in lists if -len(v) <= index < len(v)]
        else:
            level = [v[part] for v in dicts if part in v]
        if not level and not (part.lstrip("-").isdigit() and lists):
            names = sorted({k for v in dicts for k in v if isinstance(k, str)})
            return part, names
        if not level:
            return part, []
    return None


def template_problems(pack: Pack, spec: TemplateSpec, ev: TemplateEvidence, report, observation_chars: int) \
        -> list[Problem]:
    """The authoring findings of one template, from what its sampled tasks showed."""
    out: list[Problem] = []
    kind = "fixed task" if spec.fixed else "template"

    def add(severity: str, code: str, where: str, message: str, fix: str = "") -> None:
        out.append(Problem(severity, code, where or spec.source, message, fix))

    # ----- slots
    for name, (value, query) in ev.unmentioned.items():
        add("error", "slot.unmentioned", option_where(spec, "query"),
            f"the gold program reads slot {name!r} ({_shown(value)}), which the query never mentions "
            f"(\"{shorten(query, 80, '...')}\"): the gold uses a fact the agent is never told",
            f"put {{{name}}} in the query, or let the gold program find it through tools from what the query says")
    for name, count in ev.unused.items():
        if count == ev.samples and name not in ev.unmentioned:
            add("warning", "slot.unused", spec.source,
                f"slot {name!r} is neither in the query nor read by the gold program (a paraphrase must keep "
                "every slot value, so it is never paraphrased)", "drop it from what the sampler returns")

    # ----- state
    state_where = option_where(spec, "state")
    tables = ", ".join(sorted(ev.tables_changed))
    if ev.samples:
        if spec.state is True and ev.changed == 0:
            add("error", "state.no_change", state_where,
                f"the {kind} judges state (state=True), but its gold program changed nothing in any of the "
                f"{ev.samples} sampled tasks: an agent that does nothing passes, and the data teaches it not to act",
                "make the gold program change the data through a tool marked changes_state=True; if the task must "
                "leave the data alone (a request to refuse), declare state=\"unchanged\"")
        elif spec.state == "unchanged" and ev.changed:
            add("error", "state.changed", state_where,
                f"state=\"unchanged\", but the gold program changed {tables} in {ev.changed} of {ev.samples} "
                "sampled tasks", "declare state=True, or stop the gold program from writing")
        elif spec.state is False and ev.changed:
            add("error", "state.unjudged", state_where,
                f"the gold program changes {tables} (in {ev.changed} of {ev.samples} sampled tasks), but the "
                f"{kind} does not judge state (state=False): an agent that skips the change still passes",
                "declare state=True (with state_fields for the fields that must match)")
    fields = spec.state_fields
    fields_where = option_where(spec, "state_fields")
    if fields and spec.state is False:
        add("error", "state_fields.unjudged", fields_where,
            "state_fields is given, but the template does not judge state (state=False), so it is never used",
            "declare state=True")
    if fields:
        for table, names in fields.items():
            if table not in pack.seed.tables:
                close = nearest_names(table, pack.seed.tables)
                hint = f"did you mean {close[0]!r}?" if close else f"tables: {', '.join(pack.seed.tables) or '(none)'}"
                add("error", "state_fields.table", fields_where,
                    f"state_fields names table {table!r}, which the pack does not have: state judging compares "
                    "nothing there", hint)
                continue
            for name in names:
                problem = _field_problem(pack, table, name, ev.changed_rows.get(table, []))
                if problem is None:
                    continue
                part, offered = problem
                close = nearest_names(part, offered)
                hint = f"did you mean {close[0]!r}?" if close else (
                    f"fields there: {', '.join(offered[:12])}" if offered else "")
                at = f" ({part!r} is not there)" if part != name else ""
                add("error", "state_fields.field", fields_where,
                    f"state_fields[{table!r}] names field {name!r}{at}, which no row of {table} has: state "
                    "judging of that field silently turns off", hint)
        for table, count in ev.tables_changed.items():
            if table not in fields:
                add("warning", "state_fields.leaves_out", fields_where,
                    f"the gold program changes table {table!r} (in {count} of {ev.samples} sampled tasks), which "
                    "state_fields leaves out: an agent that gets it wrong still passes",
                    f"add {table!r} to state_fields if its changes matter")

    # ----- answer
    answer_where = option_where(spec, "answer")
    if ev.bad_answer is not None:
        value, slots = ev.bad_answer
        words = {"number": "a number", "bool": "true or false", "date": "a date", "list": "a list",
                 "set": "a list", "json": "JSON"}.get(spec.answer, spec.answer)
        add("error", "answer.type", answer_where,
            f"the gold answer {_shown(value)} (slots {_shown(slots)}) cannot be read as {words} (answer="
            f"{spec.answer!r}): every episode would fail",
            "declare the answer type the gold program returns, or make it return " + words)
    if ev.structured_answer is not None:
        add("warning", "answer.structured", answer_where,
            f"answer=\"text\", but the gold answer is {type(ev.structured_answer).__name__} "
            f"{_shown(ev.structured_answer)}: it is compared as text, so an agent must reproduce its JSON",
            "declare answer=\"list\", \"set\" or \"json\"")
    if ev.ignored_answer is not None:
        add("warning", "answer.ignored", spec.gold_source,
            f"the {kind} has no answer (answer=None), but its gold program returns {_shown(ev.ignored_answer)}, "
            "which is not used (only text is: the confirmation the scripted agent gives)",
            "return nothing or a confirmation text, or declare the answer type if the agent should give it")
    if ev.ends_with and spec.answer != "none":
        add("warning", "answer.unjudged", answer_where,
            f"the gold program ends the episode with {', '.join(sorted(ev.ends_with))}, so no answer is ever "
            f"given: answer={spec.answer!r} is not judged", "declare answer=None")
    if spec.state == "auto":  # fixed tasks given by their calls: the state is judged, whatever it is
        out[:] = [p for p in out if not p.code.startswith("state.")]

    # ----- determinism
    if ev.sampler_uses_global_random:
        where = _global_random_line(spec.sample) or spec.source
        add("error", "sampler.global_random", where,
            "the sampler draws with the module-level `random` instead of the rng it is given: the same seed no "
            "longer gives the same tasks", "draw with rng (rng.choice, rng.randint, ...)")
    elif ev.sampler_differs is not None:
        first, second = ev.sampler_differs
        add("error", "sampler.nondeterministic", spec.source,
            f"the sampler gave different slots for the same seed ({_shown(first)}, then {_shown(second)}): the "
            "same seed no longer gives the same tasks",
            "draw only with rng; do not use the clock, an unseeded random.Random() or the order of a set")
    elif ev.sampler_hash_order is not None:
        here, there = ev.sampler_hash_order
        add("error", "sampler.hash_order", spec.source,
            f"the sampler gave other slots for the same seed in another Python process ({_shown(here)} here, "
            f"{_shown(there)} there): it depends on an order Python changes from process to process (iterating "
            "a set, or anything ordered by hash()), so another run of the session draws other tasks",
            "choose from a list in a fixed order: rng.choice(sorted(values)), or the rows as data.rows() gives them")
    if ev.gold_uses_global_random:
        where = (_global_random_line(spec.gold_program) if spec.gold_program else None) or spec.gold_source
        add("error", "gold.global_random", where,
            "the gold program draws with the module-level `random`: its answer changes from run to run",
            "compute the answer from the slots and tool results only")

    # ----- gold calls
    for pick, slots in ev.ambiguous[:1]:
        args = ", ".join(f"{k}={v!r}" for k, v in pick.arguments.items())
        add("warning", "gold.ambiguous_row", pick.where,
            f"the gold program takes row {pick.index + 1 if pick.index >= 0 else pick.index} of the {pick.rows} "
            f"rows {pick.tool}({shorten(args, 80, '...')}) returned, and nothing in the call tells those rows apart "
            f"(slots {_shown(slots)}): the task is ambiguous",
            "use call.one(...), which fails a task whose lookup matches several rows, and make the sampler draw "
            "values that match one; if the first row of an ordered list is meant, use call.first(...)")
    if ev.long_result is not None:
        call, slots = ev.long_result
        from lamsim_tui.simulator.tasks import observation_size

        size = observation_size(call.result)
        add("warning", "gold.long_result", spec.gold_source,
            f"{report.truncated_observations} gold call result(s) are longer than budget.observation_chars "
            f"({observation_chars}), e.g. {_call_text(call)}: {size} characters (slots {_shown(slots)}); the "
            "agent would see them cut", "return fewer fields or rows (cap lists), or raise budget.observation_chars")
    if report.max_gold_s > SLOW_GOLD_S:
        add("warning", "gold.slow", spec.gold_source, f"slow gold program ({report.max_gold_s:.2f} s)",
            "build expensive indexes once (a module-level cache) rather than on every call")
    from lamsim_tui.simulator.tasks import NARROW_TEMPLATE

    if not spec.fixed and not report.failures and report.distinct < NARROW_TEMPLATE:
        add("warning", "template.narrow", spec.source,
            f"only {report.distinct} distinct tasks (fewer than {NARROW_TEMPLATE}): the template is narrow, and a session asking "
            "for more of its tasks runs out", "sample from more varied slots, or give it a lower weight")
    return out


def _writes_in_source(func: Any) -> tuple[str, str] | None:
    """(`sb.update` etc., file:line) where a tool's own body writes to the sandbox it is given."""
    try:
        lines, start = inspect.getsourcelines(func)
        path = inspect.getsourcefile(func)
        tree = ast.parse(textwrap.dedent("".join(lines)))
        first = next(iter(inspect.signature(func).parameters))
    except (OSError, TypeError, SyntaxError, IndentationError, StopIteration, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("update", "insert", "delete") and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == first:
            return f"{first}.{node.func.attr}", f"{path}:{start + node.lineno - 1}"
    return None


def tool_problems(pack: Pack, evidence: list[TemplateEvidence]) -> list[Problem]:
    """Findings about tools: from what the gold programs' calls showed, and from the tools' own code."""
    seen: dict[str, str] = {}
    for ev in evidence:
        for tool, what in ev.undeclared_writes.items():
            seen.setdefault(tool, what)
    for name, spec in pack.tools.items():
        if name in seen or spec.changes_state:
            continue
        found = _writes_in_source(spec.func)
        if found is not None:
            seen[name] = f"{found[0]} at {found[1]}"
    out = []
    for tool, what in sorted(seen.items()):
        spec = pack.tools.get(tool)
        out.append(Problem(
            "error", "tool.undeclared_write", spec.source if spec else "",
            f"tool {tool!r} writes to the sandbox ({what}) but is not marked changes_state=True: the scripted "
            "agent's wandering may call it, and `pack show` tells readers it changes nothing",
            "mark it @tool(changes_state=True)"))
    return out
