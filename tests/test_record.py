"""The typed trajectory record: it reads back what it wrote, versions are migrated or refused, and
the ground truth in it reaches only agents that replay gold programs."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
from pathlib import Path

import pytest
from openai_server import OpenAIServer
from packkit import write_pack, write_session

from lamsim_tui import record as rec
from lamsim_tui.agents.model import ModelAgentFactory
from lamsim_tui.agents.scripted import ScriptedAgentFactory
from lamsim_tui.events import EpisodeFinished
from lamsim_tui.packs import load_pack
from lamsim_tui.record import GoldCall, RecordError, Task, Trajectory, migrate
from lamsim_tui.session.config import load_session
from lamsim_tui.simulator.engine import Engine

GOLDEN_RECORDS = Path(__file__).parent / "data" / "golden" / "records.jsonl"


def _golden() -> list[dict]:
    return [json.loads(line) for line in GOLDEN_RECORDS.read_text(encoding="utf-8").splitlines() if line.strip()]


# ----- reading back what was written ------------------------------------------------------------


def test_every_golden_record_round_trips_exactly():
    records = _golden()
    assert len(records) >= 10
    # Reviewed and unreviewed ones: an optional part reads back both present and absent.
    assert any("review" in d for d in records) and any("review" not in d for d in records)
    for data in records:
        typed = Trajectory.from_dict(data)
        assert typed.to_dict() == data, f"record {data['id']} does not read back as it was written"
        assert typed.id == data["id"] and typed.verdict.success == data["verdict"]["success"]
        assert [s.codes for s in typed.steps] == [[f["code"] for f in s["feedback"]] for s in data["steps"]]


def test_unknown_top_level_fields_are_kept_not_dropped():
    data = {**_golden()[0], "written_by_a_plugin": {"x": 1}}
    assert Trajectory.from_dict(data).to_dict() == data


def test_a_record_that_is_not_a_trajectory_is_a_record_error():
    data = _golden()[0]
    with pytest.raises(RecordError, match="not a trajectory record"):
        Trajectory.from_dict({k: v for k, v in data.items() if k != "task"})
    with pytest.raises(RecordError, match="JSON object"):
        Trajectory.from_dict([data])


# ----- versions ---------------------------------------------------------------------------------


def test_from_dict_reads_only_the_current_version():
    data = _golden()[0]
    with pytest.raises(RecordError, match="migrate it first"):
        Trajectory.from_dict({**data, "schema_version": rec.SCHEMA_VERSION - 1})


def test_migrate_refuses_newer_and_unversioned_records_and_passes_current_ones_through():
    data = _golden()[0]
    assert migrate(data) is data
    with pytest.raises(RecordError, match="newer than this lamsim reads"):
        migrate({**data, "schema_version": rec.SCHEMA_VERSION + 1})
    for version in (None, "1"):
        with pytest.raises(RecordError, match="no schema_version"):
            migrate({**data, "schema_version": version})
    with pytest.raises(RecordError, match="cannot be migrated"):
        migrate({**data, "schema_version": rec.SCHEMA_VERSION - 1})  # no migration registered for it


def test_migrate_applies_registered_upgrades_in_order(monkeypatch):
    current = _golden()[0]
    # Pretend the record format had two earlier versions: v(N-2) called `final_answer` `answer`,
    # v(N-1) kept `end_reason` under `ended`.
    v = rec.SCHEMA_VERSION
    oldest = {k: val for k, val in current.items() if k not in ("final_answer", "end_reason")}
    oldest.update(schema_version=v - 2, answer=current["final_answer"], ended=current["end_reason"])
    applied = []

    def rename_answer(data: dict) -> dict:
        applied.append(data["schema_version"])
        data = dict(data)
        data["final_answer"] = data.pop("answer")
        return {**data, "schema_version": v - 1}

    def rename_ended(data: dict) -> dict:
        applied.append(data["schema_version"])
        data = dict(data)
        data["end_reason"] = data.pop("ended")
        return {**data, "schema_version": v}

    monkeypatch.setitem(rec.MIGRATIONS, v - 2, rename_answer)
    with pytest.raises(RecordError, match=f"schema_version {v - 1}, which cannot be migrated"):
        migrate(oldest)  # the chain is incomplete: refused, not half-read
    monkeypatch.setitem(rec.MIGRATIONS, v - 1, rename_ended)
    applied.clear()
    upgraded = migrate(oldest)
    assert applied == [v - 2, v - 1]
    assert upgraded == current
    assert Trajectory.from_dict(upgraded).to_dict() == current


# ----- who may see the ground truth -------------------------------------------------------------

SECRET_TOOLS = '''
from lamsim_tui.packs import Sandbox, ToolError, tool


@tool
def get_item(sb: Sandbox, item_id: str) -> dict:
    """Get one item by id.

    Args:
        item_id: Item id such as "I-01".
    """
    item = sb.get("items", item_id)
    if item is None:
        raise ToolError(f"No item with id {item_id}.")
    return item
'''

SECRET_TEMPLATES = '''
from lamsim_tui.packs import template


@template(query="What is the code of item {item_id}?", answer="text")
def item_code(data, rng):
    return {"item_id": rng.choice(data.rows("items"))["id"]}


@item_code.gold
def _(slots, call):
    return call("get_item", item_id=slots["item_id"])["code"]
'''

# Codes that appear nowhere but in the sandbox's rows: the agent could only learn one by calling
# `get_item` (which the scripted model below never does) or by being handed the task.
SECRET_ITEMS = [{"id": f"I-{i:02d}", "code": f"gold-{i * 7919:06d}-xq"} for i in range(1, 9)]


class _Watching:
    """Notes how the engine calls `for_episode` and every view the agents are handed."""

    def _watch(self, agent, episode_id, args, kwargs, base):
        bound = inspect.signature(base.for_episode).bind(self, *args, **kwargs)
        bound.apply_defaults()
        self.calls.append((episode_id, bound.arguments["gold"]))
        step = agent.step

        async def watched(view, emit):
            self.views.append((episode_id, view))
            return await step(view, emit)

        agent.step = watched
        return agent


class WatchedModelFactory(_Watching, ModelAgentFactory):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.views, self.agents = [], [], []

    def for_episode(self, *args, **kwargs):
        agent, public = super().for_episode(*args, **kwargs)
        self.agents.append(agent)
        return self._watch(agent, args[0], args, kwargs, ModelAgentFactory), public


class WatchedScriptedFactory(_Watching, ScriptedAgentFactory):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.views = [], []

    def for_episode(self, *args, **kwargs):
        agent, public = super().for_episode(*args, **kwargs)
        return self._watch(agent, args[0], args, kwargs, ScriptedAgentFactory), public


def _holds_ground_truth(value, depth: int = 0) -> bool:
    """A Task or gold call anywhere inside a value (dataclasses, lists, dicts, plain objects)."""
    if isinstance(value, (Task, GoldCall)):
        return True
    if depth > 6 or isinstance(value, (str, int, float, bool, type(None))):
        return False
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        children = [getattr(value, f.name) for f in dataclasses.fields(value)]
    elif isinstance(value, dict):
        children = list(value.values())
    elif isinstance(value, (list, tuple, set)):
        children = list(value)
    elif hasattr(value, "__dict__") and not callable(value):
        children = list(vars(value).values())
    else:
        return False
    return any(_holds_ground_truth(child, depth + 1) for child in children)


def _run(factory, session, pack) -> list[Trajectory]:
    records: list[Trajectory] = []
    engine = Engine(session, pack, factory, tasks=3, seed=5,
                    on_event=lambda e: records.append(e.trajectory) if isinstance(e, EpisodeFinished) else None)
    asyncio.run(engine.run())
    return records


@pytest.fixture
def secret_project(tmp_path):
    write_pack(tmp_path, name="secret", tools=SECRET_TOOLS, templates=SECRET_TEMPLATES, items=SECRET_ITEMS)
    return tmp_path


def test_a_model_agent_cannot_read_the_task(secret_project):
    with OpenAIServer() as server:  # answers every request with a finish action: it calls no tool
        path = write_session(secret_project, f"""\
            pack: secret
            concurrency: 1
            agent:
              kind: model
              models:
                - {{model: openai/test-model, api_base: "{server.api_base}", timeout: 5, retries: 0}}
            """)
        session = load_session(path)
        pack = load_pack(session.pack_dir())
        factory = WatchedModelFactory(session, pack)
        assert factory.replays_gold is False
        records = _run(factory, session, pack)
        requests = [json.dumps(r["body"], ensure_ascii=False) for r in server.requests]

    assert len(records) == 3 and factory.views and requests
    gold = {r.id: r.task for r in records}
    assert all(t.gold_answer.startswith("gold-") and t.gold_calls for t in gold.values())
    assert sorted(episode for episode, _ in factory.calls) == sorted(gold)
    assert all(given is None for _, given in factory.calls), "for_episode was handed the task"
    for episode_id, view in factory.views:
        names = {f.name for f in dataclasses.fields(view)} | set(vars(view))
        assert not {n for n in names if "task" in n or "gold" in n}, names
        assert not _holds_ground_truth(view)
        assert gold[episode_id].gold_answer not in repr(view)
        assert view.query == gold[episode_id].query  # it does get the question
    assert not any(_holds_ground_truth(agent) for agent in factory.agents)
    for task in gold.values():  # nor does anything of the answer reach the model server
        assert not any(task.gold_answer in body for body in requests)


def test_an_agent_that_replays_gold_programs_gets_the_task(secret_project):
    session = load_session(write_session(secret_project, "pack: secret\nagent: {kind: scripted, mistake_rate: 0}\n"))
    pack = load_pack(session.pack_dir())
    factory = WatchedScriptedFactory(session, pack)
    assert factory.replays_gold is True
    records = _run(factory, session, pack)
    gold = {r.id: r.task for r in records}
    assert len(gold) == 3
    assert {episode: given for episode, given in factory.calls} == gold
    assert all(r.verdict.success for r in records)  # it replayed the gold program
    # Even so, the view it works from holds no ground truth: only `for_episode` carries it.
    assert factory.views and not any(_holds_ground_truth(view) for _, view in factory.views)
