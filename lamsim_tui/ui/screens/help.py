"""`?`: every key of the screen the operator came from, and of the app, with what it does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from lamsim_tui.ui.render import Doc

SCREEN_NAMES = {
    "LiveScreen": "Live session (1)",
    "ReviewScreen": "Review queue (2)",
    "StoreScreen": "Store browser (3)",
    "StatsScreen": "Statistics (4)",
    "EditScreen": "Edit a trajectory",
}


def _bindings(cls) -> list[Binding]:
    out = []
    for item in getattr(cls, "BINDINGS", []):
        if isinstance(item, Binding):
            out.append(item)
        elif isinstance(item, tuple):
            out.append(Binding(*item))
    return out


def _key(binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    return ", ".join(k.replace("ctrl+", "^").replace("left_square_bracket", "[").replace("right_square_bracket", "]")
                     for k in binding.key.split(","))


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="help.close")]

    def __init__(self, origin: Screen):
        super().__init__()
        self.origin = origin

    def compose(self) -> ComposeResult:
        from lamsim_tui.ui.screens.edit import EditScreen
        from lamsim_tui.ui.screens.live import LiveScreen
        from lamsim_tui.ui.screens.review import ReviewScreen
        from lamsim_tui.ui.screens.stats import StatsScreen
        from lamsim_tui.ui.screens.store import StoreScreen
        from lamsim_tui.ui.widgets.steps import StepBlock

        doc = Doc()
        doc.line("lamsim keys", "bold $primary")
        doc.line("escape or ? closes this help · ctrl+p opens the command palette (every action, and themes)",
                 "$text-muted")
        doc.line()
        origin = type(self.origin).__name__
        order = [type(self.origin)] + [c for c in (LiveScreen, ReviewScreen, EditScreen, StoreScreen, StatsScreen)
                                       if c is not type(self.origin)]
        sections = [("Everywhere", type(self.app))] + [(SCREEN_NAMES.get(c.__name__, c.__name__) +
                                                        ("  ← you are here" if c.__name__ == origin else ""), c)
                                                       for c in order]
        sections.append(("A step block in the Agent pane", StepBlock))
        for title, cls in sections:
            bindings = [b for b in _bindings(cls) if b.description]
            if not bindings:
                continue
            doc.line(title, "bold $accent")
            for binding in bindings:
                doc.add(f"  {_key(binding):<12}", "bold").add(binding.description)
                if binding.tooltip:
                    doc.add(f" — {binding.tooltip}", "$text-muted")
                doc.line()
            if cls.__name__ in ("ReviewScreen", "StoreScreen"):
                doc.add(f"  {'j, k, ↑, ↓':<12}", "bold").line("move in the table")
            doc.line()
        doc.line("Hot reload: saving sessions/, tools/ or themes/ applies the change; an invalid file is "
                 "reported with file and line and the last good version stays in use.", "$text-muted")
        with VerticalScroll(id="help"):
            yield Static(doc.content(), id="help-body")

    def action_close(self) -> None:
        self.dismiss(None)
