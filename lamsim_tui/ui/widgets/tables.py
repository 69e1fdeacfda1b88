"""The trajectory table shared by the review queue and the store browser.

Its columns fit the table's width: the findings summary (counts by severity, then the first
codes) always keeps room; when space runs out the id column goes first (the number identifies a
trajectory), then the verdict shrinks to a mark, then the template name is cut.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widgets import DataTable

from lamsim_tui.record import Listing
from lamsim_tui.ui.queue import Row
from lamsim_tui.ui.text import literal

SEVERITY_MARKS = (("error", "✗"), ("warning", "!"), ("info", "·"))
UNNUMBERED = "…"  # a trajectory the store has not numbered yet (its write is on its way)


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
    # Each column costs its width plus 2 cells of padding.
    number = Column("#", "number", 5)
    status = Column("status", "status", 9)
    steps = Column("steps", "steps", 5)
    review = Column("review", "review", 16) if review_column else None
    findings_min, template_min, template_max = 18, 12, 30
    ident = Column("id", "id", 8)
    verdict = Column("verdict", "verdict", 7)
    fixed = [number, ident, status, verdict, steps] + ([review] if review else [])

    def room(columns: list[Column]) -> int:
        return width - sum(c.width + 2 for c in columns) - 4  # template and findings: padding of both

    if room(fixed) < findings_min + template_min:
        fixed.remove(ident)
    if room(fixed) < findings_min + template_min:
        verdict = Column("✓", "verdict", 1)
        fixed = [verdict if c.key == "verdict" else c for c in fixed]
    left = max(room(fixed), findings_min + 6)
    template_width = max(6, min(template_max, left - findings_min, max(template_min, left // 2)))
    findings_width = max(findings_min, left - template_width)
    columns = [c for c in fixed if c.key in ("number", "id", "status", "verdict")]
    columns.append(Column("template", "template", template_width))
    columns.append(steps)
    if review:
        columns.append(review)
    columns.append(Column("findings", "findings", findings_width))
    return tuple(columns)


class TrajectoryTable(DataTable):
    """Rows keyed by trajectory id. Cells are `rich.text.Text` (never markup); colours come from the theme."""

    BINDINGS = [
        Binding("j", "cursor_down", "Next", show=False),
        Binding("k", "cursor_up", "Previous", show=False),
    ]

    def __init__(self, *, review_column: bool = False, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.review_column = review_column
        self.columns_shown: tuple[Column, ...] = ()
        self._shown: dict[str, Row] = {}

    def on_mount(self) -> None:
        self._lay_out(self.content_size.width or 100)
        self.app.theme_changed_signal.subscribe(self, lambda theme: self._recolour())

    def on_resize(self, event: events.Resize) -> None:
        width = self.content_size.width
        if width and layout(width, review_column=self.review_column) != self.columns_shown:
            rows = [self._shown[key.value] for key in self.rows if key.value in self._shown]
            keep = self.current_id
            self._lay_out(width)
            self.show_rows(rows, keep=keep)

    def _lay_out(self, width: int) -> None:
        self.columns_shown = layout(width, review_column=self.review_column)
        self.clear(columns=True)
        for column in self.columns_shown:
            self.add_column(column.label, key=column.key, width=column.width)

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
                out.append(Text(listing.status, style=c.get(f"status-{listing.status}", "")))
            elif key == "verdict":
                ok = listing.success
                word = ("success" if ok else "failed") if column.width > 1 else ("✓" if ok else "✗")
                out.append(Text(word, style=c["verdict-success"] if ok else c["verdict-failure"]))
            elif key == "template":
                out.append(Text(literal(listing.template), no_wrap=True, overflow="ellipsis"))
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
        text = Text(no_wrap=True, overflow="ellipsis")
        for severity, mark in SEVERITY_MARKS:
            n = severity_counts(listing)[severity]
            if n:
                text.append(f"{mark}{n} ", style=f"bold {c[f'severity-{severity}']}")
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
        return Text(literal(" · ".join(parts)) if parts else "", style=c["text-muted"], no_wrap=True,
                    overflow="ellipsis")

    def show_rows(self, rows: Iterable[Row], keep: str | None = None) -> None:
        """Replace every row; keep the cursor on `keep` (an id) when it is still listed."""
        colours = self._colours()
        self.clear()
        self._shown = {}
        self.add_rows_keyed(list(rows), colours)
        self.focus_row(keep)

    def add_rows_keyed(self, rows: Iterable[Row], colours: dict[str, str] | None = None) -> None:
        colours = colours or self._colours()
        for row in rows:
            self._shown[row.id] = row
            self.add_row(*self.cells(row, colours), key=row.id)

    def update_row(self, row: Row) -> None:
        """Redraw one row in place (its number or review changed)."""
        if row.id not in self.rows:
            return
        self._shown[row.id] = row
        for column, cell in zip(self.columns_shown, self.cells(row), strict=True):
            self.update_cell(row.id, column.key, cell)

    def remove_row(self, row_key) -> None:
        self._shown.pop(getattr(row_key, "value", row_key), None)
        super().remove_row(row_key)

    def last_row(self) -> Row | None:
        if not self.row_count:
            return None
        return self._shown.get(self.coordinate_to_cell_key((self.row_count - 1, 0))[0].value)

    def focus_row(self, record_id: str | None) -> None:
        if record_id is not None and record_id in self.rows:
            self.move_cursor(row=self.get_row_index(record_id), animate=False)

    @property
    def current_id(self) -> str | None:
        if not self.row_count:
            return None
        try:
            key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:
            return None
        return key.value

    def _recolour(self) -> None:
        rows = getattr(self.screen, "listed_rows", None)
        if callable(rows):
            self.show_rows(rows(), keep=self.current_id)
