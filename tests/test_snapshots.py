"""SVG snapshots of the main screens at a fixed size, built with the same factory as `lamsim`.

Deterministic by construction: fixed seeds, one episode at a time, stable trajectory ids, no
clock, rates or durations on screen (`snapshot=True`), cursor blink off, watchers off.
Update deliberately (after a Textual bump or a layout change): `pytest tests/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lamsim_tui.testing.ui import fill_store, make_project, run_session, scripted_records, wait_for, wait_ready
from lamsim_tui.ui.app import make_app

SIZE = (160, 48)


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    session = make_project(tmp_path, tasks=8, concurrency=1)
    fill_store(session, scripted_records(session))
    return session


def test_live_session(snap_compare, tmp_path: Path):
    session = make_project(tmp_path, tasks=3, concurrency=1)

    async def run_before(pilot):
        await run_session(pilot)
        await pilot.press("f")  # follow the newest episode (which one the panes follow is timing otherwise)
        await pilot.pause()
        # The side panes redraw at a fixed rate: on a busy machine the last redraw may still be pending.
        await wait_for(pilot, lambda: pilot.app.screen.settled, what="the live panes to finish drawing")
        await pilot.pause()

    assert snap_compare(make_app(session, watch=False, snapshot=True, scripted_cps=0), terminal_size=SIZE,
                        run_before=run_before)


def test_review_queue(snap_compare, filled: Path):
    async def run_before(pilot):
        await wait_ready(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: pilot.app.screen.table.row_count == len(pilot.app.queue), what="the queue")
        await pilot.press("j")

    assert snap_compare(make_app(filled, watch=False, snapshot=True), terminal_size=SIZE, run_before=run_before)


def test_edit_with_replay_preview(snap_compare, filled: Path):
    async def run_before(pilot):
        app = pilot.app
        await wait_ready(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.table.row_count > 0, what="the queue")
        record = app.store.get(app.screen.table.current_id)
        await pilot.press("e")
        edit = app.screen
        steps = [{"thought": f"call {c.tool}", "tool": c.tool, "arguments": c.arguments} for c in record.task.gold_calls]
        steps.insert(1, {"thought": "check the id", "tool": "get_case", "arguments": {"case_id": 42}})
        edit.query_one("#editor").load_text(json.dumps({"steps": steps, "final_answer": record.task.gold_answer},
                                                       indent=2))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: edit.preview is not None, what="the replay")

    assert snap_compare(make_app(filled, watch=False, snapshot=True), terminal_size=SIZE, run_before=run_before)


def test_stats(snap_compare, filled: Path):
    async def run_before(pilot):
        app = pilot.app
        await wait_ready(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: app.screen.table.row_count > 2, what="the queue")
        await pilot.press("a", "a", "d", "enter", "4")
        await wait_for(pilot, lambda: app.screen.stats is not None, what="statistics")

    assert snap_compare(make_app(filled, watch=False, snapshot=True), terminal_size=SIZE, run_before=run_before)
