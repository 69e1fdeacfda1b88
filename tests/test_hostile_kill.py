"""SIGKILL a 1,000-episode scripted run at random points (long enough that every kill lands before it ends): every episode the progress line or the
summary reported as stored is in the store, and the store always opens.

A real `lamsim run --headless` in a subprocess, a real SIGKILL. Half the kills land at a random
moment from the start (task generation included), half at a random moment after the first
progress line. `python tests/test_hostile_kill.py [KILLS]` runs 30 and prints the figures.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from packkit import ROOT

from lamsim_tui.store import open_store

PROGRESS = re.compile(r"\] (\d+)/(\d+) episodes")
SUMMARY = re.compile(r"^episodes\s+(\d+) ", re.M)
EPISODES = 1000


def _reader(stream, lines: list[str], first: threading.Event) -> None:
    for line in iter(stream.readline, ""):
        lines.append(line)
        if PROGRESS.search(line):
            first.set()
    stream.close()


def kill_once(store: Path, rng: random.Random, after_progress: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lamsim_tui", "run", "sessions/pilot.yaml", "--headless", "-n", str(EPISODES),
         "--agent", "scripted", "--concurrency", "8", "--seed", str(rng.randrange(1000)), "--store", str(store)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines: list[str] = []
    out_lines: list[str] = []
    first = threading.Event()
    readers = [threading.Thread(target=_reader, args=(proc.stderr, err_lines, first), daemon=True),
               threading.Thread(target=_reader, args=(proc.stdout, out_lines, threading.Event()), daemon=True)]
    for reader in readers:
        reader.start()
    if after_progress:
        first.wait(60)
        time.sleep(rng.uniform(0.0, 2.5))
    else:
        time.sleep(rng.uniform(0.3, 5.0))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    for reader in readers:
        reader.join(10)
    reported = max((int(m.group(1)) for line in err_lines for m in [PROGRESS.search(line)] if m), default=0)
    summary = SUMMARY.search("".join(out_lines))
    if summary:
        reported = max(reported, int(summary.group(1)))
    stored = 0
    if (store / "store.snapshot.jsonl").exists():
        with open_store(store) as opened:  # opens as the writer after every kill
            stored = opened.count()
    return {"reported": reported, "stored": stored, "finished": summary is not None,
            "killed": proc.returncode == -signal.SIGKILL}


def kill_runs(kills: int, root: Path, seed: int = 15) -> list[dict]:
    rng = random.Random(seed)
    return [kill_once(root / f"store-{i}", rng, after_progress=i % 2 == 1) for i in range(kills)]


def test_sigkill_of_a_long_run_never_loses_an_episode_reported_as_stored(tmp_path):
    results = kill_runs(10, tmp_path)
    lost = [r for r in results if r["stored"] < r["reported"]]
    assert not lost, f"episodes shown as stored but not in the store: {lost}"
    assert sum(r["killed"] for r in results) >= 8
    assert sum(r["reported"] > 0 for r in results) >= 4, f"too few kills landed mid-run: {results}"


if __name__ == "__main__":
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with tempfile.TemporaryDirectory() as tmp:
        results = kill_runs(n, Path(tmp))
    for i, r in enumerate(results):
        print(f"kill {i + 1:2d}: reported {r['reported']:3d}  stored {r['stored']:3d}  "
              f"{'finished before the kill' if r['finished'] else ''}")
    shown = sum(r["reported"] for r in results)
    stored = sum(r["stored"] for r in results)
    lost = sum(max(0, r["reported"] - r["stored"]) for r in results)
    print(f"{n} kills: {shown} episodes reported as stored, {stored} in the stores, {lost} reported but missing; "
          f"kills mid-run {sum(0 < r['reported'] < EPISODES for r in results)}")
