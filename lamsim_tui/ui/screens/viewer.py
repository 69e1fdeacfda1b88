"""A read-only, scrollable view of long text (a 100 KB observation, a whole trajectory as JSON).

The `TextArea` renders only the visible lines, so very long text stays responsive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from lamsim_tui.ui.text import literal, pretty_json

if TYPE_CHECKING:
    from lamsim_tui.record import Step
    from lamsim_tui.ui.live import StepLive


def step_full_text(step: Step | StepLive) -> str:
    parts = []
    if step.thought:
        parts.append("thought:\n" + step.thought)
    action = step.action
    parts.append("action:\n" + (pretty_json(action.to_dict()) if action is not None else "(unparseable)\n" + step.raw))
    parts.append("observation:\n" + (step.observation or ""))
    if step.feedback:
        parts.append("feedback:\n" + "\n".join(f"{f.severity} {f.code}: {f.message}" for f in step.feedback))
    return "\n\n".join(parts)


class TextViewer(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "Close", id="viewer.close")]

    def __init__(self, text: str, *, title: str = "", language: str | None = None):
        super().__init__()
        self.text = text
        self.title_text = title
        self.language = language

    def compose(self) -> ComposeResult:
        with Vertical(id="viewer"):
            yield Static(literal(self.title_text) + f"  ·  {len(self.text):,} characters  ·  escape closes",
                         markup=False, id="viewer-title")
            area = TextArea(literal(self.text) if self.language is None else self.text, read_only=True,
                            soft_wrap=True, show_line_numbers=self.language is not None, id="viewer-text")
            if self.language and self.language in area.available_languages:
                area.language = self.language
            yield area

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_close(self) -> None:
        self.dismiss(None)
