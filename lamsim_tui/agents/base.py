"""The agent interface. An agent proposes one action per step; the engine checks and executes it.

What the engine may ask of an agent is declared here (`AgentFactory`): how many episodes it can
serve at once, whether it paraphrases queries, whether it replays gold programs (only such an
agent is handed the task with its ground truth), and the system prompt it uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lamsim_tui.simulator.actions import Parsed

if TYPE_CHECKING:
    from lamsim_tui.events import Event
    from lamsim_tui.packs import ToolSpec
    from lamsim_tui.record import Demonstrations, Task
    from lamsim_tui.simulator.demos import Selection


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
    """The episode as the agent sees it: the query, the tools, its own earlier steps. No ground truth.

    `demonstrations` are solved *other* tasks chosen for this episode (the session's
    `demonstrations` setting), for agents that show them (`AgentFactory.uses_demonstrations`).
    """

    episode_id: str
    query: str
    tools: list[ToolSpec]
    steps: list[StepView]
    step_budget: int
    seed: int
    demonstrations: Selection | None = None


@dataclass
class AgentTurn:
    """One proposed step."""

    raw: str
    parsed: Parsed
    usage: dict = field(default_factory=dict)  # prompt_tokens, cached_tokens, completion_tokens,
    # latency_s, ttft_s, cost_usd — whatever is known


class Agent:
    """One episode's agent. Subclasses implement `step`."""

    #: The system prompt this agent works under (recorded with the trajectory); None if it has none.
    system_prompt: str | None = None
    #: The demonstrations it put in its prompt, as recorded with the trajectory; None if none.
    demonstrations: Demonstrations | None = None

    async def step(self, episode: EpisodeView, emit: Callable[[Event], None]) -> AgentTurn:
        """Propose the next action. Stream text with `emit(TextDelta(...))` while generating.

        Raise `ModelFailure` for model/server faults the agent could not recover from.
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        return None


class AgentFactory:
    """Makes one agent per episode and owns what they share (a model server, a client)."""

    #: At most this many episodes at once (a server that answers one request at a time says 1);
    #: None: as many as the session's `concurrency`.
    max_concurrency: int | None = None
    #: True for agents that replay gold programs (the scripted one): only they are handed the task
    #: with its gold calls and answer in `for_episode`. A model agent never sees the ground truth.
    replays_gold: bool = False
    #: True when `paraphrase` is implemented (the session's `agent.paraphrase` uses it).
    can_paraphrase: bool = False
    #: True for agents that show demonstrations (`EpisodeView.demonstrations`) to their model; the
    #: engine chooses them only for such agents.
    uses_demonstrations: bool = False
    #: Whether model agents stream their output (`TextDelta` events). A headless run sets it to False:
    #: nobody watches the tokens, and whole replies cost the model client a third of the CPU.
    stream: bool = True

    def describe(self) -> dict:
        """Public settings recorded with every trajectory. Never includes secrets."""
        raise NotImplementedError

    def for_episode(self, episode_id: str, seed: int, gold: Task | None = None) -> tuple[Agent, dict]:
        """A fresh agent for one episode, plus the public settings it uses (e.g. which model).

        ``gold`` is the task with its ground truth, given only when `replays_gold` is True.
        """
        raise NotImplementedError

    async def start(self) -> None:
        """Prepare shared resources (start a local server, check reachability)."""
        return None

    async def aclose(self) -> None:
        return None

    async def paraphrase(self, query: str, slots: dict[str, Any], seed: int) -> str:
        """The query in other words (only when `can_paraphrase`); the engine keeps it if every slot survives."""
        raise NotImplementedError


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
