"""One tally of trajectories: what a run's summary and `lamsim stats` both count.

It counts `Listing`s (the summary fields of a record), so the engine, counting the episodes it
has just run, and the statistics of a store, counting what is stored, agree by construction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields

from lamsim_tui.record import STATUSES, Listing


def _rate(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


@dataclass
class Tally:
    episodes: int = 0
    succeeded: int = 0
    passed: int = 0
    statuses: Counter = field(default_factory=Counter)
    findings: Counter = field(default_factory=Counter)
    end_reasons: Counter = field(default_factory=Counter)
    steps: int = 0
    valid_steps: int = 0  # steps with an action that no format/tool/argument check refused
    tokens: Counter = field(default_factory=Counter)  # prompt, completion, cached tokens
    edited: int = 0
    forced: int = 0
    accepted_tokens: int = 0
    accepted_wall_s: float = 0.0
    engine_s: float = 0.0
    model_s: float = 0.0
    with_demonstrations: int = 0  # episodes whose agent was shown demonstrations

    def add(self, item: Listing) -> None:
        self.episodes += 1
        self.succeeded += item.success
        self.passed += item.passed
        self.statuses[item.status] += 1
        self.findings.update(item.findings)
        self.end_reasons[item.end_reason] += 1
        self.steps += item.steps
        self.valid_steps += item.valid_steps
        self.tokens.update(item.usage)
        self.edited += item.edited
        self.forced += item.forced_edits
        if item.status == "accepted":
            self.accepted_tokens += item.tokens
            self.accepted_wall_s += item.wall_s
        self.engine_s += item.engine_s
        self.model_s += item.model_s
        self.with_demonstrations += item.demonstrations > 0

    def merge(self, other: Tally) -> None:
        """Add another tally's counts (a store's overall figures are the sum of its templates')."""
        for f in fields(Tally):
            mine = getattr(self, f.name)
            if isinstance(mine, Counter):
                mine.update(getattr(other, f.name))
            else:
                setattr(self, f.name, mine + getattr(other, f.name))

    def store_figures(self) -> dict:
        """The figures `lamsim stats` shows for a store (or one template of it)."""
        n = self.episodes
        accepted, discarded = self.statuses["accepted"], self.statuses["discarded"]
        reviewed = accepted + discarded
        return {
            "episodes": n,
            "statuses": {s: self.statuses[s] for s in STATUSES},
            "success_rate": _rate(self.succeeded, n),
            "filter_pass_rate": _rate(self.passed, n),
            "reviewed": reviewed,
            "acceptance_rate": _rate(accepted, reviewed),
            "edits": self.edited,
            "forced_edits": self.forced,
            "findings": dict(sorted(self.findings.items())),
            "mean_steps": round(self.steps / n, 3) if n else None,
            "tokens_per_accepted": round(self.accepted_tokens / accepted, 1) if accepted else None,
            "wall_s_per_accepted": round(self.accepted_wall_s / accepted, 3) if accepted else None,
            "with_demonstrations": self.with_demonstrations,
        }


@dataclass
class RunSummary(Tally):
    """A run's tally, with what only the run knows (tasks made, templates skipped, how it ended)."""

    tasks: int = 0
    wall_s: float = 0.0
    skipped_templates: dict = field(default_factory=dict)
    cancelled: bool = False
    paused_reason: str | None = None
    tool_bugs: dict = field(default_factory=dict)  # tool -> the first line of its first crash in the run

    @property
    def kept(self) -> int:
        return self.passed

    @property
    def filtered(self) -> int:
        return self.episodes - self.passed

    def to_dict(self) -> dict:
        n = max(self.episodes, 1)
        return {
            "episodes": self.episodes,
            "tasks": self.tasks,
            "success_rate": round(self.succeeded / n, 4),
            "filter_pass_rate": round(self.kept / n, 4),
            "kept": self.kept,
            "filtered": self.filtered,
            "findings": dict(sorted(self.findings.items())),
            "mean_steps": round(self.steps / n, 3),
            "valid_action_rate": round(self.valid_steps / max(self.steps, 1), 4),
            "with_demonstrations": self.with_demonstrations,
            "end_reasons": dict(self.end_reasons),
            "tokens": dict(self.tokens),
            "wall_s": round(self.wall_s, 3),
            "engine_s": round(self.engine_s, 4),
            "model_s": round(self.model_s, 3),
            "skipped_templates": self.skipped_templates,
            "cancelled": self.cancelled,
            "paused_reason": self.paused_reason,
            **({"tool_bugs": dict(self.tool_bugs)} if self.tool_bugs else {}),
        }
