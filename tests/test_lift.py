"""bench/lift.py end to end, as a user runs it: the scripted agent, and a model agent talking to a
real HTTP server on loopback (no real model). The real measurement runs on the embedded model."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

from openai_server import OpenAIServer, Reply
from packkit import ROOT, write_pack, write_session

from lamsim_tui.store import open_store

WRONG = '{"thought": "guess", "tool": "finish", "arguments": {"answer": "purple"}}'


def lift(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "bench" / "lift.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _module():
    spec = importlib.util.spec_from_file_location("lift_bench", ROOT / "bench" / "lift.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("lift_bench", module)
    spec.loader.exec_module(module)
    return module


def test_wilson_interval_and_condition_names():
    lift_module = _module()
    assert lift_module.wilson(5, 10) == (0.2366, 0.7634)
    assert lift_module.wilson(7, 10) == (0.3968, 0.8922)
    assert lift_module.wilson(0, 30)[0] == 0.0 and lift_module.wilson(30, 30)[1] == 1.0
    names = [(c.name, c.count, c.placement, c.keep_rejected)
             for c in lift_module.parse_conditions("none,k1,k2@episode,k3+rejected")]
    assert names == [("none", 0, "system", False), ("k1", 1, "system", False), ("k2@episode", 2, "episode", False),
                     ("k3+rejected", 3, "system", True)]


def test_lift_with_the_scripted_agent_runs_the_same_tasks_interleaved(tmp_path):
    write_pack(tmp_path)
    session = write_session(tmp_path, "name: mini\npack: mini\nbudget: {steps: 8}\n")
    out = tmp_path / "out"
    done = lift("--agent", "scripted", "--session", str(session), "-n", "3", "--conditions", "none,k1,k2@episode",
                "--store-tasks", "4", "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "lift.json").read_text())
    (measured,) = result["sessions"]
    rows = measured["episodes"]
    assert [r["condition"] for r in rows] == ["none", "k1", "k2@episode", "k1", "k2@episode", "none",
                                              "k2@episode", "none", "k1"], "rotated per task"
    by_condition = {}
    for row in rows:
        by_condition.setdefault(row["condition"], []).append((row["task"], row["seed"]))
    assert len({tuple(v) for v in by_condition.values()}) == 1, "same tasks and episode seeds in every condition"
    with open_store(out / "store-mini", readonly=True) as store:
        store_tasks = {item.task_id for item in store.listings()}
        assert store.count("accepted") == measured["store"]["accepted_in_store"] > 0
    assert store_tasks and not store_tasks & set(measured["tasks"]), "held-out tasks are not the store's"
    for figures in measured["conditions"].values():
        assert figures["episodes"] == 3
        assert figures["success_ci95"][1] <= 1 and figures["valid_action_rate"] is not None
    markdown = (out / "lift.md").read_text()
    assert "| condition | success | 95% interval" in markdown and "| k2@episode |" in markdown
    assert markdown.strip() in done.stdout
    assert len((out / "records-mini.jsonl").read_text().splitlines()) == 9
    again = lift("--agent", "scripted", "--session", str(session), "-n", "1", "--out", str(out))
    assert again.returncode != 0 and "--reuse-store" in again.stderr + again.stdout


def test_lift_against_a_server_shows_demonstrations_only_where_the_condition_asks(tmp_path):
    write_pack(tmp_path)
    session = write_session(tmp_path, "name: mini\npack: mini\nbudget: {steps: 4}\n")
    out = tmp_path / "out"
    with OpenAIServer(default=Reply(text=WRONG, usage={"prompt_tokens": 100, "completion_tokens": 9,
                                                       "cached_tokens": 60})) as server:
        done = lift("--session", str(session), "--api-base", server.api_base, "--model", "openai/test-model",
                    "-n", "2", "--conditions", "none,k1", "--demos-from", "gold", "--store-tasks", "3",
                    "--out", str(out))
        assert done.returncode == 0, done.stderr
        systems = [r["body"]["messages"][0]["content"] for r in server.requests]
    with_examples = [s for s in systems if "Examples:" in s]
    assert with_examples and len(with_examples) < len(systems)
    result = json.loads((out / "lift.json").read_text())
    figures = result["sessions"][0]["conditions"]
    assert figures["none"]["demonstrations_per_episode"] == 0 and figures["k1"]["demonstrations_per_episode"] == 1
    assert figures["none"]["success_rate"] == 0 and figures["none"]["successes"] == 0
    assert figures["k1"]["prompt_tokens_cached_per_episode"] == 120  # two requests an episode, 60 each
    assert figures["k1"]["prompt_tokens_processed_per_episode"] == 80
    with open_store(out / "store-mini", readonly=True) as store:
        stored = {r.id: r for r in store.records()}
    assert stored and all(r.agent["kind"] == "gold-replay" and r.status == "accepted" for r in stored.values())
    for line in (out / "records-mini.jsonl").read_text().splitlines():
        item = json.loads(line)
        shown = item["record"].get("demonstrations")
        if item["condition"] == "none":
            assert shown is None
        else:
            (ref,) = shown["items"]
            assert ref["id"] in stored and ref["origin"] == "gold" and ref["task_id"] != item["record"]["task"]["id"]
