"""Review lifecycle on real engine trajectories: accept, discard, undo, audit, edits checked by replay."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import subprocess
import sys

import pytest
from packkit import ROOT
from storekit import copy_store, engine_store

from lamsim_tui.curation.review import (
    EditRefused,
    ReviewError,
    accept,
    discard,
    edit,
    editable,
    editable_text,
    history,
    undo,
)
from lamsim_tui.curation.stats import compute
from lamsim_tui.record import ToolCall
from lamsim_tui.simulator.replay import replay
from lamsim_tui.store import open_store


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return engine_store(tmp_path_factory.mktemp("engine"))


@pytest.fixture
def store_dir(made, tmp_path):
    return copy_store(made, tmp_path / "store")


def _first(store, status, template=None):
    for listing in store.listings(status):
        if template is None or listing.template == template:
            return store.get(listing.id)
    raise AssertionError(f"no {status} trajectory")


def test_accept_discard_rescue_and_audit_trail(store_dir):
    with open_store(store_dir) as store:
        a = _first(store, "pending")
        f = _first(store, "filtered")
        accept(store, a.id[:7], note="clean run", tags="good,short")
        discarded = _first(store, "pending").id
        discard(store, discarded, reason=["looping", "noisy"], note="wanders")
        accept(store, f.id, note="rescued: the filter was too strict")
        with pytest.raises(ReviewError, match="already accepted"):
            accept(store, a.id)
    with open_store(store_dir, readonly=True) as store:
        got = store.get(a.id)
        assert got.status == "accepted"
        entry = got.history[-1]
        assert entry.action == "accept" and entry.note == "clean run" and entry.tags == ("good", "short")
        assert entry.user == getpass.getuser() and entry.from_status == "pending" and entry.at
        assert store.get(f.id).status == "accepted"
        trail = history(store)
        assert [(record_id, e.action) for record_id, e in trail] == [
            (a.id, "accept"), (discarded, "discard"), (f.id, "accept")]
        assert trail[1][1].tags == ("looping", "noisy") and trail[1][1].note == "wanders"
        assert [e.seq for _, e in trail] == [1, 2, 3]


def test_undo_reverts_the_last_decisions_in_turn_even_after_reopening(store_dir):
    with open_store(store_dir) as store:
        first, second = [listing.id for listing in store.listings("pending")[:2]]
        accept(store, first)
        discard(store, second, reason="bad")
        discard(store, first, reason="changed my mind")
    with open_store(store_dir) as store:  # the undo stack is rebuilt from the stored audit trail
        record, entry = undo(store)
        assert (record.id, record.status, entry.action) == (first, "accepted", "discard")
        record, entry = undo(store)
        assert (record.id, record.status) == (second, "pending")
        record, entry = undo(store)
        assert (record.id, record.status) == (first, "pending")
        with pytest.raises(ReviewError, match="nothing to undo"):
            undo(store)
        actions = [e.action for e in store.get(first).history]
        assert actions == ["accept", "discard", "undo", "undo"]  # undo is audited too
        assert all(e.undone_by for e in store.get(first).history if e.action != "undo")


def _wrong_answer_record(store):
    """A real trajectory whose final answer is wrong: replay a good one with a wrong answer."""
    good = _first(store, "pending", "item_colour")
    call = next(s.action for s in good.steps if isinstance(s.action, ToolCall) and s.executed and not s.feedback)
    wrong = replay(
        good,
        [
            {"type": "call", "tool": call.tool, "arguments": call.arguments, "thought": "Look the item up."},
            {"type": "finish", "answer": "purple"},
        ],
    )
    assert wrong.verdict.success is False and wrong.verdict.answer_correct is False
    wrong = wrong.replace(id="f" * 32, status="filtered")
    store.add(wrong)
    return store.get(wrong.id)


def test_an_edit_that_fixes_a_wrong_answer_is_accepted_with_recomputed_observations(store_dir):
    with open_store(store_dir) as store:
        wrong = _wrong_answer_record(store)
        tool_observation = wrong.steps[0].observation
        edited = editable(wrong)
        assert edited["final_answer"] == "purple"
        edited["final_answer"] = wrong.task.gold_answer
        edited["steps"][0]["observation"] = "the operator typed this"  # never trusted
        updated = edit(store, wrong.id[:6], edited, note="fixed the colour")
    with open_store(store_dir, readonly=True) as store:
        got = store.get(wrong.id)
    assert updated == got
    assert got.status == "accepted" and got.verdict.success is True
    assert got.final_answer == wrong.task.gold_answer
    assert got.steps[0].observation == tool_observation != "the operator typed this"
    assert got.review.original["final_answer"] == "purple"
    assert got.review.original["steps"] == wrong.to_dict()["steps"]
    assert '-  "final_answer": "purple"' in got.review.diff
    entry = got.history[-1]
    assert entry.action == "edit" and entry.forced is False and entry.from_status == "filtered"


def test_an_edit_with_bad_arguments_is_refused_with_the_feedback_codes(store_dir):
    with open_store(store_dir) as store:
        wrong = _wrong_answer_record(store)
        edited = editable(wrong)
        edited["final_answer"] = wrong.task.gold_answer
        edited["steps"][0]["arguments"] = {"itemid": "I-01"}  # a typo in the argument name
        with pytest.raises(EditRefused) as refused:
            edit(store, wrong.id, edited)
        assert "args.missing" in refused.value.codes or "args.unexpected" in refused.value.codes
        assert "args." in str(refused.value) and "--force" in refused.value.hint
    with open_store(store_dir, readonly=True) as store:
        assert store.get(wrong.id) == wrong  # nothing changed


def test_a_forced_edit_needs_a_note_and_is_recorded_as_forced(store_dir):
    with open_store(store_dir) as store:
        wrong = _wrong_answer_record(store)
        edited = editable(wrong)
        edited["steps"].insert(0, {"tool": "get_item", "arguments": {}, "thought": "oops"})
        with pytest.raises(ReviewError, match="needs a note"):
            edit(store, wrong.id, edited, force=True)
        got = edit(store, wrong.id, edited, force=True, note="keeping the recovery on purpose")
        assert got.status == "accepted" and got.review.forced is True
        assert got.history[-1].forced is True
        assert any("args.missing" in p for p in got.history[-1].replay_problems)
        overall = compute(store)["overall"]
        assert overall["edits"] == 1 and overall["forced_edits"] == 1
        # undo puts the original trajectory back
        record, entry = undo(store)
        assert entry.action == "edit"
        assert record.steps == wrong.steps and record.status == "filtered"
        stored_review = record.to_dict()["review"]
        assert "original" not in stored_review and "forced" not in stored_review
        assert compute(store)["overall"]["forced_edits"] == 0


def test_editable_json_round_trips_to_the_same_actions(store_dir):
    with open_store(store_dir, readonly=True) as store:
        record = _first(store, "pending", "paint")
    from lamsim_tui.curation.review import actions_from_editable, parse_editable

    data = parse_editable(editable_text(record), where="x.json")
    actions = actions_from_editable(data)
    calls = [s.action for s in record.steps if isinstance(s.action, ToolCall)]
    assert [(a["tool"], a["arguments"]) for a in actions if a["type"] == "call"] == [
        (c.tool, c.arguments) for c in calls
    ]
    assert actions[-1] == {"type": "finish", "answer": record.final_answer, "thought": actions[-1]["thought"]}
    with pytest.raises(ReviewError) as bad:
        parse_editable('{"steps": [\n  {"tool": "x",}\n]}', where="edit.json")
    assert "edit.json:2" in str(bad.value)
    with pytest.raises(ReviewError, match=r"steps\[0\]"):
        actions_from_editable({"steps": [{"tool": "x", "arguments": [1]}]})


# ----- through the command line, as a user would -----------------------------------------------------


def lamsim(*args, env=None):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lamsim_tui", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_cli_list_json_show_accept_and_filters(store_dir):
    out = lamsim("review", "--store", str(store_dir), "list", "--json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    with open_store(store_dir, readonly=True) as store:
        assert [r["id"] for r in rows] == store.ids()
    row = rows[0]
    assert {"id", "query", "template", "status", "verdict", "steps"} <= set(row)
    step = row["steps"][0]
    assert {"action", "observation", "feedback"} <= set(step)
    coded = [r for r in rows if any(s["feedback"] for s in r["steps"])]
    code = next(c for r in coded for s in r["steps"] for c in s["feedback"])
    family = code.split(".")[0]
    out = lamsim(
        "review", "--store", str(store_dir), "list", "--json", "--code", family, "--status", "pending,filtered"
    )
    listed = [json.loads(line) for line in out.stdout.splitlines()]
    assert listed and all(any(c.startswith(family + ".") for s in r["steps"] for c in s["feedback"]) for r in listed)
    out = lamsim("review", "--store", str(store_dir), "list", "--template", "paint")
    assert out.returncode == 0 and "paint" in out.stdout and "item_colour" not in out.stdout

    target = next(r for r in rows if r["status"] == "pending")["id"]
    out = lamsim("review", "--store", str(store_dir), "accept", target[:8], "--note", "ok")
    assert out.returncode == 0 and target in out.stdout
    out = lamsim("review", "--store", str(store_dir), "show", target[:8])
    assert out.returncode == 0 and "accept pending -> accepted" in out.stdout and "note: ok" in out.stdout
    out = lamsim("review", "--store", str(store_dir), "undo")
    assert out.returncode == 0 and "pending again" in out.stdout


def test_cli_edit_through_editor_replays_and_accepts(store_dir, tmp_path):
    with open_store(store_dir) as store:
        wrong = _wrong_answer_record(store)
    fixer = tmp_path / "fix_answer.py"
    fixer.write_text(
        "import json, sys\np = sys.argv[1]\nd = json.load(open(p))\n"
        f"d['final_answer'] = {wrong.task.gold_answer!r}\njson.dump(d, open(p, 'w'))\n"
    )
    out = lamsim(
        "review",
        "--store",
        str(store_dir),
        "edit",
        wrong.id[:8],
        env={"EDITOR": f"{sys.executable} {fixer}", "VISUAL": ""},
    )
    assert out.returncode == 0, out.stderr
    assert "edited and accepted" in out.stdout and "purple" in out.stdout  # the diff is shown
    with open_store(store_dir, readonly=True) as store:
        assert store.get(wrong.id).verdict.success is True


def test_cli_refused_edit_and_busy_store_are_one_clear_message(store_dir, tmp_path):
    with open_store(store_dir) as store:
        wrong = _wrong_answer_record(store)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"steps": [{"tool": "get_item", "arguments": {}}], "final_answer": "red"}))
        out = lamsim("review", "--store", str(store_dir), "accept", wrong.id)  # the store is open here
        assert out.returncode == 2 and "open for writing by another process" in out.stderr
        assert "Traceback" not in out.stderr
    out = lamsim("review", "--store", str(store_dir), "edit", wrong.id, "--file", str(bad))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "args.missing" in out.stderr and str(bad) in out.stderr


def test_cli_show_never_passes_terminal_escapes_through(tmp_path):
    import random

    from lamsim_tui.testing.synthetic import make_record

    record = make_record(random.Random(3), 0)
    first = dataclasses.replace(record.steps[0], thought="\x1b[2J\x1b[31mred alert\x1b[0m")
    record = record.replace(steps=(first, *record.steps[1:]))
    with open_store(tmp_path / "s") as store:
        store.add(record)
    out = lamsim("review", "--store", str(tmp_path / "s"), "show", record.id[:6])
    assert out.returncode == 0 and "red alert" in out.stdout and "\x1b" not in out.stdout
    assert "\\x1b[31mred alert" in out.stdout  # shown as a visible escape, not swallowed
