"""`lamsim store merge DEST SRC...`: stores from several machines join by trajectory id, with their
review decisions; a trajectory reviewed differently is reported, not resolved; merging twice changes
nothing; the merged store exports what its parts export, in the deterministic order."""

from __future__ import annotations

import subprocess
import sys

import pytest
from packkit import ROOT
from storekit import copy_store, engine_store

from lamsim_tui.curation import review
from lamsim_tui.curation.export import export, order_key
from lamsim_tui.errors import StoreError
from lamsim_tui.store import STATUSES, open_store
from lamsim_tui.store.merge import merge
from lamsim_tui.store.storage import journal_name

MACHINE_B = """\
pack: mini
seed: 23
tasks: 20
attempts: 1
agent:
  kind: scripted
  mistake_rate: 0.5
"""


@pytest.fixture(scope="module")
def machines(tmp_path_factory):
    """Two stores made by real headless runs (two machines, two seeds), each with review decisions."""
    a = engine_store(tmp_path_factory.mktemp("a"))
    b = engine_store(tmp_path_factory.mktemp("b"), MACHINE_B)
    for path, picks in ((a, (0, 1, 2)), (b, (0, 3))):
        with open_store(path) as store:
            ids = [item.id for item in store.listings()]
            review.accept(store, ids[picks[0]], note="good run", tags="clean", user="alice")
            review.discard(store, ids[picks[1]], reason="wrong", user="bob")
            review.accept(store, ids[picks[-1]], user="alice")
            review.undo(store, user="alice")  # the last accept is undone: that stays in the trail too
    return a, b


def decisions(store) -> dict[str, list[tuple]]:
    """Each trajectory's decisions as a reviewer reads them (numbers left out: a merge renumbers)."""
    out = {}
    for record in store.records():
        out[record.id] = [(e.action, e.user, e.note, e.tags, e.from_status, e.to_status, e.undone_by is not None)
                          for e in record.history]
    return out


def test_merge_joins_trajectories_and_keeps_every_decision_and_its_trail(machines, tmp_path):
    a, b = machines
    reports = merge(tmp_path / "all", [a, b])
    with open_store(a, readonly=True) as sa, open_store(b, readonly=True) as sb:
        expected = {**decisions(sa), **decisions(sb)}
        statuses = {item.id: item.status for s in (sa, sb) for item in s.listings()}
    with open_store(tmp_path / "all", readonly=True) as merged:
        assert decisions(merged) == expected
        assert {item.id: item.status for item in merged.listings()} == statuses
        trail = review.history(merged)
    assert [r.added for r in reports] == [len(decisions_of(a)), len(decisions_of(b))]
    assert all(not r.conflicts for r in reports)
    # Decision numbers are the merged store's own: unique, and an undo names the decision it undid.
    seqs = [entry.seq for _id, entry in trail]
    assert seqs == sorted(set(seqs)) and len(seqs) == 8
    undos = [entry for _id, entry in trail if entry.action == "undo"]
    undone = {entry.seq: entry for _id, entry in trail if entry.undone_by is not None}
    assert len(undos) == 2 and all(undone[u.undoes].undone_by == u.seq for u in undos)


def decisions_of(path) -> dict:
    with open_store(path, readonly=True) as store:
        return {item.id: item for item in store.listings()}


def test_merging_twice_changes_nothing(machines, tmp_path):
    a, b = machines
    dest = tmp_path / "all"
    merge(dest, [a, b])
    with open_store(dest, readonly=True) as store:
        before = [r.to_dict() for r in store.records()]
        generation = store._storage.generation
    journal = dest / journal_name(generation)
    size = journal.stat().st_size
    again = merge(dest, [a, b])
    assert [(r.added, r.updated, len(r.conflicts)) for r in again] == [(0, 0, 0), (0, 0, 0)]
    assert [r.same for r in again] == [r.trajectories for r in again]
    assert journal.stat().st_size == size  # not one line written
    with open_store(dest, readonly=True) as store:
        assert [r.to_dict() for r in store.records()] == before


def test_the_same_trajectory_reviewed_differently_is_reported_not_resolved(machines, tmp_path):
    a, _b = machines
    left, right = copy_store(a, tmp_path / "left"), copy_store(a, tmp_path / "right")
    with open_store(left) as store:
        pending = [item.id for item in store.listings("pending")]
        review.accept(store, pending[0], note="looks right", user="alice")
    with open_store(right) as store:
        review.discard(store, pending[0], reason="hallucinated", user="bob")
    reports = merge(tmp_path / "all", [left, right])
    assert reports[1].conflicts and [c.id for c in reports[1].conflicts] == [pending[0]]
    conflict = reports[1].conflicts[0]
    assert [e.action for e in conflict.dest][-1] == "accept" and [e.action for e in conflict.source][-1] == "discard"
    assert "alice" in conflict.describe() and "bob" in conflict.describe()
    with open_store(tmp_path / "all", readonly=True) as store:
        assert store.get(pending[0]).status == "accepted"  # DEST keeps its copy, untouched by the other


def test_further_decisions_made_in_a_source_are_taken_on_the_next_merge(machines, tmp_path):
    a, _b = machines
    source = copy_store(a, tmp_path / "src")
    dest = tmp_path / "all"
    merge(dest, [source])
    with open_store(source) as store:
        target = store.listings("pending")[0].id
        review.accept(store, target, note="second look", user="carol")
    reports = merge(dest, [source])
    assert reports[0].updated == 1 and not reports[0].conflicts
    with open_store(dest) as store:
        record = store.get(target)
        assert record.status == "accepted" and record.history[-1].note == "second look"
        # ...and it is the newest decision there: undo reverts it first.
        undone_record, entry = review.undo(store)
        assert undone_record.id == target and entry.note == "second look"


def test_exports_of_the_merged_store_are_the_parts_exports_in_the_deterministic_order(machines, tmp_path):
    a, b = machines
    dest = tmp_path / "all"
    merge(dest, [a, b])
    parts_lines: dict[str, str] = {}
    keys = {}
    for name, path in (("a", a), ("b", b)):
        with open_store(path, readonly=True) as store:
            meta = export(store, tmp_path / f"{name}.jsonl", fmt="chat", status=STATUSES)
            keys.update({r.id: order_key(r) for r in store.records()})
        lines = (tmp_path / f"{name}.jsonl").read_text().splitlines()
        parts_lines.update(zip(meta["ids"]["all"], lines, strict=True))
    with open_store(dest, readonly=True) as store:
        meta = export(store, tmp_path / "all.jsonl", fmt="chat", status=STATUSES)
    merged_lines = (tmp_path / "all.jsonl").read_text().splitlines()
    in_order = sorted(parts_lines, key=keys.__getitem__)
    assert meta["ids"]["all"] == in_order
    assert merged_lines == [parts_lines[i] for i in in_order]
    assert len(merged_lines) > 20


def test_merge_command_reports_and_exits_1_on_conflicts(machines, tmp_path):
    a, _b = machines
    left, right = copy_store(a, tmp_path / "left"), copy_store(a, tmp_path / "right")
    with open_store(left) as store:
        target = store.listings("pending")[0].id
        review.accept(store, target, user="alice")
    with open_store(right) as store:
        review.discard(store, target, user="bob")

    def lamsim(*args):
        return subprocess.run([sys.executable, "-m", "lamsim_tui", "store", "merge", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    done = lamsim(str(tmp_path / "all"), str(left))
    assert done.returncode == 0, done.stderr
    assert "added" in done.stdout and "0 conflict(s)" in done.stdout
    clash = lamsim(str(tmp_path / "all"), str(right))
    assert clash.returncode == 1
    assert f"conflict {target[:10]}" in clash.stdout and "reviewed differently" in clash.stderr
    itself = lamsim(str(left), str(left))
    assert itself.returncode == 2 and "cannot be merged into itself" in itself.stderr
    assert "Traceback" not in itself.stderr + clash.stderr


def test_a_store_cannot_be_merged_into_itself(machines):
    a, _b = machines
    with pytest.raises(StoreError, match="into itself"):
        merge(a, [a])
