"""The store's index: listings, filters and statistics come from it, record bodies stay on disk until
one is read, and the index never disagrees with the records (written in the same journal line,
rebuilt with a notice when missing or older than the records). Real stores in temp folders."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packkit import ROOT

from lamsim_tui.curation import review
from lamsim_tui.errors import StoreError
from lamsim_tui.store import lazy, open_store
from lamsim_tui.store.storage import SNAPSHOT, JournalStorage, journal_name
from lamsim_tui.testing.synthetic import make_record

BEFORE_INDEX = ROOT / "tests" / "data" / "store-before-index"  # written by the lamsim before the index


def recs(n: int, seed: int = 3, status: str = "pending"):
    rng = random.Random(seed)
    return [make_record(rng, i, status=status) for i in range(n)]


def agrees(store) -> None:
    """What the index says of every record is what the record itself says."""
    listed = store.listings()
    assert [item.id for item in listed] == store.ids()
    assert listed == [record.listing(store.number(record.id)) for record in store.records()]
    for status in ("pending", "accepted", "discarded", "filtered"):
        assert [item.id for item in store.listings(status)] == [r.id for r in store.records(status)]
        assert store.count(status) == len(store.listings(status))


def test_the_index_agrees_with_the_records_through_every_kind_of_change(tmp_path):
    path = tmp_path / "s"
    rs = recs(40)
    rng = random.Random(9)
    with open_store(path, compact_bytes=150_000) as store:  # compacts now and then, mid-way
        with store.batch():
            for r in rs[:15]:
                store.add(r)
        for r in rs[15:]:
            store.add(r)
        ids = [r.id for r in rs]
        for _ in range(60):
            action = rng.choice(("accept", "discard", "undo", "edit-fields"))
            record_id = rng.choice(ids)
            try:
                if action == "accept":
                    review.accept(store, record_id, note="ok", user="a")
                elif action == "discard":
                    review.discard(store, record_id, reason="bad", user="b")
                elif action == "undo":
                    review.undo(store)
                else:
                    store.update(record_id, {"final_answer": rng.randrange(100)})
            except review.ReviewError:
                pass
            if rng.random() < 0.1:
                agrees(store)
        agrees(store)
        with open_store(path, readonly=True) as reader:
            agrees(reader)
        live = store.listings()
    with open_store(path, readonly=True) as reopened:
        agrees(reopened)
        assert reopened.listings() == live
        assert not reopened.notices


def test_opening_and_listing_read_no_record_body(tmp_path, monkeypatch):
    path = tmp_path / "s"
    with open_store(path) as store:
        with store.batch():
            for r in recs(200):
                store.add(r)
        store.compact()
        for r in recs(20, seed=4):  # and some in the journal
            store.add(r)
        target = store.listings()[150].id
    total = sum(p.stat().st_size for p in path.iterdir())
    read: list[int] = []
    original = lazy.Source.read

    def counting(self, offset, length):
        read.append(length)
        return original(self, offset, length)

    monkeypatch.setattr(lazy.Source, "read", counting)
    with open_store(path, readonly=True) as store:
        assert len(store.listings("pending")) == 220
        store.count("accepted")
        listing_bytes = sum(read)
        read.clear()
        record = store.get(target[:8])
        one_record = sum(read)
    assert listing_bytes < total * 0.1, (listing_bytes, total)  # the index: a few hundred bytes a record
    assert one_record < 20_000 and record.id == target  # about one record's line, not the store


def test_a_store_written_by_the_lamsim_before_the_index_opens_and_gets_it(tmp_path):
    path = shutil.copytree(BEFORE_INDEX, tmp_path / "old")
    assert "layout_at" not in (path / SNAPSHOT).read_text().splitlines()[-1]
    with open_store(path, readonly=True) as store:
        assert any("had no index" in n and "saved" in n for n in store.notices)
        agrees(store)
        assert store.count() == 8 and store.count("accepted") == 2 and store.count("discarded") == 1
        history = review.history(store)
        assert [e.action for _id, e in history] == ["accept", "discard", "accept", "undo", "accept"]
    assert "layout_at" in (path / SNAPSHOT).read_text().splitlines()[-1]  # the reader saved it
    with open_store(path) as store:
        assert not store.notices
        agrees(store)
        pending = store.listings("pending")[0].id
        review.accept(store, pending, user="dave")
    with open_store(path, readonly=True) as store:
        assert not store.notices and store.get(pending).status == "accepted"
        agrees(store)


def test_a_reader_of_an_old_store_builds_the_index_in_memory_while_a_writer_holds_it(tmp_path):
    path = shutil.copytree(BEFORE_INDEX, tmp_path / "old")
    (path / "writer.lock").touch()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)", str(path / "writer.lock")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with open_store(path, readonly=True) as store:
            assert any("had no index" in n and "next time the store is opened for writing" in n for n in store.notices)
            agrees(store)
        assert "layout_at" not in (path / SNAPSHOT).read_text().splitlines()[-1]  # nothing written
    finally:
        holder.kill()
        holder.wait()


def test_an_index_older_than_the_records_is_updated_with_a_notice(tmp_path):
    path = tmp_path / "s"
    rs = recs(10)
    with open_store(path) as store:
        for r in rs:
            store.add(r)
        store.compact()
        key = str(store.number(rs[4].id))
    # An earlier lamsim, which keeps no index, accepts one trajectory: a journal line without its index row.
    storage = JournalStorage(path)
    storage.commit([["trajectories", key, "set", {"status": "accepted"}, []]])
    storage.close()
    with open_store(path, readonly=True) as store:
        assert any("older than 1 record" in n for n in store.notices)
        assert store.listings("accepted")[0].id == rs[4].id
        agrees(store)
    with open_store(path) as store:  # a writer saves the updated row
        assert store.notices
        agrees(store)
    with open_store(path, readonly=True) as store:
        assert not store.notices
        agrees(store)


def test_a_reader_follows_a_writer_through_the_index(tmp_path):
    path = tmp_path / "s"
    rs = recs(12)
    with open_store(path) as writer:
        for r in rs[:5]:
            writer.add(r)
        reader = open_store(path, readonly=True)
        assert reader.count() == 5
        with writer.batch():
            for r in rs[5:]:
                writer.add(r)
        review.accept(writer, rs[0].id, user="a")
        assert reader.refresh()
        assert reader.count() == 12 and [i.id for i in reader.listings("accepted")] == [rs[0].id]
        agrees(reader)
        writer.compact()
        review.discard(writer, rs[1].id, user="b")
        assert reader.refresh()
        assert reader.get(rs[1].id).status == "discarded"
        agrees(reader)
        reader.close()


def test_a_damaged_record_is_named_when_read_and_listing_still_works(tmp_path):
    path = tmp_path / "s"
    rs = recs(6)
    with open_store(path) as store:
        for r in rs:
            store.add(r)
        store.compact()
    snapshot = path / SNAPSHOT
    lines = snapshot.read_bytes().split(b"\n")
    number = next(i for i, line in enumerate(lines) if rs[3].id.encode() in line and b'["trajectories"' in line)
    lines[number] = lines[number].replace(b"How many", b"How mani")
    snapshot.write_bytes(b"\n".join(lines))
    with open_store(path, readonly=True) as store:
        assert len(store.listings()) == 6
        with pytest.raises(StoreError, match=rf"{SNAPSHOT}:{number + 1}: store file is damaged: checksum mismatch"):
            store.get(rs[3].id)
        assert store.get(rs[2].id).id == rs[2].id
    check = subprocess.run([sys.executable, "-m", "lamsim_tui", "store", "check", str(path)], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 1 and f"{SNAPSHOT}:{number + 1}: checksum mismatch" in check.stdout


def test_batch_lines_are_read_a_record_at_a_time(tmp_path, monkeypatch):
    """A merge or import writes hundreds of records per journal line; reading one reads only its part."""
    path = tmp_path / "s"
    rs = recs(120)
    with open_store(path) as store:
        with store.batch():
            for r in rs:
                store.add(r)
    journal = path / journal_name(1)
    line = max(journal.read_bytes().split(b"\n"), key=len)
    assert len(line) > 500_000
    read: list[int] = []
    original = lazy.Source.read
    monkeypatch.setattr(lazy.Source, "read", lambda self, o, n: read.append(n) or original(self, o, n))
    with open_store(path, readonly=True) as store:
        read.clear()
        assert store.get(rs[77].id) == rs[77]
        assert sum(read) < 20_000
    # The line still reads as one ordinary commit to anything that parses it whole.
    commit = json.loads(line[9:])
    assert [op[:3] for op in commit["ops"] if op[0] == "trajectories"][:2] == [["trajectories", "1", "put"],
                                                                               ["trajectories", "2", "put"]]


def test_the_cli_lists_and_shows_from_an_indexed_store(tmp_path):
    path = Path(shutil.copytree(BEFORE_INDEX, tmp_path / "old"))

    def lamsim(*args):
        return subprocess.run([sys.executable, "-m", "lamsim_tui", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)

    first = lamsim("review", "--store", str(path), "list", "--status", "pending")
    assert first.returncode == 0 and "had no index" in first.stderr and len(first.stdout.splitlines()) == 5
    again = lamsim("review", "--store", str(path), "list", "--status", "pending")
    assert again.stdout == first.stdout and "index" not in again.stderr
    stats = lamsim("stats", "--store", str(path), "--json")
    assert json.loads(stats.stdout)["overall"]["statuses"] == {"pending": 5, "filtered": 0, "accepted": 2,
                                                              "discarded": 1}
