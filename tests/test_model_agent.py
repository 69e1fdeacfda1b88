"""The model agent against a real HTTP server on loopback, driven through litellm for real."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from openai_server import OpenAIServer, Reply, closed_port
from packkit import write_pack, write_session

from lamsim_tui.agents.base import EpisodeView, ModelFailure, StepView
from lamsim_tui.agents.model import ModelAgentFactory
from lamsim_tui.errors import ConfigError
from lamsim_tui.events import TextDelta
from lamsim_tui.packs import load_pack
from lamsim_tui.session.config import load_session
from lamsim_tui.simulator.actions import Finish, ToolCall

CALL = '{"thought": "look it up", "tool": "get_item", "arguments": {"item_id": "I-01"}}'
FINISH = '{"thought": "known", "tool": "finish", "arguments": {"answer": "green"}}'


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("proj")
    write_pack(root)
    return root


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr("lamsim_tui.agents.model.BACKOFF_S", 0.01)


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv


def make_factory(project: Path, api_base: str, agent_extra: str = "", model_extra: str = "", name: str = "s.yaml",
                 timeout: float = 5):
    path = write_session(project, f"""\
        pack: mini
        agent:
          kind: model
{agent_extra}          models:
            - model: openai/test-model
              api_base: {api_base}
              timeout: {timeout}
              retries: 2
{model_extra}""", name=name)
    session = load_session(path)
    pack = load_pack(session.pack_dir())
    return ModelAgentFactory(session, pack), pack


def view(pack, steps=None, query="What colour is item I-01?", episode_id="ep1") -> EpisodeView:
    return EpisodeView(episode_id=episode_id, query=query, tools=list(pack.tools.values()), steps=steps or [],
                       step_budget=10, seed=1)


def step_view(index: int, turn, observation: str) -> StepView:
    action = turn.parsed.action
    return StepView(index=index, raw=turn.raw, thought=turn.parsed.thought,
                    action=action.to_dict() if action else None, observation=observation, findings=[],
                    executed=True)


async def started(factory):
    await factory.start()
    return factory


def run(coro):
    return asyncio.run(coro)


# ----- JSON format ---------------------------------------------------------------------------


def test_json_step_streams_text_and_parses_the_action(project, server):
    server.push(Reply(text=CALL, usage={"prompt_tokens": 120, "completion_tokens": 20, "cached_tokens": 96}))
    factory, pack = make_factory(project, server.api_base)
    events = []

    async def go():
        await factory.start()
        agent, public = factory.for_episode("ep1", seed=3)
        turn = await agent.step(view(pack), events.append)
        await agent.aclose()
        await factory.aclose()
        return turn, public

    turn, public = run(go())
    assert turn.raw == CALL
    assert turn.parsed.action == ToolCall("get_item", {"item_id": "I-01"})
    assert turn.parsed.thought == "look it up"
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 3, "the reply arrives in pieces"
    assert "".join(d.text for d in deltas) == CALL
    assert {(d.episode_id, d.step) for d in deltas} == {("ep1", 0)}
    assert turn.usage["prompt_tokens"] == 120
    assert turn.usage["cached_tokens"] == 96
    assert turn.usage["completion_tokens"] == 20
    assert turn.usage["cost_usd"] == 0.0  # a server on this machine
    assert turn.usage["latency_s"] >= turn.usage["ttft_s"] > 0
    assert public["model"] == "openai/test-model" and public["api_base"] == server.api_base
    body = server.requests[0]["body"]
    assert body["stream"] is True and body["model"] == "test-model"
    assert "response_format" not in body and "tools" not in body
    system = body["messages"][0]["content"]
    assert "get_item(item_id: string)" in system and "set_colour(" in system and "finish(" in system
    assert body["messages"][1] == {"role": "user", "content": "Task: What colour is item I-01?"}


def test_history_is_append_only_and_the_prefix_is_byte_identical(project, server):
    server.push(Reply(text=CALL), Reply(text="I think it is green"), Reply(text=FINISH), Reply(text=CALL))
    factory, pack = make_factory(project, server.api_base)

    async def go():
        await factory.start()
        agent, _ = factory.for_episode("ep1", seed=1)
        steps: list[StepView] = []
        for i, obs in enumerate(['{"id": "I-01", "colour": "green"}', "Error: Your reply is not a valid action"]):
            turn = await agent.step(view(pack, steps), lambda e: None)
            steps.append(step_view(i, turn, obs))
        await agent.step(view(pack, steps), lambda e: None)
        other, _ = factory.for_episode("ep2", seed=2)
        await other.step(view(pack, query="What colour is item I-07?", episode_id="ep2"), lambda e: None)
        await factory.aclose()

    run(go())
    sent = [json.dumps(r["body"]["messages"], ensure_ascii=False) for r in server.requests]
    messages = [r["body"]["messages"] for r in server.requests]
    for earlier, later in zip(messages[:2], messages[1:3], strict=True):
        assert later[:len(earlier)] == earlier, "each step only appends to the previous prompt"
        assert sent[messages.index(later)].startswith(json.dumps(earlier, ensure_ascii=False)[:-1])
    assert [m["role"] for m in messages[2]] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[2][2]["content"] == CALL  # the reply exactly as produced
    assert messages[2][4]["content"] == "I think it is green"
    assert messages[2][3]["content"] == '{"id": "I-01", "colour": "green"}'
    # Another episode: the same system message byte for byte, then its own task.
    assert messages[3][0] == messages[0][0]
    assert messages[3][1]["content"] == "Task: What colour is item I-07?"


def test_constrained_decoding_sends_one_schema_branch_per_tool(project, server):
    factory, pack = make_factory(project, server.api_base, agent_extra="          constrained: true\n",
                                 model_extra="              constrain_with: json_object_schema\n", name="c.yaml")
    run(_one_step(factory, pack))
    fmt = server.requests[0]["body"]["response_format"]
    assert fmt["type"] == "json_object"
    branches = fmt["schema"]["anyOf"]
    assert [b["properties"]["tool"]["const"] for b in branches] == ["get_item", "set_colour", "finish"]
    set_colour = branches[1]["properties"]["arguments"]
    assert set_colour["properties"]["colour"]["enum"] == ["red", "green", "blue"]
    assert set_colour["required"] == ["item_id", "colour"]
    assert branches[0]["properties"]["thought"]["maxLength"] > 0


def test_constrained_openai_style_uses_json_schema(project, server):
    factory, pack = make_factory(project, server.api_base, agent_extra="          constrained: true\n",
                                 name="c2.yaml")
    run(_one_step(factory, pack))
    fmt = server.requests[0]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and "anyOf" in fmt["json_schema"]["schema"]


async def _one_step(factory, pack, events=None):
    await factory.start()
    try:
        agent, _ = factory.for_episode("ep1", seed=1)
        return await agent.step(view(pack), (events.append if events is not None else lambda e: None))
    finally:
        await factory.aclose()


def test_reply_cut_at_max_tokens_becomes_a_format_finding(project, server):
    server.push(Reply(text='{"thought": "a very long thought that goes on and on', finish_reason="length"))
    factory, pack = make_factory(project, server.api_base)
    turn = run(_one_step(factory, pack))
    assert turn.parsed.action is None
    assert turn.parsed.problem.code == "format.unparseable"
    assert "cut off" in turn.parsed.problem.message


# ----- native format -------------------------------------------------------------------------


def test_native_tool_calls_and_tool_results_linked_by_id(project, server):
    server.push(Reply(tool_calls=[{"name": "get_item", "arguments": {"item_id": "I-01"}, "id": "call_abc"}]),
                Reply(tool_calls=[{"name": "finish", "arguments": {"answer": "green"}, "id": "call_def"}]))
    factory, pack = make_factory(project, server.api_base, agent_extra="          format: native\n", name="n.yaml")
    events = []

    async def go():
        await factory.start()
        agent, _ = factory.for_episode("ep1", seed=1)
        first = await agent.step(view(pack), events.append)
        second = await agent.step(view(pack, [step_view(0, first, '{"colour": "green"}')]), events.append)
        await factory.aclose()
        return first, second

    first, second = run(go())
    assert first.parsed.action == ToolCall("get_item", {"item_id": "I-01"}, call_id="call_abc")
    assert second.parsed.action == Finish("green", call_id="call_def")
    assert '{"item_id": "I-01"}' in "".join(e.text for e in events if e.step == 0), "argument deltas stream"
    tools = server.requests[0]["body"]["tools"]
    assert [t["function"]["name"] for t in tools] == ["get_item", "set_colour", "finish"]
    history = server.requests[1]["body"]["messages"]
    assert history[2]["role"] == "assistant"
    assert history[2]["tool_calls"][0]["id"] == "call_abc"
    assert history[2]["tool_calls"][0]["function"]["name"] == "get_item"
    assert history[3] == {"role": "tool", "tool_call_id": "call_abc", "content": '{"colour": "green"}'}


def test_native_text_reply_falls_back_to_a_json_action(project, server):
    server.push(Reply(text=CALL))
    factory, pack = make_factory(project, server.api_base, agent_extra="          format: native\n", name="n2.yaml")
    turn = run(_one_step(factory, pack))
    assert turn.parsed.action == ToolCall("get_item", {"item_id": "I-01"})
    assert "action-in-text" in turn.parsed.notes


def test_native_broken_arguments_are_a_format_finding(project, server):
    server.push(Reply(tool_calls=[{"name": "get_item", "arguments": '{"item_id": "I-0', "id": "c1"}]))
    factory, pack = make_factory(project, server.api_base, agent_extra="          format: native\n", name="n3.yaml")
    turn = run(_one_step(factory, pack))
    assert turn.parsed.action is None and turn.parsed.problem.code == "format.unparseable"


# ----- faults --------------------------------------------------------------------------------


def _failure(factory, pack) -> ModelFailure:
    with pytest.raises(ModelFailure) as info:
        run(_one_step(factory, pack))
    return info.value


def test_transient_server_error_is_retried(project, server):
    server.push(Reply(status=500), Reply(status=503), Reply(text=FINISH))
    factory, pack = make_factory(project, server.api_base)
    turn = run(_one_step(factory, pack))
    assert turn.parsed.action == Finish("green")
    assert turn.usage["attempts"] == 3
    assert len(server.requests) == 3


def test_persistent_server_error_ends_with_model_server_error(project, server):
    server.push(*[Reply(status=500, error_message="boom")] * 3)
    factory, pack = make_factory(project, server.api_base)
    failure = _failure(factory, pack)
    assert failure.code == "model.server_error" and failure.transient
    assert failure.details["attempts"] == 3 and failure.details["api_base"] == server.api_base
    assert server.api_base in failure.message
    assert len(server.requests) == 3


def test_rate_limit(project, server):
    server.push(*[Reply(status=429, error_message="slow down", retry_after=0)] * 3)
    factory, pack = make_factory(project, server.api_base)
    failure = _failure(factory, pack)
    assert failure.code == "model.rate_limited" and failure.transient


def test_context_length_is_not_retried(project, server):
    server.push(Reply(context_length=True))
    factory, pack = make_factory(project, server.api_base)
    failure = _failure(factory, pack)
    assert failure.code == "model.context_length" and not failure.transient
    assert len(server.requests) == 1


def test_connection_refused(project):
    factory, pack = make_factory(project, f"http://127.0.0.1:{closed_port()}/v1", name="r.yaml")
    failure = _failure(factory, pack)
    assert failure.code == "model.unreachable" and failure.transient
    assert failure.details["attempts"] == 3


def test_time_out(project, server):
    server.push(*[Reply(hang=1.5, text=FINISH)] * 3)
    factory, pack = make_factory(project, server.api_base, timeout=0.5, name="t.yaml")
    failure = _failure(factory, pack)
    assert failure.code == "model.timeout" and failure.transient


def test_truncated_stream(project, server):
    server.push(*[Reply(text=CALL, truncate_after=3)] * 3)
    factory, pack = make_factory(project, server.api_base)
    failure = _failure(factory, pack)
    assert failure.code == "model.bad_response" and failure.transient
    assert "ended before the reply was complete" in failure.message


def test_malformed_stream(project, server):
    server.push(*[Reply(text=CALL, malformed=True)] * 3)
    factory, pack = make_factory(project, server.api_base)
    failure = _failure(factory, pack)
    assert failure.code == "model.bad_response"


def test_empty_reply_is_asked_again_then_fails(project, server):
    server.push(Reply(empty=True), Reply(empty=True))
    factory, pack = make_factory(project, server.api_base)
    failure = _failure(factory, pack)
    assert failure.code == "model.empty"
    assert len(server.requests) == 2


def test_empty_reply_once_then_a_real_one(project, server):
    server.push(Reply(empty=True), Reply(text=FINISH))
    factory, pack = make_factory(project, server.api_base)
    assert run(_one_step(factory, pack)).parsed.action == Finish("green")


def test_auth_failure_names_the_variable_not_the_key(project, server, monkeypatch):
    monkeypatch.setenv("LAMSIM_TEST_KEY", "sk-secret-value-123")
    server.push(Reply(status=401, error_message="bad key"))
    factory, pack = make_factory(project, server.api_base,
                                 model_extra="              api_key_env: LAMSIM_TEST_KEY\n", name="k.yaml")
    failure = _failure(factory, pack)
    assert failure.code == "model.auth" and not failure.transient
    assert "LAMSIM_TEST_KEY" in failure.message
    assert server.requests[0]["headers"]["authorization"] == "Bearer sk-secret-value-123"
    shown = json.dumps([factory.describe(), failure.details, failure.message, factory.for_episode("e", 1)[1]])
    assert "sk-secret-value-123" not in shown


def test_missing_key_variable_is_a_clear_error(project, server, monkeypatch):
    monkeypatch.delenv("LAMSIM_MISSING_KEY", raising=False)
    factory, pack = make_factory(project, server.api_base,
                                 model_extra="              api_key_env: LAMSIM_MISSING_KEY\n", name="k2.yaml")
    with pytest.raises(ConfigError) as info:
        run(factory.start())
    assert "LAMSIM_MISSING_KEY" in str(info.value) and "agent.models[0].api_key_env" in str(info.value)


# ----- cancellation --------------------------------------------------------------------------


def test_cancelling_a_step_closes_the_stream_and_stops_events(project, server):
    server.push(Reply(text=CALL * 20, chunk_chars=2, chunk_delay=0.02))
    factory, pack = make_factory(project, server.api_base)
    events: list = []

    async def go():
        await factory.start()
        agent, _ = factory.for_episode("ep1", seed=1)
        first = asyncio.Event()

        def emit(event):
            events.append(event)
            first.set()

        task = asyncio.create_task(agent.step(view(pack), emit))
        await asyncio.wait_for(first.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        seen = len(events)
        await asyncio.sleep(0.3)
        await factory.aclose()
        return seen

    seen = run(go())
    assert len(events) == seen, "no text arrives after the step was cancelled"
    assert 0 < len("".join(e.text for e in events)) < len(CALL * 20)
    assert server.wait_idle(5), "the client closed its connection"


# ----- choosing among models -----------------------------------------------------------------


def test_models_are_chosen_by_weight_and_recorded(project, server):
    path = write_session(project, f"""\
        pack: mini
        agent:
          kind: model
          models:
            - {{model: openai/a, api_base: "{server.api_base}", weight: 3, temperature: 0.2}}
            - {{model: openai/b, api_base: "{server.api_base}", weight: 1, temperature: 0.9}}
        """, name="w.yaml")
    session = load_session(path)
    factory = ModelAgentFactory(session, load_pack(session.pack_dir()))
    run(factory.start())
    picks = [factory.for_episode(f"e{i}", seed=i)[1] for i in range(200)]
    share_a = sum(p["model"] == "openai/a" for p in picks) / len(picks)
    assert 0.6 < share_a < 0.9
    assert {p["temperature"] for p in picks} == {0.2, 0.9}
    assert factory.for_episode("x", seed=5)[1] == factory.for_episode("y", seed=5)[1], "same seed, same model"
    run(factory.aclose())


def test_model_kind_without_models_is_a_config_error(project):
    path = write_session(project, "pack: mini\nagent: {kind: embedded}\n", name="e.yaml")
    session = load_session(path)
    with pytest.raises(ConfigError):
        ModelAgentFactory(session, load_pack(session.pack_dir()), embedded=False)


# ----- paraphrase ----------------------------------------------------------------------------


def test_paraphrase_asks_to_keep_slot_values_and_falls_back_on_failure(project, server):
    server.push(Reply(text='"Which colour does item I-01 have?"'), *[Reply(status=500)] * 3)
    factory, _ = make_factory(project, server.api_base)

    async def go():
        await factory.start()
        good = await factory.paraphrase("What colour is item I-01?", {"item_id": "I-01"})
        failed = await factory.paraphrase("What colour is item I-01?")
        await factory.aclose()
        return good, failed

    good, failed = run(go())
    assert good == "Which colour does item I-01 have?"
    assert failed == "What colour is item I-01?"
    request = server.requests[0]["body"]["messages"][1]["content"]
    assert "- I-01" in request and "What colour is item I-01?" in request
    assert server.requests[0]["body"]["temperature"] == 0.7


def test_a_step_after_an_error_is_sampled_warmer(project, server):
    server.push(Reply(text="not an action"), Reply(text=CALL), Reply(text=FINISH))
    factory, pack = make_factory(project, server.api_base)

    async def go():
        await factory.start()
        agent, _ = factory.for_episode("ep1", seed=4)
        first = await agent.step(view(pack), lambda e: None)
        rejected = StepView(index=0, raw=first.raw, thought="", action=None,
                            observation="Error: Your reply is not a valid action",
                            findings=[first.parsed.problem.to_dict()], executed=False)
        second = await agent.step(view(pack, [rejected]), lambda e: None)
        fine = step_view(1, second, '{"colour": "green"}')
        await agent.step(view(pack, [rejected, fine]), lambda e: None)
        await factory.aclose()
        return second

    second = run(go())
    temperatures = [r["body"].get("temperature") for r in server.requests]
    assert temperatures == [0.0, 0.7, 0.0]
    assert second.usage["temperature"] == 0.7
    assert all(r["body"]["seed"] == 4 for r in server.requests), "the episode seed keeps it reproducible"


# ----- through the engine --------------------------------------------------------------------


def _engine(project, api_base, name, events, tasks=4, concurrency=1, retries=0):
    from lamsim_tui.simulator.engine import Engine

    path = write_session(project, f"""\
        pack: mini
        concurrency: {concurrency}
        agent:
          kind: model
          models:
            - {{model: openai/test-model, api_base: "{api_base}", timeout: 5, retries: {retries}}}
        """, name=name)
    session = load_session(path)
    pack = load_pack(session.pack_dir())
    return Engine(session, pack, ModelAgentFactory(session, pack), on_event=events.append, tasks=tasks)


def test_a_dead_server_pauses_the_session_naming_model_and_address(project):
    from lamsim_tui.events import SessionPaused

    api_base = f"http://127.0.0.1:{closed_port()}/v1"
    events: list = []
    engine = _engine(project, api_base, "dead.yaml", events)

    def stop_when_paused(event):
        events.append(event)
        if isinstance(event, SessionPaused):
            engine.cancel()

    engine.on_event = stop_when_paused
    summary = run(engine.run())
    paused = [e for e in events if isinstance(e, SessionPaused)]
    assert len(paused) == 1
    assert "openai/test-model" in paused[0].reason and api_base in paused[0].reason
    assert summary.end_reasons["model.unreachable"] >= 3


def test_cancelling_the_session_closes_streams_and_nothing_arrives_after(project, server):
    from lamsim_tui.events import SessionFinished

    server.default = Reply(text=CALL * 30, chunk_chars=2, chunk_delay=0.02)
    events: list = []
    engine = _engine(project, server.api_base, "cancel.yaml", events, tasks=3, concurrency=2)

    async def go():
        task = asyncio.create_task(engine.run())
        while not any(isinstance(e, TextDelta) for e in events):
            await asyncio.sleep(0.01)
        engine.cancel()
        summary = await task
        finished_at = len(events)
        await asyncio.sleep(0.3)
        return summary, finished_at

    summary, finished_at = run(go())
    assert summary.cancelled
    assert isinstance(events[finished_at - 1], SessionFinished)
    assert len(events) == finished_at, "no event after the session finished"
    assert server.wait_idle(5), "every stream was closed"
