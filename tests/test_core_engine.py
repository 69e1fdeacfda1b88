"""Episodes through the real engine: feedback codes, judge, filters, scripted agent, determinism."""

import asyncio
import json

import pytest
from packkit import ROOT, write_pack, write_session

from lamsim_tui.agents.replay import ReplayAgent
from lamsim_tui.events import EpisodeFinished, FeedbackGiven, Progress, StepProposed
from lamsim_tui.packs import load_pack
from lamsim_tui.session.config import load_session
from lamsim_tui.simulator.engine import Engine, EpisodeSettings, replay, run_episode
from lamsim_tui.simulator.feedback import AGENT_CODES, CODES
from lamsim_tui.simulator.runner import ToolRunner
from lamsim_tui.simulator.tasks import TaskGenerator, template_weights


@pytest.fixture
def mini(tmp_path):
    write_pack(tmp_path)
    session = load_session(write_session(tmp_path, "pack: mini\nseed: 3\ntasks: 6\n"))
    return session, load_pack(session.pack_dir())


def _task(pack, template, **slots):
    from lamsim_tui.simulator.tasks import make_task

    return make_task(pack, pack.templates[template], slots, ToolRunner(pack))


def _episode(pack, task, actions, **settings):
    events = []
    result = asyncio.run(run_episode(pack=pack, runner=ToolRunner(pack), task=task, agent=ReplayAgent(actions),
                                     settings=EpisodeSettings(**settings), episode_id="e1", seed=1,
                                     emit=events.append))
    return result, events


def codes(result):
    return [[f["code"] for f in step["feedback"]] for step in result["steps"]]


def test_every_check_has_its_code_and_a_failed_check_skips_execution(mini):
    _, pack = mini
    task = _task(pack, "paint", item_id="I-04", colour="red")
    result, events = _episode(pack, task, [
        {"tool": "get_itm", "arguments": {"item_id": "I-04"}},
        {"tool": "set_colour", "arguments": {"item_id": "I-04"}},
        {"tool": "set_colour", "arguments": {"item_id": "I-04", "colour": "purple"}},
        {"tool": "set_colour", "arguments": {"item_id": 4, "colour": "red"}},
        {"tool": "set_colour", "arguments": {"item_id": "I-04", "colour": "red", "force": True}},
        {"tool": "set_colour", "arguments": {"item_id": "I-99", "colour": "red"}},
        {"tool": "set_colour", "arguments": {"item_id": "I-04", "colour": "red"}},
        {"tool": "set_colour", "arguments": {"item_id": "I-04", "colour": "red"}},
        {"type": "finish", "answer": "red"},
    ], )
    assert codes(result) == [["tool.unknown"], ["args.missing"], ["args.enum"], ["args.type"],
                             ["args.unexpected"], ["exec.error"], [], ["loop.repeat", "budget.low"], []]
    assert [s["executed"] for s in result["steps"]] == [False, False, False, False, False, True, True, False, False]
    first = result["steps"][0]["observation"]
    assert "no tool named 'get_itm'" in first and "Did you mean 'get_item'" in first
    assert "colour" in result["steps"][1]["observation"]
    assert result["verdict"]["success"] is True and result["verdict"]["state_correct"] is True
    assert result["final_state"] == {"items": {"I-04": {"id": "I-04", "colour": "red", "weight": 4}}}
    assert result["verdict"]["error_counts"]["args.enum"] == 1
    assert any(isinstance(e, FeedbackGiven) and e.findings[0]["code"] == "tool.unknown" for e in events)


def test_format_answer_and_budget_findings(mini):
    _, pack = mini
    task = _task(pack, "item_colour", item_id="I-03")  # I-03 is red
    steps = [{"tool": ""}, {"type": "finish"}, {"type": "finish", "answer": "green"},
             {"type": "finish", "answer": "red"}]
    result, _ = _episode(pack, task, steps)
    assert codes(result) == [["format.schema"], ["answer.missing"], ["answer.wrong"], []]
    assert result["final_answer"] == "red" and result["verdict"]["success"]

    from lamsim_tui.session.config import BudgetSettings, FeedbackSettings

    result, _ = _episode(pack, task, [{"tool": "get_item", "arguments": {"item_id": f"I-0{i}"}} for i in range(1, 5)],
                         budget=BudgetSettings(steps=3, warn_steps_left=1))
    assert codes(result) == [[], ["budget.low"], ["budget.exhausted"]]
    assert result["end_reason"] == "budget.exhausted" and not result["verdict"]["success"]
    assert "no final answer" in result["verdict"]["reasons"]

    # Without revealing, a wrong answer ends the episode and is judged wrong.
    result, _ = _episode(pack, task, [{"type": "finish", "answer": "green"}],
                         feedback=FeedbackSettings(reveal_wrong_answer=False))
    assert codes(result) == [[]] and result["verdict"]["answer_correct"] is False

    number_task = _task(pack, "item_colour", item_id="I-03")
    object.__setattr__(number_task, "answer_type", "number")
    result, _ = _episode(pack, number_task, [{"type": "finish", "answer": "about a dozen"}])
    assert codes(result)[0] == ["answer.malformed"]


def test_state_task_is_judged_on_final_state(mini):
    _, pack = mini
    task = _task(pack, "paint", item_id="I-05", colour="blue")
    # Right answer, but painted the wrong item too: state differs from gold.
    result, _ = _episode(pack, task, [
        {"tool": "set_colour", "arguments": {"item_id": "I-05", "colour": "blue"}},
        {"tool": "set_colour", "arguments": {"item_id": "I-06", "colour": "green"}},
        {"type": "finish", "answer": "blue"},
    ], feedback=__import__("lamsim_tui.session.config", fromlist=["x"]).FeedbackSettings(reveal_wrong_answer=False))
    verdict = result["verdict"]
    assert verdict["answer_correct"] is True and verdict["state_correct"] is False and not verdict["success"]
    assert any("I-06" in r and "did not require" in r for r in verdict["reasons"])


def test_generation_is_reproducible_unique_and_weighted():
    session = load_session(ROOT / "sessions" / "pilot.yaml")
    pack = load_pack(session.pack_dir())
    runner = ToolRunner(pack)
    weights = template_weights(pack, "all")
    one = TaskGenerator(pack, weights, runner).generate(60, seed=11)
    two = TaskGenerator(pack, weights, runner).generate(60, seed=11)
    other = TaskGenerator(pack, weights, runner).generate(60, seed=12)
    ids = [t.id for t in one.tasks]
    assert ids == [t.id for t in two.tasks] and len(ids) == 60
    assert len(set(ids)) == 60
    assert ids != [t.id for t in other.tasks]
    assert [t.gold_answer for t in one.tasks] == [t.gold_answer for t in two.tasks]

    first, second = list(pack.templates)[:2]
    skewed = TaskGenerator(pack, {first: 9.0, second: 1.0}, runner).generate(200, seed=5)
    share = sum(t.template == first for t in skewed.tasks) / len(skewed.tasks)
    assert 0.8 < share < 0.97


def _run(session, pack, n, seed, **kw):
    records = []
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, EpisodeFinished):
            records.append(event.trajectory)

    from lamsim_tui.agents.scripted import ScriptedAgentFactory

    engine = Engine(session, pack, ScriptedAgentFactory(session, pack), on_event=on_event, tasks=n, seed=seed, **kw)
    summary = asyncio.run(engine.run())
    return summary, records, events


def test_scripted_agent_covers_every_agent_caused_code_and_recovers():
    session = load_session(ROOT / "sessions" / "pilot.yaml")
    pack = load_pack(session.pack_dir())
    summary, records, events = _run(session, pack, 50, 7)
    assert summary.episodes == 50
    seen = set(summary.findings)
    assert set(AGENT_CODES) <= seen, f"never produced: {set(AGENT_CODES) - seen}"
    assert summary.succeeded / summary.episodes > 0.8
    recovered = [r for r in records if r["verdict"]["success"] and r["verdict"]["error_counts"]]
    assert recovered, "trajectories that recovered from errors are kept with their corrections"
    assert any(r["status"] == "pending" for r in recovered)
    assert any(isinstance(e, StepProposed) for e in events) and isinstance(
        [e for e in events if isinstance(e, Progress)][-1], Progress)
    for record in records:
        assert record["schema_version"] == 1
        assert record["status"] in ("pending", "filtered")
        assert record["status"] == ("filtered" if record["verdict"]["filters_failed"] else "pending")
        json.dumps(record)  # plain JSON all the way down


def test_same_seed_same_tasks_and_action_sequences():
    session = load_session(ROOT / "sessions" / "pilot.yaml")
    pack = load_pack(session.pack_dir())

    def fingerprint(records):
        return sorted((r["task"]["id"], json.dumps([s["raw"] for s in r["steps"]])) for r in records)

    _, first, _ = _run(session, pack, 25, 7)
    _, second, _ = _run(session, pack, 25, 7)
    _, third, _ = _run(session, pack, 25, 8)
    assert fingerprint(first) == fingerprint(second)
    assert fingerprint(first) != fingerprint(third)


def test_filters_name_what_failed(mini):
    session, pack = mini
    import dataclasses

    strict = dataclasses.replace(session.filters, error_free=True, max_steps=2)
    session = dataclasses.replace(session, filters=strict, agent=dataclasses.replace(session.agent, mistake_rate=0.9))
    object.__setattr__(session, "root", None)
    summary, records, _ = _run(session, pack, 6, 1)
    filtered = [r for r in records if r["status"] == "filtered"]
    assert filtered
    for record in filtered:
        failed = record["verdict"]["filters_failed"]
        assert failed and set(failed) <= {"success", "max_errors", "max_steps", "no_loops", "dedupe", "error_free"}
        if record["verdict"]["error_counts"]:
            assert "error_free" in failed


def test_cancel_stops_a_run_cleanly(mini):
    session, pack = mini
    from lamsim_tui.agents.scripted import ScriptedAgentFactory

    async def main():
        engine = Engine(session, pack, ScriptedAgentFactory(session, pack, stream_cps=200), tasks=6, seed=1)
        run = asyncio.create_task(engine.run())
        await asyncio.sleep(0.3)
        engine.cancel()
        return await asyncio.wait_for(run, 5)

    summary = asyncio.run(main())
    assert summary.cancelled and summary.episodes < 6


def test_pause_lets_the_running_step_finish_and_starts_none(mini):
    session, pack = mini
    from lamsim_tui.agents.scripted import ScriptedAgentFactory

    proposed = []

    async def main():
        engine = Engine(session, pack, ScriptedAgentFactory(session, pack, stream_cps=400), tasks=4, seed=1,
                        on_event=lambda e: proposed.append(e) if isinstance(e, StepProposed) else None)
        run = asyncio.create_task(engine.run())
        await asyncio.sleep(0.2)
        engine.pause()
        await asyncio.sleep(0.4)  # let an in-flight step finish
        frozen = len(proposed)
        await asyncio.sleep(0.5)
        assert len(proposed) == frozen, "no new step starts while paused"
        engine.resume()
        return await asyncio.wait_for(run, 20)

    summary = asyncio.run(main())
    assert summary.episodes == 4 and not summary.cancelled


def test_replay_recomputes_observations_and_verdict(mini):
    session, pack = mini
    _, records, _ = _run(session, pack, 4, 2)
    record = next(r for r in records if r["task"]["template"] == "item_colour")
    item = record["task"]["slots"]["item_id"]
    fixed = replay(record, [{"type": "call", "tool": "get_item", "arguments": {"item_id": item}, "thought": "look"},
                            {"type": "finish", "answer": record["task"]["gold_answer"]}], pack=pack)
    assert fixed["verdict"]["success"] and fixed["steps"][0]["observation"].startswith("{")
    assert json.loads(fixed["steps"][0]["observation"])["id"] == item
    wrong = replay(record, [{"type": "call", "tool": "get_item", "arguments": {"item": item}},
                            {"type": "finish", "answer": "nonsense"}], pack=pack)
    assert not wrong["verdict"]["success"]
    assert wrong["steps"][0]["feedback"][0]["code"] == "args.missing"


def test_code_table_is_complete():
    assert {"exec.crash", "exec.timeout", "budget.time"} <= set(CODES) - set(AGENT_CODES)


def test_time_budget_ends_a_slow_episode_with_a_finding(mini):
    _, pack = mini
    from lamsim_tui.agents.scripted import ScriptedAgent
    from lamsim_tui.session.config import BudgetSettings

    task = _task(pack, "item_colour", item_id="I-03")
    import random

    slow = ScriptedAgent(pack, random.Random(1), 0.0, stream_cps=100)  # ~1 s per step
    result = asyncio.run(run_episode(pack=pack, runner=ToolRunner(pack), task=task, agent=slow,
                                     settings=EpisodeSettings(budget=BudgetSettings(seconds=0.5)),
                                     episode_id="slow", seed=1, emit=lambda e: None))
    assert result["end_reason"] == "budget.time"
    assert result["verdict"]["findings"] == {"budget.time": 1} and not result["verdict"]["success"]
    assert result["timing"]["wall_s"] < 2


def test_paraphrase_is_kept_only_when_every_slot_survives(mini):
    session, pack = mini
    import dataclasses

    from lamsim_tui.agents.scripted import ScriptedAgentFactory

    class Paraphrasing(ScriptedAgentFactory):
        async def paraphrase(self, query, slots=None, seed=0):
            # Keeps the item id for one template, drops it for the other.
            return "Tell me: " + query if "colour is" in query else "Paint something, please."

    session = dataclasses.replace(session, agent=dataclasses.replace(session.agent, paraphrase=True))
    object.__setattr__(session, "root", None)
    records = []
    engine = Engine(session, pack, Paraphrasing(session, pack), tasks=6, seed=4,
                    on_event=lambda e: records.append(e.trajectory) if isinstance(e, EpisodeFinished) else None)
    asyncio.run(engine.run())
    by_template = {r["task"]["template"]: r["task"] for r in records}
    colour = by_template["item_colour"]
    assert colour["query"].startswith("Tell me: ") and colour["original_query"] == colour["query"][9:]
    paint = by_template["paint"]
    assert paint["original_query"] is None and paint["slots"]["item_id"] in paint["query"]
