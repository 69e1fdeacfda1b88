"""Edit a trajectory: JSON in a `TextArea` (or `$EDITOR`), replayed in a fresh sandbox before it
is trusted. The operator sees the recomputed observations, feedback and verdict, then saves (which
accepts the edit through `review.edit`). A refused edit says why; the typed text is never lost:
it stays in the editor, and in the app's drafts when the operator leaves."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TextArea

from lamsim_tui.errors import LamsimError
from lamsim_tui.record import Trajectory
from lamsim_tui.ui.render import Doc, record_content
from lamsim_tui.ui.text import lit
from lamsim_tui.ui.widgets.steps import Wrapped


class EditScreen(Screen[Trajectory | None]):
    BINDINGS = [
        Binding("ctrl+s", "replay", "Replay", priority=True, id="edit.replay",
                tooltip="replay the edit in a fresh sandbox and preview the result"),
        Binding("ctrl+y", "save", "Save (accept)", priority=True, id="edit.save",
                tooltip="save the replayed edit as accepted (only if it holds up)"),
        Binding("ctrl+f", "force", "Force…", priority=True, id="edit.force",
                tooltip="save a refused edit anyway, with a required note"),
        Binding("ctrl+e", "external", "$EDITOR", priority=True, id="edit.external",
                tooltip="edit in $EDITOR (or $VISUAL), then replay"),
        Binding("ctrl+r", "revert", "Revert", priority=True, id="edit.revert",
                tooltip="back to the stored trajectory"),
        Binding("escape", "back", "Back", id="edit.back", tooltip="back to the queue; your text is kept as a draft"),
    ]

    def __init__(self, record: Trajectory):
        super().__init__()
        self.record = record
        self.record_id = record.id
        self.preview: Trajectory | None = None
        self.preview_text: str | None = None
        self.problems: list[str] = []
        self.codes: list[str] = []

    def original_text(self) -> str:
        from lamsim_tui.curation import review

        return review.editable_text(self.record)

    def compose(self) -> ComposeResult:
        task = self.record.task
        yield Header(show_clock=False, icon="≡")
        doc = Doc()
        doc.add("editing ", "$text-muted").add(self.record_id[:12], "bold").add("  ")
        doc.add(task.template, "bold $accent").add("   ")
        doc.add(task.query)
        unparsed = self.unparsed_steps()
        if unparsed:
            doc.add("\n")
            doc.add(f"step {', '.join(map(str, unparsed))} could not be parsed (no action was read from the reply) "
                    "and {} not in the editor: the raw reply is in the preview.".format(
                        "is" if len(unparsed) == 1 else "are"), "$severity-warning")
        yield Static(doc.content(), id="edit-head")
        with Horizontal(id="edit-body"):
            text = self.app.drafts.get(self.record_id) or self.original_text()
            area = TextArea(text, show_line_numbers=True, tab_behavior="focus", id="editor", classes="panel")
            # Highlighting needs tree-sitter (textual[syntax]); snapshots stay plain so they do not
            # depend on whether it is installed.
            if "json" in area.available_languages and not self.app.snapshot:
                area.language = "json"
            if self.app.snapshot:
                area.cursor_blink = False
            yield area
            with VerticalScroll(id="preview", classes="panel"):
                yield Wrapped(id="preview-body")
        yield Static(id="edit-status")
        yield Footer()

    def unparsed_steps(self) -> list[int]:
        """Steps (1-based) whose reply gave no action: `review.editable` leaves them out."""
        return [step.index + 1 for step in self.record.steps if step.action is None]

    def on_mount(self) -> None:
        self.query_one("#editor").border_title = "Edit (JSON) · thoughts, tools, arguments, final_answer"
        self.query_one("#preview").border_title = "Replay preview"
        intro = Content.styled(
            "ctrl+s replays the edit in a fresh sandbox and shows the recomputed observations, feedback and "
            "verdict here. Observations are never typed: they come from the tools.", "$text-muted")
        unparsed = [step for step in self.record.steps if step.action is None]
        if unparsed:
            doc = Doc()
            doc.line("Left out of the editor (no action could be read from these replies):", "bold $severity-warning")
            for step in unparsed:
                doc.label(f"step {step.index + 1}").indented(step.raw or "(empty reply)", "$stream-text")
            left_out = doc.content()
            self.query_one("#preview-body", Wrapped).show_with(
                lambda width: Content("\n").join([intro, Content(""), left_out]))
        else:
            self.query_one("#preview-body", Wrapped).show_with(lambda width: intro)
        self._status("Edit, then ctrl+s to replay; ctrl+y saves (accepts) a replay that holds up.", "$text-muted")
        self.query_one("#editor", TextArea).focus()

    @property
    def text(self) -> str:
        return self.query_one("#editor", TextArea).text

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.app.drafts[self.record_id] = event.text_area.text
        if self.preview is not None and self.preview_text != event.text_area.text:
            self.query_one("#preview").border_title = "Replay preview (out of date: ctrl+s)"

    def _status(self, text: str, style: str = "") -> None:
        self.query_one("#edit-status", Static).update(lit(text, style))

    def _parse(self) -> dict | None:
        from lamsim_tui.curation import review

        try:
            return review.parse_editable(self.text, where="edit")
        except LamsimError as exc:
            self._status(f"cannot replay: {exc.where + ': ' if exc.where else ''}{exc.message}", "$severity-error")
            match = re.search(r":(\d+):(\d+)$", exc.where or "")
            if match:
                area = self.query_one("#editor", TextArea)
                area.move_cursor((int(match.group(1)) - 1, int(match.group(2)) - 1))
                area.focus()
            return None

    # ----- replay ------------------------------------------------------------------------------
    def action_replay(self) -> None:
        edited = self._parse()
        if edited is None:
            return
        self._status("replaying in a fresh sandbox…", "$accent")
        self.run_replay(edited, self.text)

    @work(group="edit-replay", exclusive=True, exit_on_error=False, name="replay the edit")
    async def run_replay(self, edited: dict, text: str) -> None:
        from lamsim_tui.curation import review
        from lamsim_tui.simulator.replay import areplay

        actions = review.actions_from_editable(edited)
        pack = self.app.pack if self.app.pack is not None and self.app.pack.name == self.record.pack.name else None
        replayed = await areplay(self.record, actions, pack=pack)
        problems, codes = review.replay_problems(replayed)
        self.preview, self.preview_text = replayed, text
        self.problems, self.codes = problems, codes
        if self.text == text:  # not typed over while it replayed
            self._refresh_observations(edited, replayed)
        self._show_preview()

    def _refresh_observations(self, edited: dict, replayed: Trajectory) -> None:
        """Put what the replay observed into the editor's (read-only) observation and feedback fields, so
        the text never shows observations of a version that is gone. The edit itself is unchanged."""
        steps = edited.get("steps")
        if not isinstance(steps, list):
            return
        done = [step for step in replayed.steps if step.action is not None]
        for i, step in enumerate(steps):
            if not isinstance(step, dict):
                continue
            if i < len(done):
                step["observation"] = done[i].observation
                if done[i].feedback:
                    step["feedback"] = done[i].codes
                else:
                    step.pop("feedback", None)
            else:
                step["observation"] = "(not reached in the replay)"
                step.pop("feedback", None)
        text = json.dumps(edited, indent=2, ensure_ascii=False) + "\n"
        if text == self.text:
            return
        area = self.query_one("#editor", TextArea)
        cursor = area.cursor_location
        self.preview_text = text  # the same edit: what was replayed is still what is shown
        area.load_text(text)
        area.move_cursor((min(cursor[0], area.document.line_count - 1), cursor[1]))
        self.app.drafts[self.record_id] = text

    def _show_preview(self) -> None:
        replayed = self.preview
        doc = Doc()
        if self.problems:
            doc.line("REFUSED: the edit does not hold up when replayed", "bold $severity-error")
            for problem in self.problems:
                doc.add("  • ", "$severity-error").line(problem)
            doc.line("Fix the JSON and replay (ctrl+s), or keep it anyway with a note (ctrl+f).", "$text-muted")
        else:
            doc.line("HOLDS UP: replayed without error feedback; the judge accepts the answer", "bold $verdict-success")
            doc.line("ctrl+y saves it as accepted (the original is kept beside it).", "$text-muted")
        head = doc.content()
        self.query_one("#preview-body", Wrapped).show_with(
            lambda width: Content("\n").join([head, Content(""), record_content(replayed, width=width)]))
        self.query_one("#preview").border_title = "Replay preview"
        self.query_one("#preview").scroll_home(animate=False)
        if self.problems:
            codes = ", ".join(dict.fromkeys(self.codes)) or "judge"
            self._status(f"refused ({codes}): nothing was saved; your text is kept", "bold $severity-error")
        else:
            self._status("replay holds up: ctrl+y to save", "bold $verdict-success")

    # ----- save --------------------------------------------------------------------------------
    def _preview_current(self) -> bool:
        if self.preview is None or self.preview_text != self.text:
            self._status("replay the current text first (ctrl+s): saving needs a preview of exactly this edit",
                         "$severity-warning")
            return False
        return True

    def action_save(self) -> None:
        if not self._preview_current():
            return
        if self.problems:
            self._status("refused: " + "; ".join(self.problems[:3]) + " — fix it, or force with a note (ctrl+f)",
                         "bold $severity-error")
            return
        self._commit(force=False, note=None)

    def action_force(self) -> None:
        from lamsim_tui.ui.screens.modals import ReasonScreen

        if not self._preview_current():
            return
        if not self.problems:
            self._commit(force=False, note=None)
            return

        def noted(note: str | None) -> None:
            if note:
                self._commit(force=True, note=note)

        self.app.push_screen(ReasonScreen("Keep a refused edit", "why is it right anyway? (required, recorded)",
                                          required=True), noted)

    def _commit(self, *, force: bool, note: str | None) -> None:
        from lamsim_tui.curation import review

        store = self.app.store
        if store is None:
            self._status(self.app.store_problem or "the store is not open", "$severity-error")
            return
        edited = review.parse_editable(self.text, where="edit")
        replayed = self.preview

        def reuse_preview(record: Trajectory, actions: list[dict], pack=None) -> Trajectory:
            return replayed

        try:
            updated = review.edit(store, self.record_id, edited, force=force, note=note, replay=reuse_preview)
        except LamsimError as exc:
            self._status(str(exc), "bold $severity-error")
            return
        self.app.drafts.pop(self.record_id, None)
        self.notify(f"edit saved and accepted: {self.record_id[:8]}" + (" (forced)" if force else ""), markup=False)
        self.dismiss(updated)

    # ----- other -------------------------------------------------------------------------------
    def action_revert(self) -> None:
        self.query_one("#editor", TextArea).load_text(self.original_text())
        self._status("reverted to the stored trajectory", "$text-muted")

    def action_back(self) -> None:
        self.dismiss(None)

    def action_external(self) -> None:
        from lamsim_tui.curation.editor import editor_command, run_editor

        if not editor_command():
            self._status("set $EDITOR (or $VISUAL) to edit in your own editor", "$severity-warning")
            return
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix=f"lamsim-{self.record_id[:8]}-",
                                         delete=False, encoding="utf-8") as handle:
            handle.write(self.text)
            path = Path(handle.name)
        try:
            try:
                with self.app.suspend():
                    run_editor(path)
            except LamsimError as exc:  # not found, or exited with an error: the text here is unchanged
                self._status(exc.message, "$severity-warning")
                return
            except (SuspendNotSupported, OSError) as exc:  # no terminal to hand over; the editor cannot start
                self._status(f"cannot run the editor: {exc or type(exc).__name__}", "$severity-error")
                return
            new = path.read_text(encoding="utf-8")
        finally:
            path.unlink(missing_ok=True)
        if new != self.text:
            self.query_one("#editor", TextArea).load_text(new)
            self.app.drafts[self.record_id] = new
        self.action_replay()
