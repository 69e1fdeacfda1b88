"""The store against what a hostile world does to it: creations cut short by a crash or a full
disk, writers racing to create one store, secrets in every shape, a lock file that outlives its
process, text a JSON encoder cannot encode as UTF-8."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import subprocess
import sys
import time

import pytest
from openai_server import OpenAIServer, Reply
from packkit import ROOT, write_pack, write_session

from lamsim_tui.errors import StoreError
from lamsim_tui.store import open_store
from lamsim_tui.store.redact import REDACTED, redact
from lamsim_tui.store.storage import LOCK, SNAPSHOT, encode_line, journal_name
from lamsim_tui.testing.synthetic import make_record


def _record(i: int = 0, **changes):
    record = make_record(random.Random(i), i)
    return dataclasses.replace(record, **changes) if changes else record


HEADER = {"format": "lamsim-journal", "store_version": 1, "generation": 1, "after_seq": 0}


@pytest.mark.parametrize("leftovers", [
    {LOCK: b""},
    {LOCK: b"pid 1 on elsewhere, lamsim run, since 2026-01-01", journal_name(1): encode_line(HEADER)},
    {journal_name(1): encode_line(HEADER), SNAPSHOT + ".tmp": b"0000 {\"format\": \"lams"},
    {journal_name(1): encode_line(HEADER)[:20]},  # the header itself cut short
    {journal_name(1): b""},
], ids=["lock-only", "lock-and-header", "header-and-partial-snapshot", "torn-header", "empty-journal"])
def test_a_store_whose_creation_was_cut_short_opens_as_a_new_store(tmp_path, leftovers):
    path = tmp_path / "store"
    path.mkdir()
    for name, data in leftovers.items():
        (path / name).write_bytes(data)
    with open_store(path) as store:
        store.add(_record())
    with open_store(path, readonly=True) as store:
        assert store.count() == 1


def test_a_journal_with_changes_but_no_snapshot_is_damage_and_is_left_alone(tmp_path):
    path = tmp_path / "store"
    with open_store(path) as store:
        store.add(_record())
    (path / SNAPSHOT).unlink()
    before = {p.name: p.read_bytes() for p in path.iterdir() if p.name != LOCK}
    with pytest.raises(StoreError, match="snapshot is missing"):
        open_store(path)
    assert {p.name: p.read_bytes() for p in path.iterdir() if p.name != LOCK} == before


def test_a_folder_of_someone_elses_is_refused_and_gets_no_lock_file(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not empty and holds no store"):
        open_store(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


CREATE_ON_A_FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
from lamsim_tui.errors import StoreError
from lamsim_tui.store import open_store
try:
    open_store(sys.argv[1]).close()
except StoreError as exc:
    print(exc)
    sys.exit(2)
"""


@pytest.mark.parametrize("room", [0, 40, 100, 150])
def test_a_creation_cut_short_by_a_full_disk_is_one_message_then_the_store_opens_once_there_is_room(tmp_path, room):
    path = tmp_path / "store"
    result = subprocess.run([sys.executable, "-c", CREATE_ON_A_FULL_DISK, str(path), str(room)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and str(path) in result.stdout and "too large" in result.stdout
    with open_store(path) as store:  # room again: not "not empty and holds no store" for ever
        store.add(_record())
    with open_store(path, readonly=True) as store:
        assert store.count() == 1


RACER = """
import sys, time
from lamsim_tui.errors import StoreError
from lamsim_tui.store import open_store
start = float(sys.argv[2])
while time.time() < start:
    pass
try:
    with open_store(sys.argv[1]):
        time.sleep(0.3)
    print("won")
except StoreError as exc:
    print("lost:", exc)
"""


def test_writers_racing_to_create_a_new_store_get_one_winner_and_a_clear_refusal(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outcomes = []
    for trial in range(12):
        path = tmp_path / f"store-{trial}"
        start = time.time() + 1.0
        procs = [subprocess.Popen([sys.executable, "-c", RACER, str(path), str(start)], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [p.communicate(timeout=60) for p in procs]
        for out, err in results:
            assert "Traceback" not in err, err
            outcomes.append(out.strip())
            assert out.startswith("won") or "open for writing by another process" in out, out
        assert any(out.startswith("won") for out, _ in results)
        with open_store(path) as store:
            assert store.count() == 0
    assert not any("holds no store" in o for o in outcomes)


LOCK_HOLDER = """
import sys
sys.argv = ["lamsim", "review", "--store", sys.argv[1], "accept", "abcd", "--note", "sk-SECRETSECRETSECRET123"]
from lamsim_tui.store import open_store
with open_store(sys.argv[3]):
    print(open(sys.argv[3] + "/writer.lock").read())
"""


def test_the_lock_file_names_the_holder_but_never_its_arguments_and_is_emptied_when_released(tmp_path):
    path = tmp_path / "store"
    result = subprocess.run([sys.executable, "-c", LOCK_HOLDER, str(path)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    held = result.stdout
    assert f"on {os.uname().nodename}" in held and "lamsim review" in held and "pid " in held
    assert "SECRET" not in held and "--note" not in held and str(path) not in held
    assert (path / LOCK).read_text() == ""


SECRETS = {
    "google": "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "gitlab": "glpat-xR4nDoM8Tok3nValu3ab",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1c7+9z5Pad7OejecsQ0bu3aozN3tihPmljnnudb9G3HECdnH\n"
           "-----END RSA PRIVATE KEY-----",
    "aws": "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "stripe": "sk_live_51H8mZ2eZvKYlo2C0abcdefgh",
    "password": "login with password=correct-horse-battery",
    "url": "postgres://admin:Tr0ub4dor3@db.internal:5432/prod",
    "openai": "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
}
HIDDEN = {"google": "AIzaSy", "gitlab": "glpat-", "jwt": "eyJhbGci", "pem": "MIIEowIBAAK", "aws": "wJalrXUtnFEMI",
          "stripe": "sk_live_51H8", "password": "correct-horse", "url": "Tr0ub4dor3", "openai": "sk-proj-abc"}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_kind_of_planted_secret_is_redacted_in_the_store(tmp_path, kind):
    record = _record()
    planted = f"the tool said: {SECRETS[kind]} (end)"
    steps = list(record.steps)
    steps[0] = dataclasses.replace(steps[0], observation=planted, raw=planted, result={"text": planted})
    record = dataclasses.replace(record, steps=tuple(steps))
    with open_store(tmp_path / "store") as store:
        store.add(record)
        stored = store.get(record.id)
    for text in (stored.steps[0].observation, stored.steps[0].raw, stored.steps[0].result["text"]):
        assert HIDDEN[kind] not in text and REDACTED in text and text.startswith("the tool said:")


def test_text_that_only_looks_like_a_setting_is_kept():
    kept = ["password: see the vault", "the token count is 42", "https://example.com/a:b@c"[:0] + "no creds here",
            "sk-short", "user@example.com"]
    assert redact(kept, []) == kept


def test_the_sessions_own_key_is_redacted_whatever_its_variable_is_called(tmp_path, monkeypatch):
    """A server (or a tool) that echoes the key back: the value of `api_key_env` is never stored or exported."""
    key = "Zq7-not-looking-secret-at-all"
    monkeypatch.setenv("MY_LLM_CRED", key)
    monkeypatch.setattr("lamsim_tui.agents.model.BACKOFF_S", 0.01)
    write_pack(tmp_path)
    with OpenAIServer(default=Reply(text='{"thought": "my key is ' + key + '", "tool": "finish", '
                                         '"arguments": {"answer": "' + key + '"}}')) as server:
        path = write_session(tmp_path, f"""\
            pack: mini
            tasks: 2
            agent:
              kind: model
              models:
                - model: openai/test-model
                  api_base: {server.api_base}
                  api_key_env: MY_LLM_CRED
            """)
        from lamsim_tui.agents.model import ModelAgentFactory
        from lamsim_tui.packs import load_pack
        from lamsim_tui.session.config import load_session
        from lamsim_tui.simulator.engine import Engine

        session = load_session(path)
        pack = load_pack(session.pack_dir())
        with open_store(tmp_path / "store") as store:
            asyncio.run(Engine(session, pack, ModelAgentFactory(session, pack), store=store).run())
        assert server.requests[0]["headers"]["authorization"] == f"Bearer {key}"  # it was really sent
    files = b"".join(p.read_bytes() for p in (tmp_path / "store").iterdir())
    assert key.encode() not in files and b"MY_LLM_CRED" in files  # the name is kept, the value never
    out = tmp_path / "out.jsonl"
    result = subprocess.run([sys.executable, "-m", "lamsim_tui", "export", "--store", str(tmp_path / "store"),
                             "--format", "chat", "--out", str(out), "--status", "pending,filtered"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert key not in out.read_text() and key not in result.stdout + result.stderr


def test_a_lone_surrogate_is_stored_and_read_back_unchanged(tmp_path):
    record = _record()
    steps = list(record.steps)
    steps[0] = dataclasses.replace(steps[0], raw="half a pair: \ud800 here", thought="\udfff")
    record = dataclasses.replace(record, steps=tuple(steps), system_prompt="shared text \udbff too")
    with open_store(tmp_path / "store") as store:
        store.add(record)
        store.update(record.id, {"status": "accepted"})
    with open_store(tmp_path / "store") as store:
        again = store.get(record.id)
        store.compact()  # the snapshot writes it too
    with open_store(tmp_path / "store", readonly=True) as store:
        compacted = store.get(record.id)
    for got in (again, compacted):
        assert got.steps[0].raw == "half a pair: \ud800 here" and got.steps[0].thought == "\udfff"
        assert got.system_prompt == "shared text \udbff too" and got.status == "accepted"
