"""`lamsim [SESSION] --agent scripted|embedded|model --tasks N --seed S` opens the app with those
settings: the real command in a pseudo-terminal, reporting what it opened at its first paint."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

from lamsim_tui.testing.ui import make_project


def open_app(args: list[str], cwd: Path) -> dict:
    """Run `python -m lamsim_tui ARGS` in a 120x36 pseudo-terminal until its first paint; what it reported."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    out = cwd / "paint.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "TERM": "xterm-256color", "LAMSIM_BENCH_FIRST_PAINT": f"{time.time()}:{out}"}
    proc = subprocess.Popen([sys.executable, "-m", "lamsim_tui", *args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=cwd, env=env, start_new_session=True)
    os.close(slave)

    def drain() -> None:
        try:
            while os.read(master, 65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert out.exists(), f"the app did not paint (exit {proc.returncode})"
    return json.loads(out.read_text())


def test_the_app_takes_agent_tasks_and_seed_from_the_command_line(tmp_path: Path):
    session = make_project(tmp_path, tasks=4, seed=7)
    text = session.read_text().replace("kind: scripted", "kind: embedded")
    session.write_text(text)
    report = open_app(["--agent", "scripted", "--tasks", "2", "--seed", "11", str(session)], tmp_path)
    assert report["session"] == {"agent": "scripted", "tasks": 2, "seed": 11}
    assert report["litellm_imported"] is False, "a scripted run never imports the model client"
    report = open_app([str(session), "-n", "3"], tmp_path)  # the flags may also follow the session
    assert report["session"] == {"agent": "embedded", "tasks": 3, "seed": 7}


def test_bad_flags_are_one_clear_message(tmp_path: Path):
    session = make_project(tmp_path, tasks=2)
    lamsim = [sys.executable, "-m", "lamsim_tui"]
    for args, expected in ((["--agent", "robot"], "invalid choice: 'robot'"),
                           (["--agent", "model", str(session)], "agent.models"),
                           (["--tasks", "0", str(session)], "--tasks must be at least 1")):
        done = subprocess.run([*lamsim, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, (args, done.stderr)
        assert expected in done.stderr and "Traceback" not in done.stderr, done.stderr
