"""Bulk review decisions on a real store: one decision number, one durable write, one undo."""

from __future__ import annotations

import pytest
from storekit import copy_store, engine_store

from lamsim_tui.curation.review import accept, accept_many, discard, discard_many, history, undo, undo_last
from lamsim_tui.store import open_store


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return engine_store(tmp_path_factory.mktemp("engine"))


@pytest.fixture
def store_dir(made, tmp_path):
    return copy_store(made, tmp_path / "store")


def journal_lines(store_dir) -> int:
    return sum(len(path.read_bytes().splitlines()) for path in store_dir.glob("journal.*.jsonl"))


def test_accept_many_is_one_decision_one_write_and_one_undo(store_dir):
    with open_store(store_dir) as store:
        pending = [listing.id for listing in store.listings("pending")]
        assert len(pending) >= 3
        accept(store, pending[0])  # an earlier, single decision
        before = journal_lines(store_dir)
        done = accept_many(store, pending, note="clean", tags="bulk")
        assert [r.id for r in done] == pending[1:], "the one already accepted is left as it is"
        assert journal_lines(store_dir) == before + 1, "one durable write for the whole bulk decision"
        seqs = {store.get(record_id).history[-1].seq for record_id in pending[1:]}
        assert len(seqs) == 1, "one decision number"
    with open_store(store_dir) as store:  # undo works from the stored trail, after reopening
        records, entry = undo_last(store)
        assert sorted(r.id for r in records) == sorted(pending[1:])
        assert all(r.status == "pending" for r in records) and entry.action == "accept"
        assert store.get(pending[0]).status == "accepted", "the undo stopped at the bulk decision"
        record, entry = undo(store)  # repeatable: then the single decision before it
        assert record.id == pending[0] and record.status == "pending"


def test_discard_many_records_the_reason_and_is_undone_together(store_dir):
    with open_store(store_dir) as store:
        filtered = [listing.id for listing in store.listings("filtered")][:4]
        assert filtered
        discard(store, store.listings("pending")[0].id, reason="single")
        discard_many(store, filtered, reason="looping, noisy")
        for record_id in filtered:
            entry = store.get(record_id).history[-1]
            assert entry.action == "discard" and entry.tags == ("looping", "noisy")
        records, _ = undo_last(store)
        assert {r.id for r in records} == set(filtered) and all(r.status == "filtered" for r in records)
        trail = [e.action for _, e in history(store)]
        assert trail.count("undo") == len(filtered)
