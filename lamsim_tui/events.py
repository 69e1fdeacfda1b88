"""Typed events the engine emits while a session runs. The TUI and the headless CLI render them.

All are frozen dataclasses; payloads are plain data (str, dict) or frozen records, so they can
cross threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lamsim_tui.record import Trajectory


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class EpisodeStarted(Event):
    episode_id: str
    task_id: str
    template: str
    query: str
    attempt: int
    gold_calls: tuple = ()
    gold_answer: Any = None
    demonstrations: tuple = ()  # ({id, template, task_id, origin}, ...): the solved tasks it is shown


@dataclass(frozen=True)
class TextDelta(Event):
    """A piece of model output as it streams (text or tool-call argument characters)."""

    episode_id: str
    step: int
    text: str


@dataclass(frozen=True)
class StepProposed(Event):
    episode_id: str
    step: int
    thought: str
    action: dict | None  # ToolCall/Finish .to_dict(), None when unparseable
    raw: str
    usage: dict = field(default_factory=dict)  # tokens and timings of this step, where known


@dataclass(frozen=True)
class FeedbackGiven(Event):
    episode_id: str
    step: int
    findings: tuple[dict, ...]


@dataclass(frozen=True)
class ObservationMade(Event):
    episode_id: str
    step: int
    observation: str
    executed: bool


@dataclass(frozen=True)
class EpisodeFinished(Event):
    """An episode ended and was judged; its record is on its way to the store (see EpisodeStored)."""

    episode_id: str
    trajectory: Trajectory = field(repr=False)


@dataclass(frozen=True)
class EpisodeStored(Event):
    """The episode's record is durable in the store: `number` is its stable place there."""

    episode_id: str
    number: int


@dataclass(frozen=True)
class EpisodeCancelled(Event):
    """The session was stopped while this episode ran; `stored` says whether its record was kept."""

    episode_id: str
    stored: bool = False


@dataclass(frozen=True)
class Progress(Event):
    done: int
    total: int
    succeeded: int
    kept: int
    filtered: int
    findings: dict = field(default_factory=dict)
    remaining: int = 0  # episodes not finished yet (queued or running)


@dataclass(frozen=True)
class SessionPaused(Event):
    reason: str


@dataclass(frozen=True)
class SessionFinished(Event):
    summary: dict = field(repr=False)


@dataclass(frozen=True)
class Notice(Event):
    """Something the operator should be told while a session runs (the headless CLI prints it on stderr,
    the app shows it as a notification). `message` is plain text, never markup."""

    message: str
    severity: str = "warning"  # as Textual's notify: "information", "warning" or "error"
    title: str = "session"


@dataclass(frozen=True)
class ServerDown(Notice):
    """A server of a model's pool stopped answering: out of rotation, the session goes on on the others."""

    model: str = ""
    api_base: str = ""
    reason: str = ""
    servers_left: int = 0
    title: str = "model server down"


@dataclass(frozen=True)
class ServerBack(Notice):
    """A server that was out of rotation answers again."""

    model: str = ""
    api_base: str = ""
    severity: str = "information"
    title: str = "model server back"
