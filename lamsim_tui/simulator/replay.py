"""Replaying a fixed list of actions in a fresh sandbox: how an operator's edit is checked.

The actions go through the normal episode loop (`run_episode` with a `ReplayAgent`), so their
observations come from the tools, feedback is re-run and the judge scores the result.
"""

from __future__ import annotations

import asyncio
import dataclasses

from lamsim_tui.agents.replay import ReplayAgent
from lamsim_tui.packs import Pack, load_pack
from lamsim_tui.record import PackInfo, Trajectory, current_user, utc_now
from lamsim_tui.session.config import BudgetSettings, FeedbackSettings, FilterSettings, recorded_section
from lamsim_tui.simulator.episode import EpisodeSettings, run_episode
from lamsim_tui.simulator.filters import failed_filters
from lamsim_tui.simulator.runner import ToolRunner


async def areplay(record: Trajectory, actions: list[dict], *, pack: Pack | None = None) -> Trajectory:
    """Re-execute an edited action list in a fresh sandbox; recompute observations, feedback, verdict.

    ``actions`` are dicts shaped like a step's action (`{"type": "call", "tool", "arguments"}` or
    `{"type": "finish", "answer"}`), optionally with "thought". Returns a new record (status None).
    """
    if pack is None:
        pack = load_pack(record.pack.path)
    settings = record.session.settings
    budget = recorded_section(BudgetSettings, settings.get("budget"))
    # The operator's edit is judged once: no second chances for a wrong final answer.
    feedback = dataclasses.replace(recorded_section(FeedbackSettings, settings.get("feedback")),
                                   reveal_wrong_answer=False)
    budget = dataclasses.replace(budget, steps=max(budget.steps, len(actions)))
    runner = ToolRunner(pack, timeout=budget.tool_seconds, disabled=feedback.disable,
                        observation_chars=budget.observation_chars)
    episode = await run_episode(pack=pack, runner=runner, task=record.task, agent=ReplayAgent(actions),
                                settings=EpisodeSettings(budget=budget, feedback=feedback),
                                episode_id=record.id, seed=record.episode.seed, emit=lambda e: None)
    filters = dataclasses.replace(recorded_section(FilterSettings, settings.get("filters")), dedupe=False)
    failed = failed_filters(episode.verdict, record.task.id, "", filters, set())
    return record.replace(
        steps=episode.steps, final_answer=episode.final_answer, end_reason=episode.end_reason,
        final_state=episode.final_state, timing=episode.timing,
        verdict=dataclasses.replace(episode.verdict, filters_failed=tuple(failed), passed=not failed),
        status=None, finished_at=utc_now(), replayed_by=current_user(),
        pack=record.pack if pack.version == record.pack.version else PackInfo(record.pack.name, pack.version,
                                                                               record.pack.path))


def replay(record: Trajectory, actions: list[dict], *, pack: Pack | None = None) -> Trajectory:
    """Blocking form of `areplay` (CLI, tests, thread workers)."""
    return asyncio.run(areplay(record, actions, pack=pack))
