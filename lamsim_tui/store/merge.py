"""Merge stores written on several machines into one: `lamsim store merge DEST SRC...`.

Trajectories join by id (an episode's id is random: two stores share an id only when they hold copies
of one episode). Review decisions and their audit trail come along. Decision numbers (`seq`) count
decisions across one store, so the merged decisions are numbered again after DEST's own, in the
order they were made in their source; within a trajectory's history, `undoes` and `undone_by` follow.

When a trajectory is in DEST already, the two copies' decisions are compared (what, when, who, note,
tags, from and to; not the numbers):

- the same decisions: nothing to do (merging twice changes nothing);
- DEST's decisions are the first of the source's: the source went on reviewing it, DEST takes the
  further decisions;
- the source's decisions are the first of DEST's: DEST went on, it stays;
- anything else (the copies were reviewed differently): a **conflict**, reported with both sides'
  decisions and not resolved: DEST keeps its copy. Settle it by reviewing the trajectory in DEST.

A merge writes in batches (one durable line per few hundred trajectories); one cut short (Ctrl+C, a
crash) leaves DEST with part of it, and merging again completes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lamsim_tui.errors import StoreError
from lamsim_tui.record import Review, ReviewEntry, Trajectory
from lamsim_tui.store.store import Store, open_store
from lamsim_tui.text import plain

BATCH = 300  # trajectories per durable write


@dataclass(frozen=True)
class Conflict:
    """One trajectory the two stores reviewed differently."""

    id: str
    template: str
    dest: tuple[ReviewEntry, ...]
    source: tuple[ReviewEntry, ...]
    why: str

    def describe(self) -> str:
        def side(history: tuple[ReviewEntry, ...]) -> str:
            if not history:
                return "no decision"
            return "; ".join(f"{e.action} by {plain(e.user, 40)} at {plain(e.at, 40)}"
                             + (f" ({plain(e.note, 120)})" if e.note else "") for e in history)

        return (f"{self.id[:10]} ({plain(self.template, 40)}): {self.why}\n    here:   {side(self.dest)}\n"
                f"    source: {side(self.source)}")


@dataclass
class MergeReport:
    """What merging one source did."""

    source: Path
    trajectories: int = 0
    added: int = 0
    same: int = 0
    updated: int = 0  # DEST took the further decisions the source made
    kept: int = 0  # DEST had made further decisions itself
    decisions: int = 0  # decisions that came along with added or updated trajectories
    conflicts: list[Conflict] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.added:,} added", f"{self.same:,} already here"]
        if self.updated:
            parts.append(f"{self.updated:,} with further decisions taken")
        if self.kept:
            parts.append(f"{self.kept:,} where this store had further decisions (kept)")
        parts.append(f"{self.decisions:,} review decision(s) brought in")
        parts.append(f"{len(self.conflicts):,} conflict(s)")
        return f"{self.source}: {self.trajectories:,} trajectories: " + ", ".join(parts)


def _decision(entry: ReviewEntry) -> tuple:
    """A decision as the same in both stores: everything but its numbers (and `undone_by`, which a later
    undo sets on an earlier entry)."""
    return (entry.action, entry.at, entry.user, entry.note, tuple(entry.tags), entry.from_status, entry.to_status,
            entry.forced)


def _body(record: Trajectory) -> dict:
    """The record without its review (what review decisions change is compared through them)."""
    data = record.to_dict()
    data.pop("review", None)
    return data


def _renumbered(history: tuple[ReviewEntry, ...], numbers: list[int]) -> tuple[ReviewEntry, ...]:
    """The history with entry i numbered `numbers[i]`; `undoes` / `undone_by` follow (they name entries
    of the same trajectory)."""
    by_old = {entry.seq: new for entry, new in zip(history, numbers, strict=True)}
    return tuple(dataclasses.replace(entry, seq=new,
                                     undoes=None if entry.undoes is None else by_old.get(entry.undoes, entry.undoes),
                                     undone_by=None if entry.undone_by is None
                                     else by_old.get(entry.undone_by, entry.undone_by))
                 for entry, new in zip(history, numbers, strict=True))


@dataclass
class _Plan:
    """What to do with one source trajectory: add it, or take its further decisions."""

    record_id: str
    kind: str  # "add" | "update"
    keep: int  # the first `keep` entries of its history are DEST's (they keep DEST's numbers)
    dest_numbers: list[int]


def _classify(dest: Store, record: Trajectory, report: MergeReport) -> _Plan | None:
    if record.id not in dest:
        return _Plan(record.id, "add", 0, [])
    here = dest.get(record.id)
    mine, theirs = here.history, record.history
    same_prefix = all(_decision(a) == _decision(b) for a, b in zip(mine, theirs, strict=False))
    if same_prefix and len(mine) == len(theirs):
        if _body(here) == _body(record):
            report.same += 1
            return None
        why = "the same decisions, but the trajectories differ"
    elif same_prefix and len(mine) < len(theirs):
        return _Plan(record.id, "update", len(mine), [e.seq for e in mine])
    elif same_prefix:
        report.kept += 1
        return None
    else:
        why = "reviewed differently in the two stores"
    report.conflicts.append(Conflict(record.id, record.template, mine, theirs, why))
    return None


def merge_one(dest: Store, source: Path, *, progress: Callable[[int, int], None] | None = None) -> MergeReport:
    """Merge the store at `source` into `dest` (open for writing). The source is only read."""
    report = MergeReport(source=source)
    with open_store(source, readonly=True) as src:
        listings = src.listings()
        report.trajectories = len(listings)
        # First pass: what each trajectory needs, and the source numbers of the decisions that come along.
        plans: dict[str, _Plan] = {}
        incoming: list[tuple[int, str, int]] = []  # (source seq, id, position in its history)
        for done, record in enumerate(src.records(), 1):
            plan = _classify(dest, record, report)
            if plan is not None:
                plans[record.id] = plan
                incoming.extend((e.seq, record.id, i) for i, e in enumerate(record.history) if i >= plan.keep)
            if progress is not None and done % 1000 == 0:
                progress(done, 2 * len(listings))
        # New numbers: after DEST's, in the order the decisions were made in the source.
        next_seq = max((item.last_seq for item in dest.listings()), default=0)
        numbers: dict[tuple[str, int], int] = {}
        for _seq, record_id, position in sorted(incoming):
            next_seq += 1
            numbers[(record_id, position)] = next_seq
        report.decisions = len(incoming)
        # Second pass: write, a batch at a time.
        keys = [item.number for item in listings if item.id in plans]
        for start in range(0, len(keys), BATCH):
            with dest.batch():
                for record in src.records(keys=keys[start:start + BATCH]):
                    plan = plans[record.id]
                    history = record.history
                    new = [plan.dest_numbers[i] if i < plan.keep else numbers[(record.id, i)]
                           for i in range(len(history))]
                    review = (dataclasses.replace(record.review or Review(), history=_renumbered(history, new))
                              if history else record.review)
                    merged = record.replace(review=review)
                    if plan.kind == "add":
                        dest.add(merged)
                        report.added += 1
                    else:
                        fields = merged.to_dict()
                        stale = [name for name in dest.get(record.id).to_dict() if name not in fields]
                        fields.pop("id")
                        dest.update(record.id, fields, remove=stale)
                        report.updated += 1
            if progress is not None:
                progress(len(listings) + min(start + BATCH, len(keys)), len(listings) + len(keys))
    return report


def merge(dest_path: str | Path, sources: Iterable[str | Path], *,
          progress: Callable[[Path, int, int], None] | None = None) -> list[MergeReport]:
    """Merge every source store into the store at `dest_path` (created when it does not exist)."""
    dest_path = Path(dest_path)
    sources = [Path(s) for s in sources]
    for source in sources:
        if source.resolve() == dest_path.resolve():
            raise StoreError("a store cannot be merged into itself", where=str(source),
                             hint="give DEST and each SRC as different folders")
        if not source.is_dir():
            raise StoreError("no store here (the folder does not exist)", where=str(source))
    reports = []
    with open_store(dest_path) as dest:
        for source in sources:
            step = None if progress is None else (lambda done, total, s=source: progress(s, done, total))
            reports.append(merge_one(dest, source, progress=step))
    return reports
