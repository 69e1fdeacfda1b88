"""Pack code that misbehaves while a run goes on: it prints, leaves threads, blocks in C code,
returns what is not JSON data, raises enormous errors. The run goes on, reports each call for what
it was, stores every episode with its big parts cut, and lamsim exits after its summary."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest
from packkit import MINI_TOOLS, ROOT, write_pack, write_session

from lamsim_tui.agents.base import AgentFactory
from lamsim_tui.agents.replay import ReplayAgent
from lamsim_tui.packs import load_pack
from lamsim_tui.session.config import load_session
from lamsim_tui.simulator.engine import Engine
from lamsim_tui.simulator.runner import STORED_RESULT_CHARS
from lamsim_tui.store import open_store

BAD_TOOLS = MINI_TOOLS + '''

@tool
def loud(sb: Sandbox, item_id: str) -> str:
    """Refuses at length.

    Args:
        item_id: Item id.
    """
    raise ToolError("no " * 2_000_000)


@tool
def huge(sb: Sandbox, item_id: str) -> str:
    """Returns two million characters (20 times what a record keeps; within tool_seconds even when
    three episodes' calls share the GIL on a loaded machine, which ten million were not).

    Args:
        item_id: Item id.
    """
    return "y" * 2_000_000


@tool
def circular(sb: Sandbox, item_id: str) -> dict:
    """Returns a dict that contains itself.

    Args:
        item_id: Item id.
    """
    x = {"id": item_id}
    x["self"] = x
    return x


@tool
def big_number(sb: Sandbox, item_id: str) -> dict:
    """Returns an integer of 5,000 digits.

    Args:
        item_id: Item id.
    """
    return {"n": 10 ** 5000}


@tool
def stuck(sb: Sandbox, item_id: str) -> dict:
    """Blocks in C code for an hour.

    Args:
        item_id: Item id.
    """
    import time
    time.sleep(3600)
    return {}
'''


class ReplayFactory(AgentFactory):
    """Every episode replays the same actions (a model that calls the misbehaving tools)."""

    def __init__(self, actions):
        self.actions = actions

    def describe(self):
        return {"kind": "replay"}

    def for_episode(self, episode_id, seed, gold=None):
        return ReplayAgent(self.actions), {}


def _call(tool):
    return {"tool": tool, "arguments": {"item_id": "I-01"}}


@pytest.fixture
def project(tmp_path):
    write_pack(tmp_path, tools=BAD_TOOLS)
    write_session(tmp_path, """\
        pack: mini
        seed: 4
        concurrency: 4
        budget:
          steps: 8
          tool_seconds: 0.3
          observation_chars: 500
        """)
    return tmp_path


def _run(project, actions, episodes):
    session = load_session(project / "sessions" / "s.yaml")
    pack = load_pack(session.pack_dir())
    with open_store(project / "store") as store:
        summary = asyncio.run(Engine(session, pack, ReplayFactory(actions), store=store, tasks=episodes,
                                     seed=4).run())
        return summary, list(store.records())


def test_results_and_errors_are_cut_and_values_that_are_not_json_are_crashes_not_the_end_of_the_run(project):
    actions = [_call("loud"), _call("huge"), _call("circular"), _call("big_number"),
               {"tool": "finish", "arguments": {"answer": "red"}}]
    summary, records = _run(project, actions, 3)
    assert summary.episodes == len(records) == 3
    for record in records:
        loud, huge, circular, big = record.steps[:4]
        assert loud.codes == ["exec.error"] and len(loud.observation) < 700  # observation_chars 500
        assert len(huge.observation) < 700 and huge.observation.startswith("yyy")
        assert isinstance(huge.result, str) and len(huge.result) < STORED_RESULT_CHARS + 100
        for step in (circular, big):
            assert step.codes == ["exec.crash"] and "not JSON data" in step.crash
        assert len(json.dumps(record.to_dict())) < 3 * STORED_RESULT_CHARS


def test_a_tool_blocked_in_c_code_times_out_on_every_call_and_the_run_ends(project):
    started = time.perf_counter()
    again = {"tool": "stuck", "arguments": {"item_id": "I-02"}}
    summary, records = _run(project, [_call("stuck"), again, {"tool": "finish", "arguments": {"answer": "red"}}], 8)
    took = time.perf_counter() - started
    assert summary.episodes == len(records) == 8
    assert all(step.codes == ["exec.timeout"] for r in records for step in r.steps[:2])
    assert took < 8 * 2 * 0.3 + 5, f"{took:.1f} s"


def _cli(project, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "lamsim_tui", *args], cwd=project,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=timeout)


PRINTING_TOOLS = """import sys
print("printed while the module loads")
""" + MINI_TOOLS.replace('''    item = sb.get("items", item_id)
    if item is None:''', '''    for _ in range(31):
        print("x" * 1_000_000)
    sys.stderr.write("e" * 1_000_000)
    sys.stdout.buffer.write(b"b" * 1_000_000)
    item = sb.get("items", item_id)
    if item is None:''')


def test_what_pack_code_prints_never_reaches_lamsims_stdout_or_stderr(tmp_path):
    write_pack(tmp_path, tools=PRINTING_TOOLS)
    write_session(tmp_path, "pack: mini\ntasks: 4\nagent:\n  kind: scripted\n")
    result = _cli(tmp_path, "run", "sessions/s.yaml", "--headless", "--json", "--store", "store")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)  # --json stays JSON
    assert summary["episodes"] == 4
    assert len(result.stdout) < 20_000 and len(result.stderr) < 20_000
    assert "printed while" not in result.stdout + result.stderr


LINGERING_TOOLS = MINI_TOOLS.replace('''    item = sb.get("items", item_id)
    if item is None:''', '''    import threading, time
    threading.Thread(target=time.sleep, args=(3600,), name="pack-sleeper", daemon=False).start()
    item = sb.get("items", item_id)
    if item is None:''')


def test_lamsim_exits_after_its_summary_though_pack_code_left_threads_running(tmp_path):
    write_pack(tmp_path, tools=LINGERING_TOOLS)
    write_session(tmp_path, "pack: mini\ntasks: 3\nagent:\n  kind: scripted\n")
    started = time.monotonic()
    result = _cli(tmp_path, "run", "sessions/s.yaml", "--headless", "--store", "store", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "episodes          3" in result.stdout
    assert "still running (pack-sleeper" in result.stderr
    assert time.monotonic() - started < 30
