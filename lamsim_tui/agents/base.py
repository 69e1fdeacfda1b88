"""The agent interface. An agent proposes one action per step; the engine checks and executes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lamsim_tui.simulator.actions import Parsed

if TYPE_CHECKING:
    from lamsim_tui.events import Event
    from lamsim_tui.packs import ToolSpec
    from lamsim_tui.simulator.tasks import Task


@dataclass
class StepView:
    """What the agent may know of an earlier step of its own episode."""

    index: int
    raw: str  # the model's output as produced (text, or JSON of native tool calls)
    thought: str
    action: dict | None  # ToolCall/Finish .to_dict(); None when it could not be parsed
    observation: str  # what the agent is shown back: a tool result, or feedback messages
    findings: list[dict]  # [{code, severity, message}]
    executed: bool


@dataclass
class EpisodeView:
    """The episode as the agent sees it. Model agents must use only `query`, `tools` and `steps`."""

    episode_id: str
    query: str
    tools: list[ToolSpec]
    steps: list[StepView]
    step_budget: int
    seed: int
    task: Task = field(repr=False)  # for the scripted agent only: it replays the gold program


@dataclass
class AgentTurn:
    """One proposed step."""

    raw: str
    parsed: Parsed
    usage: dict = field(default_factory=dict)  # prompt_tokens, cached_tokens, completion_tokens,
    # latency_s, ttft_s, cost_usd — whatever is known


class Agent(Protocol):
    async def step(self, episode: EpisodeView, emit: Callable[[Event], None]) -> AgentTurn:
        """Propose the next action. Stream text with `emit(TextDelta(...))` while generating.

        Raise `ModelFailure` for model/server faults the agent could not recover from.
        """
        ...

    async def aclose(self) -> None: ...


class AgentFactory(Protocol):
    def describe(self) -> dict:
        """Public settings recorded with every trajectory. Never includes secrets."""
        ...

    def for_episode(self, episode_id: str, seed: int) -> tuple[Agent, dict]:
        """A fresh agent for one episode, plus the public settings it uses (e.g. which model)."""
        ...

    async def start(self) -> None:
        """Prepare shared resources (start a local server, check reachability)."""
        ...

    async def aclose(self) -> None: ...


class ModelFailure(Exception):
    """The model could not produce a step (server down, time-out, bad stream...).

    ``code`` is a stable `model.*` reason recorded as the episode's end reason.
    """

    def __init__(self, code: str, message: str, *, transient: bool = False, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient
        self.details = details or {}
