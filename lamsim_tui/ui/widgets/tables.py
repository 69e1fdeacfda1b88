"""The trajectory table shared by the review queue and the store browser.

A Line-API widget (`ScrollView`): it draws only the rows on screen and keeps each drawn row, so a
decision (a row leaves, the cursor moves on) redraws two rows, not the table — with a live stream
running beside it. Zebra stripes follow the trajectory's number, not its position, so removing a
row changes nothing below it.

Its columns fit the table's width: the findings summary (counts by severity, then the first
codes) always keeps room; when space runs out the id column goes first (the number identifies a
trajectory), then the verdict shrinks to a mark, then the template name is cut.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip

from lamsim_tui.record import Listing
from lamsim_tui.ui.queue import Row
from lamsim_tui.ui.text import literal
from lamsim_tui.ui.widgets.detail import QuietScrollView

SEVERITY_MARKS = (("error", "✗"), ("warning", "!"), ("info", "·"))
UNNUMBERED = "…"  # a trajectory the store has not numbered yet (its write is on its way)
PAD = 1  # cells of padding on each side of a column
SHORT_STATUS = {"pending": "pend", "filtered": "filt", "accepted": "acc", "discarded": "disc"}


@dataclass(frozen=True)
class Column:
    label: str
    key: str
    width: int


def severity_counts(listing: Listing) -> dict[str, int]:
    from lamsim_tui.simulator.feedback import CODES

    counts = {"error": 0, "warning": 0, "info": 0}
    for code, n in listing.findings.items():
        spec = CODES.get(code)
        counts[spec.severity if spec else "info"] += n
    return counts


def layout(width: int, *, review_column: bool = False) -> tuple[Column, ...]:
    """The columns for a table `width` cells wide (borders and padding already taken off)."""
    number = Column("#", "number", 5)
    status = Column("status", "status", 9)
    steps = Column("steps", "steps", 5)
    review = Column("review", "review", 16) if review_column else None
    findings_min, template_min, template_max = 18, 12, 30
    ident = Column("id", "id", 8)
    verdict = Column("verdict", "verdict", 7)
    fixed = [number, ident, status, verdict, steps] + ([review] if review else [])

    def room(columns: list[Column]) -> int:
        return width - sum(c.width + 2 * PAD for c in columns) - 4 * PAD  # template and findings: their padding

    # What gives way, in order, while the template and the findings summary lack room.
    def give(old: Column | None, new: Column | None) -> None:
        if old in fixed and room(fixed) < findings_min + template_min:
            if new is None:
                fixed.remove(old)
            else:
                fixed[fixed.index(old)] = new

    give(ident, None)  # the number identifies a trajectory; the detail shows the id
    give(verdict, Column("✓", "verdict", 1))
    give(steps, None)
    give(status, Column("st.", "status", 4))  # pend, filt, acc, disc
    steps = next((c for c in fixed if c.key == "steps"), None)
    left = max(room(fixed), findings_min + 6)
    template_width = max(6, min(template_max, left - findings_min, max(template_min, left // 2)))
    findings_width = max(findings_min, left - template_width)
    columns = [c for c in fixed if c.key in ("number", "id", "status", "verdict")]
    columns.append(Column("template", "template", template_width))
    if steps is not None:
        columns.append(steps)
    if review:
        columns.append(review)
    columns.append(Column("findings", "findings", findings_width))
    return tuple(columns)


class TrajectoryTable(QuietScrollView, can_focus=True):
    """Rows keyed by trajectory id. Cells are `rich.text.Text` (never markup); colours come from the theme."""

    BINDINGS = [
        Binding("down,j", "cursor_down", "Next", show=False),
        Binding("up,k", "cursor_up", "Previous", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
    ]
    COMPONENT_CLASSES = {"table--header", "table--cursor", "table--even"}
    DEFAULT_CSS = """
    TrajectoryTable > .table--header { text-style: bold; color: $text-muted; }
    TrajectoryTable > .table--cursor { background: $panel-lighten-2; }
    TrajectoryTable:focus > .table--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    TrajectoryTable > .table--even { background: $boost; }
    """

    class Highlighted(Message):
        """The cursor moved to another trajectory (or the table emptied: `record_id` None)."""

        def __init__(self, table: TrajectoryTable, record_id: str | None) -> None:
            super().__init__()
            self.table = table
            self.record_id = record_id

        @property
        def control(self) -> TrajectoryTable:
            return self.table

    def __init__(self, *, review_column: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.review_column = review_column
        self.columns_shown: tuple[Column, ...] = ()
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._rows: dict[str, Row] = {}
        self._cursor = 0
        self._strips: dict[tuple, Strip] = {}  # (id, cursor?, focused, width) -> its drawn row
        self._announced: str | None = None
        self._style_key: tuple | None = None
        self._style: dict[str, Style] = {}

    # ----- reading -----------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        """The listed trajectories, top to bottom."""
        return list(self._ids)

    @property
    def rows(self) -> dict[str, Row]:
        """The listed rows by id (in order)."""
        return {record_id: self._rows[record_id] for record_id in self._ids}

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._index

    @property
    def row_count(self) -> int:
        return len(self._ids)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def current_id(self) -> str | None:
        return self._ids[self._cursor] if self._ids else None

    def get_row_index(self, record_id: str) -> int:
        return self._index[record_id]

    def id_at(self, index: int) -> str | None:
        return self._ids[index] if 0 <= index < len(self._ids) else None

    def last_row(self) -> Row | None:
        return self._rows[self._ids[-1]] if self._ids else None

    def cells_of(self, record_id: str) -> list[Text]:
        """What the row shows, cell by cell (tests read the number with `cells_of(id)[0].plain`)."""
        return self.cells(self._rows[record_id])

    # ----- changing ----------------------------------------------------------------------------
    def show_rows(self, rows: Iterable[Row], keep: str | None = None) -> None:
        """Replace every row; keep the cursor on `keep` (an id) when it is still listed."""
        rows = list(rows)
        self._rows = {row.id: row for row in rows}
        self._ids = [row.id for row in rows]
        self._reindex()
        self._strips.clear()
        self._cursor = min(self._cursor, max(len(self._ids) - 1, 0))
        self.focus_row(keep)
        self._changed()

    def add_rows_keyed(self, rows: Iterable[Row]) -> None:
        """Append rows (arrivals join at the end)."""
        for row in rows:
            if row.id in self._index:
                continue
            self._rows[row.id] = row
            self._index[row.id] = len(self._ids)
            self._ids.append(row.id)
        self._changed()

    def remove_row(self, record_id: str) -> None:
        index = self._index.get(record_id)
        if index is None:
            return
        del self._ids[index]
        del self._index[record_id]
        self._rows.pop(record_id, None)
        self._forget(record_id)
        self._reindex(start=index)
        if self._cursor > index:
            self._cursor -= 1  # the same trajectory stays under the cursor
        self._cursor = max(0, min(self._cursor, len(self._ids) - 1))
        self._changed()

    def update_row(self, row: Row) -> None:
        """Redraw one row in place (its number or review changed)."""
        if row.id not in self._index:
            return
        self._rows[row.id] = row
        self._forget(row.id)
        self.refresh()

    def focus_row(self, record_id: str | None) -> None:
        if record_id is not None and record_id in self._index:
            self.move_cursor(row=self._index[record_id])

    def move_cursor(self, *, row: int, animate: bool = False) -> None:
        if not self._ids:
            self._cursor = 0
            self._announce()
            return
        row = max(0, min(row, len(self._ids) - 1))
        if row != self._cursor:
            for index in (self._cursor, row):
                record_id = self.id_at(index)
                if record_id is not None:
                    self._forget(record_id)
            self._cursor = row
        self._scroll_to_cursor()
        self.refresh()
        self._announce()

    def _reindex(self, start: int = 0) -> None:
        if start == 0:
            self._index = {}
        for i in range(start, len(self._ids)):
            self._index[self._ids[i]] = i

    def _forget(self, record_id: str) -> None:
        for key in [k for k in self._strips if k[0] == record_id]:
            del self._strips[key]

    def _changed(self) -> None:
        self.set_content_height(len(self._ids) + 1)
        self._scroll_to_cursor()
        self.refresh()
        self._announce()

    def _announce(self) -> None:
        current = self.current_id
        if current != self._announced:
            self._announced = current
            self.post_message(self.Highlighted(self, current))

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)  # the header takes a line
        top = int(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False)

    # ----- keys and mouse ----------------------------------------------------------------------
    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor - 1)

    def action_page_down(self) -> None:
        self.move_cursor(row=self._cursor + max(1, self.scrollable_content_region.height - 2))

    def action_page_up(self) -> None:
        self.move_cursor(row=self._cursor - max(1, self.scrollable_content_region.height - 2))

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=len(self._ids) - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        self.move_cursor(row=int(self.scroll_y) + offset.y - 1)

    def on_focus(self) -> None:
        self._strips.clear()  # the cursor row is drawn differently with the focus
        self.refresh()

    def on_blur(self) -> None:
        self._strips.clear()
        self.refresh()

    # ----- layout ------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._lay_out(self.scrollable_content_region.width or 100)
        self.app.theme_changed_signal.subscribe(self, lambda theme: self._recolour())

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width and layout(width, review_column=self.review_column) != self.columns_shown:
            self._lay_out(width)
        self._strips.clear()
        self._changed()

    def _lay_out(self, width: int) -> None:
        self.columns_shown = layout(width, review_column=self.review_column)
        self._strips.clear()

    def _recolour(self) -> None:
        self._strips.clear()
        self._style_key = None
        self.refresh()

    # ----- drawing -----------------------------------------------------------------------------
    def _colours(self) -> dict[str, str]:
        variables = self.app.theme_variables
        return {name: variables.get(name, "") for name in (
            "status-pending", "status-filtered", "status-accepted", "status-discarded", "verdict-success",
            "verdict-failure", "severity-error", "severity-warning", "severity-info", "text-muted")}

    def cells(self, row: Row, colours: dict[str, str] | None = None) -> list[Text]:
        c = colours or self._colours()
        listing = row.listing
        out = []
        for column in self.columns_shown:
            key = column.key
            if key == "number":
                out.append(Text(str(listing.number) if listing.number else UNNUMBERED, style=c["text-muted"],
                                justify="right"))
            elif key == "id":
                out.append(Text(listing.id[:8], style=c["text-muted"]))
            elif key == "status":
                word = listing.status if column.width >= 9 else SHORT_STATUS.get(listing.status, listing.status)
                out.append(Text(word, style=c.get(f"status-{listing.status}", "")))
            elif key == "verdict":
                ok = listing.success
                word = ("success" if ok else "failed") if column.width > 1 else ("✓" if ok else "✗")
                out.append(Text(word, style=c["verdict-success"] if ok else c["verdict-failure"]))
            elif key == "template":
                out.append(Text(literal(listing.template)))
            elif key == "steps":
                out.append(Text(str(listing.steps), justify="right"))
            elif key == "review":
                out.append(self.review_cell(listing, c))
            else:
                out.append(self.findings_cell(listing, c))
        return out

    @staticmethod
    def findings_cell(listing: Listing, c: dict[str, str]) -> Text:
        """Counts by severity first (always visible), then the codes, most frequent first."""
        if not listing.findings:
            return Text("—", style=c["text-muted"])
        text = Text()
        counts = severity_counts(listing)
        for severity, mark in SEVERITY_MARKS:
            if counts[severity]:
                text.append(f"{mark}{counts[severity]} ", style=f"bold {c[f'severity-{severity}']}")
        codes = sorted(listing.findings.items(), key=lambda kv: (-kv[1], kv[0]))
        text.append(literal(" ".join(code for code, _ in codes)), style=c["text-muted"])
        return text

    @staticmethod
    def review_cell(listing: Listing, c: dict[str, str]) -> Text:
        parts = []
        if listing.forced_edits:
            parts.append("forced edit")
        elif listing.edited:
            parts.append("edited")
        if listing.decision_tags:
            parts.append(", ".join(listing.decision_tags))
        if listing.decision_note:
            parts.append(f"“{listing.decision_note}”")
        return Text(literal(" · ".join(parts)) if parts else "", style=c["text-muted"])

    def _line(self, cells: list[Text], base: Style) -> list[Segment]:
        segments: list[Segment] = []
        pad = Segment(" " * PAD, base)
        for column, cell in zip(self.columns_shown, cells, strict=True):
            cell = cell.copy()
            cell.truncate(column.width, overflow="ellipsis")
            if cell.justify == "right" and cell.cell_len < column.width:
                cell = Text(" " * (column.width - cell.cell_len)) + cell
            cell.truncate(column.width, pad=True)
            segments.append(pad)
            segments.extend(segment for segment in cell.render(self.app.console) if segment.text != "\n")
            segments.append(pad)
        return segments

    def _styles(self) -> dict[str, Style]:
        """The styles a row is drawn with, looked up once per focus and theme (not per line)."""
        key = (self.has_focus, self.app.theme)
        if self._style_key != key:
            self._style_key = key
            base = self.rich_style
            self._style = {"base": base, **{name: base + self.get_component_rich_style(f"table--{name}")
                                            for name in ("header", "cursor", "even")}}
        return self._style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        styles = self._styles()
        base = styles["base"]
        if y == 0:
            header = styles["header"]
            cells = [Text(column.label, justify="right" if column.key in ("number", "steps") else "left")
                     for column in self.columns_shown]
            return Strip(self._line(cells, header)).apply_style(header).crop_extend(0, width, base)
        index = int(self.scroll_y) + y - 1
        record_id = self.id_at(index)
        if record_id is None:
            return Strip.blank(width, base)
        cursor = index == self._cursor
        key = (record_id, cursor, self.has_focus, width)
        strip = self._strips.get(key)
        if strip is None:
            row = self._rows[record_id]
            style = styles["cursor"] if cursor else styles["even"] if row.number % 2 == 0 else base
            strip = Strip(self._line(self.cells(row), style)).apply_style(style).crop_extend(0, width, style)
            if len(self._strips) > 2000:
                self._strips.clear()
            self._strips[key] = strip
        return strip
