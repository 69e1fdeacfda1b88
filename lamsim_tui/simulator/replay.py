"""Replaying a fixed list of actions in a fresh sandbox: how an operator's edit is checked, and the
public "execute these calls and judge them" API.

The actions go through the normal episode loop (`run_episode` with a `ReplayAgent`), so their
observations come from the tools, feedback is re-run and the judge scores the result.

    from lamsim_tui.packs import load_pack
    from lamsim_tui.simulator.replay import judge_calls, task_for, task_from_calls

    pack = load_pack("tools/crm")
    task = task_for(pack, "case_status", {"case_id": "C-0042"})      # a template's task, gold computed
    judged = judge_calls(pack, task, [{"tool": "get_case", "arguments": {"case_id": "C-0042"}}],
                         answer="open")
    judged.success, judged.reasons, judged.record                    # verdict, reasons, a full record

`task_from_calls(pack, query, gold_calls, answer=...)` makes a task from another benchmark's gold
actions (they run in a fresh sandbox to give the gold state); `judge_calls` then executes any
other action sequence against it and judges it with lamsim's own judge.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lamsim_tui.agents.replay import ReplayAgent
from lamsim_tui.errors import LamsimError
from lamsim_tui.packs import Pack, TemplateSpec, load_pack
from lamsim_tui.record import (
    Finish,
    PackInfo,
    Step,
    Task,
    ToolCall,
    Trajectory,
    Verdict,
    current_user,
    utc_now,
)
from lamsim_tui.session.config import BudgetSettings, FeedbackSettings, FilterSettings, recorded_section
from lamsim_tui.simulator.episode import EpisodeSettings, run_episode
from lamsim_tui.simulator.filters import failed_filters
from lamsim_tui.simulator.runner import ToolRunner


async def areplay(record: Trajectory, actions: list[dict], *, pack: Pack | None = None) -> Trajectory:
    """Re-execute an edited action list in a fresh sandbox; recompute observations, feedback, verdict.

    ``actions`` are dicts shaped like a step's action (`{"type": "call", "tool", "arguments"}` or
    `{"type": "finish", "answer"}`), optionally with "thought". Returns a new record (status None).
    """
    if pack is None:
        pack = load_pack(record.pack.path)
    settings = record.session.settings
    budget = recorded_section(BudgetSettings, settings.get("budget"))
    # The operator's edit is judged once: no second chances for a wrong final answer.
    feedback = dataclasses.replace(recorded_section(FeedbackSettings, settings.get("feedback")),
                                   reveal_wrong_answer=False)
    budget = dataclasses.replace(budget, steps=max(budget.steps, len(actions)))
    runner = ToolRunner(pack, timeout=budget.tool_seconds, disabled=feedback.disable,
                        observation_chars=budget.observation_chars)
    episode = await run_episode(pack=pack, runner=runner, task=record.task, agent=ReplayAgent(actions),
                                settings=EpisodeSettings(budget=budget, feedback=feedback),
                                episode_id=record.id, seed=record.episode.seed, emit=lambda e: None)
    filters = dataclasses.replace(recorded_section(FilterSettings, settings.get("filters")), dedupe=False)
    failed = failed_filters(episode.verdict, record.task.id, "", filters, set())
    return record.replace(
        steps=episode.steps, final_answer=episode.final_answer, end_reason=episode.end_reason,
        final_state=episode.final_state, timing=episode.timing,
        verdict=dataclasses.replace(episode.verdict, filters_failed=tuple(failed), passed=not failed),
        status=None, finished_at=utc_now(), replayed_by=current_user(),
        pack=record.pack if pack.version == record.pack.version else PackInfo(record.pack.name, pack.version,
                                                                               record.pack.path))


def replay(record: Trajectory, actions: list[dict], *, pack: Pack | None = None) -> Trajectory:
    """Blocking form of `areplay` (CLI, tests, thread workers)."""
    return asyncio.run(areplay(record, actions, pack=pack))


# ----- execute these calls and judge them ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Judged:
    """What `judge_calls` found: the judge's verdict and the full trajectory record of the replay."""

    verdict: Verdict
    record: Trajectory

    @property
    def success(self) -> bool:
        return self.verdict.success

    @property
    def reasons(self) -> tuple[str, ...]:
        return self.verdict.reasons

    @property
    def final_state(self) -> dict:
        return self.record.final_state

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.record.steps


_NO_ANSWER = object()


_LOADED: dict[Path, Pack] = {}


def _pack(pack: Pack | str | Path) -> Pack:
    """A pack, or one loaded from its folder: kept while its files are unchanged (judging thousands
    of sequences does not re-import the pack each time)."""
    if isinstance(pack, Pack):
        return pack
    path = Path(pack).expanduser().resolve()
    known = _LOADED.get(path)
    if known is not None:
        from lamsim_tui.packs.loading import _pack_hash

        extra = tuple(p for p in (known.policy_path,) if p is not None)
        if _pack_hash(path, extra) == known.version:
            return known
    _LOADED[path] = loaded = load_pack(path)
    return loaded


def action_dict(item: Any) -> dict:
    """One action in the shape `ReplayAgent` takes, from whatever another tool calls it: a `ToolCall` or
    `Finish`, a dict with `tool`/`name` and `arguments`/`args`/`kwargs` (or `{"type": "finish", "answer"}`),
    a `(tool, arguments)` pair, or an object with `.name` and `.kwargs` (τ-bench's `Action`)."""
    if isinstance(item, ToolCall):
        return {"tool": item.tool, "arguments": dict(item.arguments)}
    if isinstance(item, Finish):
        return {"type": "finish", "answer": item.answer}
    if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
        return {"tool": item[0], "arguments": dict(item[1] or {})}
    if not isinstance(item, dict):
        name, kwargs = getattr(item, "name", None), getattr(item, "kwargs", getattr(item, "arguments", None))
        if isinstance(name, str):
            return {"tool": name, "arguments": dict(kwargs or {})}
        raise LamsimError(f"cannot read {type(item).__name__} as a tool call",
                          hint='give {"tool": NAME, "arguments": {...}}, a (name, arguments) pair or a ToolCall')
    if item.get("type") == "finish" or item.get("tool") == "finish" or item.get("name") == "finish":
        out = {"type": "finish"}
        args = item.get("arguments") or item.get("kwargs") or {}
        if "answer" in item or (isinstance(args, dict) and "answer" in args):
            out["answer"] = item.get("answer", args.get("answer") if isinstance(args, dict) else None)
        return out
    tool = item.get("tool", item.get("name"))
    arguments = next((item[k] for k in ("arguments", "args", "kwargs", "parameters") if k in item), {})
    out = {"tool": tool, "arguments": arguments if isinstance(arguments, dict) else {}}
    if item.get("thought"):
        out["thought"] = str(item["thought"])
    return out


def task_for(pack: Pack | str | Path, template: str, slots: dict | None = None, *, seed: int = 0) -> Task:
    """A task of a template or fixed task, its gold program run: with the given slots, or sampled with ``seed``."""
    from lamsim_tui.names import nearest_names
    from lamsim_tui.simulator.tasks import GoldFailure, make_task, sample_slots

    pack = _pack(pack)
    spec = pack.templates.get(template)
    if spec is None:
        close = nearest_names(template, pack.templates)
        raise LamsimError(f"pack {pack.name!r} has no template or fixed task {template!r}",
                          hint=f"did you mean {close[0]!r}?" if close else None)
    runner = ToolRunner(pack)
    try:
        if slots is None:
            slots = sample_slots(pack, spec, random.Random(f"{seed}:{template}"), runner)
        return make_task(pack, spec, dict(slots), runner)
    except GoldFailure as failure:
        raise LamsimError(failure.reason, where=failure.where) from None


def task_from_calls(pack: Pack | str | Path, query: str, gold_calls: Iterable[Any], *, answer: Any = _NO_ANSWER,
                    answer_type: str | None = None, state: bool | str | None = None,
                    state_fields: dict | None = None, tolerance: float = 1e-6, id: str = "calls",
                    ends_with: str | None = None, allow_errors: bool = False) -> Task:
    """A task given by its gold calls (another benchmark's gold actions, a ticket's resolution).

    The calls run in a fresh sandbox through the agent's checks and give the gold calls and the gold
    state; a call dict with `"expect_error": true` must fail with a domain error, and with
    ``allow_errors`` any call may (a benchmark's gold actions that fail on purpose, unmarked). ``answer`` is the
    expected final answer (left out: an action-only task, judged on its final state). The final
    state is judged (it must be where the gold calls left it: another benchmark's "same database"
    rule) unless ``state=False``. ``ends_with`` names a tool the episode must end with (a hand-off).
    """
    from lamsim_tui.packs.fixed import MAY_FAIL, FixedCall, _replay_program
    from lamsim_tui.simulator.tasks import GoldFailure, make_task

    pack = _pack(pack)
    calls = []
    for item in gold_calls:
        shaped = action_dict(item)
        if shaped.get("type") == "finish":
            continue
        expect = item.get("expect_error", False) if isinstance(item, dict) else False
        if allow_errors and expect is False:
            expect = MAY_FAIL
        calls.append(FixedCall(tool=shaped["tool"], arguments=shaped["arguments"], expect_error=expect))
    has_answer = answer is not _NO_ANSWER and answer is not None
    if answer_type is None:
        from lamsim_tui.packs.fixed import _infer_answer_type

        answer_type = _infer_answer_type(answer) if has_answer else "none"
    spec = TemplateSpec(id=id, query=query, answer=answer_type, sample=lambda data, rng: {},
                        gold_program=_replay_program(calls, [f"gold call {i + 1}" for i in range(len(calls))],
                                                     answer if has_answer else None),
                        tolerance=tolerance, state="auto" if state is None else state, state_fields=state_fields,
                        fixed=True, source=f"task_from_calls({id!r})", ends_with=ends_with)
    if ends_with is not None and not getattr(pack.tools.get(ends_with), "ends_episode", False):
        raise LamsimError(f"ends_with={ends_with!r} is not a tool of the pack that ends the episode")
    try:
        return make_task(pack, spec, {}, ToolRunner(pack))
    except GoldFailure as failure:
        raise LamsimError(f"the gold calls do not run: {failure.reason}", where=failure.where) from None


async def ajudge_calls(pack: Pack | str | Path, task: Task | str, calls: Iterable[Any], *, answer: Any = _NO_ANSWER,
                       slots: dict | None = None, budget: BudgetSettings | None = None,
                       feedback: FeedbackSettings | None = None) -> Judged:
    """Execute ``calls`` in a fresh sandbox through the episode loop (every check, the real tools) and
    judge the result against ``task`` (a `Task`, or a template / fixed task id with ``slots``).

    ``answer`` is the final answer given after the calls (for an action-only task a confirmation is
    given when it is left out; a `finish` action among the calls also counts). Every call is
    executed (repeats included: `loop.repeat` is off unless ``feedback`` says otherwise); the
    answer is judged once. Returns the verdict and the full trajectory record.
    """
    pack = _pack(pack)
    if isinstance(task, str):
        task = task_for(pack, task, slots)
    actions = [action_dict(c) for c in calls]
    ends = {name for name, spec in pack.tools.items() if spec.ends_episode}
    finished = any(a.get("type") == "finish" for a in actions) or any(a.get("tool") in ends for a in actions)
    if answer is not _NO_ANSWER:
        actions.append({"type": "finish", "answer": answer})
    elif not finished and not task.judges_answer:
        actions.append({"type": "finish", "answer": "Done."})
    budget = budget or BudgetSettings(seconds=3600.0)
    budget = dataclasses.replace(budget, steps=max(1, min(200, len(actions))), warn_steps_left=0)
    feedback = feedback or FeedbackSettings(disable=["loop.repeat"])
    feedback = dataclasses.replace(feedback, reveal_wrong_answer=False)
    runner = ToolRunner(pack, timeout=budget.tool_seconds, disabled=feedback.disable,
                        observation_chars=budget.observation_chars)
    episode_id = uuid.uuid4().hex
    created = utc_now()
    episode = await run_episode(pack=pack, runner=runner, task=task, agent=ReplayAgent(actions),
                                settings=EpisodeSettings(budget=budget, feedback=feedback),
                                episode_id=episode_id, seed=0, emit=lambda e: None)
    from lamsim_tui.simulator.engine import make_trajectory

    record = make_trajectory(episode=episode, task=task, pack=pack, session=None, agent_info={"kind": "replay"},
                             episode_id=episode_id, seed=0, attempt=0, created_at=created)
    return Judged(verdict=episode.verdict, record=record)


def judge_calls(pack: Pack | str | Path, task: Task | str, calls: Iterable[Any], *, answer: Any = _NO_ANSWER,
                slots: dict | None = None, budget: BudgetSettings | None = None,
                feedback: FeedbackSettings | None = None) -> Judged:
    """Blocking form of `ajudge_calls` (from code that is not already running an event loop)."""
    return asyncio.run(ajudge_calls(pack, task, calls, answer=answer, slots=slots, budget=budget, feedback=feedback))
