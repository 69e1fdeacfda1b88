"""Task generation: fill templates from the pack's seed data and compute ground truth by running
each template's gold program through the same execution path as the agent.

A gold program gets `call` (a `GoldCaller`): `call(tool, **args)`, `call.one(...)`,
`call.first(...)` and `call.expect_error(...)`. `lamsim check` runs the same programs with a
`GoldWatch` attached, which notes what they did (slots read, tools that wrote, rows picked from
lists) for the authoring checks in `simulator/pack_checks.py`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamsim_tui.packs import DataView, Pack, TemplateSpec
from lamsim_tui.packs.sandbox import thaw
from lamsim_tui.record import GoldCall, Task, ToolCall, json_value
from lamsim_tui.simulator.feedback import Finding
from lamsim_tui.simulator.runner import ToolRunner, describe_exit, run_limited
from lamsim_tui.text import shorten


class GoldFailure(Exception):
    """A template's gold program failed: the template is broken, not the agent.

    ``hung``: it ran past its time limit (the template is not tried again).
    """

    def __init__(self, template: str, reason: str, where: str = "", hung: bool = False):
        super().__init__(reason)
        self.template = template
        self.reason = reason
        self.where = where
        self.hung = hung


def task_id(pack: Pack, template: str, slots: dict) -> str:
    blob = json.dumps([pack.name, template, slots], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _user_frame(exc: BaseException, spec: TemplateSpec) -> str:
    import traceback

    where = getattr(exc, "where", None)
    if isinstance(where, str) and where:
        return where
    files = {s.rsplit(":", 1)[0] for s in (spec.source, spec.gold_source) if s}
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in files]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else (spec.gold_source or spec.source)


def _pack_code(spec: TemplateSpec, what: str, runner: ToolRunner, fn: Any, *args: Any) -> Any:
    """Run a template's sampler or gold program under the pack-code time limit (`runner.code_seconds`):
    exceptions, `sys.exit`/`os._exit` and hangs become a GoldFailure naming the pack's file:line."""
    ran, _printed = run_limited(fn, args, seconds=runner.code_seconds)
    if ran.status == "ok":
        return ran.value
    if ran.status == "timeout":
        where = ran.value or (spec.gold_source if what == "gold program" else None) or spec.source
        raise GoldFailure(spec.id, f"{what} did not finish within {runner.code_seconds:g} s (an endless loop?)",
                          where, hung=True)
    exc = ran.exc
    if isinstance(exc, GoldFailure):
        raise exc
    if isinstance(exc, _GoldCallFailed):
        raise GoldFailure(spec.id, str(exc), _user_frame(exc, spec))
    how = describe_exit(exc)
    reason = f"{what} called {how}" if how else f"{what} raised {type(exc).__name__}: {shorten(str(exc), 2000)}"
    raise GoldFailure(spec.id, reason, _user_frame(exc, spec))


# ----- what `lamsim check` watches -------------------------------------------------------------------


@dataclass
class PickedRow:
    """A gold program took one row of a list a tool returned (`rows[0]`)."""

    tool: str
    arguments: dict
    index: int
    rows: int
    indistinct: bool  # the call's arguments match every row alike: nothing told them apart
    where: str


@dataclass
class GoldWatch:
    """What one gold run did, for the authoring checks."""

    slots_read: set[str] = field(default_factory=set)
    undeclared_writes: dict[str, str] = field(default_factory=dict)  # tool -> what it wrote ("update orders")
    picked: list[PickedRow] = field(default_factory=list)
    global_random_used: bool = False
    ended_by: str | None = None  # the gold program called a tool that ends the episode
    ignored_answer: Any = None  # an action-only template's gold program returned a value that is not text


class _TrackedSlots(dict):
    """The slots as a gold program sees them, noting which it reads."""

    __slots__ = ("_read",)

    def __getitem__(self, key):
        self._read.add(key)
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        self._read.add(key)
        return dict.get(self, key, default)

    def __contains__(self, key):
        self._read.add(key)
        return dict.__contains__(self, key)

    def _all(self):
        self._read.update(dict.keys(self))

    def __iter__(self):
        self._all()
        return dict.__iter__(self)

    def keys(self):
        self._all()
        return dict.keys(self)

    def values(self):
        self._all()
        return dict.values(self)

    def items(self):
        self._all()
        return dict.items(self)

    def copy(self):
        self._all()
        return dict(dict.items(self))


def _indistinct(rows: list, arguments: dict) -> bool:
    wanted = [v.strip().casefold() for v in arguments.values() if isinstance(v, str) and v.strip()]
    if not wanted or not all(isinstance(r, dict) for r in rows):
        return False

    def matches(row: dict, text: str) -> bool:
        return any(isinstance(v, str) and text in v.casefold() for v in row.values())

    return all(matches(row, text) for row in rows for text in wanted)


class _Rows(list):
    """A list result handed to a gold program under `check`: notes which row it picks by position."""

    __slots__ = ("_origin",)

    def __getitem__(self, index):
        if isinstance(index, int) and len(self) > 1:
            watch, tool, arguments = self._origin
            frame = sys._getframe(1)
            where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
            watch.picked.append(PickedRow(tool, arguments, index, len(self), _indistinct(self, arguments), where))
        return list.__getitem__(self, index)


def _watched(value: Any, watch: GoldWatch, tool: str, arguments: dict) -> Any:
    def rows(items: list) -> _Rows:
        out = _Rows(items)
        out._origin = (watch, tool, arguments)
        return out

    if isinstance(value, list):
        return rows(value)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list):
                value[key] = rows(item)
    return value


# ----- running gold programs -------------------------------------------------------------------------


_LAMSIM_DIR = str(Path(__file__).resolve().parents[1])


class _GoldCallFailed(Exception):
    def __init__(self, message: str, findings: list[Finding]):
        super().__init__(message)
        self.findings = findings


def _short(arguments: dict) -> str:
    return shorten(", ".join(f"{k}={v!r}" for k, v in arguments.items()), 120, "...")


def _list_rows(result: Any) -> tuple[list, str] | None:
    """The rows of a list result: the list itself, or an object's only list field ({"cases": [...]})."""
    if isinstance(result, list):
        return result, ""
    if isinstance(result, dict):
        lists = [(k, v) for k, v in result.items() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0][1], lists[0][0]
    return None


class GoldCaller:
    """The `call` a gold program receives. Every call runs through the agent's checks."""

    def __init__(self, pack: Pack, runner: ToolRunner, sandbox, watch: GoldWatch | None = None):
        self.pack = pack
        self.runner = runner
        self.sandbox = sandbox
        self.watch = watch
        self.calls: list[GoldCall] = []
        self.ended_by: str | None = None  # a tool that ends the episode was called

    def _run(self, tool: str, arguments: dict):
        if self.ended_by is not None:
            raise _GoldCallFailed(f"gold call {tool}({_short(arguments)}) comes after {self.ended_by}, which ends "
                                  "the episode: an agent could never make it", [])
        sb = self.sandbox
        writes = sb.writes
        outcome = self.runner.execute_sync(sb, ToolCall(tool=tool, arguments=arguments))
        spec = self.pack.tools.get(tool)
        if self.watch is not None and spec is not None and sb.writes > writes and not spec.changes_state:
            self.watch.undeclared_writes.setdefault(tool, sb.last_write or "wrote")
        return outcome, spec

    def _failed(self, tool: str, arguments: dict, outcome) -> _GoldCallFailed:
        detail = "; ".join(f"[{f.code}] {f.message}" for f in outcome.findings)
        if outcome.crash:
            lines = [ln for ln in outcome.crash.strip().splitlines() if ln.strip()]
            if lines[0].startswith("tool "):  # a row changed in place: the runner's headline names tool and line
                return _GoldCallFailed(f"gold call {tool}({_short(arguments)}) failed: {lines[0]}\n"
                                       f"{lines[-1].strip()}", outcome.findings)
            # Most useful first: the exception, then the pack's own line that raised it.
            files = [i for i, ln in enumerate(lines) if ln.strip().startswith("File ")]
            own = [i for i in files if _LAMSIM_DIR not in lines[i]]
            frame = (own or files or [None])[-1]
            detail += f"\n{lines[-1].strip()}"
            if frame is not None:
                detail += "".join(f"\n{ln.strip()}" for ln in lines[frame:frame + 2] if ln != lines[-1])
        return _GoldCallFailed(f"gold call {tool}({_short(arguments)}) failed: {detail}", outcome.findings)

    def _give(self, tool: str, arguments: dict, result: Any) -> Any:
        value = thaw(result)
        if self.watch is not None:
            value = _watched(value, self.watch, tool, dict(arguments))
        return value

    def __call__(self, tool: str, /, **arguments: Any) -> Any:
        outcome, spec = self._run(tool, arguments)
        if not outcome.ok:
            raise self._failed(tool, arguments, outcome)
        self.calls.append(GoldCall(tool, json_value(arguments), outcome.stored))
        if spec is not None and spec.ends_episode:
            self.ended_by = tool
        return self._give(tool, arguments, outcome.result)

    def one(self, tool: str, /, **arguments: Any) -> Any:
        """The only row of a list result; the task fails (an ambiguous draw) when there are 0 or several."""
        result = self(tool, **arguments)
        found = _list_rows(result)
        if found is None:
            raise _GoldCallFailed(f"call.one: {tool}({_short(arguments)}) returned "
                                  f"{type(result).__name__}, not a list of rows", [])
        rows, key = found
        if len(rows) != 1:
            where = f" in {key!r}" if key else ""
            raise _GoldCallFailed(
                f"call.one: {tool}({_short(arguments)}) matched {len(rows)} rows{where} where the task expects "
                "exactly one: the sampler drew an ambiguous task (make it draw values that match one row)", [])
        return list.__getitem__(rows, 0)

    def first(self, tool: str, /, **arguments: Any) -> Any:
        """The first row of an ordered list result (newest first, cheapest first, ...), on purpose."""
        result = self(tool, **arguments)
        found = _list_rows(result)
        if found is None or not found[0]:
            raise _GoldCallFailed(f"call.first: {tool}({_short(arguments)}) returned no rows", [])
        return list.__getitem__(found[0], 0)

    def attempt(self, tool: str, /, **arguments: Any) -> tuple[Any, str | None]:
        """A call that may fail with a domain error: (result, None), or (None, the error's message), kept in
        the gold calls either way. Other failures (an unknown tool, bad arguments, a crash) fail the task."""
        outcome, spec = self._run(tool, arguments)
        if outcome.ok:
            self.calls.append(GoldCall(tool, json_value(arguments), outcome.stored))
            if spec is not None and spec.ends_episode:
                self.ended_by = tool
            return self._give(tool, arguments, outcome.result), None
        if [f.code for f in outcome.findings] != ["exec.error"]:
            raise self._failed(tool, arguments, outcome)
        detail = outcome.error_detail or outcome.findings[0].message
        self.calls.append(GoldCall(tool, json_value(arguments), None, error=detail))
        return None, detail

    def expect_error(self, tool: str, /, **arguments: Any) -> str:
        """A call that must fail with a domain error (a `ToolError`): returns its message. It is kept in
        the gold calls, so the scripted agent makes it too and recovers from it."""
        outcome, _ = self._run(tool, arguments)
        if outcome.ok:
            raise _GoldCallFailed(f"gold call {tool}({_short(arguments)}) was expected to fail, but it succeeded "
                                  f"and returned {shorten(json.dumps(json_value(outcome.result)), 80, '...')}", [])
        codes = [f.code for f in outcome.findings]
        if codes != ["exec.error"]:
            raise self._failed(tool, arguments, outcome)
        detail = outcome.error_detail or outcome.findings[0].message
        self.calls.append(GoldCall(tool, json_value(arguments), None, error=detail))
        return detail


def run_gold(pack: Pack, spec: TemplateSpec, slots: dict, runner: ToolRunner,
             watch: GoldWatch | None = None) -> tuple[list[GoldCall], Any, dict, str | None]:
    """Run a gold program on a fresh sandbox: (gold calls, answer, final state changes, ending tool)."""
    caller = GoldCaller(pack, runner, pack.new_sandbox(), watch)
    given: dict = slots
    if watch is not None:
        given = _TrackedSlots(slots)
        given._read = watch.slots_read
        before = random.getstate()
    answer = _pack_code(spec, "gold program", runner, spec.gold_program, given, caller)
    if watch is not None and random.getstate() != before:
        watch.global_random_used = True
    if answer is None and spec.answer != "none" and caller.ended_by is None:
        raise GoldFailure(spec.id, "gold program returned no answer (None)", spec.gold_source or spec.source)
    try:
        return caller.calls, json_value(answer), json_value(caller.sandbox.changes()), caller.ended_by
    except (ValueError, TypeError, RecursionError) as exc:
        raise GoldFailure(spec.id, f"gold program's answer or state is not JSON data: {shorten(str(exc), 300)}",
                          spec.gold_source or spec.source) from None


def sample_slots(pack: Pack, spec: TemplateSpec, rng: random.Random, runner: ToolRunner | None = None) -> dict:
    view = DataView(pack.new_sandbox())
    slots = _pack_code(spec, "slot sampler", runner or ToolRunner(pack), spec.sample, view, rng)
    if not isinstance(slots, dict):
        raise GoldFailure(spec.id, f"slot sampler must return a dict of slots, got {type(slots).__name__}", spec.source)
    missing = [s for s in spec.slot_names if s not in slots]
    if missing:
        raise GoldFailure(spec.id, f"query needs slot(s) {', '.join(missing)} that the sampler did not return",
                          spec.source)
    try:
        return json_value(slots)
    except (TypeError, ValueError, RecursionError) as exc:
        raise GoldFailure(spec.id, f"slot sampler returned slots that are not JSON data: {shorten(str(exc), 300)}",
                          spec.source) from None


def judged_state(spec: TemplateSpec, gold_state: dict) -> bool:
    """Whether a task of this template is judged on its final state ("auto", the default of fixed
    tasks given by their calls: yes, the final state must be where the calls left it)."""
    return spec.state is not False


def make_task(pack: Pack, spec: TemplateSpec, slots: dict, runner: ToolRunner,
              watch: GoldWatch | None = None) -> Task:
    query = _query(spec, slots)
    calls, answer, state, ended_by = run_gold(pack, spec, slots, runner, watch)
    if spec.ends_with is not None and ended_by != spec.ends_with:
        raise GoldFailure(spec.id, f"ends_with={spec.ends_with!r}, but the gold program "
                          + (f"ended with {ended_by}" if ended_by else "did not call it"),
                          spec.gold_source or spec.source)
    if watch is not None:
        watch.ended_by = ended_by
        if spec.answer == "none" and answer is not None and not isinstance(answer, str):
            watch.ignored_answer = answer
    # A gold program that hands off gives no answer: nothing to judge but the state (and the hand-off).
    answer_type = "none" if ended_by is not None else spec.answer
    return Task(
        id=task_id(pack, spec.id, slots),
        template=spec.id,
        query=query,
        slots=slots,
        gold_calls=tuple(calls),
        # An action-only task's gold answer is the confirmation text its gold program may return (never judged).
        gold_answer=(answer if isinstance(answer, str) else None) if answer_type == "none" else answer,
        answer_type=answer_type,
        tolerance=spec.tolerance,
        judge_state=judged_state(spec, state),
        state_fields=spec.state_fields,
        gold_state=state,
        ends_with=spec.ends_with,
    )


def _query(spec: TemplateSpec, slots: dict) -> str:
    try:
        return spec.render_query(slots)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise GoldFailure(spec.id, f"the query {shorten(spec.query, 80)!r} cannot be filled in: "
                          f"{type(exc).__name__}: {exc} (write slots as {{name}}, and a brace as {{{{ or }}}})",
                          spec.source) from None


@dataclass
class Generation:
    tasks: list[Task]
    failures: dict[str, list[GoldFailure]] = field(default_factory=dict)


def template_weights(pack: Pack, selection: Any) -> dict[str, float]:
    """Resolve a session's `templates` setting (all | [ids] | {id: weight}) against the pack."""
    from lamsim_tui.errors import ConfigError
    from lamsim_tui.names import nearest_names

    if selection == "all" or selection is None:
        return _checked_weights(pack, {tid: spec.weight for tid, spec in pack.templates.items()}, from_pack=True)
    items = selection.items() if isinstance(selection, dict) else ((tid, None) for tid in selection)
    weights = {}
    for tid, weight in items:
        if tid not in pack.templates:
            close = nearest_names(tid, pack.templates)
            hint = f"did you mean {close[0]!r}?" if close else "templates: " + ", ".join(pack.templates)
            raise ConfigError(f"templates: pack {pack.name!r} has no template {tid!r}", hint=hint)
        weights[tid] = pack.templates[tid].weight if weight is None else float(weight)
    return _checked_weights(pack, weights)


def _checked_weights(pack: Pack, weights: dict[str, float], from_pack: bool = False) -> dict[str, float]:
    from lamsim_tui.errors import ConfigError, PackError

    for tid, weight in weights.items():
        if not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise PackError(f"template {tid!r}: weight must be a finite number, 0 or more, got {weight!r}",
                            where=pack.templates[tid].source or str(pack.path))
    if weights and not any(w > 0 for w in weights.values()):
        if from_pack:
            raise PackError("every template has weight 0, so no task can be drawn",
                            where=next(iter(pack.templates.values())).source or str(pack.path),
                            hint="give at least one template a positive weight")
        raise ConfigError("templates: every selected template has weight 0, so no task can be drawn",
                          hint="give at least one template a positive weight")
    return weights


class TaskGenerator:
    """Reproducible: the same pack, weights and seed give the same tasks in the same order."""

    def __init__(self, pack: Pack, weights: dict[str, float], runner: ToolRunner):
        self.pack = pack
        self.weights = {k: w for k, w in weights.items() if w > 0}
        self.runner = runner

    def generate(self, n: int, seed: int, max_tries_per_task: int = 30) -> Generation:
        rng = random.Random(seed)
        result = Generation(tasks=[])
        seen: set[str] = set()
        active = dict(self.weights)
        misses: dict[str, int] = {tid: 0 for tid in active}
        tries = 0
        while len(result.tasks) < n and active and tries < n * max_tries_per_task:
            tries += 1
            ids = list(active)
            tid = rng.choices(ids, weights=[active[i] for i in ids])[0]
            spec = self.pack.templates[tid]
            draw = random.Random(rng.getrandbits(64))
            try:
                slots = sample_slots(self.pack, spec, draw, self.runner)
                key = task_id(self.pack, tid, slots)
                if key in seen:
                    misses[tid] += 1
                    if misses[tid] >= max_tries_per_task:  # slot space exhausted: stop drawing it
                        active.pop(tid)
                    continue
                misses[tid] = 0
                task = make_task(self.pack, spec, slots, self.runner)
            except GoldFailure as failure:
                result.failures.setdefault(tid, []).append(failure)
                if len(result.failures[tid]) >= 3 or failure.hung or spec.fixed:  # a broken one never reaches an agent
                    active.pop(tid, None)
                continue
            seen.add(key)
            result.tasks.append(task)
            if spec.fixed:  # one task: nothing more to draw
                active.pop(tid, None)
        return result


@dataclass
class TemplateReport:
    template: str
    tried: int = 0
    ok: int = 0
    distinct: int = 0
    failures: list[GoldFailure] = field(default_factory=list)
    examples: list[tuple[str, Any]] = field(default_factory=list)
    gold_calls: tuple[int, int] = (0, 0)
    max_gold_s: float = 0.0
    saturated: bool = False
    truncated_observations: int = 0  # gold results longer than what the agent would be shown
    extra_runs: int = 0  # gold runs on further distinct tasks, for the authoring checks
    extra_failures: list[GoldFailure] = field(default_factory=list)  # their failures (the samples passed)
    problems: list = field(default_factory=list)  # pack_checks.Problem: the authoring checks' findings
    fixed: bool = False
    evidence: Any = field(default=None, repr=False)  # pack_checks.TemplateEvidence

    @property
    def errors(self) -> list:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list:
        return [p for p in self.problems if p.severity == "warning"]


def observation_size(result: Any) -> int:
    """How many characters a tool result is when shown to the agent (before the cut)."""
    if isinstance(result, str):
        return len(result)
    return len(json.dumps(result, ensure_ascii=False, default=str))


NARROW_TEMPLATE = 10  # fewer distinct tasks than this: `check` warns that the template is narrow
EXTRA_GOLD_RUNS = 60  # further distinct tasks whose gold programs `check` runs for the authoring checks
EXTRA_GOLD_S = 1.0  # ... while a template's gold programs have taken less than this


def check_templates(pack: Pack, runner: ToolRunner, samples: int = 20, seed: int = 0,
                    only: list[str] | None = None) -> list[TemplateReport]:
    """Sample tasks from every template, run their gold programs and the authoring checks (`lamsim check`)."""
    from lamsim_tui.simulator import hash_order
    from lamsim_tui.simulator.pack_checks import template_problems

    chosen = [tid for tid in pack.templates if only is None or tid in only]
    elsewhere = hash_order.Elsewhere(pack.path, seed, [tid for tid in chosen if not pack.templates[tid].fixed],
                                     runner.timeout)
    try:
        reports, first_draws = _check_each(pack, runner, chosen, samples, seed)
        others = elsewhere.results()
    finally:
        elsewhere.close()
    for other in others:  # the same seeds drawn in processes with other hash orders
        for report in reports:
            here, there = first_draws.get(report.template, []), other.get(report.template) or []
            for mine, theirs in zip(here, there, strict=False):
                if mine is not None and theirs is not None and not hash_order.same(mine, theirs):
                    report.evidence.sampler_hash_order = report.evidence.sampler_hash_order or (mine, theirs)
                    break
    for report in reports:
        report.problems = template_problems(pack, pack.templates[report.template], report.evidence, report,
                                            runner.observation_chars)
    return reports


def _check_each(pack: Pack, runner: ToolRunner, chosen: list[str], samples: int,
                seed: int) -> tuple[list[TemplateReport], dict[str, list]]:
    from lamsim_tui.simulator import hash_order
    from lamsim_tui.simulator.pack_checks import TemplateEvidence

    reports = []
    first_draws: dict[str, list] = {}
    for tid in chosen:
        spec = pack.templates[tid]
        evidence = TemplateEvidence(spec)
        report = TemplateReport(template=tid, fixed=spec.fixed, evidence=evidence)
        rng = random.Random(f"{seed}:{tid}")
        seen: set[str] = set()
        counts: list[int] = []
        gold_s = 0.0
        for n in range(samples if not spec.fixed else 1):
            report.tried += 1
            draw_seed = rng.getrandbits(64)
            try:
                before = random.getstate()
                slots = sample_slots(pack, spec, random.Random(draw_seed), runner)
                if n < hash_order.DRAWS:
                    first_draws.setdefault(tid, []).append(slots)
                if random.getstate() != before:
                    evidence.sampler_uses_global_random = True
                if n < 3 and not spec.fixed and evidence.sampler_differs is None:
                    # drawn again from the same seed: a sampler that reads the clock or a counter differs
                    again = sample_slots(pack, spec, random.Random(draw_seed), runner)
                    if again != slots:
                        evidence.sampler_differs = (slots, again)
                key = task_id(pack, tid, slots)
                watch = GoldWatch()
                started = time.perf_counter()
                task = make_task(pack, spec, slots, runner, watch)
                took = time.perf_counter() - started
                gold_s += took
                report.max_gold_s = max(report.max_gold_s, took)
            except GoldFailure as failure:
                report.failures.append(failure)
                if n < hash_order.DRAWS and len(first_draws.get(tid, ())) == n:
                    first_draws.setdefault(tid, []).append(None)  # the sampler failed: nothing to compare
                if failure.hung:
                    break
                continue
            report.ok += 1
            evidence.add(task, watch)
            counts.append(len(task.gold_calls))
            long = [c for c in task.gold_calls if observation_size(c.result) > runner.observation_chars]
            report.truncated_observations += len(long)
            if long and evidence.long_result is None:
                evidence.long_result = (long[0], task.slots)
            if key not in seen:
                seen.add(key)
                if len(report.examples) < 2:
                    report.examples.append((task.query, task.gold_answer))
        # Estimate the slot space: keep drawing until new tasks stop appearing.
        extra_rng = random.Random(f"{seed}:{tid}:space")
        misses = 0
        draws = 0
        fresh: list[dict] = []  # slots of tasks not run yet, for the extra gold runs below
        while misses < 40 and draws < 800 and not report.failures and not spec.fixed:
            draws += 1
            try:
                slots = sample_slots(pack, spec, random.Random(extra_rng.getrandbits(64)), runner)
            except GoldFailure:
                break
            key = task_id(pack, tid, slots)
            if key in seen:
                misses += 1
            else:
                seen.add(key)
                misses = 0
                if len(fresh) < EXTRA_GOLD_RUNS:
                    fresh.append(slots)
        # More gold runs on other tasks, for the authoring checks only (a rare ambiguous draw, an answer
        # that does not fit its type once in fifty): they do not count in tried/ok/fail.
        spent = gold_s
        for slots in fresh if not report.failures else ():
            if spent > EXTRA_GOLD_S:
                break
            watch = GoldWatch()
            started = time.perf_counter()
            try:
                task = make_task(pack, spec, slots, runner, watch)
            except GoldFailure as failure:
                report.extra_failures.append(failure)
                break
            finally:
                spent += time.perf_counter() - started
            report.extra_runs += 1
            evidence.add(task, watch)
        report.saturated = draws < 800
        report.distinct = len(seen)
        report.gold_calls = (min(counts), max(counts)) if counts else (0, 0)
        reports.append(report)
    return reports, first_draws


def find_in_place_writers(pack: Pack, runner: ToolRunner, seed: int = 0, only: list[str] | None = None) -> list[str]:
    """Who changed seed rows in place (a row from `iter_rows` written into): each template's sampler and
    gold calls are run once more on ``pack`` (load it fresh), comparing the tables before and after each.
    Slow (it hashes the tables around every call): `lamsim check` runs it only when the seed changed."""
    found: list[str] = []
    seed_data = pack.seed

    def changed(before: dict[str, int]) -> list[str]:
        after = seed_data.table_fingerprints()
        return [t for t in after if after[t] != before.get(t)]

    class Watching(ToolRunner):
        def execute_sync(self, sb, call):
            before = seed_data.table_fingerprints()
            outcome = super().execute_sync(sb, call)
            tables = changed(before)
            spec = pack.tools.get(call.tool)
            if tables and spec is not None:
                found.append(f"tool {call.tool!r} ({spec.source}) changed rows of {', '.join(tables)} in place")
            return outcome

    watching = Watching(pack, timeout=runner.timeout, observation_chars=runner.observation_chars)
    for tid, spec in pack.templates.items():
        if only is not None and tid not in only:
            continue
        before = seed_data.table_fingerprints()
        try:
            slots = sample_slots(pack, spec, random.Random(f"{seed}:{tid}"), watching)
        except GoldFailure:
            continue
        tables = changed(before)
        if tables:
            found.append(f"the sampler of {tid!r} ({spec.source}) changed rows of {', '.join(tables)} in place")
        try:
            make_task(pack, spec, slots, watching)
        except GoldFailure:
            pass
    return list(dict.fromkeys(found))
