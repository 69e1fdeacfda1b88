"""Whole replies (what a headless run asks for: nobody watches its tokens): the same steps, findings and
faults as streamed ones, against a real loopback server speaking the OpenAI protocol."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from openai_server import OpenAIServer, Reply
from packkit import write_pack, write_session

from lamsim_tui.agents.base import EpisodeView
from lamsim_tui.agents.model import ModelAgentFactory
from lamsim_tui.events import TextDelta
from lamsim_tui.packs import load_pack
from lamsim_tui.record import Finish, ToolCall
from lamsim_tui.session.config import load_session

CALL = '{"thought": "look it up", "tool": "get_item", "arguments": {"item_id": "I-01"}}'


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("proj")
    write_pack(root)
    return root


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr("lamsim_tui.agents.model.BACKOFF_S", 0.01)


def factory_for(project: Path, api_base: str, fmt: str = "json"):
    path = write_session(project, f"""\
        pack: mini
        agent:
          kind: model
          format: {fmt}
          models:
            - {{model: openai/test-model, api_base: "{api_base}", timeout: 5, retries: 2}}
        """, name=f"whole-{fmt}.yaml")
    session = load_session(path)
    pack = load_pack(session.pack_dir())
    factory = ModelAgentFactory(session, pack)
    factory.stream = False
    return factory, pack


def one_step(factory, pack, events):
    async def go():
        await factory.start()
        try:
            agent, _ = factory.for_episode("ep1", seed=1)
            view = EpisodeView("ep1", "What colour is item I-01?", list(pack.tools.values()), [], 10, 1)
            return await agent.step(view, events.append)
        finally:
            await factory.aclose()

    return asyncio.run(go())


def test_a_whole_reply_is_one_request_without_a_stream_and_parses_as_a_streamed_one(project):
    with OpenAIServer(default=Reply(text=CALL, usage={"prompt_tokens": 40, "completion_tokens": 12})) as server:
        factory, pack = factory_for(project, server.api_base)
        events: list = []
        turn = one_step(factory, pack, events)
    assert turn.parsed.action == ToolCall("get_item", {"item_id": "I-01"})
    assert not server.requests[0]["body"].get("stream") and "stream_options" not in server.requests[0]["body"]
    assert turn.usage["prompt_tokens"] == 40 and turn.usage["completion_tokens"] == 12
    assert [e.text for e in events if isinstance(e, TextDelta)] == [CALL]  # the live view still gets the text


def test_native_tool_calls_come_whole_too(project):
    reply = Reply(tool_calls=[{"name": "finish", "arguments": {"answer": "green"}, "id": "call_9"}])
    with OpenAIServer(default=reply) as server:
        factory, pack = factory_for(project, server.api_base, fmt="native")
        turn = one_step(factory, pack, [])
    assert turn.parsed.action == Finish("green", call_id="call_9")


def test_a_failing_server_is_retried_then_reported_as_for_streams(project):
    with OpenAIServer() as server:
        server.push(Reply(status=503), Reply(text=CALL))
        factory, pack = factory_for(project, server.api_base)
        turn = one_step(factory, pack, [])
        assert turn.parsed.action is not None and turn.usage["attempts"] == 2
        server.push(Reply(status=503), Reply(status=503), Reply(status=503))
        factory, pack = factory_for(project, server.api_base)
        from lamsim_tui.agents.base import ModelFailure

        with pytest.raises(ModelFailure) as failure:
            one_step(factory, pack, [])
    assert failure.value.code == "model.server_error" and failure.value.details["attempts"] == 3
