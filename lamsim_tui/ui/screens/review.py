"""The review queue: pending trajectories first, then filtered ones, with the selected one in
detail. Every decision goes through `lamsim_tui.curation.review`, the same functions as `lamsim review`."""

from __future__ import annotations

import json
import re

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from lamsim_tui.errors import LamsimError
from lamsim_tui.record import Trajectory
from lamsim_tui.ui.messages import QueueChanged
from lamsim_tui.ui.queue import Row, RowFilter, TrajectoryRows
from lamsim_tui.ui.render import record_content
from lamsim_tui.ui.widgets.detail import DetailView
from lamsim_tui.ui.widgets.tables import TrajectoryTable

_HELD_BY = re.compile(r"\bpid (\d+)")
NARROW_COLUMNS = 120


class TrajectoryList(Screen):
    """What the review queue and the store browser share: a filtered table and a detail pane."""

    STATUSES: tuple[str, ...] = ()
    REVIEW_COLUMN = False
    LIST_BINDINGS = [
        Binding("n,right", "next", "Next", id="list.next", tooltip="the next trajectory (also j, ↓, →)"),
        Binding("b,left", "previous", "Previous", id="list.previous", tooltip="the previous one (also k, ↑, ←)"),
        Binding("slash", "filter", "Filter", key_display="/", id="list.filter",
                tooltip="filter: words, or code:… template:… status:… (e.g. code:loop.repeat)"),
        Binding("c", "pick('code')", "Code", id="list.pick_code", show=False,
                tooltip="filter by a feedback code, with counts"),
        Binding("t", "pick('template')", "Template", id="list.pick_template", show=False,
                tooltip="filter by a template, with counts"),
        Binding("s", "pick('status')", "Status", id="list.pick_status", show=False,
                tooltip="filter by a status, with counts"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="list.clear"),
        Binding("o", "expand", "Expand", id="list.expand", tooltip="longer observations in the detail"),
        Binding("v", "view_json", "JSON", id="list.json", tooltip="the whole trajectory as JSON"),
        Binding("J", "scroll_detail(1)", "Detail ↓", key_display="J", show=False, id="list.detail_down",
                tooltip="scroll the detail down without leaving the table"),
        Binding("K", "scroll_detail(-1)", "Detail ↑", key_display="K", show=False, id="list.detail_up",
                tooltip="scroll the detail up"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter = RowFilter()
        self.narrow = False
        self.expanded = False
        self.shown: str | None = None  # the trajectory in the detail pane
        self.status_line = ""

    def compose_list(self) -> ComposeResult:
        yield Static(id="list-bar")
        with Horizontal(classes="list-body"):
            yield TrajectoryTable(id="table", classes="panel", review_column=self.REVIEW_COLUMN)
            yield DetailView(id="detail", classes="panel")

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

    def say(self, message: str) -> None:
        """A routine confirmation, in the status line under the counts (a toast would cover the detail)."""
        self.status_line = message
        self._show_bar()

    # ----- what an empty list means ------------------------------------------------------------
    def on_resize(self, event) -> None:
        narrow = event.size.width < NARROW_COLUMNS
        if narrow != self.narrow:
            self.narrow = narrow
            self.set_class(narrow, "narrow")  # the table takes more of the width (app.tcss)
            self._show_bar()

    def nothing_listed(self) -> Content:
        """Why the table is empty, truly: the store is held or failed, the filter matches nothing, or it is empty."""
        app = self.app
        if app.store is None:
            problem = app.store_problem
            if not problem:
                return Content.styled("Opening the store…", "$text-muted")
            held = _HELD_BY.search(problem)
            if held:
                return Content.assemble(
                    (f"The store is held by pid {held.group(1)}", "bold $severity-error"),
                    (" (another program is writing to it), so nothing can be listed or reviewed here.\n\n", ""),
                    (problem, "$text-muted"),
                    ("\n\nClose that program, then restart the app.", ""))
            return Content.assemble(("The store could not be opened:\n\n", "bold $severity-error"),
                                    (problem, ""))
        total = len(self.rows)
        if self.filter.active and total:
            return Content.assemble(
                (f"0 of {total} match ", "bold"), (self.filter.describe(), "$accent"),
                ("; escape clears the filter.", "$text-muted"))
        return Content.styled(self.empty_text(), "$text-muted")

    def empty_text(self) -> str:
        raise NotImplementedError

    # ----- detail ------------------------------------------------------------------------------
    def on_trajectory_table_highlighted(self, event: TrajectoryTable.Highlighted) -> None:
        self._show_detail()

    def _show_detail(self, force: bool = False) -> None:
        record_id = self.table.current_id
        detail = body = self.query_one("#detail", DetailView)
        if record_id is None:
            self.shown = None
            empty = self.nothing_listed()
            body.show_with(lambda width: empty)
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
        row = self.rows[record_id] if record_id in self.rows else None
        number = row.number if row is not None else 0
        pack = self.app.pack if self.app.pack is not None and self.app.pack.name == record.pack.name else None
        body.show_with(lambda width: record_content(record, expanded=expanded, width=width, number=number,
                                                    pack=pack))
        detail.border_title = f"#{number} · {record_id[:10]}" if number else f"Trajectory {record_id[:10]}"

    def action_expand(self) -> None:
        self.expanded = not self.expanded
        self._show_detail(force=True)

    def action_scroll_detail(self, direction: int) -> None:
        detail = self.query_one("#detail", DetailView)
        detail.scroll_relative(y=direction * max(1, detail.scrollable_content_region.height // 2), animate=False)

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
    def set_filter(self, row_filter: RowFilter) -> None:
        self.filter = row_filter
        self.refill()
        listed = self.table.row_count
        self.say(f"{listed} of {len(self.rows)} match {row_filter.describe()}" + ("; escape clears it"
                                                                                if row_filter.active else ""))

    def action_filter(self) -> None:
        from lamsim_tui.simulator.feedback import CODES
        from lamsim_tui.ui.screens.modals import FilterScreen

        app = self.app
        templates = set(app.pack.templates) if app.pack is not None else set()
        templates.update(self.rows.templates())
        codes = set(CODES) | self.rows.codes()

        def apply(result: RowFilter | None) -> None:
            if result is not None:
                self.set_filter(result)

        app.push_screen(FilterScreen(self.filter, statuses=self.STATUSES, templates=templates, codes=codes), apply)

    def action_pick(self, what: str) -> None:
        """Pick a code, template or status from those listed, with counts: two or three keys to filter."""
        import dataclasses

        from lamsim_tui.ui.screens.modals import PickScreen

        counts: dict[str, int] = {}
        others = dataclasses.replace(self.filter, **{what: None})  # counts within the rest of the filter
        for row in self.rows.matching(others):
            listing = row.listing
            values = {"code": {c.split(".")[0] for c in listing.findings} | set(listing.findings),
                      "template": {listing.template}, "status": {listing.status}}[what]
            for value in values:
                counts[value] = counts.get(value, 0) + 1
        if not counts:
            self.say(f"no {what} to pick from in what is listed")
            return

        def apply(value: str | None) -> None:
            if value is not None:
                self.set_filter(dataclasses.replace(self.filter, **{what: value or None}))

        self.app.push_screen(PickScreen(what, counts, current=getattr(self.filter, what)), apply)

    def action_clear_filter(self) -> None:
        if self.filter.active:
            self.set_filter(RowFilter())


class ReviewScreen(TrajectoryList):
    STATUSES = ("pending", "filtered")
    BINDINGS = [
        Binding("a", "accept", "Accept", id="review.accept", tooltip="accept the selected trajectory and move on"),
        Binding("ctrl+enter", "accept", "Accept", show=False, id="review.accept_next",
                tooltip="accept and move to the next"),
        Binding("A", "accept_noted", "Accept+note", key_display="A", id="review.accept_noted",
                tooltip="accept with a note or tags"),
        Binding("e", "edit", "Edit", id="review.edit", tooltip="edit it as JSON; the edit is replayed before it is saved"),
        Binding("d", "discard", "Discard", id="review.discard",
                tooltip="discard it, with a reason (1-9 pick a configured or recent one)"),
        Binding("m", "bulk", "Bulk…", id="review.bulk",
                tooltip="decide all listed at once: accept those that passed with no findings, or discard all"),
        Binding("u", "undo", "Undo", id="review.undo", tooltip="revert the last review decision (repeatable)"),
        *TrajectoryList.LIST_BINDINGS,
    ]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield from self.compose_list()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail").border_title = "Detail"
        self.table.border_title = "Review queue"
        self.app.queue_changed.subscribe(self, self._queue_changed)
        self.app.session_changed.subscribe(self, lambda what: self._show_bar() if what == "store" else None)
        self.app.acknowledged.subscribe(self, self.say)
        self.app.call_after_refresh(self.refill)
        self.table.focus()

    @property
    def rows(self) -> TrajectoryRows:
        return self.app.queue

    def empty_text(self) -> str:
        return "The queue is empty. Start the session (1, then r); trajectories join here as they finish."

    def _show_bar(self) -> None:
        queue = self.app.queue
        pending = queue.count("pending")
        decided, pace = self.app.review_pace()
        doc = Content.assemble(
            ("queue ", "$text-muted"), (f"{pending}", "bold $status-pending"), (" pending · ", "$text-muted"),
            (f"{len(queue) - pending}", "bold $status-filtered"), (" filtered", "$text-muted"),
            ("   listed ", "$text-muted"), (f"{self.table.row_count}", "bold"),
            ("   filter ", "$text-muted"), (self.filter.describe(), "$accent" if self.filter.active else "$text-muted"),
            ("   reviewed ", "$text-muted"), (f"{decided}", "bold"),
            (" · " if self.narrow else " this session · ", "$text-muted"),
            (f"{len(queue)}", "bold"), (" left", "$text-muted"),
            (f" · {pace:.0f} s/decision" if self.narrow and pace is not None else
             f" · {pace:.0f} s per decision" if pace is not None else "", "$text-muted"),
        )
        if self.narrow:  # the counts that matter, in the room there is
            doc = Content.assemble(
                (f"{pending}", "bold $status-pending"), (" pending · ", "$text-muted"),
                (f"{len(queue) - pending}", "bold $status-filtered"), (" filtered · listed ", "$text-muted"),
                (f"{self.table.row_count}", "bold"), ("  filter ", "$text-muted"),
                (self.filter.describe(), "$accent" if self.filter.active else "$text-muted"),
                ("  done ", "$text-muted"), (f"{decided}", "bold"),
                (f" · {pace:.0f} s each" if pace is not None else "", "$text-muted"))
        if self.app.store is None:
            doc = doc + Content.styled("   store: " + (self.app.store_problem or "opening…"), "$severity-error")
        line = Content.styled(self.status_line, "$text-muted") if self.status_line else Content("")
        self.query_one("#list-bar", Static).update(Content("\n").join([doc, line]), layout=False)

    def _queue_changed(self, change: QueueChanged) -> None:
        table = self.table
        if not self.is_mounted:
            return
        if not change.added and not change.removed and not change.updated:
            self.refill()
            return
        current = table.current_id
        queue = self.app.queue
        for record_id in change.removed:
            table.remove_row(record_id)
        for record_id in change.updated:
            if record_id in queue:
                table.update_row(queue[record_id])
        rows = [queue[record_id] for record_id in change.added if record_id in queue]
        fresh = [row for row in rows if row.id not in table and queue.matches(row, self.filter)]
        back = [row for row in rows if row.id in table]
        for row in back:
            table.update_row(row)
        if fresh:
            last = table.last_row()
            ordered = sorted(fresh, key=queue.sort_key)
            if not last or queue.sort_key(ordered[0]) > queue.sort_key(last):
                table.add_rows_keyed(ordered)  # joins at the end: the usual case while a session runs
            else:
                table.show_rows(self.listed_rows(), keep=current)  # comes back in its place (undo)
        target = change.select if change.select in table else current
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
            self.say("nothing selected")
        return record_id

    def _neighbour(self, record_id: str) -> str | None:
        """The row to select after `record_id` leaves the queue: the next one, else the previous one."""
        table = self.table
        if record_id not in table:
            return None
        index = table.get_row_index(record_id)
        return table.id_at(index + 1) or table.id_at(index - 1)

    def _label(self, record_id: str) -> str:
        row = self.rows[record_id] if record_id in self.rows else None
        return f"#{row.number} {record_id[:8]}" if row is not None and row.number else record_id[:8]

    def action_accept(self, note: str | None = None, tags: str | None = None) -> None:
        from lamsim_tui.curation import review

        record_id = self._ready()
        if record_id is None:
            return
        label = self._label(record_id)
        try:
            updated = review.accept(self.app.store, record_id, note=note, tags=tags)
        except LamsimError as exc:
            self.notify(str(exc), title="accept", severity="error", markup=False)
            return
        self.app.reviewed(updated, select=self._neighbour(record_id))
        self.app.acknowledge(f"accepted {label}" + (f" ({note or tags})" if note or tags else "") + " · u undoes")

    def action_accept_noted(self) -> None:
        from lamsim_tui.ui.screens.modals import ReasonScreen

        record_id = self._ready()
        if record_id is None:
            return

        def noted(text: str | None) -> None:
            if text is None:
                return
            tags, note = split_note(text)
            if self.table.current_id == record_id:
                self.action_accept(note=note, tags=tags)

        self.app.push_screen(ReasonScreen(f"Accept {self._label(record_id)}", "note, and #tags (optional)",
                                          placeholder="e.g. clean run #short #gold-like"), noted)

    def action_discard(self) -> None:
        from lamsim_tui.ui.screens.modals import ReasonScreen

        record_id = self._ready()
        if record_id is None:
            return
        label = self._label(record_id)

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
            self.app.acknowledge(f"discarded {label}" + (f" ({reason})" if reason else "") + " · u undoes")

        self.app.push_screen(ReasonScreen(f"Discard {label}", "reason (optional, comma-separated tags)",
                                          placeholder="e.g. wrong-answer, loop", choices=self.app.recent_reasons()),
                             decided)

    def action_bulk(self) -> None:
        from lamsim_tui.ui.screens.modals import BulkChoice, BulkScreen

        if self.app.store is None:
            self.notify(self.app.store_problem or "the store is still opening", severity="error", markup=False)
            return
        listed = self.listed_rows()
        clean = [row.id for row in listed if row.status == "pending" and row.listing.passed and not row.listing.findings]
        if not listed:
            self.say("nothing listed to decide")
            return

        def chosen(choice: BulkChoice | None) -> None:
            if choice is not None:
                self._decide_many(choice, clean if choice.action == "accept" else [row.id for row in listed])

        self.app.push_screen(BulkScreen(clean=len(clean), listed=len(listed), filter_text=self.filter.describe(),
                                        reasons=self.app.recent_reasons()), chosen)

    def _decide_many(self, choice, record_ids: list[str]) -> None:
        from lamsim_tui.curation import review

        if not record_ids:
            self.say("nothing to " + choice.action)
            return
        try:
            if choice.action == "accept":
                updated = review.accept_many(self.app.store, record_ids, note=choice.note)
            else:
                updated = review.discard_many(self.app.store, record_ids, reason=choice.reason or None,
                                              note=choice.note)
        except LamsimError as exc:
            self.notify(str(exc), title=f"bulk {choice.action}", severity="error", markup=False)
            return
        self.app.reviewed(*updated)
        verb = "accepted" if choice.action == "accept" else "discarded"
        reason = f" ({choice.reason})" if choice.action == "discard" and choice.reason else ""
        self.app.acknowledge(f"{verb} {len(updated)} trajectories{reason} as one decision · u undoes all of it")

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
                self.app.acknowledge(f"edit saved and accepted: {self._label(record_id)} · u undoes")

        self.app.push_screen(EditScreen(record), done)


def split_note(text: str) -> tuple[list[str], str | None]:
    """`clean run #short #gold-like` -> (["short", "gold-like"], "clean run")."""
    tags = [word[1:] for word in text.split() if word.startswith("#") and len(word) > 1]
    note = " ".join(word for word in text.split() if not (word.startswith("#") and len(word) > 1)).strip()
    return tags, note or None
