"""The store: contract, durability on reopen, the writer lock, readers, damage, versions, secrets."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packkit import ROOT
from tinydb import Query

from lamsim_tui.errors import StoreError
from lamsim_tui.record import Trajectory
from lamsim_tui.store import open_store
from lamsim_tui.store.storage import SNAPSHOT, JournalDB, JournalStorage, encode_line, journal_name
from lamsim_tui.testing.synthetic import make_record


def recs(n: int, seed: int = 1, **kw) -> list[Trajectory]:
    rng = random.Random(seed)
    return [make_record(rng, i, **kw) for i in range(n)]


def test_records_survive_reopen_in_order_and_whole(tmp_path):
    rs = recs(30)
    with open_store(tmp_path / "s") as store:
        for r in rs:
            store.add(r)
        store.update(rs[3].id, {"status": "accepted"})
    with open_store(tmp_path / "s") as store:
        assert [r.id for r in store.records()] == [r.id for r in rs]
        assert store.get(rs[0].id) == rs[0]  # tools and system prompt come back inline
        assert store.get(rs[3].id).status == "accepted"
        assert store.count("accepted") == 1
        assert store.count(("pending", "filtered")) == 29
        assert [r.id for r in store.records(status="accepted")] == [rs[3].id]


def test_returned_records_are_copies(tmp_path):
    rs = recs(2)
    with open_store(tmp_path / "s") as store:
        store.add(rs[0])
        got = store.get(rs[0].id)
        got.steps[0].usage.clear()
        got.tools[0]["function"]["name"] = "changed"
        rs[0].task.slots["account_id"] = "changed after add"
        again = store.get(rs[0].id)
    assert again.steps[0].usage and again.tools[0]["function"]["name"] != "changed"
    assert again.task.slots["account_id"] != "changed after add"


def test_ids_abbreviate_like_git(tmp_path):
    a, b, c = recs(3)
    a = a.replace(id="abcd1234" + "0" * 24)
    b = b.replace(id="abcd5678" + "0" * 24)
    c = c.replace(id="ef01" + "1" * 28)
    with open_store(tmp_path / "s") as store:
        for r in (a, b, c):
            store.add(r)
        assert store.get("ef01").id == c.id
        assert store.get("ABCD1").id == a.id
        with pytest.raises(StoreError) as ambiguous:
            store.get("abcd")
        assert a.id in str(ambiguous.value) and b.id in str(ambiguous.value)
        with pytest.raises(StoreError, match="no trajectory with id 9999"):
            store.get("9999")
        with pytest.raises(StoreError, match="at least 4"):
            store.get("ab")


def test_bad_records_are_refused(tmp_path):
    r = recs(1)[0]
    with open_store(tmp_path / "s") as store:
        store.add(r)
        with pytest.raises(StoreError, match="already in the store"):
            store.add(r)
        with pytest.raises(StoreError, match="32 lowercase hex"):
            store.add(r.replace(id="xyz"))
        with pytest.raises(StoreError, match="status"):
            store.add(r.replace(id="f" * 32, status=None))
        with pytest.raises(StoreError, match="not plain JSON"):
            store.add(r.replace(id="e" * 32, final_answer={1, 2}))
        with pytest.raises(StoreError, match="must be a Trajectory"):
            store.add({**r.to_dict(), "id": "d" * 32})
        assert store.count() == 1


def test_second_writer_gets_a_clear_error_and_readers_are_not_blocked(tmp_path):
    path = tmp_path / "s"
    rs = recs(3)
    with open_store(path) as store:
        store.add(rs[0])
        code = (
            f"from lamsim_tui.store import open_store\nfrom lamsim_tui.errors import StoreError\n"
            f"try:\n    open_store({str(path)!r})\nexcept StoreError as e:\n    print('REFUSED', e)\n"
            f"r = open_store({str(path)!r}, readonly=True)\nprint('READ', r.count())\n"
        )
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert "REFUSED" in out.stdout and "open for writing by another process" in out.stdout
        assert f"pid {os.getpid()}" in out.stdout  # says who holds it
        assert "READ 1" in out.stdout
        with pytest.raises(StoreError, match="open for writing"):
            open_store(path)  # same process, second writer
        store.add(rs[1])
    with open_store(path) as store:  # the lock goes with the writer
        assert store.count() == 2


def test_a_reader_sees_a_consistent_store_and_catches_up(tmp_path):
    path = tmp_path / "s"
    rs = recs(40)
    writer = open_store(path, compact_bytes=30_000)  # compacts every few records
    writer.add(rs[0])
    reader = open_store(path, readonly=True)
    try:
        for r in rs[1:]:
            writer.add(r)
            reader.refresh()
            assert reader.count() == len(writer)
        writer.update(rs[5].id, {"status": "accepted"})
        assert reader.refresh()
        assert reader.get(rs[5].id[:8]).status == "accepted"
        assert [r.id for r in reader.records()] == [r.id for r in rs]
        with pytest.raises(StoreError, match="read-only"):
            reader.add(recs(1, seed=99)[0])
    finally:
        writer.close()
        reader.close()


def test_a_reader_never_sees_a_half_written_line(tmp_path):
    path = tmp_path / "s"
    rs = recs(2)
    with open_store(path) as store:
        store.add(rs[0])
    journal = path / journal_name(1)
    line = encode_line({"seq": 2, "ops": [["trajectories", "9", "put", {"id": "x"}]]})
    with open(journal, "ab") as f:  # a writer in the middle of its write
        f.write(line[: len(line) // 2])
    with open_store(path, readonly=True) as reader:
        assert reader.count() == 1
    assert journal.read_bytes().endswith(line[: len(line) // 2])  # a reader changes nothing


def test_torn_tail_is_dropped_and_kept_aside(tmp_path):
    path = tmp_path / "s"
    rs = recs(3)
    with open_store(path) as store:
        store.add(rs[0])
        store.add(rs[1])
    journal = path / journal_name(1)
    good = journal.read_bytes()
    torn = encode_line({"seq": 3, "ops": [["trajectories", "3", "put", rs[2].to_dict()]]})[:-40]
    journal.write_bytes(good + torn)
    with open_store(path) as store:
        assert store.count() == 2
        assert any("unfinished write" in n for n in store.notices)
        store.add(rs[2])
    kept = list(path.glob(journal.name + ".torn-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == torn
    with open_store(path, readonly=True) as store:
        assert [r.id for r in store.records()] == [r.id for r in rs]


def test_damage_inside_the_journal_is_an_error_naming_file_and_line_and_nothing_changes(tmp_path):
    path = tmp_path / "s"
    rs = recs(3)
    with open_store(path) as store:
        for r in rs:
            store.add(r)
    journal = path / journal_name(1)
    lines = journal.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"Billing", b"Bxlling", 1)  # bit rot in the 2nd change, 3rd line
    journal.write_bytes(b"\n".join(lines))
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    for readonly in (False, True):
        with pytest.raises(StoreError) as err:
            open_store(path, readonly=readonly)
        message = str(err.value)
        assert f"{journal}:3" in message and "checksum" in message
        assert "salvage" in message  # how to recover
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before


def test_damaged_or_cut_snapshot_is_an_error(tmp_path):
    path = tmp_path / "s"
    with open_store(path) as store:
        for r in recs(5):
            store.add(r)
        store.compact()
    snapshot = path / SNAPSHOT
    data = snapshot.read_bytes()
    snapshot.write_bytes(data[: len(data) - 30])
    with pytest.raises(StoreError, match="snapshot") as err:
        open_store(path)
    assert str(snapshot) in str(err.value)
    assert snapshot.read_bytes() == data[: len(data) - 30]


def test_unrelated_folder_and_missing_store_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty and holds no store"):
        open_store(tmp_path)
    with pytest.raises(StoreError, match="no store here"):
        open_store(tmp_path / "nothing", readonly=True)


def _rewrite_snapshot(path, change):
    """Rewrite a closed store's snapshot (valid checksums) after `change(header, entries)`, as the lamsim
    before the index wrote it (no index, no layout: the records are the only truth)."""
    snapshot = path / SNAPSHOT
    lines = [json.loads(line[9:]) for line in snapshot.read_bytes().splitlines()]
    header, entries = lines[0], [e for e in lines[1:-1] if e[0] not in ("$layout", "listings")]
    header.pop("meta", None)
    header["tables"] = [t for t in header["tables"] if t != "listings"]
    change(header, entries)
    trailer = {"end": True, "docs": len(entries)}
    snapshot.write_bytes(b"".join(encode_line(x) for x in [header, *entries, trailer]))


def test_newer_layout_and_newer_records_are_refused_not_misread(tmp_path):
    path = tmp_path / "s"
    with open_store(path) as store:
        store.add(recs(1)[0])
        store.compact()
    _rewrite_snapshot(path, lambda h, e: h.update(store_version=2))
    with pytest.raises(StoreError, match="layout version 2 is newer"):
        open_store(path, readonly=True)
    _rewrite_snapshot(path, lambda h, e: h.update(store_version=1))

    def newer(h, entries):
        for name, _key, doc in entries:
            if name == "trajectories":
                doc["schema_version"] = 2

    _rewrite_snapshot(path, newer)
    with pytest.raises(StoreError, match="schema_version 2, newer"):
        open_store(path, readonly=True)


def test_older_records_are_migrated_when_a_migration_exists(tmp_path, monkeypatch):
    from lamsim_tui.store import store as store_module

    path = tmp_path / "s"
    r = recs(1)[0]
    with open_store(path) as store:
        store.add(r)
        store.compact()

    def older(h, entries):
        for name, _key, doc in entries:
            if name == "trajectories":
                doc["schema_version"] = 0
                doc["answer"] = doc.pop("final_answer")  # pretend v0 called it `answer`

    _rewrite_snapshot(path, older)
    with pytest.raises(StoreError, match="cannot migrate"):
        open_store(path, readonly=True)

    def v0_to_v1(record):
        record = dict(record)
        record["final_answer"] = record.pop("answer")
        record["schema_version"] = 1
        return record

    monkeypatch.setitem(store_module.MIGRATIONS, 0, v0_to_v1)
    with open_store(path, readonly=True) as reader:
        assert reader.get(r.id) == r
    with open_store(path) as writer:  # a writer upgrades the stored records
        assert writer.get(r.id) == r
    monkeypatch.delitem(store_module.MIGRATIONS, 0)
    with open_store(path, readonly=True) as reader:
        assert reader.get(r.id) == r


def test_no_secrets_reach_the_store(tmp_path, monkeypatch):
    secret = "s3cr3t-value-from-the-environment"
    monkeypatch.setenv("MY_PROVIDER_API_KEY", secret)
    r = recs(1)[0].to_dict()
    r["agent"].update(
        {
            "api_key": "sk-live-abcdefghijklmnop1234",
            "api_base": "http://localhost:8000",
            "extra_headers": {"Authorization": "Bearer abcdefghijklmnopqrstuvwxyz"},
        }
    )
    r["steps"][0]["observation"] = f"server said: token {secret} rejected"
    r["steps"][0]["raw"] = "use key sk-abcdefghijklmnopqrstuv please"
    r["session"]["settings"]["agent"] = {"model": "x", "api_key_env": "MY_PROVIDER_API_KEY"}
    r["tools"][0]["function"]["parameters"]["properties"]["password"] = {"type": "string"}  # sandbox data
    r["steps"][0]["action"]["arguments"]["password"] = "hunter2"
    with open_store(tmp_path / "s") as store:
        store.add(Trajectory.from_dict(r))
        got = store.get(r["id"]).to_dict()
    on_disk = b"".join(p.read_bytes() for p in (tmp_path / "s").iterdir() if p.is_file())
    for leaked in (secret, "sk-live-abcdefghijklmnop1234", "abcdefghijklmnopqrstuvwxyz", "sk-abcdefghijklmnopqrstuv"):
        assert leaked.encode() not in on_disk
    assert got["agent"]["api_key"] == "[redacted]" and got["agent"]["api_base"] == "http://localhost:8000"
    assert got["steps"][0]["usage"]["total_tokens"] > 0  # token counts are not secrets
    assert got["session"]["settings"]["agent"]["api_key_env"] == "MY_PROVIDER_API_KEY"  # the name is fine
    assert got["tools"][0]["function"]["parameters"]["properties"]["password"] == {"type": "string"}
    assert got["steps"][0]["action"]["arguments"]["password"] == "hunter2"


def test_write_cost_does_not_grow_with_the_store(tmp_path):
    """An update appends one small journal line (the change and the record's index row), whatever the
    store's size."""
    costs = []
    for n in (30, 300):
        rs = recs(n)
        with open_store(tmp_path / str(n)) as store:
            with store.batch():
                for r in rs:
                    store.add(r)
            journal = tmp_path / str(n) / journal_name(store._storage.generation)
            before = journal.stat().st_size
            store.update(rs[n // 2].id, {"status": "accepted"})
            costs.append(journal.stat().st_size - before)
    assert max(costs) < 1500  # the change, and the index row twice (read fast, and `ops` for older readers)
    assert abs(costs[0] - costs[1]) < 50


# ----- the storage under plain TinyDB use ------------------------------------------------------------

ops = st.lists(
    st.tuples(
        st.sampled_from(["insert", "update", "remove", "upsert", "truncate", "reopen"]),
        st.integers(0, 20),
        st.integers(0, 5),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_tinydb_operations_persist_exactly(tmp_path_factory, sequence):
    """Any TinyDB table operation, through the journal, reads back the same after reopening."""
    path = tmp_path_factory.mktemp("db")
    model: dict[int, dict] = {}
    db = JournalDB(path, storage=JournalStorage, compact_bytes=2000)
    table = db.table("t")
    q = Query()
    try:
        for op, a, b in sequence:
            if op == "insert":
                doc_id = table.insert({"a": a, "b": b, "nested": {"x": [a, b]}})
                model[doc_id] = {"a": a, "b": b, "nested": {"x": [a, b]}}
            elif op == "update":
                table.update({"b": b + 100}, q.a == a)
                for doc in model.values():
                    if doc["a"] == a:
                        doc["b"] = b + 100
            elif op == "remove":
                table.remove(q.a == a)
                model = {k: v for k, v in model.items() if v["a"] != a}
            elif op == "upsert":
                ids = table.upsert({"a": a, "c": b}, q.a == a)
                if any(d["a"] == a for d in model.values()):
                    for doc in model.values():
                        if doc["a"] == a:
                            doc["c"] = b
                else:
                    model[ids[0]] = {"a": a, "c": b}
            elif op == "truncate":
                table.truncate()
                model = {}
            else:
                db.close()
                db = JournalDB(path, storage=JournalStorage, compact_bytes=2000)
                table = db.table("t")
            assert {d.doc_id: dict(d) for d in table.all()} == model
        db.close()
        db = JournalDB(path, storage=JournalStorage)
        assert {d.doc_id: dict(d) for d in db.table("t").all()} == model
        db.drop_table("t")  # the plain Storage.read/write path
        db.close()
        db = JournalDB(path, storage=JournalStorage)
        assert db.tables() == set()
    finally:
        db.close()


def test_journal_lines_carry_checksums():
    line = encode_line({"seq": 1, "ops": []})
    crc, body = line[:8], line[9:-1]
    assert int(crc, 16) == zlib.crc32(body)


def test_check_and_salvage_recover_what_is_readable(tmp_path):
    path = tmp_path / "s"
    rs = recs(4)
    with open_store(path) as store:
        for r in rs:
            store.add(r)
        store.update(rs[0].id, {"status": "accepted"})
    journal = path / journal_name(1)
    lines = journal.read_bytes().split(b"\n")
    lines[3] = lines[3][:50] + b"#" + lines[3][51:]  # damage the 3rd record's line
    journal.write_bytes(b"\n".join(lines))

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "lamsim_tui", "store", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
        )

    check = run("check", str(path))
    assert check.returncode == 1 and f"{journal}:4: checksum mismatch" in check.stdout
    salvage = run("salvage", str(path), str(tmp_path / "new"))
    assert salvage.returncode == 0, salvage.stderr
    with open_store(tmp_path / "new") as store:
        assert set(store.ids()) == {rs[0].id, rs[1].id, rs[3].id}
        assert store.get(rs[0].id).status == "accepted"
        assert store.get(rs[1].id) == rs[1]


def test_a_failed_batch_leaves_nothing_behind(tmp_path):
    rs = recs(3)
    with open_store(tmp_path / "s") as store:
        store.add(rs[0])
        with pytest.raises(StoreError, match="already in the store"):
            with store.batch():
                store.add(rs[1])
                store.add(rs[0])  # fails: the whole batch is dropped
        assert store.ids() == [rs[0].id]
        store.add(rs[1])
        store.add(rs[2])
    with open_store(tmp_path / "s", readonly=True) as store:
        assert store.ids() == [r.id for r in rs]


def test_a_big_load_leaves_the_gc_enabled_with_the_store_frozen(tmp_path, monkeypatch):
    import gc

    from lamsim_tui.store import storage

    rs = recs(5)
    with open_store(tmp_path / "s") as store:
        for r in rs:
            store.add(r)
    monkeypatch.setattr(storage, "FREEZE_AFTER_DOCS", 3)
    try:
        with open_store(tmp_path / "s") as store:
            assert gc.isenabled() and gc.get_freeze_count() > 0
            store.update(rs[0].id, {"status": "accepted"})
        with open_store(tmp_path / "s", readonly=True) as store:
            assert store.get(rs[0].id).status == "accepted"
    finally:
        gc.unfreeze()
