"""The review queue: pending trajectories first, then filtered ones, with the selected one in
detail. Every decision goes through `lamsim_tui.curation.review`, the same functions as `lamsim review`."""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from lamsim_tui.errors import LamsimError
from lamsim_tui.record import Trajectory
from lamsim_tui.ui.messages import QueueChanged
from lamsim_tui.ui.queue import Row, RowFilter, TrajectoryRows
from lamsim_tui.ui.render import record_content
from lamsim_tui.ui.widgets.steps import Wrapped
from lamsim_tui.ui.widgets.tables import TrajectoryTable


class TrajectoryList(Screen):
    """What the review queue and the store browser share: a filtered table and a detail pane."""

    STATUSES: tuple[str, ...] = ()
    EMPTY = "Nothing here."

    def __init__(self) -> None:
        super().__init__()
        self.filter = RowFilter()
        self.expanded = False
        self.shown: str | None = None  # the trajectory in the detail pane

    def compose_list(self) -> ComposeResult:
        yield Static(id="list-bar")
        with Horizontal(classes="list-body"):
            yield TrajectoryTable(id="table", classes="panel")
            with VerticalScroll(id="detail", classes="panel"):
                yield Wrapped(id="detail-body")

    @property
    def table(self) -> TrajectoryTable:
        return self.query_one("#table", TrajectoryTable)

    @property
    def rows(self) -> TrajectoryRows:
        raise NotImplementedError

    def listed_rows(self) -> list[Row]:
        return self.rows.matching(self.filter)

    def refill(self, keep: str | None = None) -> None:
        rows = self.listed_rows()
        self.table.show_rows(rows, keep=keep if keep is not None else self.table.current_id)
        self._show_bar()
        self._show_detail()

    def _show_bar(self) -> None:
        raise NotImplementedError

    # ----- detail ------------------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self, force: bool = False) -> None:
        record_id = self.table.current_id
        body = self.query_one("#detail-body", Wrapped)
        detail = self.query_one("#detail", VerticalScroll)
        if record_id is None:
            self.shown = None
            body.show_with(lambda width: Content.styled(self.EMPTY, "$text-muted"))
            detail.border_title = "Detail"
            return
        if record_id == self.shown and not force:
            return
        try:
            record = self.app.record(record_id)
        except LamsimError as exc:
            problem = str(exc)
            body.show_with(lambda width: Content.styled(problem, "$severity-error"))
            return
        self.shown = record_id
        expanded = self.expanded
        body.show_with(lambda width: record_content(record, expanded=expanded, width=width))
        detail.border_title = f"Trajectory {record_id[:12]}"
        detail.scroll_home(animate=False)

    def action_expand(self) -> None:
        self.expanded = not self.expanded
        self._show_detail(force=True)

    def action_view_json(self) -> None:
        from lamsim_tui.ui.screens.viewer import TextViewer

        record_id = self.table.current_id
        if record_id is None:
            return
        record = self.app.record(record_id)
        self.app.push_screen(TextViewer(json.dumps(record.to_dict(), indent=2, ensure_ascii=False),
                                        title=f"trajectory {record_id}", language="json"))

    def action_next(self) -> None:
        self.table.action_cursor_down()

    def action_previous(self) -> None:
        self.table.action_cursor_up()

    # ----- filter ------------------------------------------------------------------------------
    def action_filter(self) -> None:
        from lamsim_tui.simulator.feedback import CODES
        from lamsim_tui.ui.screens.modals import FilterScreen

        app = self.app
        templates = set(app.pack.templates) if app.pack is not None else set()
        templates.update(self.rows.templates())
        codes = set(CODES) | self.rows.codes()

        def apply(result: RowFilter | None) -> None:
            if result is not None:
                self.filter = result
                self.refill()

        app.push_screen(FilterScreen(self.filter, statuses=self.STATUSES, templates=templates, codes=codes), apply)

    def action_clear_filter(self) -> None:
        if self.filter.active:
            self.filter = RowFilter()
            self.refill()


class ReviewScreen(TrajectoryList):
    STATUSES = ("pending", "filtered")
    EMPTY = "The queue is empty. Start the session (1, then r); trajectories join here as they finish."
    BINDINGS = [
        Binding("a", "accept", "Accept", id="review.accept", tooltip="accept the selected trajectory"),
        Binding("e", "edit", "Edit", id="review.edit", tooltip="edit it as JSON; the edit is replayed before it is saved"),
        Binding("d", "discard", "Discard", id="review.discard", tooltip="discard it, with an optional reason"),
        Binding("u", "undo", "Undo", id="review.undo", tooltip="revert the last review decision (repeatable)"),
        Binding("n", "next", "Next", id="review.next"),
        Binding("b", "previous", "Previous", id="review.previous"),
        Binding("slash", "filter", "Filter", key_display="/", id="review.filter",
                tooltip="filter by status, template, feedback code or text"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="review.clear"),
        Binding("o", "expand", "Expand", id="review.expand"),
        Binding("v", "view_json", "JSON", id="review.json", tooltip="the whole trajectory as JSON"),
    ]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield from self.compose_list()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail").border_title = "Detail"
        self.table.border_title = "Review queue"
        self.app.queue_changed.subscribe(self, self._queue_changed)
        self.app.call_after_refresh(self.refill)
        self.table.focus()

    @property
    def rows(self) -> TrajectoryRows:
        return self.app.queue

    def _show_bar(self) -> None:
        queue = self.app.queue
        pending = queue.count("pending")
        doc = Content.assemble(
            ("queue ", "$text-muted"), (f"{pending}", "bold $status-pending"), (" pending · ", "$text-muted"),
            (f"{len(queue) - pending}", "bold $status-filtered"), (" filtered", "$text-muted"),
            ("   listed ", "$text-muted"), (f"{self.table.row_count}", "bold"),
            ("   filter ", "$text-muted"), (self.filter.describe(), "$accent" if self.filter.active else "$text-muted"),
        )
        if self.app.store is None:
            doc = doc + Content.styled("   store: " + (self.app.store_problem or "opening…"), "$severity-error")
        self.query_one("#list-bar", Static).update(doc)

    def _queue_changed(self, change: QueueChanged) -> None:
        table = self.table
        if not self.is_mounted:
            return
        if not change.added and not change.removed:
            self.refill()
            return
        current = table.current_id
        for record_id in change.removed:
            if record_id in table.rows:
                table.remove_row(record_id)
        queue = self.app.queue
        rows = [queue[record_id] for record_id in change.added if record_id in queue]
        new = [row for row in rows if queue.matches(row, self.filter) and row.id not in table.rows]
        if new:
            table.add_rows_keyed(new)
            last_pending = any(r.status == "pending" for r in new)
            if last_pending and queue.count("filtered"):
                table.sort("status", "seq", key=lambda cells: (cells[0].plain != "pending", int(cells[1].plain)))
        target = change.select if change.select in table.rows else current
        table.focus_row(target)
        self._show_bar()
        self._show_detail()

    # ----- decisions ---------------------------------------------------------------------------
    def _ready(self) -> str | None:
        if self.app.store is None:
            self.notify(self.app.store_problem or "the store is still opening", severity="error", markup=False)
            return None
        record_id = self.table.current_id
        if record_id is None:
            self.notify("nothing selected", markup=False)
        return record_id

    def _neighbour(self, record_id: str) -> str | None:
        """The row to select after `record_id` leaves the queue: the next one, else the previous one."""
        table = self.table
        if record_id not in table.rows:
            return None
        index = table.get_row_index(record_id)
        for candidate in (index + 1, index - 1):
            if 0 <= candidate < table.row_count:
                return table.coordinate_to_cell_key((candidate, 0))[0].value
        return None

    def action_accept(self) -> None:
        from lamsim_tui.curation import review

        record_id = self._ready()
        if record_id is None:
            return
        try:
            updated = review.accept(self.app.store, record_id)
        except LamsimError as exc:
            self.notify(str(exc), title="accept", severity="error", markup=False)
            return
        self.app.reviewed(updated, select=self._neighbour(record_id))
        self.notify(f"accepted {record_id[:8]}", markup=False, timeout=2)

    def action_discard(self) -> None:
        from lamsim_tui.ui.screens.modals import ReasonScreen

        record_id = self._ready()
        if record_id is None:
            return

        def decided(reason: str | None) -> None:
            from lamsim_tui.curation import review

            if reason is None:
                return
            try:
                updated = review.discard(self.app.store, record_id, reason=reason or None)
            except LamsimError as exc:
                self.notify(str(exc), title="discard", severity="error", markup=False)
                return
            self.app.reviewed(updated, select=self._neighbour(record_id))
            self.notify(f"discarded {record_id[:8]}" + (f" ({reason})" if reason else ""), markup=False, timeout=2)

        self.app.push_screen(ReasonScreen(f"Discard {record_id[:8]}", "reason (optional, comma-separated tags)",
                                          placeholder="e.g. wrong-answer, loop"), decided)

    def action_undo(self) -> None:
        self.app.undo_last_decision(select=True)

    def action_edit(self) -> None:
        from lamsim_tui.ui.screens.edit import EditScreen

        record_id = self._ready()
        if record_id is None:
            return
        try:
            record = self.app.record(record_id)
        except LamsimError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return

        def done(updated: Trajectory | None) -> None:
            if updated is not None:
                self.app.reviewed(updated, select=self._neighbour(record_id))

        self.app.push_screen(EditScreen(record), done)
