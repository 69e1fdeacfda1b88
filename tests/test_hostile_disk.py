"""A full disk stops a run at once, with one message, and loses nothing it reported as stored.

The disk is a real 1 MB tmpfs where this machine lets the test mount one (root with
CAP_SYS_ADMIN), else the file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored): the journal write
then fails with EFBIG, a real error from the kernel, on the same path as ENOSPC.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys

import pytest
from packkit import ROOT

from lamsim_tui.store import open_store

PROGRESS = re.compile(r"\] (\d+)/(\d+) episodes")
LIMIT = 1 << 20


def _can_mount() -> bool:
    return os.geteuid() == 0 and sys.platform.startswith("linux")


@pytest.fixture(params=["tmpfs", "rlimit"])
def small_disk(request, tmp_path):
    """(folder on a 1 MB disk, preexec for the child, how the disk is full)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if request.param == "tmpfs":
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={LIMIT}", "tmpfs", str(mount)],
                              capture_output=True) if _can_mount() else None
        if done is None or done.returncode != 0:
            pytest.skip("this machine does not let the test mount a tmpfs (the rlimit case covers it)")
        try:
            yield mount, None, "tmpfs"
        finally:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)
        return

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))

    yield mount, limit_file_size, "rlimit"


def test_a_full_disk_stops_the_run_at_once_with_one_message_and_keeps_what_it_reported(small_disk):
    folder, preexec, how = small_disk
    store = folder / "store"
    result = subprocess.run(
        [sys.executable, "-m", "lamsim_tui", "run", "sessions/pilot.yaml", "--headless", "-n", "300",
         "--agent", "scripted", "--concurrency", "4", "--store", str(store)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300,
        preexec_fn=preexec)
    assert result.returncode == 2, (how, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("lamsim:")]
    assert len(errors) == 1, result.stderr
    assert "could not write" in errors[0] and str(store) in errors[0] and "stopped at once" in errors[0]
    assert ("No space left" in errors[0]) if how == "tmpfs" else ("too large" in errors[0])
    reported = max((int(m.group(1)) for m in PROGRESS.finditer(result.stderr)), default=0)
    assert reported < 300, "the run must stop at the failed write, not run every episode for nothing"
    with open_store(store, readonly=True) as opened:
        stored = opened.count()
    said = int(re.search(r"(\d+) episode\(s\) stored before it are safe", errors[0]).group(1))
    assert reported <= said == stored  # the message counts exactly what the store holds
