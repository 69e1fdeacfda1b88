"""What the app tells the operator that the engine knows: which solved tasks an episode was shown as
demonstrations (the Task pane, and the review detail), and the notices of a session (a model server
of a pool that stopped answering). The real app, a real store, a real OpenAI-protocol server on
loopback (tests/openai_server.py), and a loopback port where nothing listens."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from openai_server import OpenAIServer, Reply

from lamsim_tui.testing.ui import fill_store, make_project, screen_text, scripted_records, wait_for, wait_ready
from lamsim_tui.ui.app import make_app

SIZE = (160, 45)
FINISH = '{"thought": "done", "tool": "finish", "arguments": {"answer": "closed"}}'


def run(coro):
    return asyncio.run(coro)


def model_session(session: Path, models: str, extra: str = "") -> Path:
    text = session.read_text()
    head, _, tail = text.partition("agent:\n")
    tail = tail.split("budget:", 1)[1]
    session.write_text(head + "agent:\n  kind: model\n  models:\n" + models + extra + "budget:" + tail)
    return session


def dead_port() -> int:
    """A loopback port nothing listens on (bound, then closed): connections to it are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_demonstrations_an_episode_is_shown_are_named_in_the_task_pane_and_the_review(tmp_path: Path):
    session = make_project(tmp_path, tasks=1, concurrency=1)
    solved = [r for r in scripted_records(session, tasks=6) if r.verdict.success]
    assert solved, "the scripted run solved some tasks"
    fill_store(session, [r.replace(status="accepted") for r in solved])
    with OpenAIServer(default=Reply(text=FINISH)) as server:
        model_session(session, f"    - {{model: openai/local-agent, api_base: \"{server.api_base}\", retries: 0}}\n",
                      "demonstrations: {count: 1}\n")

        async def scenario():
            app = make_app(session, watch=False)
            async with app.run_test(size=SIZE) as pilot:
                await wait_ready(pilot)
                await pilot.press("r")
                await wait_for(pilot, lambda: app.live.order, timeout=60, what="the episode to start")
                await wait_for(pilot, lambda: "1 demonstration: " in screen_text(app), timeout=30,
                               what="the demonstrations in the Task pane")
                live_text = screen_text(app)
                await wait_for(pilot, lambda: app.run_state == "finished", timeout=60, what="the run to finish")
                await pilot.press("2")
                review = app.screen
                await wait_for(pilot, lambda: review.table.row_count >= 1, what="the queue")
                await wait_for(pilot, lambda: "1 demonstration: " in screen_text(app), timeout=15,
                               what="the demonstrations in the review detail")
                episode = app.live.episodes[app.live.order[0]]
                return live_text, episode.demonstrations

        live_text, shown = run(scenario())
    assert len(shown) == 1 and shown[0].origin == "store"
    assert shown[0].id in {r.id for r in solved}
    assert f"1 demonstration: {shown[0].template} ({shown[0].id[:10]})" in live_text
    example = next(r for r in solved if r.id == shown[0].id)
    prompt = "\n".join(str(m.get("content") or "") for m in server.requests[0]["body"]["messages"])
    assert f"Task: {example.task.query}" in prompt, "and the model was shown it"


def test_a_pool_server_that_does_not_answer_is_named_in_a_notification(tmp_path: Path):
    session = make_project(tmp_path, tasks=2, concurrency=1)
    dead = f"http://127.0.0.1:{dead_port()}/v1"
    with OpenAIServer(default=Reply(text=FINISH)) as server:
        # weight 1000 against 1: the Router sends the first request to the dead server (a fair shuffle
        # missed it in both of the run's two requests one run in four)
        model_session(session, f"    - {{model: openai/local-agent, api_base: \"{dead}\", retries: 2, timeout: 20, "
                               "weight: 1000}\n"
                               f"    - {{model: openai/local-agent, api_base: \"{server.api_base}\", retries: 2, "
                               "timeout: 20}\n")

        async def scenario():
            app = make_app(session, watch=False)
            async with app.run_test(size=SIZE) as pilot:
                await wait_ready(pilot)
                await pilot.press("r")
                await wait_for(pilot, lambda: any(dead in m for _, _, m in app.notices), timeout=60,
                               what="the notice of the server that is down")
                await wait_for(pilot, lambda: app.run_state == "finished", timeout=60, what="the run to finish")
                return list(app.notices), app.store.count()

        notices, stored = run(scenario())
        alive = server.api_base
    down = [(severity, message) for severity, _, message in notices if dead in message]
    assert len(down) == 1, "one notice for the server that went down, not one per request"
    severity, message = down[0]
    assert severity == "warning" and "out of rotation" in message and alive not in message
    assert stored == 2, "the session went on on the other server"
