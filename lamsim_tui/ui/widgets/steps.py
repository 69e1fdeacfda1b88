"""Text blocks that wrap to their width, and step blocks (thought, tool call as pretty JSON,
observation, feedback) built on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Static

from lamsim_tui.ui.render import step_content

if TYPE_CHECKING:
    from lamsim_tui.record import Step
    from lamsim_tui.ui.live import StepLive


class Wrapped(Static):
    """A Static whose Content is built for its current width (hanging indents need the width)."""

    def __init__(self, builder: Callable[[int], Content] | None = None, *, width_hint: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self._builder = builder
        self._built_for = -1
        if builder is not None and width_hint > 0:
            # Built for the width it will most likely get, so mounting costs one layout, not two.
            self._built_for = width_hint
            self.update(builder(width_hint))

    def show_with(self, builder: Callable[[int], Content]) -> None:
        self._builder = builder
        self._build()

    def _build(self) -> None:
        if self._builder is None:
            return
        width = self.content_size.width
        self._built_for = width
        self.update(self._builder(width))

    def on_mount(self) -> None:
        if self._built_for < 0:
            self._build()

    def on_resize(self, event: events.Resize) -> None:
        if self.content_size.width != self._built_for:
            self._build()


class StepBlock(Wrapped, can_focus=True):
    """A step of a trajectory. Focus it and press enter (or v) to read the whole observation."""

    BINDINGS = [Binding("enter,v", "view", "View all", id="step.view")]

    def __init__(self, step: Step | StepLive, *, expanded: bool = False, width_hint: int = 0,
                 changes_state: bool = False, **kwargs: Any):
        self.step = step
        self.expanded = expanded
        self.changes_state = changes_state  # a call to a tool that changes the sandbox: marked
        super().__init__(self._content, width_hint=width_hint, **kwargs)

    def _content(self, width: int) -> Content:
        return step_content(self.step, expanded=self.expanded, width=width, changes_state=self.changes_state)

    def show(self, step: Step | StepLive, *, expanded: bool | None = None) -> None:
        self.step = step
        if expanded is not None:
            self.expanded = expanded
        self._build()

    def action_view(self) -> None:
        from lamsim_tui.ui.screens.viewer import TextViewer, step_full_text

        self.app.push_screen(TextViewer(step_full_text(self.step), title=f"step {self.step.index + 1}"))
