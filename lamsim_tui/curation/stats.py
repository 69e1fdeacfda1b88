"""Statistics of a store, per template and overall (`lamsim stats`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from lamsim_tui.store import STATUSES, Store


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

    def add(self, doc: dict) -> None:
        verdict = doc.get("verdict") or {}
        steps = doc.get("steps") or []
        self.episodes += 1
        self.succeeded += bool(verdict.get("success"))
        self.passed += bool(verdict.get("passed"))
        self.statuses[doc.get("status")] += 1
        review = doc.get("review") or {}
        live = [e for e in review.get("history", []) if e.get("action") == "edit" and not e.get("undone_by")]
        self.edited += bool(live)
        self.forced += sum(1 for e in live if e.get("forced"))
        findings = verdict.get("findings")
        if not isinstance(findings, dict):
            findings = Counter(f["code"] for s in steps for f in s.get("feedback") or [])
        self.findings.update(findings)
        self.steps += verdict.get("steps_used") or len(steps)
        if doc.get("status") == "accepted":
            for step in steps:
                usage = step.get("usage") or {}
                total = usage.get("total_tokens")
                if not isinstance(total, (int, float)):
                    total = sum(
                        v
                        for k, v in usage.items()
                        if k in ("prompt_tokens", "completion_tokens") and isinstance(v, (int, float))
                    )
                self.accepted_tokens += int(total)
            self.accepted_wall_s += float((doc.get("timing") or {}).get("wall_s") or 0.0)

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
    for doc in store.peek():
        template = (doc.get("task") or {}).get("template") or "?"
        overall.add(doc)
        per.setdefault(template, _Tally()).add(doc)
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
