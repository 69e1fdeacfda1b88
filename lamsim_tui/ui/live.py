"""What the live panes show, kept apart from the widgets: the engine's events folded into a model.

The engine calls back once per event, many times a second while a model streams. The app queues
the events and folds a whole batch here on a timer; the returned `Changes` says which panes must
redraw, so the screen repaints once per batch instead of once per token. Event payloads (plain
data, to cross threads) become the record's types here, so the panes draw a live step and a
stored one the same way.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from lamsim_tui.events import (
    EpisodeCancelled,
    EpisodeFinished,
    EpisodeStarted,
    EpisodeStored,
    Event,
    FeedbackGiven,
    Notice,
    ObservationMade,
    Progress,
    SessionFinished,
    SessionPaused,
    StepProposed,
    TextDelta,
)
from lamsim_tui.record import Action, DemonstrationRef, Finding, GoldCall, ModelError, Trajectory, action_from_dict

KEEP_FINISHED = 40  # finished episodes kept for the panes (the store keeps all of them)
RATE_WINDOW_S = 5.0


@dataclass
class StepLive:
    """A step as far as it has got; the fields a stored `Step` has, `observation` None until observed."""

    index: int
    thought: str = ""
    action: Action | None = None
    raw: str = ""
    observation: str | None = None
    executed: bool | None = None
    feedback: tuple[Finding, ...] = ()
    error: ModelError | None = None  # never set live: a model failure arrives with the finished record


@dataclass
class EpisodeLive:
    id: str
    task_id: str
    template: str
    query: str
    attempt: int
    gold_calls: tuple[GoldCall, ...] = ()
    gold_answer: Any = None
    demonstrations: tuple[DemonstrationRef, ...] = ()  # the solved tasks shown to the agent as examples
    steps: list[StepLive] = field(default_factory=list)
    stream: list[str] = field(default_factory=list)  # text of the step being generated
    stream_step: int = -1
    finished: bool = False
    success: bool | None = None
    status: str | None = None
    end_reason: str | None = None
    number: int = 0  # its place in the store (`store.number`) once it is durable there; 0 before
    cancelled: bool = False  # the session was stopped while it ran
    waiting_since: float = 0.0  # when the agent was last asked for a step (perf_counter)

    @property
    def stored(self) -> bool:
        return self.number > 0

    def step(self, index: int) -> StepLive:
        while len(self.steps) <= index:
            self.steps.append(StepLive(index=len(self.steps)))
        return self.steps[index]

    @property
    def streaming_text(self) -> str:
        return "".join(self.stream)


@dataclass
class Changes:
    episodes: set[str] = field(default_factory=set)  # episodes whose steps changed
    streamed: set[str] = field(default_factory=set)  # episodes whose streaming text changed
    started: list[str] = field(default_factory=list)
    finished: list[Trajectory] = field(default_factory=list)  # in order
    stored: dict[str, int] = field(default_factory=dict)  # episode id -> its number in the store, now durable
    kept_cancelled: list[str] = field(default_factory=list)  # cancelled episodes whose record the engine stored
    progress: bool = False
    paused: str | None = None
    summary: dict | None = None
    notices: list[Notice] = field(default_factory=list)  # to tell the operator (a pool's server down, back)

    @property
    def membership(self) -> bool:
        return bool(self.started or self.finished)


class LiveState:
    def __init__(self) -> None:
        self.episodes: dict[str, EpisodeLive] = {}
        self.order: list[str] = []
        self.progress: Progress | None = None
        self.findings: dict[str, int] = {}
        self.summary: dict | None = None
        self.completion_tokens = 0
        self.streamed_chars = 0
        self._rate: deque[tuple[float, int]] = deque()
        self.started_at = time.perf_counter()
        self.ttft: deque[float] = deque(maxlen=50)  # time to first token of recent steps, where the agent says
        self.first_ttft: float | None = None  # that of the run's first step (a cold start of the model)

    def reset(self) -> None:
        self.__init__()

    @property
    def running(self) -> list[str]:
        return [eid for eid in self.order if not self.episodes[eid].finished]

    def apply(self, events: list[Event], now: float | None = None) -> Changes:
        now = time.perf_counter() if now is None else now
        changes = Changes()
        chars = 0
        for event in events:
            if isinstance(event, TextDelta):
                episode = self.episodes.get(event.episode_id)
                if episode is None:
                    continue
                if episode.stream_step != event.step:
                    episode.stream = []
                    episode.stream_step = event.step
                episode.stream.append(event.text)
                chars += len(event.text)
                changes.streamed.add(episode.id)
            elif isinstance(event, EpisodeStarted):
                self.episodes[event.episode_id] = EpisodeLive(
                    id=event.episode_id, task_id=event.task_id, template=event.template,
                    query=event.query, attempt=event.attempt,
                    gold_calls=tuple(GoldCall.from_dict(c) for c in event.gold_calls), gold_answer=event.gold_answer,
                    demonstrations=tuple(DemonstrationRef.from_dict(d) for d in event.demonstrations
                                         if isinstance(d, dict)))
                self.episodes[event.episode_id].waiting_since = now
                self.order.append(event.episode_id)
                changes.started.append(event.episode_id)
            elif isinstance(event, StepProposed):
                episode = self.episodes.get(event.episode_id)
                if episode is None:
                    continue
                step = episode.step(event.step)
                step.thought, step.raw = event.thought, event.raw
                step.action = action_from_dict(event.action) if event.action is not None else None
                ttft = event.usage.get("ttft_s") if isinstance(event.usage, dict) else None
                if isinstance(ttft, (int, float)):
                    self.ttft.append(float(ttft))
                    if self.first_ttft is None:
                        self.first_ttft = float(ttft)
                episode.stream = []
                episode.stream_step = -1
                changes.episodes.add(episode.id)
                changes.streamed.add(episode.id)
            elif isinstance(event, FeedbackGiven):
                episode = self.episodes.get(event.episode_id)
                if episode is None:
                    continue
                episode.step(event.step).feedback = tuple(Finding.from_dict(f) for f in event.findings)
                changes.episodes.add(episode.id)
            elif isinstance(event, ObservationMade):
                episode = self.episodes.get(event.episode_id)
                if episode is None:
                    continue
                step = episode.step(event.step)
                step.observation, step.executed = event.observation, event.executed
                episode.waiting_since = now  # the agent is asked for its next step
                changes.episodes.add(episode.id)
            elif isinstance(event, EpisodeFinished):
                record = event.trajectory
                episode = self.episodes.get(event.episode_id)
                if episode is not None:
                    episode.finished = True
                    episode.stream = []
                    episode.success = record.verdict.success
                    episode.status = record.status
                    episode.end_reason = record.end_reason
                    changes.episodes.add(episode.id)
                for step in record.steps:
                    value = step.usage.get("completion_tokens")
                    if isinstance(value, (int, float)):
                        self.completion_tokens += int(value)
                changes.finished.append(record)
            elif isinstance(event, EpisodeStored):
                changes.stored[event.episode_id] = event.number
                episode = self.episodes.get(event.episode_id)
                if episode is not None:
                    episode.number = event.number
                    changes.episodes.add(episode.id)
            elif isinstance(event, EpisodeCancelled):
                episode = self.episodes.get(event.episode_id)
                if episode is not None and not episode.finished:
                    self._cancel(episode)
                    changes.episodes.add(episode.id)
                if event.stored:
                    changes.kept_cancelled.append(event.episode_id)
            elif isinstance(event, Progress):
                self.progress = event
                self.findings = dict(event.findings)
                changes.progress = True
            elif isinstance(event, SessionPaused):
                changes.paused = event.reason
            elif isinstance(event, Notice):
                changes.notices.append(event)
            elif isinstance(event, SessionFinished):
                self.summary = event.summary
                changes.summary = event.summary
                changes.progress = True
        if chars:
            self.streamed_chars += chars
            self._rate.append((now, chars))
        self._forget_old()
        return changes

    def _cancel(self, episode: EpisodeLive) -> None:
        episode.finished = True
        episode.cancelled = True
        episode.stream = []
        episode.status = "cancelled"
        episode.end_reason = "cancelled"

    def stop_all(self) -> set[str]:
        """The run is over: an episode still shown as running was cancelled (the engine may not have said so)."""
        stopped = set()
        for episode in self.episodes.values():
            if not episode.finished:
                self._cancel(episode)
                stopped.add(episode.id)
        self._rate.clear()
        return stopped

    def _forget_old(self) -> None:
        finished = [eid for eid in self.order if self.episodes[eid].finished]
        for eid in finished[:-KEEP_FINISHED] if len(finished) > KEEP_FINISHED else []:
            self.order.remove(eid)
            del self.episodes[eid]

    def typical_ttft(self) -> float | None:
        """The median time to first token of this run's recent steps."""
        if not self.ttft:
            return None
        values = sorted(self.ttft)
        return values[len(values) // 2]

    def chars_per_second(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        while self._rate and now - self._rate[0][0] > RATE_WINDOW_S:
            self._rate.popleft()
        if not self._rate:
            return 0.0
        span = max(now - self._rate[0][0], 1.0)
        return sum(n for _, n in self._rate) / span
