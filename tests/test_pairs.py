"""Preference pairs and KTO labels from re-verified trajectories: each chosen side replays cleanly in a
fresh sandbox, each rejected side carries the feedback it got, an edit gives a pair only when it held up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from storekit import copy_store, engine_store, records

from lamsim_tui.curation.export import export
from lamsim_tui.curation.pairs import edit_pair, pairs_of
from lamsim_tui.curation.review import edit, editable, undo
from lamsim_tui.record import Finish, ToolCall
from lamsim_tui.simulator.replay import replay
from lamsim_tui.store import STATUSES, open_store

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return engine_store(tmp_path_factory.mktemp("engine"))


@pytest.fixture(scope="module")
def source(made):
    return records(made)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _action(turn, step) -> dict:
    if turn.kind == "call":
        return {"type": "call", "tool": turn.tool, "arguments": turn.arguments, "thought": turn.content}
    assert isinstance(step.action, Finish)
    return {"type": "finish", "answer": step.action.answer}


def _replayed_chosen(pair):
    """Replay the prompt's calls and then the chosen action in a fresh sandbox; the chosen step."""
    actions = [_action(t, None) for t in pair.prefix if t.kind == "call"]
    actions.append(_action(pair.chosen, pair.chosen_step))
    replayed = replay(pair.record, actions)
    return replayed.steps[len(actions) - 1]


def test_each_recovery_pair_replays_its_chosen_side_cleanly_and_its_rejected_side_has_its_code(source):
    pairs = [p for r in source if r.end_reason == "finished" for p in pairs_of(r)]
    assert len(pairs) > 10
    kinds = {p.rejected_step.codes[0].split(".")[0] for p in pairs}
    assert {"format", "tool", "args"} <= kinds, kinds
    for pair in pairs:
        assert pair.source == "recovery" and pair.rejected_codes, pair.id
        assert pair.rejected_step.has_error or not pair.rejected_step.executed
        step = _replayed_chosen(pair)
        assert not [f for f in step.feedback if f.severity == "error"], (pair.id, step.feedback)
        if isinstance(pair.chosen_step.action, ToolCall):
            assert step.executed and (step.action.tool, step.action.arguments) == (pair.chosen.tool, pair.chosen.arguments)
        # the prompt is the conversation before the rejected step, with no rejected step in it
        assert all(not t.rejected for t in pair.prefix)
        assert all(t.step < pair.step for t in pair.prefix)


def test_pairs_export_in_trls_preference_form(made, tmp_path):
    with open_store(made, readonly=True) as store:
        meta = export(store, tmp_path / "pairs.jsonl", fmt="chat", kind="pairs", status=STATUSES)
    rows = lines(tmp_path / "pairs.jsonl")
    assert rows and meta["counts"]["rows"] == len(rows) == sum(meta["counts"]["pairs_by_source"].values())
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "pairs.jsonl"), split="train")
    assert {"prompt", "chosen", "rejected", "tools"} <= set(ds.column_names)
    for row in ds:
        assert row["prompt"][0]["role"] == "system" and row["prompt"][1]["role"] == "user"
        assert row["prompt"][-1]["role"] in ("user", "tool")
        assert [m["role"] for m in row["chosen"]] == ["assistant"] == [m["role"] for m in row["rejected"]]
        assert row["chosen"] != row["rejected"] and row["rejected_codes"]
        assert "weight" not in row["chosen"][0] and "weight" not in row["rejected"][0]
    assert len({r["id"] for r in rows}) == len(rows)


def test_an_edit_gives_a_pair_only_when_it_held_up(made, tmp_path):
    store_dir = copy_store(made, tmp_path / "store")
    with open_store(store_dir) as store:
        record = next(r for r in store.records(status=["pending", "filtered"])
                      if r.end_reason == "finished" and r.verdict.success
                      and any(s.has_error and isinstance(s.action, ToolCall) for s in r.steps))
        assert edit_pair(record) is None
        fixed = editable(record, observations=False)
        # the operator removes the wrong calls: what is left replays cleanly
        kept = [s for s, orig in zip(fixed["steps"], [s for s in record.steps if s.action is not None], strict=False)
                if not orig.has_error]
        fixed["steps"] = kept
        edited = edit(store, record.id, fixed, note="drop the mistakes")
        pair = edit_pair(edited)
        assert pair is not None and pair.source == "edit"
        assert pair.rejected_step.has_error and pair.rejected_codes
        step = _replayed_chosen(pair)
        assert not [f for f in step.feedback if f.severity == "error"]
        undo(store)
        assert edit_pair(store.get(record.id)) is None  # undone: no pair
        other = next(r for r in store.records(status=["pending", "filtered"])
                     if r.end_reason == "finished" and r.id != record.id)
        bad = editable(other, observations=False)
        bad["final_answer"] = "certainly not this"
        forced = edit(store, other.id, bad, force=True, note="keep it anyway")
        assert forced.review.forced and edit_pair(forced) is None


def test_kto_labels_come_from_the_verdict_and_the_review(made, tmp_path):
    store_dir = copy_store(made, tmp_path / "store")
    from lamsim_tui.curation.review import accept, discard

    with open_store(store_dir) as store:
        listings = store.listings("pending")
        good, bad = listings[0].id, listings[1].id
        accept(store, good)
        discard(store, bad, reason="wrong")
        meta = export(store, tmp_path / "kto.jsonl", fmt="chat", kind="kto")
    assert meta["statuses"] == ["accepted", "discarded"]
    rows = {r["id"]: r for r in lines(tmp_path / "kto.jsonl")}
    assert rows[good]["label"] is True and rows[bad]["label"] is False
    assert meta["counts"]["labels"] == {"desirable": 1, "undesirable": 1}
    assert rows[good]["prompt"][-1]["role"] == "user" and rows[good]["completion"][-1]["role"] == "assistant"
    ds = datasets.load_dataset("json", data_files=str(tmp_path / "kto.jsonl"), split="train")
    assert sorted(ds["label"]) == [False, True]
