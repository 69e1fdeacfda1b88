"""The engine: runs episodes (agent -> feedback -> sandbox -> observation) with bounded concurrency,
judges and filters each trajectory, writes it to the store and emits typed events.

The engine never imports Textual; the TUI and the headless CLI both drive this class. One
episode's loop is `simulator.episode.run_episode`; replaying an edit is `simulator.replay`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lamsim_tui.agents.base import AgentFactory
from lamsim_tui.errors import LamsimError, StoreError
from lamsim_tui.events import (
    EpisodeCancelled,
    EpisodeFinished,
    EpisodeStarted,
    EpisodeStored,
    Event,
    Notice,
    Progress,
    SessionFinished,
    SessionPaused,
)
from lamsim_tui.packs import Pack
from lamsim_tui.record import Demonstrations, EpisodeInfo, PackInfo, SessionInfo, Task, Trajectory, utc_now
from lamsim_tui.session.config import Session
from lamsim_tui.simulator.demos import DemonstrationSelector, Selection
from lamsim_tui.simulator.episode import EpisodeInterrupted, EpisodeResult, EpisodeSettings, run_episode
from lamsim_tui.simulator.filters import failed_filters
from lamsim_tui.simulator.runner import ToolRunner
from lamsim_tui.simulator.tally import RunSummary
from lamsim_tui.simulator.tasks import Generation, TaskGenerator, template_weights

MODEL_FAILURES_BEFORE_PAUSE = 3


def episode_seed(session_seed: int, task_id: str, attempt: int) -> int:
    return int(hashlib.sha1(f"{session_seed}:{task_id}:{attempt}".encode()).hexdigest()[:12], 16)


def make_trajectory(*, episode: EpisodeResult, task: Task, pack: Pack, session: Session | None, agent_info: dict,
                    episode_id: str, seed: int, attempt: int, created_at: str,
                    system_prompt: str | None = None, demonstrations: Demonstrations | None = None,
                    policy: str | None = None) -> Trajectory:
    """The record of a finished episode (status and filters are set by `Engine._finish`)."""
    settings = session.public_settings() if session else {}
    return Trajectory(
        id=episode_id,
        status=None,
        created_at=created_at,
        finished_at=utc_now(),
        session=SessionInfo(name=settings.get("name"), path=settings.get("path"), seed=settings.get("seed"),
                            settings=settings),
        pack=PackInfo(name=pack.name, version=pack.version, path=str(pack.path)),
        agent=agent_info,
        episode=EpisodeInfo(seed=seed, attempt=attempt),
        task=task,
        tools=pack.tool_schemas(),
        system_prompt=system_prompt,
        steps=episode.steps,
        final_answer=episode.final_answer,
        end_reason=episode.end_reason,
        final_state=episode.final_state,
        verdict=episode.verdict,
        timing=episode.timing,
        demonstrations=demonstrations,
        policy=policy,
    )


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
        from lamsim_tui.agents.prompts import resolve_policy

        self.policy = resolve_policy(pack, session)  # recorded with every trajectory
        self.generation: Generation | None = None
        self.summary = RunSummary()
        self._running: asyncio.Event | None = None  # created on the engine's loop in run()
        self._cancelled = False
        self._tasks: list[asyncio.Task] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lamsim-store")
        self._consecutive_model_failures = 0
        self._demonstrations: DemonstrationSelector | None = None
        self._write_failure: LamsimError | None = None
        self._duplicates = 0  # trajectories the dedupe filter caught: same task, same actions as one kept

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
        """Stop the run: episodes not started are dropped, running ones are stored as `cancelled`."""
        first = not self._cancelled
        self._cancelled = True
        if first:  # once: a second cancel would interrupt the writes of the episodes the first one cut
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
            for listing in self.store.listings(status=("pending", "accepted")):
                kept.add((listing.task_id, listing.signature))
        return kept

    async def run(self) -> RunSummary:
        generation = self.prepare()
        self._running = asyncio.Event()
        self._running.set()
        kept = self._kept_signatures()
        started = time.perf_counter()
        # A model server that answers one request at a time (the embedded one) caps concurrency:
        # interleaved episodes would wait on it against their time budget and spoil its prefix cache.
        limit = min(self.session.concurrency, self.factory.max_concurrency or self.session.concurrency)
        semaphore = asyncio.Semaphore(limit)
        total = len(generation.tasks) * self.session.attempts

        async def one(task: Task, attempt: int) -> None:
            async with semaphore:
                await self._gate()
                seed = episode_seed(self.seed, task.id, attempt)
                episode_id = uuid.uuid4().hex
                agent, public = self.factory.for_episode(episode_id, seed,
                                                         task if self.factory.replays_gold else None)
                created = utc_now()
                if self.session.agent.paraphrase and attempt == 0:
                    task = await self._paraphrased(task)
                demonstrations = self._demonstrations_for(task)
                self.on_event(EpisodeStarted(episode_id, task.id, task.template, task.query, attempt,
                                             tuple(c.to_dict() for c in task.gold_calls), task.gold_answer,
                                             demonstrations=tuple(r.to_dict() for r in demonstrations.refs)
                                             if demonstrations else ()))
                cut = None
                try:
                    episode = await run_episode(pack=self.pack, runner=self.runner, task=task, agent=agent,
                                                settings=self.settings, episode_id=episode_id, seed=seed,
                                                emit=self.on_event, gate=self._gate, demonstrations=demonstrations)
                except EpisodeInterrupted as interrupted:  # Stop or Ctrl-C: kept, as `cancelled`
                    cut, episode = interrupted, interrupted.result
                finally:
                    await agent.aclose()
                record = self._finish(make_trajectory(
                    episode=episode, task=task, pack=self.pack, session=self.session,
                    agent_info={**self.factory.describe(), **public}, episode_id=episode_id, seed=seed,
                    attempt=attempt, created_at=created, system_prompt=agent.system_prompt,
                    demonstrations=agent.demonstrations, policy=self.policy), kept)
                if cut is None:
                    self._track_model_failures(record)  # before the next episode may start
            # The write happens outside the semaphore: the next episode starts while this one's fsync runs.
            if cut is not None:
                stored = False
                try:
                    stored = await self._keep(record, total)
                finally:
                    self.on_event(EpisodeCancelled(episode_id, stored=stored))
                raise cut
            self.on_event(EpisodeFinished(episode_id, record))
            await self._keep(record, total)

        try:
            self._prepare_demonstrations()
            await self.factory.start()  # e.g. starts the embedded model server; may raise LamsimError
            self._tasks = [asyncio.create_task(one(task, attempt))
                           for task in generation.tasks for attempt in range(self.session.attempts)]
            results = await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._write_failure is not None:
                raise self._write_failure
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                    raise result
        except asyncio.CancelledError:
            self._cancelled = True
        finally:
            self.summary.cancelled = self._cancelled and self._write_failure is None
            self._writer.shutdown(wait=True)
            await self.factory.aclose()
            self.summary.wall_s = time.perf_counter() - started
            if self._duplicates and self._write_failure is None:
                self.on_event(self._duplicates_notice())
            self.on_event(SessionFinished(self.summary.to_dict()))
        return self.summary

    # ----- demonstrations ---------------------------------------------------------------------
    def _prepare_demonstrations(self) -> None:
        """Read the candidates once, as the run starts (`simulator.demos`); only for agents that show them."""
        if self.session.demonstrations.count and self.factory.uses_demonstrations and self._demonstrations is None:
            self._demonstrations = DemonstrationSelector.for_session(self.session, self.pack, self.runner,
                                                                     store=self.store, seed=self.seed)

    def _duplicates_notice(self) -> Notice:
        """Why a rerun fills the queue with `filtered`: a seed draws the same tasks every run, and an agent
        that acts the same way (the scripted one, a model at temperature 0) repeats what is kept."""
        n, total = self._duplicates, self.summary.episodes
        return Notice(f"{n} of {total} trajectories repeat one already kept (the same task, the same actions) and "
                      f"were filtered by dedupe. Seed {self.seed} draws the same tasks on every run: give another "
                      "seed (`seed:` in the session, or --seed) for new tasks.", severity="information",
                      title="duplicates")

    def _demonstrations_for(self, task: Task) -> Selection | None:
        return self._demonstrations.for_task(task) if self._demonstrations is not None else None

    async def _keep(self, record: Trajectory, total: int) -> bool:
        """Write the record durably, then count it: progress and summary only ever count what is stored.

        A failed write (a full disk) stops the run at once; `run` then raises it as one StoreError.
        """
        number = None
        interrupted = False
        if self.store is not None:
            if self._write_failure is not None:
                return False
            write = asyncio.get_running_loop().run_in_executor(self._writer, self._add, record)
            while True:
                try:
                    number = await asyncio.shield(write)
                    break
                except asyncio.CancelledError:
                    if write.cancelled():
                        raise
                    interrupted = True  # the write goes on in its thread: wait for it, count it, then stop
                except LamsimError as exc:
                    if self._write_failure is None:
                        self._write_failure = _stopped_by(exc, self.summary.episodes)
                        self.cancel()
                    if interrupted:
                        raise asyncio.CancelledError from None
                    return False
        self.summary.add(record.listing())
        self._duplicates += "dedupe" in record.verdict.filters_failed
        note_tool_bugs(self.summary.tool_bugs, record)
        if number is not None:
            self.on_event(EpisodeStored(record.id, number))
        s = self.summary
        self.on_event(Progress(done=s.episodes, total=total, succeeded=s.succeeded, kept=s.kept,
                               filtered=s.filtered, findings=dict(s.findings), remaining=total - s.episodes))
        if interrupted:
            raise asyncio.CancelledError
        return self.store is not None

    def _add(self, record: Trajectory) -> int:
        self.store.add(record)
        return self.store.number(record.id)

    async def _paraphrased(self, task: Task) -> Task:
        """Ask the agent's model for a paraphrase of the query (the method's diversity step).

        Kept only when every slot value survives verbatim; otherwise the template's wording stays.
        """
        if not self.factory.can_paraphrase:
            return task
        try:
            text = await self.factory.paraphrase(task.query, task.slots, episode_seed(self.seed, task.id, 0))
        except Exception:  # a failed paraphrase never costs the episode
            return task
        if not isinstance(text, str) or not text.strip() or not paraphrase_keeps_slots(text, task.slots):
            return task
        return dataclasses.replace(task, query=text.strip(), original_query=task.query)

    def _finish(self, record: Trajectory, kept: set[tuple[str, str]]) -> Trajectory:
        """Apply the filters (status `pending` or `filtered`) and count the episode in the summary."""
        signature = record.action_signature()
        failed = failed_filters(record.verdict, record.task.id, signature, self.session.filters, kept)
        if record.end_reason == "cancelled":  # cut short: kept for the record, never for review
            failed.append("cancelled")
        record = record.replace(status="filtered" if failed else "pending",
                                verdict=dataclasses.replace(record.verdict, filters_failed=tuple(failed),
                                                            passed=not failed))
        if not failed:
            kept.add((record.task.id, signature))
        return record

    def _track_model_failures(self, record: Trajectory) -> None:
        if record.end_reason.startswith("model."):
            self._consecutive_model_failures += 1
            if self._consecutive_model_failures >= MODEL_FAILURES_BEFORE_PAUSE and not self.paused:
                error = next((s.error for s in reversed(record.steps) if s.error is not None), None)
                model = record.agent.get("model", "?")
                api_base = record.agent.get("api_base") or "(default)"
                reason = (f"{self._consecutive_model_failures} episodes in a row failed on the model "
                          f"{model} at {api_base}: {error.message if error else record.end_reason}")
                self.summary.paused_reason = reason
                self.pause()
                self.on_event(SessionPaused(reason))
        else:
            self._consecutive_model_failures = 0


def _stopped_by(exc: LamsimError, stored: int) -> StoreError:
    """One message for a write that failed: what failed, what is safe, what to do."""
    return StoreError(f"{exc.message}; the run stopped at once ({stored} episode(s) stored before it are safe; "
                      "the episode being written and those still running are not stored)",
                      where=exc.where, hint=exc.hint)


def note_tool_bugs(bugs: dict, record: Trajectory) -> None:
    """The first crash of each tool in a run (a bug in the pack), for the summary: `{tool: first line}`."""
    for step in record.steps:
        if step.crash and step.action is not None and getattr(step.action, "tool", None) not in bugs:
            lines = [ln for ln in step.crash.strip().splitlines() if ln.strip()]
            headline = lines[0] if lines and lines[0].startswith("tool ") else (lines[-1] if lines else "crashed")
            bugs[step.action.tool] = headline


def paraphrase_keeps_slots(text: str, slots: dict) -> bool:
    """Every slot value appears verbatim in the paraphrase (so the task's ground truth still holds)."""
    for value in slots.values():
        values = value if isinstance(value, list) else [value]
        if any(str(v) not in text for v in values):
            return False
    return True


__all__ = ["Engine", "RunSummary", "make_trajectory", "episode_seed", "paraphrase_keeps_slots"]
