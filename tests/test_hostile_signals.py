"""Ctrl-C (SIGINT) and SIGTERM during a headless run: the episodes in flight are stored as
`cancelled`, the summary says the run was interrupted and what was kept, and the exit is non-zero.
A real run in a subprocess, real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from packkit import MINI_TEMPLATES, MINI_TOOLS, ROOT, write_pack, write_session

from lamsim_tui.store import open_store

SLOW_TOOLS = MINI_TOOLS.replace('''    item = sb.get("items", item_id)
    if item is None:''', '''    import time
    time.sleep(0.15)
    item = sb.get("items", item_id)
    if item is None:''')

SESSION = """\
pack: mini
seed: 5
tasks: 24
concurrency: 4
agent:
  kind: scripted
  mistake_rate: 0.5
budget:
  steps: 8
"""


def _start(root, *extra):
    return subprocess.Popen([sys.executable, "-m", "lamsim_tui", "run", "sessions/s.yaml", "--headless",
                             "--store", "store", *extra], cwd=root, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_steps(root, proc, minimum: int = 2) -> None:
    """Until some episodes are stored (so others are surely mid-way)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if (root / "store" / "store.snapshot.jsonl").exists():
            with open_store(root / "store", readonly=True) as store:
                if store.count() >= minimum:
                    return
        time.sleep(0.05)
    raise AssertionError("the run did not get going")


@pytest.fixture
def project(tmp_path):
    write_pack(tmp_path, tools=SLOW_TOOLS, templates=MINI_TEMPLATES)
    write_session(tmp_path, SESSION)
    return tmp_path


@pytest.mark.parametrize(("sig", "code", "said"), [(signal.SIGINT, 130, "Ctrl-C (SIGINT)"),
                                                   (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_stores_the_episodes_in_flight_as_cancelled_and_says_so(project, sig, code, said):
    proc = _start(project, "--json")
    _wait_for_steps(project, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in out + err
    assert said in err and "stored as cancelled" in err
    summary = json.loads(out)
    assert summary["interrupted"] == f"interrupted by {said}"
    with open_store(project / "store", readonly=True) as store:
        records = list(store.records())
    assert len(records) == summary["episodes"] < 24, "every counted episode is stored; the rest were not run"
    cancelled = [r for r in records if r.end_reason == "cancelled"]
    assert cancelled, "the episodes in flight are kept"
    assert summary["end_reasons"]["cancelled"] == len(cancelled)
    for record in cancelled:
        assert record.status == "filtered" and "cancelled" in record.verdict.filters_failed
        assert not record.verdict.success
    assert summary["not_run"] == 24 - len(records)


def test_the_plain_summary_is_honest_about_an_interrupted_run(project):
    proc = _start(project)
    _wait_for_steps(project, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    line = next(line for line in out.splitlines() if line.startswith("stopped:"))
    assert re.search(r"interrupted by Ctrl-C \(SIGINT\): \d+ episode\(s\) stored, \d+ of them cut short", line), line


def test_a_second_ctrl_c_ends_lamsim_at_once_and_what_was_shown_as_stored_is_stored(project):
    proc = _start(project)
    _wait_for_steps(project, proc)
    proc.send_signal(signal.SIGINT)
    seen = []
    for line in iter(proc.stderr.readline, ""):  # the first one is taken in: then the second
        seen.append(line)
        if "stopping;" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, rest = proc.communicate(timeout=30)
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert "Traceback" not in err + out
    assert "again: stopping now" in err or "stopped: interrupted" in out  # at once, or it had just finished
    shown = max((int(m) for m in re.findall(r"\] (\d+)/\d+ episodes", err)), default=0)
    with open_store(project / "store") as store:  # reopens as the writer
        assert store.count() >= shown
