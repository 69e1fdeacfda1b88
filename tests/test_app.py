"""App tests through `App.run_test()` and the Pilot: a real scripted session, a real store in a
temporary folder, the review module's functions behind the keys. Waits are on conditions, never
on fixed sleeps."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

from lamsim_tui.record import Trajectory
from lamsim_tui.testing.ui import fill_store, make_project, scripted_records, wait_for, wait_ready, wait_watching
from lamsim_tui.ui.app import make_app

SIZE = (160, 48)


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, tasks=6, concurrency=2)


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, list[Trajectory]]:
    session = make_project(tmp_path, tasks=8, concurrency=1)
    records = scripted_records(session)
    fill_store(session, records)
    return session, records


def open_store_of(session: Path):
    from lamsim_tui.session.config import load_session
    from lamsim_tui.store import open_store

    return open_store(load_session(session).store_dir(), readonly=True)


def screen_text(app) -> str:
    """What a user would read on the screen (the SVG screenshot's text, tags stripped)."""
    import html
    import re

    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


# ----- a live session ------------------------------------------------------------------------------


def test_scripted_session_runs_live_and_trajectories_join_the_queue(project: Path):
    async def scenario():
        app = make_app(project, watch=False, scripted_cps=20_000)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")  # review screen open while the session generates
            await pilot.press("1", "r")
            await wait_for(pilot, lambda: app.live.order, what="an episode to start")
            await wait_for(pilot, lambda: app.run_state == "finished", timeout=30, what="the run to finish")
            live = app.screen
            assert live.query("StepBlock"), "the Agent pane shows step blocks"
            assert app.live.streamed_chars > 0, "the agent's text streamed into the app"
            assert len(app.live.order) == 6
            assert app.live.progress.done == 6
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count == len(app.queue), what="the table to fill")
            return {row.id for row in app.queue}, app.store.count(("pending", "filtered"))

    queued, in_store = run(scenario())
    assert len(queued) == in_store > 0


def test_pause_resume_and_stop(project: Path):
    async def scenario():
        app = make_app(project, watch=False, scripted_cps=300)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.run_state == "running" and app.live.order, what="running")
            await pilot.press("p")
            assert app.engine.paused and app.run_state == "paused"
            await pilot.press("p")
            assert not app.engine.paused and app.run_state == "running"
            await pilot.press("x")
            await wait_for(pilot, lambda: app.engine is None and app.run_state == "idle", what="the stop")
            assert "stopped" in app.run_note
            assert app.live.progress is None or app.live.progress.done < 6

    run(scenario())


def test_switch_followed_episode(tmp_path: Path):
    session = make_project(tmp_path, tasks=6, concurrency=3)

    async def scenario():
        app = make_app(session, watch=False, scripted_cps=150)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("r")
            await wait_for(pilot, lambda: len(app.live.running) >= 2, what="two running episodes")
            live = app.screen
            first = live.followed
            await pilot.press("right_square_bracket")
            assert live.followed != first and live.pinned
            await pilot.press("f")
            assert not live.pinned
            await pilot.press("x")
            await wait_for(pilot, lambda: app.engine is None, what="the stop")

    run(scenario())


# ----- review ----------------------------------------------------------------------------------------


def test_accept_discard_undo_reach_the_store(filled):
    session, records = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count == len(app.queue) > 2, what="the queue")
            first = review.table.current_id
            await pilot.press("a")
            assert app.store.get(first).status == "accepted"
            assert first not in review.table
            second = review.table.current_id
            assert second != first
            await pilot.press("d")
            await pilot.press(*"loop,wrong")
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.store.get(second).status == "discarded", what="the discard")
            assert app.store.get(second).history[-1].tags == ("loop", "wrong")
            await pilot.press("u")
            assert app.store.get(second).status in ("pending", "filtered")
            assert review.table.current_id == second, "undo brings the trajectory back, selected"
            await pilot.press("u")
            assert app.store.get(first).status in ("pending", "filtered")
            await pilot.press("d", "escape")  # a cancelled discard changes nothing
            assert app.store.get(review.table.current_id).status in ("pending", "filtered")
            await pilot.press("n")
            assert review.table.cursor_row == 1
            await pilot.press("b")
            assert review.table.cursor_row == 0

    run(scenario())
    with open_store_of(session) as store:
        assert store.count("accepted") == 0 and store.count("discarded") == 0


def test_queue_orders_pending_before_filtered_and_filters(filled):
    session, records = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count == len(app.queue), what="the queue")
            statuses = [app.queue[rid].status for rid in review.table.ids]
            assert statuses == sorted(statuses, key=lambda s: s != "pending")
            assert "filtered" in statuses and "pending" in statuses
            target = next(r for r in records if r.id in app.queue)
            words = " ".join(target.task.query.split()[:6])
            await pilot.press("slash")
            await pilot.press(*words)
            await pilot.press("enter")
            await wait_for(pilot, lambda: review.filter.text == words, what="the text filter")
            listed = set(review.table.ids)
            assert target.id in listed
            by_id = {r.id: r for r in records}
            for record_id in listed:  # every word is somewhere in what the agent was asked, wrote or was shown
                text = json.dumps(by_id[record_id].to_dict(), ensure_ascii=False).lower()
                assert all(word in text for word in words.lower().split()), record_id
            assert len(listed) < len(app.queue)
            await pilot.press("escape")
            assert review.table.row_count == len(app.queue)

            template = target.task.template
            await pilot.press("slash")
            app.screen.query_one("#filter-template").value = template
            await pilot.press("enter")
            await wait_for(pilot, lambda: review.filter.template == template, what="the template filter")
            listed = review.table.ids
            assert listed and all(by_id[record_id].task.template == template for record_id in listed)
            assert len(listed) == sum(1 for r in records if r.id in app.queue and r.task.template == template)
            assert template in screen_text(app)

    run(scenario())


def _gold_edit(record: Trajectory) -> dict:
    steps = [{"thought": f"call {c.tool}", "tool": c.tool, "arguments": c.arguments} for c in record.task.gold_calls]
    return {"steps": steps, "final_answer": record.task.gold_answer}


def test_edit_refused_then_valid_flows_to_the_store(filled):
    from lamsim_tui.curation.review import actions_from_editable

    session, records = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count > 0, what="the queue")
            target = review.table.current_id
            record = app.store.get(target)
            await pilot.press("e")
            edit = app.screen
            assert type(edit).__name__ == "EditScreen"
            area = edit.query_one("#editor")
            if "json" in area.available_languages:  # tree-sitter installed: JSON is highlighted
                assert area.language == "json"
            original = json.loads(area.text)
            assert "steps" in original and "_help" in original

            # A refused edit: an unknown tool. It says why, saves nothing, keeps the text.
            bad = _gold_edit(record)
            bad["steps"].insert(0, {"thought": "oops", "tool": "no_such_tool", "arguments": {}})
            bad_text = json.dumps(bad, indent=2)
            area.load_text(bad_text)
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: edit.preview is not None, what="the replay")
            assert any("tool.unknown" in p for p in edit.problems)
            await pilot.press("ctrl+y")
            assert app.store.get(target).status == record.status, "a refused edit is not saved"
            # What was typed is kept; the replay only filled in what it observed.
            assert actions_from_editable(json.loads(area.text)) == actions_from_editable(bad)
            assert "no_such_tool" in json.loads(area.text)["steps"][0]["observation"]
            assert "REFUSED" in screen_text(app)
            kept = area.text

            # Leaving and coming back loses nothing typed.
            await pilot.press("escape")
            await pilot.press("e")
            assert app.screen.query_one("#editor").text == kept
            edit = app.screen
            area = edit.query_one("#editor")

            # A syntax error points at the line and does not replay.
            area.load_text('{"steps": [\n  {"tool": }\n]}')
            await pilot.press("ctrl+s")
            assert edit.preview is None
            assert "edit:2" in str(edit.query_one("#edit-status").render())

            # A valid edit: the gold program. Replayed, shown, then saved on confirmation.
            area.load_text(json.dumps(_gold_edit(record), indent=2))
            await pilot.press("ctrl+y")  # not replayed yet: refused
            assert app.store.get(target).status == record.status
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: edit.preview is not None and edit.preview_text == area.text, what="replay")
            assert edit.problems == []
            await pilot.press("ctrl+y")
            await wait_for(pilot, lambda: app.screen is not edit, what="the editor to close")
            stored = app.store.get(target)
            assert stored.status == "accepted"
            assert stored.review.edits == 1
            assert stored.verdict.success is True
            assert all(s.observation for s in stored.steps[:-1]), "observations come from the tools"
            assert target not in review.table
            assert target not in app.drafts

    run(scenario())


def test_forced_edit_needs_a_note(filled):
    session, records = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count > 0, what="the queue")
            target = review.table.current_id
            record = app.store.get(target)
            await pilot.press("e")
            edit = app.screen
            wrong = _gold_edit(record)
            wrong["final_answer"] = "certainly not the answer"
            edit.query_one("#editor").load_text(json.dumps(wrong))
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: edit.preview is not None, what="the replay")
            assert edit.problems
            await pilot.press("ctrl+f")
            await pilot.press("enter")  # an empty note is not enough
            assert app.store.get(target).status == record.status
            await pilot.press(*"judge is too strict")
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.store.get(target).status == "accepted", what="the forced save")
            entry = app.store.get(target).history[-1]
            assert entry.forced is True and entry.note == "judge is too strict"

    run(scenario())


# ----- store browser, export, stats ------------------------------------------------------------------


def test_store_browser_export_and_stats(filled, tmp_path: Path):
    session, records = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count > 1, what="the queue")
            await pilot.press("a", "a")
            await pilot.press("3")
            browser = app.screen
            await wait_for(pilot, lambda: browser.table.row_count == 2, what="the accepted trajectories")
            await pilot.press("x")
            dialog = app.screen
            out = dialog.query_one("#export-out")
            out.value = str(tmp_path / "out" / "pilot-chat.jsonl")
            await pilot.press("enter")
            await wait_for(pilot, lambda: (tmp_path / "out" / "pilot-chat.jsonl").exists(), what="the export")
            await wait_for(pilot, lambda: any("exported 2" in m for _, _, m in app.notices), what="the notice")
            await pilot.press("4")
            stats = app.screen
            await wait_for(pilot, lambda: stats.stats is not None, what="statistics")
            assert stats.stats["overall"]["statuses"]["accepted"] == 2
            text = screen_text(app)
            assert "acceptance" in text and "100%" in text

    run(scenario())
    lines = (tmp_path / "out" / "pilot-chat.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all("messages" in json.loads(line) for line in lines)


def test_export_dialog_writes_the_kind_chosen(filled, tmp_path: Path):
    """KTO from the dialog: accepted and discarded trajectories, labelled; the same as `lamsim export --kind kto`."""
    session, records = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count > 2, what="the queue")
            await pilot.press("a", "a", "d")
            await wait_for(pilot, lambda: app.screen is not review or len(app.queue) <= len(records) - 2,
                           what="the reviews")
            if app.screen is not review:  # the discard reason dialog
                await pilot.press("enter")
            await wait_for(pilot, lambda: app.store.count("discarded") == 1, what="the discard")
            await pilot.press("3")
            browser = app.screen
            await wait_for(pilot, lambda: browser.table.row_count == 3, what="the reviewed trajectories")
            await pilot.press("x")
            dialog = app.screen
            dialog.query_one("#export-out").value = str(tmp_path / "out" / "pilot-kto.jsonl")
            dialog.query_one("#export-kind").value = "kto"
            await pilot.pause()
            await pilot.click("#export-go")
            await wait_for(pilot, lambda: any("exported 3" in m for _, _, m in app.notices), what="the notice")
            return [m for _, _, m in app.notices if "exported" in m][-1]

    notice = run(scenario())
    assert "3 rows" in notice and "dataset card" in notice
    rows = [json.loads(line) for line in (tmp_path / "out" / "pilot-kto.jsonl").read_text().splitlines()]
    assert sorted(row["label"] for row in rows) == [False, True, True]
    meta = json.loads((tmp_path / "out" / "pilot-kto.meta.json").read_text())
    assert meta["kind"] == "kto" and meta["rejected_steps"] == "left out"


# ----- themes and hot reload ---------------------------------------------------------------------------


def test_theme_switch_from_palette_is_remembered(project: Path):
    async def scenario(expect: str | None):
        app = make_app(project, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            if expect:
                assert app.theme == expect
                return
            assert app.theme == "lamsim-dark"
            await pilot.press("ctrl+p")
            await pilot.press(*"theme")
            await wait_for(pilot, lambda: "Change the current theme" in screen_text(app), what="the command",
                           interval=0.2)
            await pilot.press("enter")
            await pilot.press(*"lamsim-light")
            await wait_for(pilot, lambda: "lamsim-light" in screen_text(app), what="the theme list", interval=0.2)
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.theme == "lamsim-light", what="the theme switch")

    run(scenario(None))
    state = json.loads((project.parent.parent / ".lamsim" / "app.json").read_text())
    assert state["theme"] == "lamsim-light"
    run(scenario("lamsim-light"))


def test_broken_theme_file_gives_one_notice_and_a_fallback(project: Path):
    themes = project.parent.parent / "themes"
    (themes / "dark.yaml").write_text("name: lamsim-dark\nprimary: not-a-colour\n")

    async def scenario():
        app = make_app(project, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            theme_notices = [n for n in app.notices if n[1] == "theme"]
            assert len(theme_notices) == 1
            assert "dark.yaml:2" in theme_notices[0][2] and "not a colour" in theme_notices[0][2]
            assert app.theme == "lamsim-dark"  # the built-in fallback of the same name
            assert app.current_theme.variables["severity-error"]

    run(scenario())


def test_hot_reload_keeps_the_last_good_session(project: Path):
    async def scenario():
        app = make_app(project, watch=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            assert app.session.tasks == 6
            await wait_watching(pilot)
            good = project.read_text()
            project.write_text(good.replace("tasks: 6", "tasks: lots"))
            await wait_for(pilot, lambda: any(n[1] == "session file" for n in app.notices), timeout=10,
                           what="the reload error")
            notices = [n for n in app.notices if n[1] == "session file"]
            assert len(notices) == 1 and f"{project.name}:5" in notices[0][2]
            assert "keeping the last good version" in notices[0][2]
            assert app.session.tasks == 6
            project.write_text(good.replace("tasks: 6", "tasks: 3"))
            await wait_for(pilot, lambda: app.session.tasks == 3, timeout=10, what="the valid reload")
            assert "3 × 1" in screen_text(app)

            themes = project.parent.parent / "themes"
            text = (themes / "light.yaml").read_text()
            (themes / "light.yaml").write_text(text.replace('"#1f5fbf"', '"#123456"', 1))
            await wait_for(pilot, lambda: app.get_theme("lamsim-light").primary == "#123456", timeout=10,
                           what="the theme reload")
            (themes / "light.yaml").write_text("name: [broken")
            await wait_for(pilot, lambda: any(n[1] == "theme" for n in app.notices), timeout=10,
                           what="the theme error")
            assert app.get_theme("lamsim-light").primary == "#123456", "the last good version stays"

    run(scenario())


def test_hot_reload_of_a_broken_pack_keeps_the_last_good_pack(tmp_path: Path):
    import shutil

    from lamsim_tui.testing.ui import CRM_PACK

    pack = tmp_path / "tools" / "crm"
    shutil.copytree(CRM_PACK, pack, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    session = make_project(tmp_path, tasks=2, pack=pack)

    async def scenario():
        app = make_app(session, watch=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            before = app.pack
            await wait_watching(pilot, ("pack",))
            tools = pack / "tools.py"
            tools.write_text(tools.read_text() + "\ndef broken(:\n")
            await wait_for(pilot, lambda: any(n[1] == "tool pack" for n in app.notices), timeout=10,
                           what="the pack error")
            message = next(n[2] for n in app.notices if n[1] == "tool pack")
            assert "tools.py:" in message and "SyntaxError" in message
            assert app.pack is before

    run(scenario())


# ----- robustness ----------------------------------------------------------------------------------------

INJECTED = "[bold red]boom[/] [link=https://example.com]click[/link] \x1b[31mred\x1b[0m"


def test_markup_and_ansi_from_the_model_are_shown_literally(project: Path):
    from lamsim_tui.events import EpisodeStarted, FeedbackGiven, ObservationMade, StepProposed, TextDelta

    async def scenario():
        app = make_app(project, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            eid = "e" * 32
            app._inbox.extend([
                EpisodeStarted(eid, "t1", "case_status", "query " + INJECTED, 0, (), None),
                TextDelta(eid, 0, "stream " + INJECTED),
            ])
            await wait_for(pilot, lambda: eid in app.live.episodes and app.screen.followed == eid, what="the episode")
            await wait_for(pilot, lambda: app.screen.settled, what="the live panes to draw")
            await pilot.pause()
            text = screen_text(app)
            assert "stream [bold red]boom[/] [link=https://example.com]click[/link] \\x1b[31mred" in text
            app._inbox.extend([
                StepProposed(eid, 0, "thought " + INJECTED, {"type": "call", "tool": "get_case",
                                                             "arguments": {"case_id": INJECTED}}, INJECTED),
                FeedbackGiven(eid, 0, ({"code": "exec.error", "severity": "warning", "message": INJECTED},)),
                ObservationMade(eid, 0, "observation " + INJECTED, True),
            ])
            await wait_for(pilot, lambda: app.screen.query("StepBlock"), what="the step block")
            await wait_for(pilot, lambda: app.screen.settled, what="the live panes to draw")
            await pilot.pause()
            text = screen_text(app)
            assert "query [bold red]boom[/]" in text
            assert "thought [bold red]boom[/] [link=https://example.com]click[/link] \\x1b[31mred\\x1b[0m" in text
            assert "observation [bold red]boom[/]" in text
            assert "\x1b" not in text

    run(scenario())


def test_injected_text_in_a_stored_trajectory_is_literal(filled):
    session, records = filled
    from lamsim_tui.store import open_store

    target = records[0].id
    with open_store(Path(session).parent.parent / "stores" / "pilot") as store:
        record = store.get(target)
        first = dataclasses.replace(record.steps[0], observation=INJECTED, thought=INJECTED)
        store.update(target, {"steps": (first, *record.steps[1:])})

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count > 0, what="the queue")
            review.table.focus_row(target)
            await wait_for(pilot, lambda: review.shown == target, what="the trajectory in the detail pane")
            await pilot.pause()
            text = screen_text(app)
            # The detail wraps the long line at its width; each piece is shown as typed, none interpreted.
            for piece in ("[bold red]boom[/]", "[link=https://example.com]", "\\x1b[31mred"):
                assert piece in text, piece

    run(scenario())


def test_a_failing_agent_leaves_the_app_usable(project: Path):
    from lamsim_tui.agents.base import AgentFactory

    class Exploding(AgentFactory):
        def __init__(self, session, pack):
            pass

        def describe(self):
            return {"kind": "exploding"}

        async def start(self):
            raise RuntimeError("model server gone")

        async def aclose(self):
            return None

    async def scenario():
        app = make_app(project, watch=False, factory=Exploding)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.run_state == "failed", what="the failure")
            assert any("model server gone" in n[2] for n in app.notices)
            await pilot.press("2")
            assert type(app.screen).__name__ == "ReviewScreen"
            await pilot.press("1")
            app.factory_override = None
            app.scripted_cps = 0
            await pilot.press("r")
            await wait_for(pilot, lambda: app.run_state == "finished", timeout=30, what="a second, good run")

    run(scenario())


def test_a_store_locked_by_another_writer_is_reported(project: Path):
    from lamsim_tui.session.config import load_session
    from lamsim_tui.store import open_store

    holder = open_store(load_session(project).store_dir())
    try:
        async def scenario():
            app = make_app(project, watch=False)
            async with app.run_test(size=SIZE) as pilot:
                await wait_ready(pilot)
                assert app.store is None and app.store_problem
                await pilot.press("r")
                assert app.run_state == "idle"
                assert any(n[1] == "cannot start" for n in app.notices)

        run(scenario())
    finally:
        holder.close()


def test_long_observation_and_a_thousand_queued_stay_usable(tmp_path: Path):
    import random

    from lamsim_tui.store import open_store
    from lamsim_tui.testing.synthetic import make_record

    session = make_project(tmp_path, tasks=2)
    from lamsim_tui.session.config import load_session

    rng = random.Random(3)
    big_id = None
    with open_store(load_session(session).store_dir()) as store, store.batch():
        for i in range(1000):
            record = make_record(rng, i, status="pending")
            if i == 0:
                long = dataclasses.replace(record.steps[0], observation="x" * 100_000)
                record = record.replace(steps=(long, *record.steps[1:]))
                big_id = record.id
            store.add(record)

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count == 1000, what="1,000 rows")
            review.table.focus_row(big_id)
            await wait_for(pilot, lambda: review.shown == big_id, what="the long trajectory in the detail pane")
            await pilot.pause()
            detail = review.query_one("#detail")
            assert len(detail.content.plain) < 10_000, "a 100 KB observation is truncated in the detail"
            await pilot.press("o")
            await pilot.press("v")
            assert type(app.screen).__name__ == "TextViewer"
            await pilot.press("escape")
            start = review.table.cursor_row
            await pilot.press("j", "j", "j")
            assert review.table.cursor_row == start + 3
            await pilot.press("a")
            assert review.table.row_count == 999

    run(scenario())


# ----- help and palette -----------------------------------------------------------------------------------


def test_help_lists_every_key_and_the_palette_every_action(filled):
    session, _ = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            titles = {c.title for c in app.get_system_commands(review)}
            for binding in review.BINDINGS:
                if binding.description and binding.show:
                    assert binding.description in titles, binding.description
            assert {"Live", "Review", "Store", "Stats", "Theme"} <= titles
            await pilot.press("question_mark")
            assert type(app.screen).__name__ == "HelpScreen"
            text = str(app.screen.query_one("#help-body").render())
            for word in ("Accept", "Discard", "Undo", "Filter", "Replay", "$EDITOR", "Start", "Export"):
                assert word in text, word
            await pilot.press("escape")
            assert app.screen is review

    run(scenario())


def test_typing_in_an_input_does_not_trigger_screen_keys(filled):
    session, _ = filled

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            await wait_for(pilot, lambda: app.screen.table.row_count > 0, what="the queue")
            count = app.store.count("accepted")
            await pilot.press("slash", *"a1?d", "escape")
            assert app.store.count("accepted") == count
            assert type(app.screen).__name__ == "ReviewScreen"

    run(scenario())
