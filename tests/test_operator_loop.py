"""The operator's loop (issue 14): what a person at the keyboard sees and can do, through the real app
(`App.run_test()` and the Pilot), a real scripted session and a real store in a temporary folder.

Each bug the issue lists has a test here that failed before its fix. Waits are on conditions,
never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from lamsim_tui.record import Trajectory
from lamsim_tui.testing.ui import (
    fill_store,
    make_project,
    screen_lines,
    screen_text,
    scripted_records,
    wait_for,
    wait_ready,
)
from lamsim_tui.ui.app import make_app

SIZE = (160, 48)


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, list[Trajectory]]:
    session = make_project(tmp_path, tasks=12, concurrency=1)
    records = scripted_records(session)
    fill_store(session, records)
    return session, records


def open_store_of(session: Path, readonly: bool = True):
    from lamsim_tui.session.config import load_session
    from lamsim_tui.store import open_store

    return open_store(load_session(session).store_dir(), readonly=readonly)


# ----- the keyboard never dies -------------------------------------------------------------------------


def test_keys_work_after_the_focused_step_block_is_removed(tmp_path: Path):
    """Focus a step block in the Agent pane, let the next episode replace the blocks: keys still work."""
    session = make_project(tmp_path, tasks=4, concurrency=1, mistake_rate=0.6)

    async def scenario():
        app = make_app(session, watch=False, scripted_cps=400)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("r")
            live = app.screen
            await wait_for(pilot, lambda: len(live.query("StepBlock")) >= 2, timeout=30, what="two step blocks")
            await pilot.press("p")  # hold the episode still while tabbing to its blocks
            await wait_for(pilot, lambda: live.settled, what="the panes to redraw")
            first = live.followed
            # Tab along as a user would until the last step block has the focus.
            for _ in range(30):
                blocks = list(live.query("StepBlock"))
                if app.focused is blocks[-1]:
                    break
                await pilot.press("tab")
            assert type(app.focused).__name__ == "StepBlock"
            await pilot.press("p")
            await wait_for(pilot, lambda: live.followed != first, timeout=30, what="the next episode")
            await wait_for(pilot, lambda: live.settled, what="the panes to redraw")
            await pilot.pause()
            focused = app.focused
            assert focused is None or focused.is_attached, f"focus left on a removed widget: {focused!r}"
            assert "Start" in screen_text(app), "the footer shows the screen's keys again"
            await pilot.press("2")
            assert type(app.screen).__name__ == "ReviewScreen", "a key still switches screens"
            await pilot.press("1", "x")
            await wait_for(pilot, lambda: app.engine is None, timeout=30, what="the stop")

    run(scenario())


# ----- stop -------------------------------------------------------------------------------------------


def test_a_stopped_episode_reads_cancelled_and_nothing_claims_to_run(tmp_path: Path):
    session = make_project(tmp_path, tasks=6, concurrency=1)

    async def scenario():
        app = make_app(session, watch=False, scripted_cps=60)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("r")
            live = app.screen
            await wait_for(pilot, lambda: app.live.running and app.live.streamed_chars > 20, timeout=30,
                           what="an episode streaming")
            stopped = live.followed
            await pilot.press("x")
            await wait_for(pilot, lambda: app.engine is None and app.run_state == "idle", timeout=30, what="the stop")
            await wait_for(pilot, lambda: live.settled, what="the panes to redraw")
            await pilot.pause()
            text = screen_text(app)
            assert "running 1" not in text and "running 0" in text
            if stopped in app.store:  # an engine that keeps the cancelled episode says where
                assert f"cancelled (stored as #{app.store.number(stopped)})" in text
            else:
                assert "cancelled (not stored)" in text
            assert "chars/s" not in text, "no stream rate once nothing runs"
            assert "▌" not in text, "no typing cursor on a cancelled episode"
            assert "ETA" not in text
            assert app.live.episodes[stopped].cancelled

    run(scenario())


def test_the_idle_progress_bar_does_not_animate(tmp_path: Path):
    session = make_project(tmp_path, tasks=2)

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.pause()
            animated = [w for w in app.screen.walk_children() if w.auto_refresh]
            assert not animated, f"widgets repainting on a timer while idle: {animated}"

    run(scenario())


# ----- the empty queue says what is true --------------------------------------------------------------


def test_a_filter_that_matches_nothing_says_so(filled):
    session, records = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count == len(app.queue) > 0, what="the queue")
            await pilot.press("slash", *"no-such-words-anywhere", "enter")
            await wait_for(pilot, lambda: review.table.row_count == 0, what="the filter")
            await pilot.pause()
            text = screen_text(app)
            assert f"0 of {len(app.queue)} match" in text and "escape clears" in text
            assert "The queue is empty" not in text
            await pilot.press("escape")
            assert review.table.row_count == len(app.queue)

    run(scenario())


def test_a_store_held_by_another_process_is_named_not_called_empty(tmp_path: Path):
    import os

    session = make_project(tmp_path, tasks=2)
    holder = open_store_of(session, readonly=False)
    try:
        async def scenario():
            app = make_app(session, watch=False)
            async with app.run_test(size=SIZE) as pilot:
                await wait_ready(pilot)
                await pilot.press("2")
                await pilot.pause()
                text = screen_text(app)
                assert f"held by pid {os.getpid()}" in text
                assert "The queue is empty" not in text

        run(scenario())
    finally:
        holder.close()


# ----- one stable number ----------------------------------------------------------------------------


def test_one_number_for_a_trajectory_live_in_the_queue_and_the_store_across_undo_and_restart(tmp_path: Path):
    session = make_project(tmp_path, tasks=3, concurrency=1, mistake_rate=0.3)

    async def first_run():
        app = make_app(session, watch=False, scripted_cps=0)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            for run_number in (1, 2):  # the second run's episodes come after the first's in the store
                await pilot.press("r")
                await wait_for(pilot, lambda: app.run_state == "finished", timeout=60, what="the run")
                await wait_for(pilot, lambda n=run_number: app.store.count() == 3 * n and
                               all(e.number for e in app.live.episodes.values()), what="the writes")
            live_numbers = {eid: e.number for eid, e in app.live.episodes.items()}
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count == len(app.queue), what="the queue")
            shown = {rid: review.table.cells_of(rid)[0].plain for rid in review.table.ids}
            first = review.table.current_id
            await pilot.press("a")  # accept one: the others keep their numbers
            await pilot.press("u")  # and undo it: it comes back with its own number
            await wait_for(pilot, lambda: first in review.table, what="the undo")
            after = {rid: review.table.cells_of(rid)[0].plain for rid in review.table.ids}
            await pilot.press("a")
            await pilot.press("3")
            browser = app.screen
            await wait_for(pilot, lambda: first in browser.table, what="the store browser")
            in_browser = browser.table.cells_of(first)[0].plain
            return live_numbers, shown, after, first, in_browser

    live_numbers, shown, after, first, in_browser = run(first_run())
    with open_store_of(session) as store:
        expected = {record_id: store.number(record_id) for record_id in store.ids()}
    assert live_numbers == {eid: expected[eid] for eid in live_numbers}, \
        "the live pane numbers each episode by its place in the store"
    assert shown == {rid: str(expected[rid]) for rid in shown}, "the queue shows the same numbers"
    assert after == shown, "undo changes no number"
    assert in_browser == str(expected[first])

    async def restarted():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count == len(app.queue) > 0, what="the queue")
            return {rid: review.table.cells_of(rid)[0].plain for rid in review.table.ids}

    again = run(restarted())
    assert again == {rid: str(expected[rid]) for rid in again}, "a restart changes no number"


# ----- columns and narrow terminals ---------------------------------------------------------------


def _long_template_store(session: Path, n: int = 30) -> None:
    import random

    from lamsim_tui.testing.synthetic import make_record

    rng = random.Random(5)
    with open_store_of(session, readonly=False) as store, store.batch():
        for i in range(n):
            template = ("escalate_the_customers_oldest_open_case_to_tier_two_support" if i % 2
                        else "total_value_of_orders_refunded_last_quarter_by_region")
            store.add(make_record(rng, i, template=template))


def test_findings_stay_readable_beside_long_template_names(tmp_path: Path):
    session = make_project(tmp_path, tasks=2)
    _long_template_store(session)

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=(160, 45)) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count == 30, what="the queue")
            await pilot.pause()
            lines = screen_lines(app)
            checked = 0
            for row in review.listed_rows()[:15]:
                if not row.listing.findings:
                    continue
                code = max(row.listing.findings, key=lambda c: row.listing.findings[c])
                line = next(line for line in lines if f" {row.listing.number} " in line[:12])
                assert ("✗" in line or "!" in line) and code[:10] in line, line
                checked += 1
            assert checked

    run(scenario())


@pytest.mark.parametrize("size", [(90, 28), (100, 30)])
def test_a_small_terminal_keeps_the_episodes_list_and_the_agent_pane(tmp_path: Path, size):
    session = make_project(tmp_path, tasks=3, concurrency=1)

    async def scenario():
        app = make_app(session, watch=False, scripted_cps=0)
        async with app.run_test(size=size) as pilot:
            await wait_ready(pilot)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.run_state == "finished", timeout=60, what="the run")
            live = app.screen
            await wait_for(pilot, lambda: live.settled, what="the panes")
            await pilot.pause()
            agent, episodes, left = live.query_one("#agent"), live.query_one("#episodes"), live.query_one("#live-left")
            assert agent.size.height >= 12, f"the Agent pane gets {agent.size.height} rows"
            assert agent.size.width >= 48, f"the Agent pane gets {agent.size.width} columns"
            assert episodes.size.height >= 4, f"the Episodes list gets {episodes.size.height} rows"
            assert left.size.width < 48
            assert all(e.template[:8] in screen_text(app) for e in app.live.episodes.values())
            followed = app.live.episodes[live.followed]
            assert followed.query[:25] in screen_text(app), "the query shows in the Task pane, not pushed out"

    run(scenario())


# ----- the editor, the store browser, the detail ----------------------------------------------------


def _edit_changing_an_observation(record: Trajectory) -> tuple[dict, int]:
    """The record's editable JSON with one call's argument changed (its observation must change)."""
    from lamsim_tui.curation.review import editable

    edited = editable(record)
    for i, step in enumerate(edited["steps"]):
        if step["tool"] == "get_case":
            step["arguments"] = {"case_id": "C-0001"}
            return edited, i
        if step["tool"] == "list_agents":
            step["arguments"] = {"team": "billing"}
            return edited, i
    raise AssertionError("no call to change in this record")


def test_a_replay_refreshes_the_observations_in_the_editor(filled):
    session, records = filled
    from lamsim_tui.curation.review import editable

    target = next(r for r in records if any(s["tool"] in ("get_case", "list_agents")
                                            for s in editable(r)["steps"]))

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count > 0, what="the queue")
            if target.id not in review.table:
                pytest.skip("the chosen record is not queued")
            review.table.focus_row(target.id)
            await pilot.press("e")
            edit = app.screen
            area = edit.query_one("#editor")
            edited, index = _edit_changing_an_observation(target)
            stale = edited["steps"][index]["observation"]
            area.load_text(json.dumps(edited, indent=2))
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: edit.preview is not None, what="the replay")
            await pilot.pause()
            shown = json.loads(area.text)["steps"][index]["observation"]
            replayed = [s for s in edit.preview.steps if s.action is not None][index].observation
            assert shown == replayed != stale, "the editor shows what the replay observed"
            assert edit.preview_text == area.text, "the refreshed text still counts as replayed: ctrl+y saves"

    run(scenario())


def test_steps_that_could_not_be_parsed_are_named_in_the_editor(filled):
    session, records = filled
    target = next((r for r in records if any(s.action is None for s in r.steps)), None)
    assert target is not None, "the scripted run made an unparseable reply"
    missing = [s.index + 1 for s in target.steps if s.action is None]

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count > 0, what="the queue")
            if target.id not in review.table:
                pytest.skip("the chosen record is not queued")
            review.table.focus_row(target.id)
            await pilot.press("e")
            await pilot.pause()
            text = screen_text(app)
            assert "could not be parsed" in text
            assert f"step {missing[0]}" in text

    run(scenario())


def test_the_store_browser_shows_reason_note_and_edits(filled):
    session, records = filled
    from lamsim_tui.curation import review as reviewing

    with open_store_of(session, readonly=False) as store:
        queued = [listing.id for listing in store.listings(("pending", "filtered"))]
        reviewing.discard(store, queued[0], reason="loop, wrong-tool", note="wanders off")
        reviewing.accept(store, queued[1], note="textbook")
        record = store.get(queued[2])
        edited = reviewing.editable(record)
        edited["final_answer"] = "not the answer"
        reviewing.edit(store, queued[2], edited, force=True, note="gold is stale")

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("3")
            browser = app.screen
            await wait_for(pilot, lambda: browser.table.row_count == 3, what="the store browser")
            await pilot.pause()
            text = screen_text(app)
            assert "loop, wrong-tool" in text and "forced edit" in text and "textbook" in text
            browser.table.focus_row(queued[0])
            await wait_for(pilot, lambda: browser.shown == queued[0], what="the detail")
            await pilot.pause()
            text = screen_text(app)
            assert "wanders off" in text and "reason" in text

    run(scenario())


def test_a_decision_is_confirmed_without_a_toast_over_the_detail(filled):
    session, _ = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count > 2, what="the queue")
            await pilot.press("a")
            await pilot.pause()
            assert not app.screen.query("Toast"), "a toast would cover the last lines of the detail"
            assert "accepted #" in screen_text(app), "the confirmation is in the status line"

    run(scenario())


def test_a_rejected_action_shows_its_error_once(filled):
    session, records = filled
    target = next(r for r in records if any(not s.executed and s.feedback for s in r.steps))
    step = next(s for s in target.steps if not s.executed and s.feedback)
    message = step.feedback[0].message[:24]

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count > 0, what="the queue")
            if target.id not in review.table:
                pytest.skip("the chosen record is not queued")
            review.table.focus_row(target.id)
            await wait_for(pilot, lambda: review.shown == target.id, what="the detail")
            plain = review.query_one("#detail").content.plain
            assert plain.count(message) == 1, plain

    run(scenario())


def test_the_stream_wraps_at_spaces_and_the_feedback_pane_follows_the_newest(tmp_path: Path):
    from lamsim_tui.events import EpisodeStarted, FeedbackGiven, StepProposed, TextDelta

    session = make_project(tmp_path, tasks=2)
    words = [f"word{i:03d}" for i in range(60)]

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            eid = "e" * 32
            app._inbox.extend([EpisodeStarted(eid, "t1", "case_status", "a query", 0, (), None)])
            for index in range(14):
                app._inbox.append(StepProposed(eid, index, "thinking", {"type": "call", "tool": "get_case",
                                                                          "arguments": {"case_id": "C-1"}}, "{}"))
                app._inbox.append(FeedbackGiven(eid, index, ({"code": "loop.repeat", "severity": "warning",
                                                              "message": f"finding number {index}"},)))
            app._inbox.append(TextDelta(eid, 14, " ".join(words)))
            live = app.screen
            await wait_for(pilot, lambda: live.followed == eid and live.settled, what="the episode")
            await pilot.pause()
            stream = str(live.query_one("#stream").render())
            for token in stream.replace("generating…", " ").replace("▌", " ").split():
                assert token in words, f"a word cut in two: {token!r}"
            pane = live.query_one("#feedback")
            assert pane.max_scroll_y > 0 and pane.scroll_y == pane.max_scroll_y, "the newest finding is in view"
            assert "finding number 13" in screen_text(app)

    run(scenario())


def test_unparseable_json_messages_say_at_character_once():
    from lamsim_tui.simulator.actions import parse_json_action

    parsed = parse_json_action('{"thought": "I will call list_agents() to get what the')
    assert "at at" not in parsed.problem.message and "at character" in parsed.problem.message


def test_the_full_screen_viewer_uses_the_whole_screen(filled):
    session, _ = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            await wait_for(pilot, lambda: app.screen.table.row_count > 0, what="the queue")
            await pilot.press("v")
            await pilot.pause()
            viewer = app.screen.query_one("#viewer")
            assert viewer.size.height >= SIZE[1] - 2 and viewer.size.width >= SIZE[0] - 2

    run(scenario())


# ----- what review tools have ----------------------------------------------------------------------


def test_bulk_accept_of_the_clean_ones_is_one_decision_with_one_undo(filled):
    session, records = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count == len(app.queue) > 0, what="the queue")
            clean = {row.id for row in review.listed_rows()
                     if row.status == "pending" and row.listing.passed and not row.listing.findings}
            assert clean, "a scripted run has some trajectories with no findings"
            before = len(app.queue)
            await pilot.press("m")
            assert type(app.screen).__name__ == "BulkScreen"
            assert f"Accept {len(clean)} that passed with no findings" in screen_text(app)
            await pilot.press("ctrl+a")
            await wait_for(pilot, lambda: len(app.queue) == before - len(clean), what="the bulk accept")
            assert all(app.store.get(rid).status == "accepted" for rid in clean)
            assert f"accepted {len(clean)} trajectories as one decision" in screen_text(app)
            assert not any(rid in review.table for rid in clean), "accepted rows are gone from the table"
            await pilot.press("u")
            await wait_for(pilot, lambda: len(app.queue) == before, what="the undo")
            assert all(app.store.get(rid).status == "pending" for rid in clean), "one undo reverts all of it"
            assert clean <= set(review.table.ids) and review.table.row_count == before, "and they are listed again"
            assert f"listed {before}" in screen_text(app)

    run(scenario())


def test_bulk_discard_of_what_a_filter_lists_with_a_reason(filled):
    session, records = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count == len(app.queue) > 0, what="the queue")
            await pilot.press("slash", *"status:filtered", "enter")
            listed = review.table.ids
            assert listed and all(app.queue[rid].status == "filtered" for rid in listed)
            await pilot.press("m")
            await pilot.press("tab")  # from the accept button to the reason box
            app.screen.query_one("#bulk-reason").value = "noisy"
            await pilot.press("ctrl+d")
            await wait_for(pilot, lambda: review.table.row_count == 0, what="the bulk discard")
            for rid in listed:
                stored = app.store.get(rid)
                assert stored.status == "discarded" and stored.history[-1].tags == ("noisy",)

    run(scenario())


def test_a_discard_reason_in_one_key(filled):
    session, records = filled
    session.write_text(session.read_text() + "review:\n  reasons: [wrong-answer, looping]\n")

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count > 2, what="the queue")
            first = review.table.current_id
            await pilot.press("d")
            assert "1  wrong-answer" in screen_text(app) and "2  looping" in screen_text(app)
            await pilot.press("2")
            await wait_for(pilot, lambda: app.store.get(first).status == "discarded", what="the discard")
            assert app.store.get(first).history[-1].tags == ("looping",)
            second = review.table.current_id
            await pilot.press("d", *"loop2", "enter")  # once something is typed, a digit is text
            await wait_for(pilot, lambda: app.store.get(second).status == "discarded", what="the second discard")
            assert app.store.get(second).history[-1].tags == ("loop2",)

    run(scenario())


def test_accept_with_a_note_and_tags_and_the_arrow_keys(filled):
    session, records = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count > 3, what="the queue")
            await pilot.press("right")
            assert review.table.cursor_row == 1
            await pilot.press("left")
            assert review.table.cursor_row == 0
            first = review.table.current_id
            await pilot.press("A", *"textbook run #gold #short", "enter")
            await wait_for(pilot, lambda: app.store.get(first).status == "accepted", what="the accept")
            entry = app.store.get(first).history[-1]
            assert entry.note == "textbook run" and entry.tags == ("gold", "short")
            nxt = review.table.current_id
            await pilot.press("ctrl+enter")
            await wait_for(pilot, lambda: app.store.get(nxt).status == "accepted", what="ctrl+enter")
            assert review.table.current_id != nxt, "accept moves on"
            assert "reviewed 2 this session" in screen_text(app)

    run(scenario())


def test_filter_by_code_in_three_keys_with_counts(filled):
    session, records = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count == len(app.queue) > 0, what="the queue")
            await pilot.press("c")
            assert type(app.screen).__name__ == "PickScreen"
            picker = app.screen.query_one("#pick-list")
            option = picker.get_option_at_index(picker.highlighted)
            count = int(str(option.prompt).split()[0])
            having = [row for row in app.queue if row.listing.has_code(option.id)]
            assert count == len(having) > 0, "the picker counts the trajectories with each code"
            await pilot.press("enter")  # c, enter: the commonest code (or code family, like `args`)
            await wait_for(pilot, lambda: review.filter.code == option.id, what="the code filter")
            assert set(review.table.ids) == {row.id for row in having}
            await pilot.press("escape")
            template = app.queue.ordered()[0].listing.template
            await pilot.press("slash", *f"code:{option.id} template:{template}", "enter")
            assert review.filter.code == option.id and review.filter.template == template
            assert all(app.queue[rid].listing.template.startswith(template) for rid in review.table.ids)

    run(scenario())


def test_the_detail_scrolls_without_leaving_the_table(filled):
    session, records = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=(160, 30)) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count > 0, what="the queue")
            longest = max(review.listed_rows(), key=lambda row: row.listing.steps)
            review.table.focus_row(longest.id)
            await wait_for(pilot, lambda: review.shown == longest.id, what="the detail")
            await pilot.pause()
            detail = review.query_one("#detail")
            assert detail.max_scroll_y > 0
            await pilot.press("J")
            assert detail.scroll_y > 0 and app.focused is review.table
            await pilot.press("K")
            assert detail.scroll_y == 0

    run(scenario())
