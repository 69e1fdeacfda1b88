"""The headless run as a user drives it: CLI in a subprocess, a real store, `review list --json`."""

import json

from packkit import lamsim

from lamsim_tui.simulator.feedback import AGENT_CODES


def _listed(store):
    result = lamsim("review", "--store", str(store), "list", "--json")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_pilot_run_stores_50_trajectories_covering_every_agent_code_and_is_reproducible(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    result = lamsim("run", "sessions/pilot.yaml", "--headless", "-n", "50", "--agent", "scripted", "--seed", "7",
                    "--store", str(first))
    assert result.returncode == 0, result.stderr
    summary = result.stdout
    for line in ("episodes          50", "success rate", "filter pass rate", "findings by code", "mean steps",
                 "wall time"):
        assert line in summary
    assert "50/50 episodes" in result.stderr  # the progress bar

    records = _listed(first)
    assert len(records) == 50
    assert {r["status"] for r in records} <= {"pending", "filtered"}
    codes = {code for r in records for s in r["steps"] for code in s["feedback"]}
    assert set(AGENT_CODES) <= codes, f"missing: {set(AGENT_CODES) - codes}"
    for record in records:
        assert record["query"] and record["template"] and record["verdict"]["reasons"] is not None
        assert all("action" in s and "observation" in s for s in record["steps"])
        if record["status"] == "filtered":
            assert record["verdict"]["filters_failed"]

    assert lamsim("run", "sessions/pilot.yaml", "--headless", "-n", "50", "--agent", "scripted", "--seed", "7",
                  "--store", str(second)).returncode == 0

    def runs(records):
        return sorted((r["task_id"], json.dumps([s["action"] for s in r["steps"]], sort_keys=True)) for r in records)

    assert runs(_listed(second)) == runs(records)


def test_second_writer_on_the_same_store_gets_a_clear_error(tmp_path):
    from lamsim_tui.store import open_store

    store = tmp_path / "st"
    with open_store(store):
        result = lamsim("run", "sessions/pilot.yaml", "--headless", "-n", "2", "--agent", "scripted",
                        "--store", str(store))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and str(store) in result.stderr


def test_a_rerun_with_the_same_seed_says_why_it_is_all_filtered(tmp_path):
    """The same seed draws the same tasks; the scripted agent acts the same way; dedupe filters what is
    already kept, and the run says so instead of leaving a new user to wonder."""
    store = tmp_path / "st"
    args = ("run", "sessions/pilot.yaml", "--headless", "-n", "6", "--agent", "scripted", "--seed", "3",
            "--store", str(store))
    first = lamsim(*args)
    assert first.returncode == 0, first.stderr
    assert "duplicates" not in first.stderr
    kept = sum(1 for r in _listed(store) if r["status"] == "pending")
    assert kept > 0
    again = lamsim(*args)
    assert again.returncode == 0, again.stderr
    assert (f"lamsim: duplicates: {kept} of 6 trajectories repeat one already kept (the same task, the same "
            "actions) and were filtered by dedupe. Seed 3 draws the same tasks on every run") in again.stderr
    assert "--seed" in again.stderr
    other = lamsim(*args[:-4], "--seed", "4", "--store", str(store))
    assert other.returncode == 0 and "duplicates" not in other.stderr
