"""Helpers for store, review and export tests: real stores filled by a real engine run."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

from packkit import write_pack, write_session

from lamsim_tui.record import Trajectory
from lamsim_tui.store import open_store

MINI_SESSION = """\
pack: mini
seed: 11
tasks: 24
attempts: 1
agent:
  kind: scripted
  mistake_rate: 0.6
"""


def engine_store(root: Path, session_text: str = MINI_SESSION) -> Path:
    """Run the scripted agent on the mini pack through the real CLI; return the store folder."""
    from lamsim_tui.cli import main

    write_pack(root)
    session = write_session(root, session_text)
    store_dir = root / "store"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", str(session), "--headless", "--store", str(store_dir)])
    assert code == 0, err.getvalue()
    return store_dir


def copy_store(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("writer.lock"))
    return target


def records(store_dir: Path) -> list[Trajectory]:
    with open_store(store_dir, readonly=True) as store:
        return list(store.records())
