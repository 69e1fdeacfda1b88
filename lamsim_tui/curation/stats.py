"""Statistics of a store, per template and overall (`lamsim stats`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from lamsim_tui.record import STATUSES, Listing
from lamsim_tui.store import Store


@dataclass
class _Tally:
    episodes: int = 0
    succeeded: int = 0
    passed: int = 0
    statuses: Counter = field(default_factory=Counter)
    edited: int = 0
    forced: int = 0
    findings: Counter = field(default_factory=Counter)
    steps: int = 0
    accepted_tokens: int = 0
    accepted_wall_s: float = 0.0

    def add(self, item: Listing) -> None:
        self.episodes += 1
        self.succeeded += item.success
        self.passed += item.passed
        self.statuses[item.status] += 1
        self.edited += item.edited
        self.forced += item.forced_edits
        self.findings.update(item.findings)
        self.steps += item.steps
        if item.status == "accepted":
            self.accepted_tokens += item.tokens
            self.accepted_wall_s += item.wall_s

    def to_dict(self) -> dict:
        n = self.episodes
        accepted, discarded = self.statuses["accepted"], self.statuses["discarded"]
        reviewed = accepted + discarded

        def rate(a: int, b: int) -> float | None:
            return round(a / b, 4) if b else None

        return {
            "episodes": n,
            "statuses": {s: self.statuses[s] for s in STATUSES},
            "success_rate": rate(self.succeeded, n),
            "filter_pass_rate": rate(self.passed, n),
            "reviewed": reviewed,
            "acceptance_rate": rate(accepted, reviewed),
            "edits": self.edited,
            "forced_edits": self.forced,
            "findings": dict(sorted(self.findings.items())),
            "mean_steps": round(self.steps / n, 3) if n else None,
            "tokens_per_accepted": round(self.accepted_tokens / accepted, 1) if accepted else None,
            "wall_s_per_accepted": round(self.accepted_wall_s / accepted, 3) if accepted else None,
        }


def compute(store: Store) -> dict:
    overall = _Tally()
    per: dict[str, _Tally] = {}
    for item in store.listings():
        overall.add(item)
        per.setdefault(item.template, _Tally()).add(item)
    return {
        "store": str(store.path),
        "overall": overall.to_dict(),
        "templates": {name: per[name].to_dict() for name in sorted(per)},
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
    for name, s in [*stats["templates"].items(), ("(all)", stats["overall"])]:
        st = s["statuses"]
        rows.append(
            [
                name,
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
