"""Statistics of a store, per template and overall (`lamsim stats`), and split by whether the
agent was shown demonstrations (the session's `demonstrations` setting)."""

from __future__ import annotations

from lamsim_tui.simulator.tally import Tally
from lamsim_tui.store import Store
from lamsim_tui.text import plain


def compute(store: Store) -> dict:
    overall = Tally()
    per: dict[str, Tally] = {}
    shown = {"with": Tally(), "without": Tally()}
    cells: dict[tuple[str, str], Tally] = {}
    for item in store.listings():
        # One tally per (template, shown demonstrations or not), each trajectory counted once; the
        # figures per template, per side and overall are sums of these (not setdefault: that would
        # build a Tally for every trajectory).
        key = (item.template, "with" if item.demonstrations else "without")
        tally = cells.get(key)
        if tally is None:
            tally = cells[key] = Tally()
        tally.add(item)
    for (template, side), tally in cells.items():
        if template not in per:
            per[template] = Tally()
        per[template].merge(tally)
        shown[side].merge(tally)
        overall.merge(tally)
    return {
        "store": str(store.path),
        "overall": overall.store_figures(),
        "templates": {name: per[name].store_figures() for name in sorted(per)},
        "demonstrations": {key: tally.store_figures() for key, tally in shown.items()},
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def format_table(stats: dict) -> str:
    header = [
        "template",
        "episodes",
        "success",
        "passed",
        "pending",
        "filtered",
        "accepted",
        "discarded",
        "accept%",
        "edits",
        "forced",
        "steps",
        "tok/acc",
        "s/acc",
    ]
    rows = []
    split = stats.get("demonstrations") or {}
    extra = []
    if split and split["with"]["episodes"]:
        extra = [("(with demonstrations)", split["with"]), ("(without demonstrations)", split["without"])]
    for name, s in [*stats["templates"].items(), ("(all)", stats["overall"]), *extra]:
        st = s["statuses"]
        rows.append(
            [
                plain(name, 60),  # a template id comes from a pack: never raw to a terminal
                str(s["episodes"]),
                _pct(s["success_rate"]),
                _pct(s["filter_pass_rate"]),
                str(st["pending"]),
                str(st["filtered"]),
                str(st["accepted"]),
                str(st["discarded"]),
                _pct(s["acceptance_rate"]),
                str(s["edits"]),
                str(s["forced_edits"]),
                _num(s["mean_steps"]),
                _num(s["tokens_per_accepted"], 0),
                _num(s["wall_s_per_accepted"]),
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True)))
    ]
    for row in rows:
        lines.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
    findings = stats["overall"]["findings"]
    if findings:
        lines.append("")
        lines.append(
            "findings: " + ", ".join(f"{code} {n}" for code, n in sorted(findings.items(), key=lambda x: -x[1]))
        )
    return "\n".join(lines)
