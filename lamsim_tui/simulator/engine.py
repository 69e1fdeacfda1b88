"""The engine: runs episodes (agent -> feedback -> sandbox -> observation) with bounded concurrency,
judges and filters each trajectory, writes it to the store and emits typed events.

The engine never imports Textual; the TUI and the headless CLI both drive this class.
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lamsim_tui.agents.base import AgentFactory, EpisodeView, ModelFailure, StepView
from lamsim_tui.events import (
    EpisodeFinished,
    EpisodeStarted,
    Event,
    FeedbackGiven,
    ObservationMade,
    Progress,
    SessionFinished,
    SessionPaused,
    StepProposed,
)
from lamsim_tui.packs import Pack
from lamsim_tui.session.config import BudgetSettings, FeedbackSettings, FilterSettings, Session
from lamsim_tui.simulator.actions import Finish, ToolCall
from lamsim_tui.simulator.feedback import CODES, Finding, enabled, finding
from lamsim_tui.simulator.filters import action_signature, failed_filters
from lamsim_tui.simulator.judge import check_answer_form, judge
from lamsim_tui.simulator.runner import ToolRunner, render_findings
from lamsim_tui.simulator.tasks import Generation, Task, TaskGenerator, template_weights, to_json_value

SCHEMA_VERSION = 1
MODEL_FAILURES_BEFORE_PAUSE = 3


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def episode_seed(session_seed: int, task_id: str, attempt: int) -> int:
    return int(hashlib.sha1(f"{session_seed}:{task_id}:{attempt}".encode()).hexdigest()[:12], 16)


@dataclass
class EpisodeSettings:
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)


async def run_episode(
    *,
    pack: Pack,
    runner: ToolRunner,
    task: Task,
    agent: Any,
    settings: EpisodeSettings,
    episode_id: str,
    seed: int,
    emit: Callable[[Event], None],
    gate: Callable[[], Any] | None = None,
) -> dict:
    """One agent attempt at one task. Returns the episode part of a trajectory record."""
    budget, fb = settings.budget, settings.feedback
    disabled = fb.disable
    sb = pack.new_sandbox()
    tools = list(pack.tools.values())
    views: list[StepView] = []
    steps: list[dict] = []
    executed_calls: dict[str, int] = {}
    final_answer: Any = None
    answered = False
    answers_given = 0
    end_reason: str | None = None
    model_s = engine_s = 0.0
    started = time.perf_counter()
    deadline = started + budget.seconds
    view = EpisodeView(episode_id=episode_id, query=task.query, tools=tools, steps=views,
                       step_budget=budget.steps, seed=seed, task=task)

    for index in range(budget.steps):
        if gate is not None:
            await gate()
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            end_reason = "budget.time"
            break
        t_model = time.perf_counter()
        try:
            turn = await asyncio.wait_for(agent.step(view, emit), remaining)
        except TimeoutError:
            model_s += time.perf_counter() - t_model
            end_reason = "budget.time"
            break
        except ModelFailure as failure:
            model_s += time.perf_counter() - t_model
            end_reason = failure.code
            steps.append({"index": index, "raw": "", "thought": "", "action": None, "observation": "",
                          "result": None, "executed": False, "feedback": [],
                          "error": {"code": failure.code, "message": failure.message}, "usage": {},
                          "engine_s": 0.0})
            break
        t_engine = time.perf_counter()
        model_s += t_engine - t_model
        parsed = turn.parsed
        action = parsed.action
        action_dict = None
        if action is not None:
            if not action.call_id:
                action = dataclasses.replace(action, call_id=f"call_{index}")
            action_dict = to_json_value(action.to_dict())
        emit(StepProposed(episode_id, index, parsed.thought, action_dict, turn.raw, dict(turn.usage)))

        findings: list[Finding] = []
        executed = False
        result: Any = None
        crash: str | None = None
        ok = False
        finished = False
        if parsed.problem is not None:
            findings.append(parsed.problem)
        elif isinstance(action, ToolCall):
            pre = runner.precheck(action)
            signature = action.signature()
            if pre:
                findings.extend(pre)
            elif signature in executed_calls and enabled("loop.repeat", disabled):
                findings.append(finding("loop.repeat", tool=action.tool, step=executed_calls[signature] + 1))
            else:
                outcome = await runner.execute(sb, action, prechecked=True)
                executed, ok, crash = outcome.executed, outcome.ok, outcome.crash
                result = to_json_value(outcome.result) if ok else None
                findings.extend(outcome.findings)
                executed_calls.setdefault(signature, index)
        elif isinstance(action, Finish):
            problem = check_answer_form(task.answer_type, action.answer, action.has_answer)
            if problem is not None:
                findings.append(problem)
            else:
                answers_given += 1
                answer_ok, state_ok, _ = judge(task, action.answer, True, to_json_value(sb.changes()))
                correct = answer_ok and state_ok is not False
                steps_left = budget.steps - index - 1
                retry = (fb.reveal_wrong_answer and not correct and answers_given < fb.answer_attempts
                         and steps_left > 0 and enabled("answer.wrong", disabled))
                if retry:
                    findings.append(finding("answer.wrong"))
                else:
                    final_answer, answered, finished = to_json_value(action.answer), True, True
                    end_reason = "finished"
        if not finished:
            steps_left = budget.steps - index - 1
            if steps_left == 0:
                findings.append(finding("budget.exhausted"))
                end_reason = "budget.exhausted"
            elif steps_left <= budget.warn_steps_left and enabled("budget.low", disabled):
                findings.append(finding("budget.low", left=steps_left))

        if ok:
            observation = runner.observation(outcome, findings)
        elif findings:
            observation = render_findings(findings)
        else:
            observation = ""
        finding_dicts = [f.to_dict() for f in findings]
        if finding_dicts:
            emit(FeedbackGiven(episode_id, index, tuple(finding_dicts)))
        emit(ObservationMade(episode_id, index, observation, executed))
        step_engine = time.perf_counter() - t_engine
        engine_s += step_engine
        step = {"index": index, "raw": turn.raw, "thought": parsed.thought, "action": action_dict,
                "observation": observation, "result": result, "executed": executed, "feedback": finding_dicts,
                "usage": turn.usage, "engine_s": round(step_engine, 6)}
        if parsed.notes:
            step["parse_notes"] = list(parsed.notes)
        if crash:
            step["crash"] = crash
        steps.append(step)
        views.append(StepView(index=index, raw=turn.raw, thought=parsed.thought, action=action_dict,
                              observation=observation, findings=finding_dicts, executed=executed))
        if end_reason:
            break
    if end_reason is None:
        end_reason = "budget.exhausted"
    if end_reason == "budget.time":
        # The clock ran out between steps (or mid-generation): record it on the last step.
        late = finding("budget.time").to_dict()
        if steps:
            steps[-1]["feedback"].append(late)
        else:
            steps.append({"index": 0, "raw": "", "thought": "", "action": None, "observation": "", "result": None,
                          "executed": False, "feedback": [late], "usage": {}, "engine_s": 0.0})
        emit(FeedbackGiven(episode_id, len(steps) - 1, (late,)))

    t_judge = time.perf_counter()
    final_state = to_json_value(sb.changes())
    answer_ok, state_ok, reasons = judge(task, final_answer, answered, final_state)
    if end_reason not in ("finished",):
        reasons.insert(0, f"episode ended: {end_reason}")
    counts = Counter(f["code"] for s in steps for f in s["feedback"])
    error_counts = Counter(f["code"] for s in steps for f in s["feedback"] if f["severity"] == "error")
    verdict = {
        "success": bool(answer_ok and state_ok is not False and end_reason == "finished"),
        "answer_correct": answer_ok,
        "state_correct": state_ok,
        "reasons": reasons,
        "error_counts": dict(sorted(error_counts.items())),
        "findings": dict(sorted(counts.items())),
        "steps_used": len(steps),
        "filters_failed": [],
        "passed": False,
    }
    engine_s += time.perf_counter() - t_judge
    return {
        "steps": steps,
        "final_answer": final_answer,
        "end_reason": end_reason,
        "final_state": final_state,
        "verdict": verdict,
        "timing": {"wall_s": round(time.perf_counter() - started, 6), "model_s": round(model_s, 6),
                   "engine_s": round(engine_s, 6)},
    }


def build_record(*, episode: dict, task: Task, pack: Pack, session: Session | None, agent_info: dict,
                 episode_id: str, seed: int, attempt: int, created_at: str, system_prompt: str | None = None) -> dict:
    settings = session.public_settings() if session else {}
    return {
        "schema_version": SCHEMA_VERSION,
        "id": episode_id,
        "status": None,
        "created_at": created_at,
        "finished_at": _now(),
        "session": {"name": settings.get("name"), "path": settings.get("path"),
                    "seed": settings.get("seed"), "settings": settings},
        "pack": {"name": pack.name, "version": pack.version, "path": str(pack.path)},
        "agent": agent_info,
        "episode": {"seed": seed, "attempt": attempt},
        "task": task.to_dict(),
        "tools": pack.tool_schemas(),
        "system_prompt": system_prompt,
        **episode,
    }


@dataclass
class Summary:
    episodes: int = 0
    succeeded: int = 0
    kept: int = 0
    filtered: int = 0
    findings: Counter = field(default_factory=Counter)
    steps: int = 0
    valid_steps: int = 0
    end_reasons: Counter = field(default_factory=Counter)
    tokens: Counter = field(default_factory=Counter)
    wall_s: float = 0.0
    engine_s: float = 0.0
    model_s: float = 0.0
    tasks: int = 0
    skipped_templates: dict = field(default_factory=dict)
    cancelled: bool = False
    paused_reason: str | None = None

    def to_dict(self) -> dict:
        n = max(self.episodes, 1)
        return {
            "episodes": self.episodes,
            "tasks": self.tasks,
            "success_rate": round(self.succeeded / n, 4),
            "filter_pass_rate": round(self.kept / n, 4),
            "kept": self.kept,
            "filtered": self.filtered,
            "findings": dict(sorted(self.findings.items())),
            "mean_steps": round(self.steps / n, 3),
            "valid_action_rate": round(self.valid_steps / max(self.steps, 1), 4),
            "end_reasons": dict(self.end_reasons),
            "tokens": dict(self.tokens),
            "wall_s": round(self.wall_s, 3),
            "engine_s": round(self.engine_s, 4),
            "model_s": round(self.model_s, 3),
            "skipped_templates": self.skipped_templates,
            "cancelled": self.cancelled,
            "paused_reason": self.paused_reason,
        }


_INVALID_PREFIXES = ("format.", "tool.", "args.")


class Engine:
    """Runs a session. Use `prepare()` then `await run()`; `pause`, `resume`, `cancel` from anywhere
    on the engine's event loop (or via `call_soon_threadsafe`)."""

    def __init__(self, session: Session, pack: Pack, factory: AgentFactory, *, store: Any = None,
                 on_event: Callable[[Event], None] | None = None, tasks: int | None = None,
                 seed: int | None = None):
        self.session = session
        self.pack = pack
        self.factory = factory
        self.store = store
        self.on_event = on_event or (lambda event: None)
        self.n_tasks = tasks if tasks is not None else session.tasks
        self.seed = session.seed if seed is None else seed
        self.runner = ToolRunner(pack, timeout=session.budget.tool_seconds, disabled=session.feedback.disable,
                                 observation_chars=session.budget.observation_chars)
        self.settings = EpisodeSettings(budget=session.budget, feedback=session.feedback)
        self.generation: Generation | None = None
        self.summary = Summary()
        self._running: asyncio.Event | None = None  # created on the engine's loop in run()
        self._cancelled = False
        self._tasks: list[asyncio.Task] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lamsim-store")
        self._consecutive_model_failures = 0

    # ----- control ---------------------------------------------------------------------------
    def pause(self) -> None:
        if self._running is not None:
            self._running.clear()

    def resume(self) -> None:
        if self._running is not None:
            self._running.set()

    @property
    def paused(self) -> bool:
        return self._running is not None and not self._running.is_set()

    def cancel(self) -> None:
        self._cancelled = True
        for task in self._tasks:
            task.cancel()
        self.resume()

    async def _gate(self) -> None:
        if self._cancelled:
            raise asyncio.CancelledError
        if self._running is not None and not self._running.is_set():
            await self._running.wait()
        if self._cancelled:
            raise asyncio.CancelledError

    # ----- run -------------------------------------------------------------------------------
    def prepare(self) -> Generation:
        if self.generation is None:
            weights = template_weights(self.pack, self.session.templates)
            self.generation = TaskGenerator(self.pack, weights, self.runner).generate(self.n_tasks, self.seed)
            self.summary.tasks = len(self.generation.tasks)
            self.summary.skipped_templates = {
                tid: failures[0].reason for tid, failures in self.generation.failures.items()}
        return self.generation

    def _kept_signatures(self) -> set[tuple[str, str]]:
        kept: set[tuple[str, str]] = set()
        if self.store is not None and self.session.filters.dedupe:
            scan = getattr(self.store, "peek", None) or self.store.records  # peek: no copies
            for record in scan(status=("pending", "accepted")):
                kept.add((record["task"]["id"], action_signature(record["steps"])))
        return kept

    async def run(self) -> Summary:
        generation = self.prepare()
        self._running = asyncio.Event()
        self._running.set()
        kept = self._kept_signatures()
        started = time.perf_counter()
        # A model server that answers one request at a time (the embedded one) caps concurrency:
        # interleaved episodes would wait on it against their time budget and spoil its prefix cache.
        limit = min(self.session.concurrency, getattr(self.factory, "max_concurrency", None) or self.session.concurrency)
        semaphore = asyncio.Semaphore(limit)
        total = len(generation.tasks) * self.session.attempts
        loop = asyncio.get_running_loop()
        pending_writes: list[asyncio.Future] = []

        async def one(task: Task, attempt: int) -> None:
            async with semaphore:
                await self._gate()
                seed = episode_seed(self.seed, task.id, attempt)
                episode_id = uuid.uuid4().hex
                agent, public = self.factory.for_episode(episode_id, seed)
                created = _now()
                if self.session.agent.paraphrase and attempt == 0:
                    task = await self._paraphrased(task)
                self.on_event(EpisodeStarted(episode_id, task.id, task.template, task.query, attempt,
                                             tuple(task.gold_calls), task.gold_answer))
                try:
                    episode = await run_episode(pack=self.pack, runner=self.runner, task=task, agent=agent,
                                                settings=self.settings, episode_id=episode_id, seed=seed,
                                                emit=self.on_event, gate=self._gate)
                finally:
                    await agent.aclose()
                record = build_record(episode=episode, task=task, pack=self.pack, session=self.session,
                                      agent_info={**self.factory.describe(), **public}, episode_id=episode_id,
                                      seed=seed, attempt=attempt, created_at=created,
                                      system_prompt=getattr(agent, "system_prompt", None))
                self._finish(record, kept)
                if self.store is not None:
                    pending_writes.append(loop.run_in_executor(self._writer, self.store.add, record))
                self.on_event(EpisodeFinished(episode_id, record))
                s = self.summary
                self.on_event(Progress(done=s.episodes, total=total, succeeded=s.succeeded, kept=s.kept,
                                       filtered=s.filtered, findings=dict(s.findings),
                                       running=total - s.episodes))
                self._track_model_failures(record)

        try:
            await self.factory.start()  # e.g. starts the embedded model server; may raise LamsimError
            self._tasks = [asyncio.create_task(one(task, attempt))
                           for task in generation.tasks for attempt in range(self.session.attempts)]
            results = await asyncio.gather(*self._tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                    raise result
        except asyncio.CancelledError:
            self._cancelled = True
        finally:
            self.summary.cancelled = self._cancelled
            if pending_writes:
                await asyncio.gather(*pending_writes)
            self._writer.shutdown(wait=True)
            await self.factory.aclose()
            self.summary.wall_s = time.perf_counter() - started
            self.on_event(SessionFinished(self.summary.to_dict()))
        return self.summary

    async def _paraphrased(self, task: Task) -> Task:
        """Ask the agent's model for a paraphrase of the query (the method's diversity step).

        Kept only when every slot value survives verbatim; otherwise the template's wording stays.
        """
        paraphrase = getattr(self.factory, "paraphrase", None)
        if paraphrase is None:
            return task
        try:
            text = await paraphrase(task.query, task.slots, episode_seed(self.seed, task.id, 0))
        except Exception:  # a failed paraphrase never costs the episode
            return task
        if not isinstance(text, str) or not text.strip() or not paraphrase_keeps_slots(text, task.slots):
            return task
        return dataclasses.replace(task, query=text.strip(), original_query=task.query)

    def _finish(self, record: dict, kept: set[tuple[str, str]]) -> None:
        verdict = record["verdict"]
        failed = failed_filters(record, self.session.filters, kept)
        verdict["filters_failed"] = failed
        verdict["passed"] = not failed
        record["status"] = "filtered" if failed else "pending"
        if not failed:
            kept.add((record["task"]["id"], action_signature(record["steps"])))
        s = self.summary
        s.episodes += 1
        s.succeeded += verdict["success"]
        s.kept += not failed
        s.filtered += bool(failed)
        s.findings.update(verdict["findings"])
        s.end_reasons[record["end_reason"]] += 1
        s.steps += len(record["steps"])
        for step in record["steps"]:
            if step["action"] is not None and not any(f["code"].startswith(_INVALID_PREFIXES)
                                                      for f in step["feedback"]):
                s.valid_steps += 1
            for key in ("prompt_tokens", "completion_tokens", "cached_tokens"):
                value = step.get("usage", {}).get(key)
                if isinstance(value, (int, float)):
                    s.tokens[key] += value
        s.engine_s += record["timing"]["engine_s"]
        s.model_s += record["timing"]["model_s"]

    def _track_model_failures(self, record: dict) -> None:
        if record["end_reason"].startswith("model."):
            self._consecutive_model_failures += 1
            if self._consecutive_model_failures >= MODEL_FAILURES_BEFORE_PAUSE and not self.paused:
                error = next((s.get("error") for s in reversed(record["steps"]) if s.get("error")), {}) or {}
                model = record["agent"].get("model", "?")
                api_base = record["agent"].get("api_base") or "(default)"
                reason = (f"{self._consecutive_model_failures} episodes in a row failed on the model "
                          f"{model} at {api_base}: {error.get('message', record['end_reason'])}")
                self.summary.paused_reason = reason
                self.pause()
                self.on_event(SessionPaused(reason))
        else:
            self._consecutive_model_failures = 0


def paraphrase_keeps_slots(text: str, slots: dict) -> bool:
    """Every slot value appears verbatim in the paraphrase (so the task's ground truth still holds)."""
    for value in slots.values():
        values = value if isinstance(value, list) else [value]
        if any(str(v) not in text for v in values):
            return False
    return True


# ----- replay of edited trajectories -----------------------------------------------------------


async def areplay(record: dict, actions: list[dict], *, pack: Pack | None = None) -> dict:
    """Re-execute an edited action list in a fresh sandbox; recompute observations, feedback, verdict.

    ``actions`` are dicts shaped like a step's action (`{"type": "call", "tool", "arguments"}` or
    `{"type": "finish", "answer"}`), optionally with "thought". Returns a new record (status None).
    """
    from lamsim_tui.agents.replay import ReplayAgent
    from lamsim_tui.packs import load_pack

    if pack is None:
        pack = load_pack(record["pack"]["path"])
    settings_dict = record.get("session", {}).get("settings", {}) or {}
    budget = BudgetSettings(**{k: v for k, v in settings_dict.get("budget", {}).items()
                               if k in BudgetSettings.__dataclass_fields__})
    feedback = FeedbackSettings(**{k: v for k, v in settings_dict.get("feedback", {}).items()
                                   if k in FeedbackSettings.__dataclass_fields__})
    # The operator's edit is judged once: no second chances for a wrong final answer.
    feedback = dataclasses.replace(feedback, reveal_wrong_answer=False)
    budget = dataclasses.replace(budget, steps=max(budget.steps, len(actions)))
    runner = ToolRunner(pack, timeout=budget.tool_seconds, disabled=feedback.disable,
                        observation_chars=budget.observation_chars)
    task = Task.from_dict(record["task"])
    agent = ReplayAgent(actions)
    episode = await run_episode(pack=pack, runner=runner, task=task, agent=agent,
                                settings=EpisodeSettings(budget=budget, feedback=feedback),
                                episode_id=record["id"], seed=record["episode"]["seed"], emit=lambda e: None)
    new = {k: v for k, v in record.items() if k not in episode}
    new.update(episode)
    new["status"] = None
    new["finished_at"] = _now()
    new["replayed_by"] = getpass.getuser() if hasattr(getpass, "getuser") else None
    if pack.version != record["pack"].get("version"):
        new["pack"] = {**record["pack"], "version": pack.version}
    filters = FilterSettings(**{k: v for k, v in settings_dict.get("filters", {}).items()
                                if k in FilterSettings.__dataclass_fields__})
    failed = failed_filters(new, dataclasses.replace(filters, dedupe=False), set())
    new["verdict"]["filters_failed"] = failed
    new["verdict"]["passed"] = not failed
    return new


def replay(record: dict, actions: list[dict], *, pack: Pack | None = None) -> dict:
    """Blocking form of `areplay` (CLI, tests, thread workers)."""
    return asyncio.run(areplay(record, actions, pack=pack))


__all__ = ["Engine", "Summary", "run_episode", "build_record", "replay", "areplay", "SCHEMA_VERSION", "CODES"]
