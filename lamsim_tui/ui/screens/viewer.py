"""A read-only, scrollable view of long text (a 100 KB observation, a whole trajectory as JSON).

The `TextArea` renders only the visible lines, so very long text stays responsive.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from lamsim_tui.ui.text import literal, pretty_json


def step_full_text(step: Any) -> str:
    get = (lambda k, d=None: step.get(k, d)) if isinstance(step, dict) else (lambda k, d=None: getattr(step, k, d))
    parts = []
    if get("thought"):
        parts.append("thought:\n" + get("thought"))
    action = get("action")
    parts.append("action:\n" + (pretty_json(action) if action is not None else "(unparseable)\n" + (get("raw") or "")))
    parts.append("observation:\n" + (get("observation") or ""))
    findings = get("findings") or get("feedback") or []
    if findings:
        parts.append("feedback:\n" + "\n".join(f"{f.get('severity')} {f.get('code')}: {f.get('message')}" for f in findings))
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
