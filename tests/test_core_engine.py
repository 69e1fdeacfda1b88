"""Episodes through the real engine: feedback codes, judge, filters, scripted agent, determinism."""

import asyncio
import dataclasses
import json

import pytest
from packkit import ROOT, write_pack, write_session

from lamsim_tui.agents.replay import ReplayAgent
from lamsim_tui.events import (
    EpisodeCancelled,
    EpisodeFinished,
    EpisodeStarted,
    FeedbackGiven,
    ObservationMade,
    Progress,
    StepProposed,
)
from lamsim_tui.packs import load_pack
from lamsim_tui.record import Trajectory
from lamsim_tui.session.config import BudgetSettings, FeedbackSettings, load_session
from lamsim_tui.simulator.engine import Engine
from lamsim_tui.simulator.episode import EpisodeSettings, run_episode
from lamsim_tui.simulator.feedback import AGENT_CODES, CODES
from lamsim_tui.simulator.replay import replay
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
    return [step.codes for step in result.steps]


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
    assert [s.executed for s in result.steps] == [False, False, False, False, False, True, True, False, False]
    first = result.steps[0].observation
    assert "no tool named 'get_itm'" in first and "Did you mean 'get_item'" in first
    assert "colour" in result.steps[1].observation
    assert result.verdict.success is True and result.verdict.state_correct is True
    assert result.final_state == {"items": {"I-04": {"id": "I-04", "colour": "red", "weight": 4}}}
    assert result.verdict.error_counts["args.enum"] == 1
    assert any(isinstance(e, FeedbackGiven) and e.findings[0]["code"] == "tool.unknown" for e in events)


def test_format_answer_and_budget_findings(mini):
    _, pack = mini
    task = _task(pack, "item_colour", item_id="I-03")  # I-03 is red
    steps = [{"tool": ""}, {"type": "finish"}, {"type": "finish", "answer": "green"},
             {"type": "finish", "answer": "red"}]
    result, _ = _episode(pack, task, steps)
    assert codes(result) == [["format.schema"], ["answer.missing"], ["answer.wrong"], []]
    assert result.final_answer == "red" and result.verdict.success

    result, _ = _episode(pack, task, [{"tool": "get_item", "arguments": {"item_id": f"I-0{i}"}} for i in range(1, 5)],
                         budget=BudgetSettings(steps=3, warn_steps_left=1))
    assert codes(result) == [[], ["budget.low"], ["budget.exhausted"]]
    assert result.end_reason == "budget.exhausted" and not result.verdict.success
    assert "no final answer" in result.verdict.reasons

    # Without revealing, a wrong answer ends the episode and is judged wrong.
    result, _ = _episode(pack, task, [{"type": "finish", "answer": "green"}],
                         feedback=FeedbackSettings(reveal_wrong_answer=False))
    assert codes(result) == [[]] and result.verdict.answer_correct is False

    number_task = dataclasses.replace(_task(pack, "item_colour", item_id="I-03"), answer_type="number")
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
    ], feedback=FeedbackSettings(reveal_wrong_answer=False))
    verdict = result.verdict
    assert verdict.answer_correct is True and verdict.state_correct is False and not verdict.success
    assert any("I-06" in r and "did not require" in r for r in verdict.reasons)


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
    recovered = [r for r in records if r.verdict.success and r.verdict.error_counts]
    assert recovered, "trajectories that recovered from errors are kept with their corrections"
    assert any(r.status == "pending" for r in recovered)
    assert sum(isinstance(e, StepProposed) for e in events) == sum(len(r.steps) for r in records)
    last = [e for e in events if isinstance(e, Progress)][-1]
    assert (last.done, last.total, last.remaining, last.kept) == (50, 50, 0, summary.kept)
    for record in records:
        assert record.schema_version == 1
        assert record.status in ("pending", "filtered")
        assert record.status == ("filtered" if record.verdict.filters_failed else "pending")
        stored = record.to_dict()
        assert json.loads(json.dumps(stored)) == stored  # plain JSON all the way down (no tuples, no odd keys)
        assert Trajectory.from_dict(stored).to_dict() == stored


def test_same_seed_same_tasks_and_action_sequences():
    session = load_session(ROOT / "sessions" / "pilot.yaml")
    pack = load_pack(session.pack_dir())

    def fingerprint(records):
        return sorted((r.task.id, json.dumps([s.raw for s in r.steps])) for r in records)

    _, first, _ = _run(session, pack, 25, 7)
    _, second, _ = _run(session, pack, 25, 7)
    _, third, _ = _run(session, pack, 25, 8)
    assert fingerprint(first) == fingerprint(second)
    assert fingerprint(first) != fingerprint(third)


def test_filters_name_what_failed(mini):
    session, pack = mini
    strict = dataclasses.replace(session.filters, error_free=True, max_steps=2)
    session = dataclasses.replace(session, filters=strict, agent=dataclasses.replace(session.agent, mistake_rate=0.9))
    summary, records, _ = _run(session, pack, 6, 1)
    filtered = [r for r in records if r.status == "filtered"]
    assert filtered
    for record in filtered:
        failed = record.verdict.filters_failed
        assert failed and set(failed) <= {"success", "max_errors", "max_steps", "no_loops", "dedupe", "error_free"}
        if record.verdict.error_counts:
            assert "error_free" in failed


def test_cancel_stops_a_run_cleanly(mini):
    session, pack = mini
    from lamsim_tui.agents.scripted import ScriptedAgentFactory

    finished = []
    cancelled = []

    async def main():
        first_step = asyncio.Event()

        def on_event(event):
            if isinstance(event, StepProposed):
                first_step.set()
            elif isinstance(event, EpisodeFinished):
                finished.append(event.trajectory)
            elif isinstance(event, EpisodeCancelled):
                cancelled.append(event.episode_id)

        engine = Engine(session, pack, ScriptedAgentFactory(session, pack, stream_cps=200), tasks=6, seed=1,
                        on_event=on_event)
        run = asyncio.create_task(engine.run())
        await asyncio.wait_for(first_step.wait(), 10)
        engine.cancel()
        return await asyncio.wait_for(run, 5)

    summary = asyncio.run(main())
    assert summary.cancelled and summary.episodes < 6
    # The episodes cut by the cancel are counted (and would be stored) as `cancelled`, the rest as finished.
    assert cancelled and summary.end_reasons["cancelled"] == len(cancelled)
    assert summary.episodes == len(finished) + len(cancelled)


class _Watched:
    """A scripted factory whose agents note, as each step starts, whether the engine was paused."""

    def __init__(self, inner, started: list):
        self.inner = inner
        self.started = started
        self.engine = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def for_episode(self, episode_id, seed, gold=None):
        agent, public = self.inner.for_episode(episode_id, seed, gold)
        step = agent.step

        async def noted(view, emit):
            self.started.append((episode_id, len(view.steps), self.engine.paused))
            return await step(view, emit)

        agent.step = noted
        return agent, public


def test_pause_lets_the_running_step_finish_and_starts_none(mini):
    session, pack = mini
    from lamsim_tui.agents.scripted import ScriptedAgentFactory

    started: list[tuple[str, int, bool]] = []  # (episode, step, engine paused when it started)
    factory = _Watched(ScriptedAgentFactory(session, pack, stream_cps=400), started)

    async def main():
        running: set[str] = set()
        unsettled: set[str] = set()  # episodes whose step in flight at the pause has not ended yet
        settled = asyncio.Event()

        def on_event(event):
            if isinstance(event, EpisodeStarted):
                running.add(event.episode_id)
            if isinstance(event, StepProposed) and not engine.paused and not settled.is_set():
                engine.pause()  # mid-step: every running episode is inside a step now
                unsettled.update(running)
            if isinstance(event, (ObservationMade, EpisodeFinished)) and engine.paused:
                unsettled.discard(event.episode_id)
                if not unsettled:
                    settled.set()
            if isinstance(event, EpisodeFinished):
                running.discard(event.episode_id)

        engine = Engine(session, pack, factory, tasks=4, seed=1, on_event=on_event)
        factory.engine = engine
        run = asyncio.create_task(engine.run())
        await asyncio.wait_for(settled.wait(), 10)  # the steps in flight finish while paused
        # A gate that let an episode through would start its next step within a couple of loop turns.
        for _ in range(50):
            await asyncio.sleep(0)
        assert engine.paused
        assert not [s for s in started if s[2]], "a step started while the engine was paused"
        in_flight = len(started)
        engine.resume()
        summary = await asyncio.wait_for(run, 20)
        assert len(started) > in_flight  # and they start again on resume
        return summary

    summary = asyncio.run(main())
    assert summary.episodes == 4 and not summary.cancelled


def test_replay_recomputes_observations_and_verdict(mini):
    session, pack = mini
    _, records, _ = _run(session, pack, 4, 2)
    record = next(r for r in records if r.template == "item_colour")
    item = record.task.slots["item_id"]
    fixed = replay(record, [{"type": "call", "tool": "get_item", "arguments": {"item_id": item}, "thought": "look"},
                            {"type": "finish", "answer": record.task.gold_answer}], pack=pack)
    assert fixed.verdict.success and fixed.steps[0].observation.startswith("{")
    assert json.loads(fixed.steps[0].observation)["id"] == item
    wrong = replay(record, [{"type": "call", "tool": "get_item", "arguments": {"item": item}},
                            {"type": "finish", "answer": "nonsense"}], pack=pack)
    assert not wrong.verdict.success
    assert wrong.steps[0].codes[0] == "args.missing"


def test_code_table_is_complete():
    assert {"exec.crash", "exec.timeout", "budget.time"} <= set(CODES) - set(AGENT_CODES)


def test_time_budget_ends_a_slow_episode_with_a_finding(mini):
    _, pack = mini
    import random

    from lamsim_tui.agents.scripted import ScriptedAgent

    task = _task(pack, "item_colour", item_id="I-03")
    slow = ScriptedAgent(pack, task, random.Random(1), 0.0, stream_cps=100)  # ~1 s per step
    result = asyncio.run(run_episode(pack=pack, runner=ToolRunner(pack), task=task, agent=slow,
                                     settings=EpisodeSettings(budget=BudgetSettings(seconds=0.5)),
                                     episode_id="slow", seed=1, emit=lambda e: None))
    assert result.end_reason == "budget.time"
    assert result.verdict.findings == {"budget.time": 1} and not result.verdict.success
    assert result.timing.wall_s < 2


def test_paraphrase_is_kept_only_when_every_slot_survives(mini):
    session, pack = mini
    from lamsim_tui.agents.scripted import ScriptedAgentFactory

    class Paraphrasing(ScriptedAgentFactory):
        can_paraphrase = True

        async def paraphrase(self, query, slots=None, seed=0):
            # Keeps the item id for one template, drops it for the other.
            return "Tell me: " + query if "colour is" in query else "Paint something, please."

    session = dataclasses.replace(session, agent=dataclasses.replace(session.agent, paraphrase=True))
    records = []
    engine = Engine(session, pack, Paraphrasing(session, pack), tasks=6, seed=4,
                    on_event=lambda e: records.append(e.trajectory) if isinstance(e, EpisodeFinished) else None)
    asyncio.run(engine.run())
    by_template = {r.template: r.task for r in records}
    colour = by_template["item_colour"]
    assert colour.query.startswith("Tell me: ") and colour.original_query == colour.query[9:]
    paint = by_template["paint"]
    assert paint.original_query is None and paint.slots["item_id"] in paint.query
