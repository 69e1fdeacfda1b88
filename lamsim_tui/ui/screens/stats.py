"""Statistics of the store (`lamsim_tui.curation.stats.compute`, as `lamsim stats`): rates, findings by
code as a bar chart, and a row per template."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from lamsim_tui.ui.render import Doc
from lamsim_tui.ui.text import code_style, literal
from lamsim_tui.ui.widgets.barchart import bar_chart


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


TEMPLATE_COLUMNS = ("template", "episodes", "success", "passed", "pending", "filtered", "accepted", "discarded",
                    "accept %", "edits", "steps")


class StatsScreen(Screen):
    BINDINGS = [Binding("r", "refresh_stats", "Refresh", id="stats.refresh")]

    def __init__(self) -> None:
        super().__init__()
        self.stats: dict | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        with Vertical(id="stats-body"):
            with Horizontal(id="stats-top"):
                yield Static(id="stats-overall", classes="panel")
                with VerticalScroll(id="stats-findings", classes="panel"):
                    yield Static(id="stats-chart")
            yield DataTable(id="stats-templates", classes="panel", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#stats-overall").border_title = "Overall"
        self.query_one("#stats-findings").border_title = "Findings by code"
        table = self.query_one("#stats-templates", DataTable)
        table.border_title = "Per template"
        for name in TEMPLATE_COLUMNS:
            table.add_column(name, key=name)
        self.app.queue_changed.subscribe(self, lambda change: self._stale())
        self.action_refresh_stats()

    def _stale(self) -> None:
        self._is_stale = True

    def on_screen_resume(self) -> None:
        if getattr(self, "_is_stale", False):
            self.action_refresh_stats()

    def action_refresh_stats(self) -> None:
        self._is_stale = False
        if self.app.store is None:
            self.query_one("#stats-overall", Static).update(
                Content.styled(self.app.store_problem or "the store is opening…", "$text-muted"))
            return
        self.compute()

    @work(thread=True, group="stats", exclusive=True, exit_on_error=False, name="statistics")
    def compute(self) -> None:
        from lamsim_tui.curation.stats import compute

        stats = compute(self.app.store)
        self.app.call_from_thread(self._show, stats)

    def _show(self, stats: dict) -> None:
        self.stats = stats
        overall = stats["overall"]
        doc = Doc()
        statuses = overall["statuses"]
        doc.label("episodes", 16).line(f"{overall['episodes']:,}", "bold")
        doc.label("success rate", 16).line(_pct(overall["success_rate"]), "bold $verdict-success")
        doc.label("filter pass", 16).line(_pct(overall["filter_pass_rate"]))
        doc.label("reviewed", 16).line(f"{overall['reviewed']:,}")
        doc.label("acceptance", 16).line(_pct(overall["acceptance_rate"]), "bold $status-accepted")
        doc.label("edits", 16).line(f"{overall['edits']} ({overall['forced_edits']} forced)")
        mean = overall.get("mean_steps")
        doc.label("mean steps", 16).line("—" if mean is None else f"{mean:.2f}")
        tokens = overall.get("tokens_per_accepted")
        if tokens:
            doc.label("tokens/accepted", 16).line(f"{tokens:,.0f}")
        doc.line()
        for status in ("pending", "filtered", "accepted", "discarded"):
            doc.label(status, 16).line(f"{statuses.get(status, 0):,}", f"$status-{status}")
        self.query_one("#stats-overall", Static).update(doc.content())

        findings = sorted(overall["findings"].items(), key=lambda kv: (-kv[1], kv[0]))
        self.query_one("#stats-chart", Static).update(bar_chart(findings, width=36, style_of=code_style))

        table = self.query_one("#stats-templates", DataTable)
        table.clear()
        for name, s in stats["templates"].items():
            st = s["statuses"]
            table.add_row(Text(literal(name)), *(Text(v, justify="right") for v in (
                str(s["episodes"]), _pct(s["success_rate"]), _pct(s["filter_pass_rate"]), str(st["pending"]),
                str(st["filtered"]), str(st["accepted"]), str(st["discarded"]), _pct(s["acceptance_rate"]),
                str(s["edits"]), "—" if s["mean_steps"] is None else f"{s['mean_steps']:.1f}")), key=name)
