"""A misbehaving model server (real HTTP on loopback, bytes written by hand) against the engine.

A `timeout` is a deadline for the whole request: a server that trickles cannot hold an episode
past it, the episode ends `model.timeout` (which counts toward the pause after 3 failures), not
`budget.time`. Replies that are not an event stream, or far too long, say what they are. A failed
step keeps `usage.attempts`.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from openai_server import OpenAIServer, Reply
from packkit import write_pack, write_session

from lamsim_tui.agents.llm import load_litellm
from lamsim_tui.agents.model import ModelAgentFactory
from lamsim_tui.events import SessionPaused
from lamsim_tui.packs import load_pack
from lamsim_tui.session.config import load_session
from lamsim_tui.simulator.engine import Engine
from lamsim_tui.store import open_store

TIMEOUT = 1.0


def _head(handler, content_type: str, length: int | None = None) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    if length is not None:
        handler.send_header("Content-Length", str(length))
    handler.send_header("Connection", "close")
    handler.end_headers()


def _chunk(text: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": text} if text is not None else {}
    payload = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def trickle_headers(handler) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n":
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.25)


def sse_comments(handler) -> None:
    _head(handler, "text/event-stream")
    for _ in range(40):
        handler.wfile.write(b": keep-alive\n\n")
        handler.wfile.flush()
        time.sleep(0.25)


def one_character_at_a_time(handler) -> None:
    _head(handler, "text/event-stream")
    for character in '{"thought": "slowly", "tool": "finish", "arguments": {"answer": "green"}}':
        handler.wfile.write(_chunk(character))
        handler.wfile.flush()
        time.sleep(0.25)


def whole_json_reply(handler) -> None:
    body = json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": "hello"}}]}).encode()
    _head(handler, "application/json", len(body))
    handler.wfile.write(body)


def html_page(handler) -> None:
    body = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
    _head(handler, "text/html", len(body))
    handler.wfile.write(body)


def two_megabytes(handler) -> None:
    _head(handler, "text/event-stream")
    handler.wfile.write(_chunk("a" * 2_000_000))
    handler.wfile.write(_chunk(finish="stop") + b"data: [DONE]\n\n")


def _engine(root, api_base: str, episodes: int, store=None, events=None, retries: int = 0, timeout: float = TIMEOUT):
    path = write_session(root, f"""\
        pack: mini
        seed: 2
        concurrency: 1
        agent:
          kind: model
          models:
            - model: openai/test-model
              api_base: {api_base}
              timeout: {timeout}
              retries: {retries}
        budget:
          seconds: 60
        """)
    session = load_session(path)
    pack = load_pack(session.pack_dir())
    engine = Engine(session, pack, ModelAgentFactory(session, pack), store=store, tasks=episodes, seed=2,
                    on_event=(events.append if events is not None else None))
    return engine


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr("lamsim_tui.agents.model.BACKOFF_S", 0.01)
    write_pack(tmp_path)
    return tmp_path


@pytest.mark.parametrize("fault", [trickle_headers, sse_comments, one_character_at_a_time],
                         ids=["header-byte-a-quarter-second", "sse-comments", "one-character-at-a-time"])
def test_a_trickling_server_cannot_hold_an_episode_past_the_timeout(root, fault):
    with OpenAIServer(default=Reply(raw=fault)) as server:
        events: list = []
        engine = _engine(root, server.api_base, 3, events=events)
        load_litellm()  # its import takes seconds: not the server's time
        started = time.perf_counter()
        summary = asyncio.run(engine.run())
        took = time.perf_counter() - started
    assert summary.end_reasons == {"model.timeout": 3}, summary.end_reasons
    assert took < 3 * (TIMEOUT + 1.5), f"3 episodes took {took:.1f} s with a {TIMEOUT} s timeout"
    paused = [e for e in events if isinstance(e, SessionPaused)]
    assert paused and "3 episodes in a row failed" in paused[0].reason and "within 1 s" in paused[0].reason


@pytest.mark.parametrize(("fault", "says"), [
    (whole_json_reply, "one whole JSON reply although a stream was asked for"),
    (html_page, "a web page (text/html)"),
    (two_megabytes, "more than 16,000 characters"),
], ids=["non-streamed-json", "html", "two-megabytes"])
def test_a_reply_that_is_not_a_stream_or_far_too_long_says_what_it_is(root, fault, says):
    with OpenAIServer(default=Reply(raw=fault)) as server, open_store(root / "store") as store:
        summary = asyncio.run(_engine(root, server.api_base, 1, store=store, timeout=30).run())
        record = next(store.records())
    assert summary.end_reasons == {"model.bad_response": 1}
    error = record.steps[-1].error
    assert error.code == "model.bad_response" and says in error.message, error.message
    assert "empty" not in error.message and "repeating" not in error.message
    assert len(json.dumps(record.to_dict())) < 200_000, "raw model output is never stored uncapped"


def test_a_failed_step_keeps_how_many_attempts_it_took(root):
    with OpenAIServer(default=Reply(status=503)) as server, open_store(root / "store") as store:
        asyncio.run(_engine(root, server.api_base, 1, store=store, retries=2, timeout=30).run())
        record = next(store.records())
    failed = record.steps[-1]
    assert failed.error.code == "model.server_error"
    assert failed.usage["attempts"] == 3
