"""The trajectory table shared by the review queue and the store browser."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from lamsim_tui.ui.queue import Row
from lamsim_tui.ui.text import literal

COLUMNS = (("#", "seq", 4), ("id", "id", 8), ("status", "status", 9), ("verdict", "verdict", 7),
           ("template", "template", None), ("steps", "steps", 5), ("findings", "findings", 30))


class TrajectoryTable(DataTable):
    """Rows keyed by trajectory id. Cells are `rich.text.Text` (never markup); colours come from the theme."""

    BINDINGS = [
        Binding("j", "cursor_down", "Next", show=False),
        Binding("k", "cursor_up", "Previous", show=False),
    ]

    def __init__(self, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)

    def on_mount(self) -> None:
        for label, key, width in COLUMNS:
            self.add_column(label, key=key, width=width)
        self.app.theme_changed_signal.subscribe(self, lambda theme: self._recolour())

    def _colours(self) -> dict[str, str]:
        variables = self.app.theme_variables
        return {name: variables.get(name, "") for name in (
            "status-pending", "status-filtered", "status-accepted", "status-discarded", "verdict-success",
            "verdict-failure", "severity-error", "text-muted")}

    def cells(self, row: Row, colours: dict[str, str] | None = None) -> list[Text]:
        c = colours or self._colours()
        listing = row.listing
        findings = " ".join(f"{code}×{n}" if n > 1 else code
                            for code, n in sorted(listing.findings.items(), key=lambda kv: (-kv[1], kv[0])))
        return [
            Text(str(row.seq + 1), style=c["text-muted"], justify="right"),
            Text(listing.id[:8], style=c["text-muted"]),
            Text(listing.status, style=c.get(f"status-{listing.status}", "")),
            Text("success", style=c["verdict-success"]) if listing.success else Text("failed", style=c["verdict-failure"]),
            Text(literal(listing.template), no_wrap=True, overflow="ellipsis"),
            Text(str(listing.steps), justify="right"),
            Text(literal(findings), style=c["severity-error"] if findings else "", no_wrap=True, overflow="ellipsis"),
        ]

    def show_rows(self, rows: Iterable[Row], keep: str | None = None) -> None:
        """Replace every row; keep the cursor on `keep` (an id) when it is still listed."""
        colours = self._colours()
        self.clear()
        rows = list(rows)
        self.add_rows_keyed(rows, colours)
        self.focus_row(keep)

    def add_rows_keyed(self, rows: Iterable[Row], colours: dict[str, str] | None = None) -> None:
        colours = colours or self._colours()
        for row in rows:
            self.add_row(*self.cells(row, colours), key=row.id)

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
