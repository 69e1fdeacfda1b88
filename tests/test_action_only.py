"""Action-only tasks, the scripted agent's confirmations and wandering, and step numbers counted from 1."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from packkit import MINI_TEMPLATES, write_pack, write_session

from lamsim_tui.agents.replay import ReplayAgent
from lamsim_tui.agents.scripted import DAWDLE_EVERY, ScriptedAgentFactory
from lamsim_tui.events import EpisodeFinished
from lamsim_tui.packs import load_pack
from lamsim_tui.session.config import FeedbackSettings, load_session
from lamsim_tui.simulator.engine import Engine
from lamsim_tui.simulator.episode import EpisodeSettings, run_episode
from lamsim_tui.simulator.replay import judge_calls, task_for
from lamsim_tui.simulator.runner import ToolRunner

ACTION_ONLY = MINI_TEMPLATES + '''

@template(query="Paint item {item_id} {colour}.", answer=None, state=True, state_fields={"items": ["colour"]})
def paint_only(data, rng):
    item = rng.choice(data.rows("items"))
    return {"item_id": item["id"], "colour": rng.choice(["red", "green", "blue"])}


@paint_only.gold
def _(slots, call):
    call("set_colour", item_id=slots["item_id"], colour=slots["colour"])
'''


@pytest.fixture
def mini(tmp_path):
    write_pack(tmp_path, templates=ACTION_ONLY)
    session = load_session(write_session(tmp_path, "pack: mini\nseed: 3\nconcurrency: 1\n"))
    return session, load_pack(session.pack_dir())


def _run(pack, task, actions, **feedback):
    return asyncio.run(run_episode(pack=pack, runner=ToolRunner(pack), task=task, agent=ReplayAgent(actions),
                                   settings=EpisodeSettings(feedback=FeedbackSettings(**feedback)),
                                   episode_id="e", seed=1, emit=lambda e: None))


def test_an_action_only_task_is_judged_on_its_state_and_any_confirmation_is_well_formed(mini):
    _, pack = mini
    task = task_for(pack, "paint_only", {"item_id": "I-04", "colour": "red"})  # I-04 is green
    assert task.answer_type == "none" and task.gold_answer is None and task.judge_state
    assert task.to_dict()["answer_type"] == "none"
    done = _run(pack, task, [{"tool": "set_colour", "arguments": {"item_id": "I-04", "colour": "red"}},
                             {"type": "finish", "answer": "Done: I-04 is red now."}])
    assert done.verdict.success and done.verdict.answer_correct and done.verdict.state_correct
    assert done.final_answer == "Done: I-04 is red now."
    # Finishing first: any confirmation is well formed (never answer.malformed), but the state is
    # not right yet, which answer.wrong says while attempts remain.
    early = _run(pack, task, [{"type": "finish", "answer": 42},
                              {"tool": "set_colour", "arguments": {"item_id": "I-04", "colour": "red"}},
                              {"type": "finish", "answer": "Done."}])
    assert [s.codes for s in early.steps] == [["answer.wrong"], [], []] and early.verdict.success
    missing = _run(pack, task, [{"tool": "set_colour", "arguments": {"item_id": "I-04", "colour": "red"}},
                                {"type": "finish"}], reveal_wrong_answer=False)
    assert missing.steps[1].codes == ["answer.missing"]
    untouched = _run(pack, task, [{"type": "finish", "answer": "Done."}], reveal_wrong_answer=False)
    assert not untouched.verdict.success and untouched.verdict.state_correct is False
    assert untouched.verdict.reasons == ("items I-04: expected a change that was not made",)


def test_an_action_only_template_that_judges_nothing_does_not_load(tmp_path):
    from lamsim_tui.errors import PackError

    write_pack(tmp_path, templates=ACTION_ONLY.replace('answer=None, state=True, state_fields={"items": ["colour"]}',
                                                       "answer=None"))
    with pytest.raises(PackError, match="judged on its final state alone: add state=True"):
        load_pack(tmp_path / "tools" / "mini")


def test_the_scripted_agent_finishes_an_action_only_task_with_a_confirmation(mini):
    session, pack = mini
    session = dataclasses.replace(session, templates=["paint_only"],
                                  agent=dataclasses.replace(session.agent, mistake_rate=0.0))
    records = []
    engine = Engine(session, pack, ScriptedAgentFactory(session, pack), tasks=4,
                    on_event=lambda e: records.append(e.trajectory) if isinstance(e, EpisodeFinished) else None)
    summary = asyncio.run(engine.run())
    assert summary.succeeded == 4
    for record in records:
        slots = record.task.slots
        assert record.final_answer == f'Done: set_colour(item_id="{slots["item_id"]}", colour="{slots["colour"]}").'
        assert [s.changed_state for s in record.steps] == [True, False]


def test_wandering_never_writes(mini):
    """One episode in DAWDLE_EVERY wanders until the budget ends: valid but useless calls, and only
    of tools that change nothing, so a failed scripted episode never looks like a bug in the pack."""
    session, pack = mini
    session = dataclasses.replace(session, templates=["paint", "paint_only"])
    records = []
    engine = Engine(session, pack, ScriptedAgentFactory(session, pack), tasks=DAWDLE_EVERY + 5,
                    on_event=lambda e: records.append(e.trajectory) if isinstance(e, EpisodeFinished) else None)
    asyncio.run(engine.run())
    wandered = [r for r in records if r.end_reason == "budget.exhausted"]
    assert wandered, "a run this long has a wandering episode"
    for record in wandered:
        assert not any(s.changed_state for s in record.steps)
        assert not any(getattr(s.action, "tool", None) == "set_colour" and s.executed for s in record.steps)
        assert record.final_state == {}
    assert any(any(s.changed_state for s in r.steps) for r in records if r not in wandered)


def test_step_numbers_are_counted_from_one_where_people_read_them(mini):
    from lamsim_tui.cli.review import format_record
    from lamsim_tui.curation.review import replay_problems

    _, pack = mini
    task = task_for(pack, "item_colour", {"item_id": "I-03"})
    judged = judge_calls(pack, task, [("get_item", {"item_id": "I-03"}), ("get_item", {"item_id": 3})],
                         answer="red")
    assert judged.steps[1].index == 1  # stored 0-based
    problems, codes = replay_problems(judged.record)
    assert problems == ["step 2: args.type: Argument 'item_id' of 'get_item' must be a string, not 3."]
    shown = format_record(judged.record)
    assert "\nstep 1  executed\n" in shown and "\nstep 2  not executed\n" in shown and "step 0" not in shown
