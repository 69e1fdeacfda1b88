"""Wasted model time: malformed final answers count toward `feedback.answer_attempts`, and an answer
identical to one already refused is a repeat (`loop.repeat`), so a model that keeps giving the same
bad answer is stopped after the allowed attempts instead of running out its step budget."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from openai_server import OpenAIServer, Reply
from packkit import write_pack, write_session

from lamsim_tui.agents.model import ModelAgentFactory
from lamsim_tui.agents.replay import ReplayAgent
from lamsim_tui.events import EpisodeFinished
from lamsim_tui.packs import load_pack
from lamsim_tui.session.config import FeedbackSettings, load_session
from lamsim_tui.simulator.engine import Engine
from lamsim_tui.simulator.episode import EpisodeSettings, run_episode
from lamsim_tui.simulator.runner import ToolRunner
from lamsim_tui.simulator.tasks import make_task


@pytest.fixture
def pack(tmp_path):
    write_pack(tmp_path)
    return load_pack(tmp_path / "tools" / "mini")


def _number_task(pack):
    task = make_task(pack, pack.templates["item_colour"], {"item_id": "I-03"}, ToolRunner(pack))
    return dataclasses.replace(task, answer_type="number", gold_answer=3)


def _episode(pack, task, actions, **feedback):
    return asyncio.run(run_episode(pack=pack, runner=ToolRunner(pack), task=task, agent=ReplayAgent(actions),
                                   settings=EpisodeSettings(feedback=FeedbackSettings(**feedback)),
                                   episode_id="e1", seed=1, emit=lambda e: None))


def codes(result):
    return [s.codes for s in result.steps]


def test_malformed_answers_count_toward_the_attempts(pack):
    task = _number_task(pack)
    result = _episode(pack, task, [{"type": "finish", "answer": "about a dozen"},
                                   {"type": "finish", "answer": "roughly three"},
                                   {"type": "finish", "answer": 3}])
    assert codes(result) == [["answer.malformed"], ["answer.malformed"]], "two attempts, then it ends"
    assert result.end_reason == "finished" and result.final_answer == "roughly three"
    assert not result.verdict.success and not result.verdict.answer_correct
    # A malformed answer, then the right one, within the attempts: success as before.
    result = _episode(pack, task, [{"type": "finish", "answer": "about a dozen"}, {"type": "finish", "answer": 3}])
    assert codes(result) == [["answer.malformed"], []] and result.verdict.success
    # More attempts allowed: the third answer is judged.
    result = _episode(pack, task, [{"type": "finish", "answer": "x"}, {"type": "finish", "answer": "y"},
                                   {"type": "finish", "answer": 3}], answer_attempts=3)
    assert result.verdict.success and len(result.steps) == 3


def test_an_identical_repeated_answer_is_a_repeat(pack):
    task = make_task(pack, pack.templates["item_colour"], {"item_id": "I-03"}, ToolRunner(pack))  # red
    result = _episode(pack, task, [{"type": "finish", "answer": "green"}, {"type": "finish", "answer": "green"},
                                   {"type": "finish", "answer": "red"}], answer_attempts=3)
    assert codes(result) == [["answer.wrong"], ["loop.repeat"], []]
    repeat = result.steps[1].feedback[0]
    assert "step 1" in repeat.message and "not accepted" in repeat.message
    assert result.verdict.success  # the repeat cost a step and an attempt, not the episode
    # With the attempts spent by the repeat, the episode ends on it.
    result = _episode(pack, task, [{"type": "finish", "answer": "green"}, {"type": "finish", "answer": "green"},
                                   {"type": "finish", "answer": "red"}])
    assert codes(result) == [["answer.wrong"], ["loop.repeat"]] and result.end_reason == "finished"
    assert not result.verdict.success and result.final_answer == "green"


def test_a_missing_answer_still_does_not_count(pack):
    task = make_task(pack, pack.templates["item_colour"], {"item_id": "I-03"}, ToolRunner(pack))
    result = _episode(pack, task, [{"type": "finish"}, {"type": "finish"}, {"type": "finish", "answer": "green"},
                                   {"type": "finish", "answer": "red"}])
    assert codes(result) == [["answer.missing"], ["answer.missing"], ["answer.wrong"], []]
    assert result.verdict.success


def test_a_model_repeating_a_malformed_answer_stops_after_the_attempts(tmp_path):
    """The pilot's case: the same malformed answer, step after step, until the budget ran out."""
    write_pack(tmp_path)
    malformed = '{"thought": "done", "tool": "finish", "arguments": {"answer": "the colour of the item"}}'
    with OpenAIServer(default=Reply(text=malformed)) as server:
        session = load_session(write_session(tmp_path, f"""\
            pack: mini
            templates: [item_colour]
            agent:
              kind: model
              models: [{{model: openai/test-model, api_base: "{server.api_base}", timeout: 5, retries: 0}}]
            budget: {{steps: 10}}
            """))
        pack = load_pack(session.pack_dir())
        task = dataclasses.replace(make_task(pack, pack.templates["item_colour"], {"item_id": "I-03"},
                                             ToolRunner(pack)), answer_type="number")
        records = []
        engine = Engine(session, pack, ModelAgentFactory(session, pack), tasks=1,
                        on_event=lambda e: records.append(e.trajectory) if isinstance(e, EpisodeFinished) else None)
        engine.prepare().tasks[:] = [task]
        asyncio.run(engine.run())
        assert len(server.requests) == 2
    (record,) = records
    assert [s.codes for s in record.steps] == [["answer.malformed"], ["loop.repeat"]]
    assert record.end_reason == "finished" and not record.verdict.success
