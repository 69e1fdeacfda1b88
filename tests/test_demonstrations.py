"""Demonstrations: solved tasks from the store (or, at a cold start, gold replays of other tasks)
shown to a model agent, chosen deterministically, never the episode's own task, recorded by id.

Real stores filled by a real scripted run, the real engine, and the model agent talking through
litellm to a real HTTP server on loopback (tests/openai_server.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
from openai_server import OpenAIServer, Reply
from packkit import lamsim, write_pack, write_session
from storekit import copy_store, engine_store

from lamsim_tui.agents.model import ModelAgentFactory
from lamsim_tui.agents.scripted import ScriptedAgentFactory
from lamsim_tui.curation.export import convert
from lamsim_tui.curation.review import accept
from lamsim_tui.curation.stats import compute, format_table
from lamsim_tui.errors import ConfigError
from lamsim_tui.events import EpisodeFinished, EpisodeStarted
from lamsim_tui.packs import load_pack
from lamsim_tui.record import Trajectory
from lamsim_tui.session.config import DemonstrationSettings, load_session
from lamsim_tui.simulator.demos import DemonstrationSelector, from_trajectory
from lamsim_tui.simulator.engine import Engine
from lamsim_tui.simulator.runner import ToolRunner
from lamsim_tui.simulator.tasks import TaskGenerator, template_weights
from lamsim_tui.store import open_store

WRONG = '{"thought": "guess", "tool": "finish", "arguments": {"answer": "purple"}}'


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr("lamsim_tui.agents.model.BACKOFF_S", 0.01)


@pytest.fixture(scope="module")
def accepted_store(tmp_path_factory) -> Path:
    """A scripted run on the mini pack, every trajectory that passed the filters accepted."""
    root = tmp_path_factory.mktemp("demos")
    store_dir = engine_store(root)
    with open_store(store_dir) as store:
        for item in store.listings(status="pending"):
            accept(store, item.id, note="demonstration")
    return store_dir


@pytest.fixture
def server():
    with OpenAIServer(default=Reply(text=WRONG)) as srv:
        yield srv


def model_session(root: Path, api_base: str, demonstrations: str, fmt: str = "json", name: str = "m.yaml"):
    write_pack(root)
    path = write_session(root, f"""\
        pack: mini
        seed: 5
        concurrency: 1
        agent:
          kind: model
          format: {fmt}
          models:
            - {{model: openai/test-model, api_base: "{api_base}", timeout: 5, retries: 0}}
        budget: {{steps: 4}}
        demonstrations: {demonstrations}
        """, name=name)
    return load_session(path)


def run_engine(session, factory, *, tasks: int, seed: int = 5, store=None) -> tuple[list[Trajectory], list]:
    records: list[Trajectory] = []
    events: list = []

    def on_event(event):
        events.append(event)
        if isinstance(event, EpisodeFinished):
            records.append(event.trajectory)

    pack = load_pack(session.pack_dir())
    engine = Engine(session, pack, factory, store=store, on_event=on_event, tasks=tasks, seed=seed)
    asyncio.run(engine.run())
    return records, events


def new_tasks(pack, n: int, seed: int):
    return TaskGenerator(pack, template_weights(pack, "all"), ToolRunner(pack)).generate(n, seed).tasks


def selector(store_dir: Path, tmp_path: Path, **settings) -> DemonstrationSelector:
    write_pack(tmp_path)
    session = load_session(write_session(tmp_path, "pack: mini\nseed: 5\n"))
    session = dataclasses.replace(session, demonstrations=DemonstrationSettings(**settings))
    pack = load_pack(session.pack_dir())
    with open_store(store_dir, readonly=True) as store:
        chosen = DemonstrationSelector.for_session(session, pack, ToolRunner(pack), store=store)
    assert chosen is not None
    return chosen


# ----- choosing ------------------------------------------------------------------------------------


def test_per_episode_choice_is_same_template_first_never_the_own_task_and_fixed_by_the_seed(accepted_store,
                                                                                           tmp_path):
    with open_store(accepted_store, readonly=True) as store:
        stored = list(store.records(status="accepted"))
    pick = selector(accepted_store, tmp_path, count=2, placement="episode")
    assert pick.source == str(accepted_store.resolve()) and len(pick.candidates) == len(stored)
    tasks = [r.task for r in stored] + new_tasks(load_pack(tmp_path / "tools" / "mini"), 12, seed=99)
    templates = {}
    for r in stored:
        templates.setdefault(r.template, set()).add(r.task.id)
    for task in tasks:
        chosen = pick.for_task(task)
        assert chosen is not None and chosen.placement == "episode"
        refs = chosen.refs
        assert task.id not in {r.task_id for r in refs}, "never the episode's own task"
        assert len({r.task_id for r in refs}) == len(refs) == 2, "two different tasks"
        if templates.get(task.template, set()) - {task.id}:
            assert refs[0].template == task.template, "same template first"
        assert all(r.origin == "store" for r in refs)
        assert [r.id for r in pick.for_task(task).refs] == [r.id for r in refs]
    again = selector(accepted_store, tmp_path / "again", count=2, placement="episode")
    other = selector(accepted_store, tmp_path / "other", count=2, placement="episode", seed=1234)

    def ids(chooser):
        return [[r.id for r in chooser.for_task(t).refs] for t in tasks]

    assert ids(again) == ids(pick), "the same store and seed choose the same demonstrations"
    assert ids(other) != ids(pick), "another seed chooses otherwise among equals"


def test_a_session_wide_set_is_the_same_for_every_episode_except_where_it_holds_the_own_task(accepted_store,
                                                                                             tmp_path):
    pick = selector(accepted_store, tmp_path, count=2, placement="system")
    tasks = new_tasks(load_pack(tmp_path / "tools" / "mini"), 10, seed=99)
    sets = {tuple(r.id for r in pick.for_task(t).refs) for t in tasks if t.id not in
            {c.ref.task_id for c in pick.candidates}}
    assert len(sets) == 1
    (shared,) = sets
    assert len({pick.candidates[[c.ref.id for c in pick.candidates].index(i)].ref.template for i in shared}) == 2, \
        "one template after another"
    member = next(c for c in pick.candidates if c.ref.id == shared[0])
    own_task = member.ref.task_id
    with open_store(accepted_store, readonly=True) as store:
        task = next(r.task for r in store.records() if r.task.id == own_task)
    replaced = [r.id for r in pick.for_task(task).refs]
    assert member.ref.id not in replaced and shared[1] in replaced and len(replaced) == 2


def test_the_token_budget_and_long_results_are_respected(accepted_store, tmp_path):
    roomy = selector(accepted_store, tmp_path / "a", count=3, placement="episode")
    tight_budget = max(c.tokens() for c in roomy.candidates) + 1
    tight = selector(accepted_store, tmp_path / "b", count=3, placement="episode", token_budget=tight_budget)
    task = new_tasks(load_pack(tmp_path / "a" / "tools" / "mini"), 1, seed=3)[0]
    assert len(roomy.for_task(task).demonstrations) == 3
    chosen = tight.for_task(task).demonstrations
    assert 1 <= len(chosen) < 3 and sum(d.tokens() for d in chosen) <= tight_budget
    short = selector(accepted_store, tmp_path / "c", count=3, observation_chars=40)
    for demo in short.candidates:
        for step in demo.steps:
            assert len(step.observation) <= 40 + len(" ... [truncated: 99999 more characters]")


def test_rejected_steps_go_unless_kept(accepted_store):
    with open_store(accepted_store, readonly=True) as store:
        record = next(r for r in store.records(status="accepted") if r.verdict.error_counts)
    clean = from_trajectory(record)
    kept = from_trajectory(record, keep_rejected=True)
    assert len(kept.steps) == len(record.steps) and len(clean.steps) < len(record.steps)
    assert clean.steps[-1].tool == "finish" and clean.steps[-1].arguments == {"answer": record.final_answer}
    assert all("Error:" not in s.observation for s in clean.steps)
    assert any("Error:" in s.observation for s in kept.steps)


# ----- what the model is shown, and what the record keeps ------------------------------------------


def _system(request) -> str:
    return request["body"]["messages"][0]["content"]


def test_system_placement_puts_the_set_in_the_system_prompt_and_the_record_names_it(accepted_store, tmp_path,
                                                                                      server):
    store_dir = copy_store(accepted_store, tmp_path / "store")
    session = model_session(tmp_path, server.api_base, "{count: 2}")
    factory = ModelAgentFactory(session, load_pack(session.pack_dir()))
    with open_store(store_dir) as store:
        candidates = {r.id: r for r in store.records(status="accepted")}
        records, events = run_engine(session, factory, tasks=3, store=store)
    assert len(records) == 3
    systems = {_system(r) for r in server.requests}
    for record in records:
        shown = record.demonstrations
        assert shown is not None and shown.placement == "system" and len(shown.items) == 2
        assert shown.source == str(store_dir.resolve())
        assert record.task.id not in {i.task_id for i in shown.items}
        assert all(candidates[i.id].task.id == i.task_id for i in shown.items), "ids of accepted trajectories"
        system = f"{record.system_prompt}\n\n{shown.prompt}"
        assert system in systems, "the prompt the model received is the recorded one"
        for item in shown.items:
            assert f"Task: {candidates[item.id].task.query}" in shown.prompt
        assert record.task.query not in shown.prompt
    started = [e for e in events if isinstance(e, EpisodeStarted)]
    assert [[d["id"] for d in e.demonstrations] for e in started] == [r.demonstrations.ids for r in records]
    # The task message stays after the system message, which is the same bytes for every episode.
    assert len(systems) <= 2
    first = server.requests[0]["body"]["messages"]
    assert [m["role"] for m in first] == ["system", "user"] and first[1]["content"].startswith("Task: ")
    stored = records[0].to_dict()
    assert Trajectory.from_dict(json.loads(json.dumps(stored))).to_dict() == stored


def test_episode_placement_sends_turns_in_the_agents_own_format(accepted_store, tmp_path, server):
    session = model_session(tmp_path, server.api_base, f"{{count: 2, placement: episode, source: {accepted_store}}}")
    factory = ModelAgentFactory(session, load_pack(session.pack_dir()))
    records, _ = run_engine(session, factory, tasks=2)
    record = records[0]
    shown = record.demonstrations
    assert shown.placement == "episode" and shown.prompt is None and shown.source == str(accepted_store.resolve())
    sent = server.requests[0]["body"]["messages"]
    assert sent[0]["content"] == record.system_prompt, "the system message is the plain one"
    assert sent[1:-1] == list(shown.messages) and sent[-1]["content"] == f"Task: {record.task.query}"
    assert sent[1]["content"].startswith("Example task: ")
    replies = [m["content"] for m in shown.messages if m["role"] == "assistant"]
    assert replies and all(json.loads(r)["tool"] for r in replies), "JSON actions, as this agent writes them"
    assert json.loads(replies[-1])["tool"] == "finish"


def test_native_format_demonstrations_are_tool_calls(accepted_store, tmp_path, server):
    server.default = Reply(tool_calls=[{"name": "finish", "arguments": {"answer": "purple"}}])
    session = model_session(tmp_path, server.api_base, f"{{count: 1, placement: episode, source: {accepted_store}}}",
                            fmt="native")
    records, _ = run_engine(session, ModelAgentFactory(session, load_pack(session.pack_dir())), tasks=1)
    messages = list(records[0].demonstrations.messages)
    calls = [m for m in messages if m["role"] == "assistant"]
    assert calls and all(m["tool_calls"][0]["type"] == "function" for m in calls)
    results = [m for m in messages if m["role"] == "tool"]
    assert [r["tool_call_id"] for r in results] == [c["tool_calls"][0]["id"] for c in calls]
    assert calls[-1]["tool_calls"][0]["function"]["name"] == "finish"
    assert server.requests[0]["body"]["messages"][1:-1] == messages


def test_cold_start_shows_gold_replays_of_other_tasks_labelled_as_such(tmp_path, server):
    session = model_session(tmp_path, server.api_base, "{count: 2, placement: episode}")
    pack = load_pack(session.pack_dir())
    with open_store(tmp_path / "empty") as store:
        records, _ = run_engine(session, ModelAgentFactory(session, pack), tasks=4, store=store)
    for record in records:
        shown = record.demonstrations
        assert shown.source == "gold"
        assert all(i.origin == "gold" and i.id == f"gold:{i.task_id}" for i in shown.items)
        assert record.task.id not in {i.task_id for i in shown.items}
        replies = [json.loads(m["content"]) for m in shown.messages if m["role"] == "assistant"]
        assert replies[-1]["tool"] == "finish" and all(r["tool"] in ("get_item", "set_colour", "finish")
                                                       for r in replies)
    assert "gold replay" in records[0].demonstrations.summary()
    shown = lamsim("review", "--store", str(tmp_path / "empty"), "show", records[0].id)
    assert shown.returncode == 0, shown.stderr
    assert f"shown      {records[0].demonstrations.summary()}" in shown.stdout  # `lamsim review show` names them


def test_exports_leave_demonstrations_out(accepted_store, tmp_path, server):
    session = model_session(tmp_path, server.api_base, f"{{count: 2, source: {accepted_store}}}")
    records, _ = run_engine(session, ModelAgentFactory(session, load_pack(session.pack_dir())), tasks=2)
    for record in records:
        bare = record.replace(demonstrations=None)
        for fmt in ("chat", "sharegpt", "xlam"):
            for system in ("neutral", "original"):
                assert convert(record, fmt, system=system) == convert(bare, fmt, system=system)
        row = convert(record, "chat", system="original")[0]
        assert row["messages"][0]["content"] == record.system_prompt
        assert "Examples:" not in json.dumps(row) and "Example task" not in json.dumps(row)


def test_agents_that_do_not_show_them_record_none(accepted_store, tmp_path):
    write_pack(tmp_path)
    session = load_session(write_session(tmp_path, f"pack: mini\ndemonstrations: {{count: 2, source: {accepted_store}}}\n"))
    pack = load_pack(session.pack_dir())
    records, events = run_engine(session, ScriptedAgentFactory(session, pack), tasks=3)
    assert all(r.demonstrations is None for r in records)
    assert all(e.demonstrations == () for e in events if isinstance(e, EpisodeStarted))
    assert records[0].session.settings["demonstrations"]["count"] == 2


def test_a_missing_source_store_is_one_clear_message(tmp_path, server):
    session = model_session(tmp_path, server.api_base, f"{{count: 2, source: {tmp_path / 'nowhere'}}}")
    with pytest.raises(ConfigError) as caught:
        run_engine(session, ModelAgentFactory(session, load_pack(session.pack_dir())), tasks=1)
    assert "demonstrations.source" in str(caught.value) and "nowhere" in str(caught.value)
    write_session(tmp_path, "pack: mini\ndemonstrations: {cuont: 2}\n", name="bad.yaml")
    with pytest.raises(ConfigError) as caught:
        load_session(tmp_path / "sessions" / "bad.yaml")
    assert "demonstrations.cuont" in str(caught.value) and "count" in str(caught.value)


def test_stats_split_by_demonstrations(accepted_store, tmp_path, server):
    session = model_session(tmp_path, server.api_base, f"{{count: 2, source: {accepted_store}}}")
    store_dir = copy_store(accepted_store, tmp_path / "mixed")
    with open_store(store_dir) as store:
        before = store.count()
        run_engine(session, ModelAgentFactory(session, load_pack(session.pack_dir())), tasks=3, store=store)
        stats = compute(store)
    split = stats["demonstrations"]
    assert split["with"]["episodes"] == 3 and split["without"]["episodes"] == before
    assert split["with"]["success_rate"] == 0.0  # "purple" is never right
    assert stats["overall"]["with_demonstrations"] == 3
    table = format_table(stats)
    assert "(with demonstrations)" in table and "(without demonstrations)" in table


def test_settings_off_leave_records_as_they_were(tmp_path):
    write_pack(tmp_path)
    session = load_session(write_session(tmp_path, "pack: mini\n"))
    assert "demonstrations" not in session.public_settings()
    on = dataclasses.replace(session, demonstrations=DemonstrationSettings(count=1))
    assert on.public_settings()["demonstrations"]["placement"] == "system"
