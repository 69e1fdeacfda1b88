"""Messages the app's parts send each other: small dataclasses named in the past tense."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message


@dataclass
class QueueChanged(Message):
    """Trajectories joined or left the review queue (live arrivals, reviews, undo)."""

    added: list[str] = field(default_factory=list)  # ids, now in `app.queue`
    removed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)  # still queued, but what a row shows changed (its number)
    select: str | None = None


@dataclass
class SessionReloaded(Message):
    """The session, the pack or the store was loaded again, or failed to (the screens show which)."""

    what: str  # "session" | "pack" | "store"


class Hub:
    """Fan-out of app state changes to the screens that show them.

    Like `textual.signal.Signal`, but a failing subscriber fails loudly (as any handler would)
    instead of being logged and skipped, and a screen parked in another mode still hears it.
    """

    def __init__(self, name: str):
        self.name = name
        self._subscribers: dict[object, list] = {}

    def subscribe(self, node, callback) -> None:
        self._subscribers.setdefault(node, []).append(callback)

    def unsubscribe(self, node) -> None:
        self._subscribers.pop(node, None)

    def publish(self, data=None) -> None:
        for node, callbacks in list(self._subscribers.items()):
            if not node.is_mounted:
                continue  # not ready yet
            if not node.is_attached:
                self._subscribers.pop(node, None)  # removed from the app
                continue
            for callback in callbacks:
                callback(data)
