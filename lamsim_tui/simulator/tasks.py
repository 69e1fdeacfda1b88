"""Task generation: fill templates from the pack's seed data and compute ground truth by running
each template's gold program through the same execution path as the agent.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

from lamsim_tui.packs import DataView, Pack, TemplateSpec
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

    src_file = spec.source.rsplit(":", 1)[0] if spec.source else ""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if src_file and f.filename == src_file]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else spec.source


def _pack_code(spec: TemplateSpec, what: str, runner: ToolRunner, fn: Any, *args: Any) -> Any:
    """Run a template's sampler or gold program under the pack-code time limit (`runner.code_seconds`):
    exceptions, `sys.exit`/`os._exit` and hangs become a GoldFailure naming the pack's file:line."""
    ran, _printed = run_limited(fn, args, seconds=runner.code_seconds)
    if ran.status == "ok":
        return ran.value
    if ran.status == "timeout":
        raise GoldFailure(spec.id, f"{what} did not finish within {runner.code_seconds:g} s (an endless loop?)",
                          ran.value or spec.source, hung=True)
    exc = ran.exc
    if isinstance(exc, _GoldCallFailed):
        raise GoldFailure(spec.id, str(exc), _user_frame(exc, spec))
    how = describe_exit(exc)
    reason = f"{what} called {how}" if how else f"{what} raised {type(exc).__name__}: {shorten(str(exc), 2000)}"
    raise GoldFailure(spec.id, reason, _user_frame(exc, spec))


def run_gold(pack: Pack, spec: TemplateSpec, slots: dict, runner: ToolRunner) -> tuple[list[GoldCall], Any, dict]:
    """Run a gold program on a fresh sandbox: (gold calls, answer, final state changes)."""
    sb = pack.new_sandbox()
    calls: list[GoldCall] = []

    def call(tool: str, /, **arguments: Any) -> Any:
        outcome = runner.execute_sync(sb, ToolCall(tool=tool, arguments=arguments))
        if not outcome.ok:
            detail = "; ".join(f"[{f.code}] {f.message}" for f in outcome.findings)
            if outcome.crash:
                # Most useful first: the exception, then the pack's own line that raised it.
                lines = [ln for ln in outcome.crash.strip().splitlines() if ln.strip()]
                frame = max((i for i, ln in enumerate(lines) if ln.strip().startswith("File ")), default=None)
                detail += f"\n{lines[-1].strip()}"
                if frame is not None:
                    detail += "".join(f"\n{ln.strip()}" for ln in lines[frame:frame + 2] if ln != lines[-1])
            raise _GoldCallFailed(f"gold call {tool}({_short(arguments)}) failed: {detail}", outcome.findings)
        calls.append(GoldCall(tool, json_value(arguments), outcome.stored))
        return outcome.result

    answer = _pack_code(spec, "gold program", runner, spec.gold_program, slots, call)
    if answer is None:
        raise GoldFailure(spec.id, "gold program returned no answer (None)", spec.source)
    try:
        return calls, json_value(answer), json_value(sb.changes())
    except (ValueError, TypeError, RecursionError) as exc:
        raise GoldFailure(spec.id, f"gold program's answer or state is not JSON data: {shorten(str(exc), 300)}",
                          spec.source) from None


class _GoldCallFailed(Exception):
    def __init__(self, message: str, findings: list[Finding]):
        super().__init__(message)
        self.findings = findings


def _short(arguments: dict) -> str:
    return shorten(", ".join(f"{k}={v!r}" for k, v in arguments.items()), 120, "...")


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
    except (ValueError, TypeError, RecursionError) as exc:
        raise GoldFailure(spec.id, f"slot sampler returned slots that are not JSON data: {shorten(str(exc), 300)}",
                          spec.source) from None


def make_task(pack: Pack, spec: TemplateSpec, slots: dict, runner: ToolRunner) -> Task:
    calls, answer, state = run_gold(pack, spec, slots, runner)
    return Task(
        id=task_id(pack, spec.id, slots),
        template=spec.id,
        query=_query(spec, slots),
        slots=slots,
        gold_calls=tuple(calls),
        gold_answer=answer,
        answer_type=spec.answer,
        tolerance=spec.tolerance,
        judge_state=spec.state,
        state_fields=spec.state_fields,
        gold_state=state,
    )


def _query(spec: TemplateSpec, slots: dict) -> str:
    try:
        return spec.query.format(**slots)
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
                if len(result.failures[tid]) >= 3 or failure.hung:  # a broken template never reaches an agent
                    active.pop(tid, None)
                continue
            seen.add(key)
            result.tasks.append(task)
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


def check_templates(pack: Pack, runner: ToolRunner, samples: int = 20, seed: int = 0,
                    only: list[str] | None = None) -> list[TemplateReport]:
    """Sample tasks from every template and run their gold programs (for `lamsim check`)."""
    reports = []
    for tid, spec in pack.templates.items():
        if only is not None and tid not in only:
            continue
        report = TemplateReport(template=tid)
        rng = random.Random(f"{seed}:{tid}")
        seen: set[str] = set()
        counts: list[int] = []
        for _ in range(samples):
            report.tried += 1
            try:
                slots = sample_slots(pack, spec, random.Random(rng.getrandbits(64)), runner)
                key = task_id(pack, tid, slots)
                started = time.perf_counter()
                task = make_task(pack, spec, slots, runner)
                report.max_gold_s = max(report.max_gold_s, time.perf_counter() - started)
            except GoldFailure as failure:
                report.failures.append(failure)
                if failure.hung:
                    break
                continue
            report.ok += 1
            counts.append(len(task.gold_calls))
            report.truncated_observations += sum(
                len(json.dumps(c.result, ensure_ascii=False)) > runner.observation_chars for c in task.gold_calls)
            if key not in seen:
                seen.add(key)
                if len(report.examples) < 2:
                    report.examples.append((task.query, task.gold_answer))
        # Estimate the slot space: keep drawing until new tasks stop appearing.
        extra_rng = random.Random(f"{seed}:{tid}:space")
        misses = 0
        draws = 0
        while misses < 40 and draws < 800 and not report.failures:
            draws += 1
            try:
                key = task_id(pack, tid, sample_slots(pack, spec, random.Random(extra_rng.getrandbits(64)), runner))
            except GoldFailure:
                break
            if key in seen:
                misses += 1
            else:
                seen.add(key)
                misses = 0
        report.saturated = draws < 800
        report.distinct = len(seen)
        report.gold_calls = (min(counts), max(counts)) if counts else (0, 0)
        reports.append(report)
    return reports
