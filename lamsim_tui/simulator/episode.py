"""One episode: the heart of the method, one named function per stage.

    for each step of the budget:
        propose        the agent writes its next action (or the model fails, or the clock runs out)
        check_call     a tool call against the tool list, its schema, and earlier identical calls
                       (a repeat only while nothing has changed since: a write in between makes it new)
        execute        a call that passed its checks runs in the episode's sandbox; a tool that ends
                       the episode (a hand-off) ends it here
        check_finish   a final answer: well formed for its type, then right or (once) revealed wrong
        budget_findings  steps running out
        observe        what the agent is shown next: the tool result and/or the feedback
    verdict            the judge compares answer and state with the ground truth

The task's gold answer is used here only by `check_finish` and `verdict` (the judge's side);
agents never see it unless they replay gold programs (`AgentFactory.replays_gold`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lamsim_tui.agents.base import Agent, AgentTurn, EpisodeView, ModelFailure, StepView
from lamsim_tui.events import Event, FeedbackGiven, ObservationMade, StepProposed
from lamsim_tui.packs import Pack
from lamsim_tui.packs.sandbox import Sandbox
from lamsim_tui.record import Finding, Finish, ModelError, Step, Task, Timing, ToolCall, Verdict, json_value, new_step
from lamsim_tui.session.config import BudgetSettings, FeedbackSettings
from lamsim_tui.simulator.feedback import CODES, enabled, finding
from lamsim_tui.simulator.judge import check_answer_form, judge
from lamsim_tui.simulator.runner import CallOutcome, ToolRunner

if TYPE_CHECKING:
    from lamsim_tui.simulator.demos import Selection


@dataclass
class EpisodeSettings:
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)


@dataclass(frozen=True)
class EpisodeResult:
    """The episode's part of a trajectory record."""

    steps: tuple[Step, ...]
    final_answer: Any
    end_reason: str
    final_state: dict
    verdict: Verdict
    timing: Timing


@dataclass
class _Episode:
    """What one episode accumulates as it runs."""

    task: Task
    settings: EpisodeSettings
    sandbox: Sandbox
    view: EpisodeView
    steps: list[Step] = field(default_factory=list)
    # call signature -> (step index, the sandbox's write count after it): a repeat only while unchanged
    executed_calls: dict[str, tuple[int, int]] = field(default_factory=dict)
    final_answer: Any = None
    answered: bool = False
    answers_given: int = 0  # final answers that count toward `feedback.answer_attempts` (malformed too)
    answers_seen: dict[str, int] = field(default_factory=dict)  # answer signature -> step index
    end_reason: str | None = None
    model_s: float = 0.0
    engine_s: float = 0.0
    started: float = 0.0
    deadline: float = 0.0

    def steps_left_after(self, index: int) -> int:
        return self.settings.budget.steps - index - 1

    def disabled(self, code: str) -> bool:
        return not enabled(code, self.settings.feedback.disable)


@dataclass
class _Checked:
    """What the checks (and, for a call that passed them, the tool) made of one action."""

    findings: list[Finding] = field(default_factory=list)
    outcome: CallOutcome | None = None  # the tool ran
    finished: bool = False


async def run_episode(*, pack: Pack, runner: ToolRunner, task: Task, agent: Agent, settings: EpisodeSettings,
                      episode_id: str, seed: int, emit: Callable[[Event], None],
                      gate: Callable[[], Any] | None = None, demonstrations: Selection | None = None) -> EpisodeResult:
    """One agent attempt at one task (shown `demonstrations` of other tasks, where there are any)."""
    budget = settings.budget
    started = time.perf_counter()
    view = EpisodeView(episode_id=episode_id, query=task.query, tools=list(pack.tools.values()), steps=[],
                       step_budget=budget.steps, seed=seed, demonstrations=demonstrations)
    ep = _Episode(task=task, settings=settings, sandbox=pack.new_sandbox(), view=view, started=started,
                  deadline=started + budget.seconds)
    try:
        await _steps(ep, pack, runner, agent, budget, episode_id, emit, gate, view)
    except asyncio.CancelledError as stop:  # Stop or Ctrl-C: the episode so far, for the record
        ep.end_reason = "cancelled"
        raise EpisodeInterrupted(verdict(ep)) from stop
    if ep.end_reason is None:
        ep.end_reason = "budget.exhausted"
    if ep.end_reason == "budget.time":
        late_time_finding(ep, emit, episode_id)
    return verdict(ep)


class EpisodeInterrupted(asyncio.CancelledError):
    """The episode was cancelled; `result` is what it had done (end reason `cancelled`)."""

    def __init__(self, result: EpisodeResult):
        super().__init__("episode cancelled")
        self.result = result


async def _steps(ep: _Episode, pack: Pack, runner: ToolRunner, agent: Agent, budget: Any, episode_id: str,
                 emit: Callable[[Event], None], gate: Callable[[], Any] | None, view: EpisodeView) -> None:
    for index in range(budget.steps):
        if gate is not None:
            await gate()
        turn = await propose(ep, agent, emit, index)
        if turn is None:
            break
        t_engine = time.perf_counter()
        parsed = turn.parsed
        action = parsed.action
        if action is not None and not action.call_id:
            action = dataclasses.replace(action, call_id=f"call_{index}")
        action_dict = json_value(action.to_dict()) if action is not None else None
        emit(StepProposed(episode_id, index, parsed.thought, action_dict, turn.raw, dict(turn.usage)))

        if parsed.problem is not None:
            checked = _Checked(findings=[parsed.problem])
        elif isinstance(action, ToolCall):
            checked = check_call(ep, runner, action)
            if not checked.findings:
                checked = await execute(ep, runner, action, index)
        elif isinstance(action, Finish):
            checked = check_finish(ep, action, index)
        else:
            checked = _Checked()
        if not checked.finished:
            checked.findings.extend(budget_findings(ep, index))
        observation = observe(runner, checked)
        feedback = tuple(f.to_dict() for f in checked.findings)
        if feedback:
            emit(FeedbackGiven(episode_id, index, feedback))
        outcome = checked.outcome
        executed = outcome is not None and outcome.executed
        emit(ObservationMade(episode_id, index, observation, executed))
        step_engine = time.perf_counter() - t_engine
        ep.engine_s += step_engine
        stored_action = None if action_dict is None else dataclasses.replace(action, **_json_fields(action_dict))
        ep.steps.append(new_step(
            index, raw=turn.raw, thought=parsed.thought, action=stored_action, observation=observation,
            result=outcome.stored if outcome is not None and outcome.ok else None, executed=executed,
            feedback=checked.findings, usage=turn.usage, engine_s=round(step_engine, 6),
            parse_notes=tuple(parsed.notes), crash=outcome.crash if outcome is not None else None,
            changed_state=outcome is not None and outcome.wrote))
        view.steps.append(StepView(index=index, raw=turn.raw, thought=parsed.thought, action=action_dict,
                                   observation=observation, findings=list(feedback), executed=executed))
        if ep.end_reason:
            break


def _json_fields(action_dict: dict) -> dict:
    """An action's values as stored JSON (dates and other objects as strings)."""
    if action_dict["type"] == "finish":
        return {"answer": action_dict["answer"]}
    return {"arguments": action_dict["arguments"]}


async def propose(ep: _Episode, agent: Agent, emit: Callable[[Event], None], index: int) -> AgentTurn | None:
    """The agent's next turn, or None when the episode ends here (out of time, or the model failed)."""
    remaining = ep.deadline - time.perf_counter()
    if remaining <= 0:
        ep.end_reason = "budget.time"
        return None
    t_model = time.perf_counter()
    try:
        return await asyncio.wait_for(agent.step(ep.view, emit), remaining)
    except TimeoutError:
        ep.end_reason = "budget.time"
        return None
    except ModelFailure as failure:
        ep.end_reason = failure.code
        attempts = failure.details.get("attempts")
        ep.steps.append(new_step(index, error=ModelError(failure.code, failure.message),
                                 usage={"attempts": attempts} if isinstance(attempts, int) else {}))
        return None
    finally:
        ep.model_s += time.perf_counter() - t_model


def check_call(ep: _Episode, runner: ToolRunner, call: ToolCall) -> _Checked:
    """Checks before a call runs: the tool exists, the arguments fit its schema, it is not a repeat."""
    problems = runner.precheck(call)
    if problems:
        return _Checked(findings=problems)
    earlier = ep.executed_calls.get(call.signature())
    if earlier is not None and earlier[1] == ep.sandbox.writes and not ep.disabled("loop.repeat"):
        return _Checked(findings=[finding("loop.repeat", tool=call.tool, step=earlier[0] + 1)])
    return _Checked()


async def execute(ep: _Episode, runner: ToolRunner, call: ToolCall, index: int) -> _Checked:
    """Run a call that passed its checks; domain errors, crashes and time-outs become findings.
    A tool that ends the episode (a hand-off) and ran fine ends it: its result is the last observation."""
    outcome = await runner.execute(ep.sandbox, call, prechecked=True)
    ep.executed_calls[call.signature()] = (index, ep.sandbox.writes)
    spec = runner.pack.tools.get(call.tool)
    if outcome.ok and spec is not None and spec.ends_episode:
        ep.end_reason = f"ended.{call.tool}"
        return _Checked(findings=list(outcome.findings), outcome=outcome, finished=True)
    return _Checked(findings=list(outcome.findings), outcome=outcome)


def check_finish(ep: _Episode, answer: Finish, index: int) -> _Checked:
    """A final answer: well formed for the answer type; then right, or revealed wrong while attempts remain.

    A malformed answer counts toward the attempts too, and one identical to an earlier answer is a
    repeat (`loop.repeat`, as for calls); once the attempts are spent the episode ends on it."""
    problem = check_answer_form(ep.task.answer_type, answer.answer, answer.has_answer)
    if problem is not None and problem.code == "answer.missing":
        return _Checked(findings=[problem])
    ep.answers_given += 1
    problem = repeated_answer(ep, answer, index) or problem
    fb = ep.settings.feedback
    if problem is not None:
        if ep.answers_given >= fb.answer_attempts:  # the attempts are spent: the episode ends on this answer
            ep.final_answer, ep.answered, ep.end_reason = json_value(answer.answer), True, "finished"
            return _Checked(findings=[problem], finished=True)
        return _Checked(findings=[problem])
    answer_ok, state_ok, _ = judge(ep.task, answer.answer, True, _plain_state(ep.sandbox), "finished")
    correct = answer_ok and state_ok is not False
    retry = (fb.reveal_wrong_answer and not correct and ep.answers_given < fb.answer_attempts
             and ep.steps_left_after(index) > 0 and not ep.disabled("answer.wrong"))
    if retry:
        return _Checked(findings=[finding("answer.wrong")])
    ep.final_answer, ep.answered, ep.end_reason = json_value(answer.answer), True, "finished"
    return _Checked(finished=True)


def repeated_answer(ep: _Episode, answer: Finish, index: int) -> Finding | None:
    """`loop.repeat` for an answer identical to an earlier one (which, as the episode went on, was refused)."""
    signature = json.dumps(answer.answer, sort_keys=True, ensure_ascii=False, default=str)
    earlier = ep.answers_seen.setdefault(signature, index)
    if earlier == index or ep.disabled("loop.repeat"):
        return None
    return Finding("loop.repeat", CODES["loop.repeat"].severity,
                   f"You already gave this answer at step {earlier + 1} and it was not accepted. "
                   "Give a different answer, or look further first.")


def budget_findings(ep: _Episode, index: int) -> list[Finding]:
    """`budget.exhausted` on the last step (which ends the episode), `budget.low` when few are left."""
    left = ep.steps_left_after(index)
    if left == 0:
        ep.end_reason = "budget.exhausted"
        return [finding("budget.exhausted")]
    if left <= ep.settings.budget.warn_steps_left and not ep.disabled("budget.low"):
        return [finding("budget.low", left=left)]
    return []


def observe(runner: ToolRunner, checked: _Checked) -> str:
    """What the agent is shown next: the tool's result (cut to size) with any findings, or the findings."""
    if checked.outcome is not None and checked.outcome.ok:
        return runner.observation(checked.outcome, checked.findings)  # a call that ran fine has no findings of its own
    if checked.findings:
        return runner.render(checked.findings)
    return ""


def _plain_state(sandbox: Sandbox) -> dict:
    """The sandbox's changes as JSON; a pack that stored something else gets a state that never matches."""
    try:
        return json_value(sandbox.changes())
    except (ValueError, TypeError, RecursionError) as exc:
        return {"(not JSON data)": {"error": f"a tool wrote a value that is not JSON data: {exc}"}}


def late_time_finding(ep: _Episode, emit: Callable[[Event], None], episode_id: str) -> None:
    """The clock ran out between steps (or mid-generation): record `budget.time` on the last step."""
    late = finding("budget.time")
    if ep.steps:
        last = ep.steps[-1]
        ep.steps[-1] = dataclasses.replace(last, feedback=(*last.feedback, late))
    else:
        ep.steps.append(new_step(0, feedback=[late]))
    emit(FeedbackGiven(episode_id, len(ep.steps) - 1, (late.to_dict(),)))


def verdict(ep: _Episode) -> EpisodeResult:
    """Judge the final answer and state against the ground truth; count the findings."""
    t_judge = time.perf_counter()
    final_state = _plain_state(ep.sandbox)
    answer_ok, state_ok, reasons = judge(ep.task, ep.final_answer, ep.answered, final_state, ep.end_reason)
    ended_properly = ep.end_reason == "finished" or (ep.end_reason or "").startswith("ended.")
    if not ended_properly:
        reasons.insert(0, f"episode ended: {ep.end_reason}")
    counts = Counter(f.code for s in ep.steps for f in s.feedback)
    errors = Counter(f.code for s in ep.steps for f in s.feedback if f.severity == "error")
    result_verdict = Verdict(
        success=bool(answer_ok and state_ok is not False and ended_properly),
        answer_correct=answer_ok,
        state_correct=state_ok,
        reasons=tuple(reasons),
        error_counts=dict(sorted(errors.items())),
        findings=dict(sorted(counts.items())),
        steps_used=len(ep.steps),
    )
    ep.engine_s += time.perf_counter() - t_judge
    timing = Timing(wall_s=round(time.perf_counter() - ep.started, 6), model_s=round(ep.model_s, 6),
                    engine_s=round(ep.engine_s, 6))
    return EpisodeResult(steps=tuple(ep.steps), final_answer=ep.final_answer, end_reason=ep.end_reason or "?",
                         final_state=final_state, verdict=result_verdict, timing=timing)
