"""Given tasks through the real engine with an agent factory shared between runs (benchmarks).

Benchmarks that compare conditions side by side (`bench/lift.py`, `bench/model.py
--compare-speculative`) run the *same* tasks under each condition, interleaved, each condition
keeping its model server (and so its prefix cache) for the whole benchmark. `Engine.run` starts
and closes its factory; `SharedFactory` lets the owner close it once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lamsim_tui.agents.base import AgentFactory
from lamsim_tui.events import EpisodeFinished, Event
from lamsim_tui.record import Task, Trajectory


class SharedFactory(AgentFactory):
    """Delegates to a factory; `aclose` leaves it open (its owner calls `inner.aclose()`)."""

    def __init__(self, inner: AgentFactory):
        self.inner = inner

    @property
    def max_concurrency(self) -> int | None:  # type: ignore[override]
        return self.inner.max_concurrency

    @property
    def replays_gold(self) -> bool:  # type: ignore[override]
        return self.inner.replays_gold

    @property
    def can_paraphrase(self) -> bool:  # type: ignore[override]
        return self.inner.can_paraphrase

    @property
    def uses_demonstrations(self) -> bool:  # type: ignore[override]
        return self.inner.uses_demonstrations

    def describe(self) -> dict:
        return self.inner.describe()

    def for_episode(self, episode_id: str, seed: int, gold: Task | None = None):
        return self.inner.for_episode(episode_id, seed, gold)

    async def start(self) -> None:
        await self.inner.start()

    async def paraphrase(self, query: str, slots: dict[str, Any], seed: int) -> str:
        return await self.inner.paraphrase(query, slots, seed)

    async def aclose(self) -> None:
        return None


async def run_tasks(session: Any, pack: Any, factory: AgentFactory, tasks: list[Task], *, seed: int,
                    store: Any = None, on_event: Callable[[Event], None] | None = None) -> list[Trajectory]:
    """Run exactly `tasks` (one episode each, in order) and return their records (stored when `store`)."""
    from lamsim_tui.simulator.engine import Engine
    from lamsim_tui.simulator.tasks import Generation

    records: list[Trajectory] = []

    def collect(event: Event) -> None:
        if isinstance(event, EpisodeFinished):
            records.append(event.trajectory)
        if on_event is not None:
            on_event(event)

    shared = factory if isinstance(factory, SharedFactory) else SharedFactory(factory)
    engine = Engine(session, pack, shared, store=store, on_event=collect, tasks=len(tasks), seed=seed)
    engine.generation = Generation(tasks=list(tasks))
    engine.summary.tasks = len(tasks)
    await engine.run()
    return records
