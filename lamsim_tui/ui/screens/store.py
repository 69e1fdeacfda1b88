"""The store browser: accepted and discarded trajectories, the same search as the queue, and export."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Footer, Header, Static

from lamsim_tui.errors import LamsimError
from lamsim_tui.ui.queue import TrajectoryRows
from lamsim_tui.ui.screens.review import TrajectoryList


class StoreScreen(TrajectoryList):
    STATUSES = ("accepted", "discarded")
    REVIEW_COLUMN = True  # edited, forced, the discard reason and the note, at a glance
    BINDINGS = [
        Binding("x", "export", "Export", id="store.export", tooltip="export accepted trajectories (chat, sharegpt, xlam)"),
        Binding("u", "undo", "Undo", id="store.undo", tooltip="revert the last review decision (repeatable)"),
        *TrajectoryList.LIST_BINDINGS,
        Binding("ctrl+l", "reload", "Reload", id="store.reload", tooltip="read the store again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._rows: TrajectoryRows | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield from self.compose_list()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail").border_title = "Detail"
        self.table.border_title = "Store: accepted and discarded"
        self.app.queue_changed.subscribe(self, lambda change: self._stale())
        self.app.session_changed.subscribe(self, lambda what: self._stale())
        self.app.acknowledged.subscribe(self, self.say)
        self.table.focus()
        self.action_reload()

    def on_screen_resume(self) -> None:
        if getattr(self, "_is_stale", False):
            self.action_reload()

    def _stale(self) -> None:
        self._is_stale = True
        if self.is_current:
            self.action_reload()

    @property
    def rows(self) -> TrajectoryRows:
        if self._rows is None:
            self._rows = TrajectoryRows(self.app.record)
        return self._rows

    def empty_text(self) -> str:
        return "No reviewed trajectory yet: accept or discard some in the review queue (2)."

    def action_reload(self) -> None:
        self._is_stale = False
        self.rows.replace(self.app.listings(self.STATUSES))
        self.refill()

    def _show_bar(self) -> None:
        rows = self.rows
        accepted = rows.count("accepted")
        doc = Content.assemble(
            (f"{accepted}", "bold $status-accepted"), (" accepted · ", "$text-muted"),
            (f"{len(rows) - accepted}", "bold $status-discarded"), (" discarded", "$text-muted"),
            ("   listed ", "$text-muted"), (f"{self.table.row_count}", "bold"),
            ("   filter ", "$text-muted"), (self.filter.describe(), "$accent" if self.filter.active else "$text-muted"),
            ("   x: export", "$text-muted"),
        )
        line = Content.styled(self.status_line, "$text-muted") if self.status_line else Content("")
        self.query_one("#list-bar", Static).update(Content("\n").join([doc, line]), layout=False)

    def action_undo(self) -> None:
        if self.app.undo_last_decision():
            self.action_reload()

    # ----- export ------------------------------------------------------------------------------
    def action_export(self) -> None:
        from lamsim_tui.curation.export import FORMATS
        from lamsim_tui.ui.screens.modals import ExportScreen

        app = self.app
        if app.store is None:
            self.notify(app.store_problem or "the store is not open", severity="error", markup=False)
            return
        name = app.session.session_name if app.session else "lamsim"
        default = str(Path("exports") / f"{name}-chat.jsonl")

        def chosen(choice) -> None:
            if choice is not None:
                self.run_export(choice)

        app.push_screen(ExportScreen(default, FORMATS), chosen)

    @work(thread=True, group="export", exclusive=True, exit_on_error=False, name="export")
    def run_export(self, choice) -> None:
        from lamsim_tui.curation.export import export
        from lamsim_tui.ui.screens.modals import ProgressDialog

        app = self.app
        dialog = ProgressDialog(f"Exporting {choice.fmt} to {choice.out}")
        app.call_from_thread(app.push_screen, dialog)
        out = Path(choice.out)
        if not out.is_absolute():
            out = app.project_root / out
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            meta = export(app.store, out, fmt=choice.fmt, kind=choice.kind, status=choice.statuses,
                          keep_rejected=choice.keep_rejected,
                          progress=lambda done, total: app.call_from_thread(dialog.advance, done, total))
        except (LamsimError, OSError) as exc:
            app.call_from_thread(dialog.dismiss, None)
            app.call_from_thread(app.notify, f"export failed: {exc}", severity="error", markup=False, timeout=12)
            return
        count = meta.get("counts", {}).get("trajectories", 0)
        app.call_from_thread(dialog.advance, count, max(count, 1))
        counts = meta.get("counts", {})
        notes = []
        if counts.get("skipped_unfinished"):
            notes.append(f"{counts['skipped_unfinished']} unfinished left out")
        if counts.get("steps_left_out_by_clean"):
            notes.append(f"{counts['steps_left_out_by_clean']} rejected steps left out")
        if choice.kind != "sft":
            notes.append(f"{counts.get('rows', 0)} rows")
        note = f" ({'; '.join(notes)})" if notes else ""
        app.call_from_thread(dialog.dismiss, None)
        app.call_from_thread(app.notify, f"exported {count} trajectories to {out}{note}; dataset card and "
                             "sidecar beside it", title="export", markup=False, timeout=10)
