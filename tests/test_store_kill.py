"""kill -9 at random moments: every acknowledged write survives and the store always opens.

A writer process adds trajectories and accepts them, printing each id only after the call has
returned (acknowledged). It compacts often, so kills also land inside compactions. The test kills
it with SIGKILL at random points, many times, and after each kill opens the store and checks.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from packkit import ROOT

from lamsim_tui.store import open_store

WRITER = r"""
import random, sys
from lamsim_tui.store import open_store
from lamsim_tui.testing.synthetic import make_record
from lamsim_tui.curation.review import accept

path, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
store = open_store(path, compact_bytes=60_000)   # compact every few dozen writes
print("open", flush=True)
for listing in store.listings("pending"):        # accept what earlier writers left pending
    accept(store, listing.id, note="kill test")
    print("acc", listing.id, flush=True)
i = 0
while True:
    record = make_record(rng, i, status="pending")
    store.add(record)
    print("add", record.id, flush=True)
    accept(store, record.id, note="kill test")
    print("acc", record.id, flush=True)
    i += 1
"""


def test_sigkill_during_a_stream_of_accepts_loses_nothing_acknowledged(tmp_path):
    path = tmp_path / "store"
    rng = random.Random(2024)
    added: set[str] = set()
    accepted: set[str] = set()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kills = 0
    deadline = time.monotonic() + 14
    while kills < 30 and time.monotonic() < deadline:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(kills)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "open", proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, err
        kills += 1
        for line in out.splitlines():
            parts = line.split()
            if len(parts) != 2:
                continue  # the last line may be cut: it was never acknowledged
            kind, record_id = parts
            (added if kind == "add" else accepted).add(record_id)
        with open_store(path) as store:  # opens every time, as the writer
            ids = set(store.ids())
            assert added <= ids, f"lost {len(added - ids)} acknowledged adds after kill {kills}"
            now_accepted = {listing.id for listing in store.listings("accepted")}
            assert accepted <= now_accepted, f"lost {len(accepted - now_accepted)} accepts after kill {kills}"
            for record_id in list(accepted)[-3:]:
                record = store.get(record_id)
                assert record.history[-1].note == "kill test"
    assert kills >= 8
    assert len(accepted) > 50, "the writer should have got through many accepts"
    with open_store(path, readonly=True) as store:
        assert {listing.id for listing in store.listings("accepted")} >= accepted
