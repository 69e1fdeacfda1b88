"""What the app says while a model starts or is slow to answer: for whom it waits, how long, and how
long that usually takes here (measured: the model's load time and its first reply's time to first token).
A real OpenAI-protocol server on loopback (tests/openai_server.py); the embedded model only under `-m model`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from openai_server import OpenAIServer, Reply

from lamsim_tui.testing.ui import make_project, screen_text, wait_for, wait_ready
from lamsim_tui.ui.app import make_app

SIZE = (160, 45)
FINISH = '{"thought": "done", "tool": "finish", "arguments": {"answer": "closed"}}'


def run(coro):
    return asyncio.run(coro)


def model_session(tmp_path: Path, api_base: str) -> Path:
    session = make_project(tmp_path, tasks=1, concurrency=1)
    text = session.read_text()
    head, _, tail = text.partition("agent:\n")
    tail = tail.split("budget:", 1)[1]
    session.write_text(head + f"""agent:
  kind: model
  models:
    - model: openai/local-agent
      api_base: {api_base}
      timeout: 30
      retries: 0
budget:""" + tail)
    return session


def test_a_slow_server_is_named_with_how_long_it_has_not_answered(tmp_path: Path):
    with OpenAIServer(default=Reply(text=FINISH)) as server:
        server.push(Reply(text=FINISH, hang=5.0))
        session = model_session(tmp_path, server.api_base)

        async def scenario():
            app = make_app(session, watch=False)
            async with app.run_test(size=SIZE) as pilot:
                await wait_ready(pilot)
                await pilot.press("r")
                await wait_for(pilot, lambda: app.live.running, timeout=60, what="the episode to start")
                await wait_for(pilot, lambda: "no reply for" in screen_text(app), timeout=10, interval=0.25,
                               what="the waiting message")
                text = screen_text(app)
                assert "waiting for openai/local-agent… no reply for" in text
                await wait_for(pilot, lambda: app.run_state == "finished", timeout=60, what="the reply")
                return app.live.first_ttft

        first = run(scenario())
    assert first is not None and first >= 4.5, "the first reply's time to first token is measured"
    state = json.loads((tmp_path / ".lamsim" / "app.json").read_text())
    assert state["first_reply_s"]["openai/local-agent"] == pytest.approx(first, abs=0.01)


def test_the_embedded_start_note_names_the_model_its_size_and_the_measured_time(tmp_path: Path):
    session = make_project(tmp_path, tasks=1)
    session.write_text(session.read_text().replace("kind: scripted", "kind: embedded"))
    state = tmp_path / "state.json"

    def note():
        app = make_app(session, watch=False, state_file=state)
        return app.starting_note(app.session)

    assert note() == "starting qwen2.5-coder-1.5b (loading 1.1 GB)… (its first start here: no time measured yet)"
    state.write_text(json.dumps({"model_start_s": {"qwen2.5-coder-1.5b": 17.4},
                                 "first_reply_s": {"qwen2.5-coder-1.5b": 3.2}}))
    assert note() == "starting qwen2.5-coder-1.5b (loading 1.1 GB)… first reply in about 21 s"


@pytest.mark.model
def test_the_embedded_model_start_is_shown_and_measured(tmp_path: Path):
    session = make_project(tmp_path, tasks=1, concurrency=1)
    session.write_text(session.read_text().replace("kind: scripted", "kind: embedded"))
    state = tmp_path / "state.json"

    async def scenario():
        app = make_app(session, watch=False, state_file=state)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.run_state == "starting", timeout=30, what="the start")
            await pilot.pause(0.5)
            assert "starting qwen2.5-coder-1.5b (loading 1.1 GB)" in screen_text(app)
            await wait_for(pilot, lambda: app.run_state == "running", timeout=300, what="the model to load")
            await pilot.press("x")
            await wait_for(pilot, lambda: app.engine is None, timeout=120, what="the stop")

    run(scenario())
    measured = json.loads(state.read_text())["model_start_s"]["qwen2.5-coder-1.5b"]
    assert measured > 0
