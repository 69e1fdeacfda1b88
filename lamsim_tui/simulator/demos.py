"""Demonstrations: solved tasks shown to a model agent as examples (the session's `demonstrations`).

Where they come from (`source`, by default the session's own store): trajectories an operator
accepted (edited ones as edited), and with `include_pending` pending ones that succeeded. When none
counts yet and `cold_start: gold`, clean replays of the gold programs of *other* tasks, drawn from
the session's templates with a seed of their own and labelled `gold` in the record.

How they are chosen — deterministic for a seed (`seed`, default the session's), never the episode's
own task, at most one per task, within `token_budget`:

- placement `episode`: per episode, same template first, then the most similar query (cosine of
  word counts), ties broken by a seeded hash;
- placement `system`: one set for the whole session (one template after another, in a seeded
  order), so the system message is the same bytes in every episode and a server's prefix cache
  serves it; an episode whose own task is in the set gets the next one in its place.

The candidates are read once, when the run starts: what is accepted during a run counts from the
next run on. Rendering them for a model (JSON actions or native tool calls) is `agents.prompts`.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lamsim_tui.record import DemonstrationRef, Finish, Step, Task, ToolCall, Trajectory
from lamsim_tui.simulator.actions import FINISH
from lamsim_tui.simulator.runner import render_result
from lamsim_tui.text import shorten

if TYPE_CHECKING:
    from lamsim_tui.packs import Pack
    from lamsim_tui.session.config import DemonstrationSettings, Session
    from lamsim_tui.simulator.runner import ToolRunner

GOLD_SOURCE = "gold"
GOLD_AGENT_KIND = "gold-replay"  # the agent kind of a record that replays a gold program cleanly
CHARS_PER_TOKEN = 2.5  # JSON-heavy text: Qwen2.5 tokenizes CRM demonstrations at 2.6 characters a token (measured)
GOLD_TASKS_PER_TEMPLATE = 4
GOLD_TASKS_MAX = 80
STORE_CANDIDATES_MAX = 2000  # the most recent trajectories that count; older ones are not read
_STEP_OVERHEAD_CHARS = 40  # the JSON keys and framing around each step


@dataclass(frozen=True)
class DemoStep:
    """One step as a demonstration shows it: the action and what came back."""

    thought: str
    tool: str | None  # `finish` for the final answer; None for output that was not an action (kept rejected)
    arguments: dict
    observation: str  # what the agent was shown next ("" after the final answer)
    raw: str = ""  # for a step that was not an action: what the model wrote


@dataclass(frozen=True)
class Demonstration:
    ref: DemonstrationRef
    query: str
    steps: tuple[DemoStep, ...]

    def chars(self) -> int:
        return len(self.query) + sum(
            len(s.thought) + len(s.tool or s.raw) + len(_compact(s.arguments)) + len(s.observation)
            + _STEP_OVERHEAD_CHARS for s in self.steps)

    def tokens(self) -> int:
        return math.ceil(self.chars() / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Selection:
    """The demonstrations one episode is shown, and how (handed to the agent in `EpisodeView`)."""

    source: str  # the store directory, or "gold"
    placement: str  # "system" | "episode"
    demonstrations: tuple[Demonstration, ...]

    @property
    def refs(self) -> tuple[DemonstrationRef, ...]:
        return tuple(d.ref for d in self.demonstrations)


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


# ----- what a trajectory or a gold program shows -------------------------------------------------


def rejected(step: Step, last: bool) -> bool:
    """A step feedback refused: not an action, a call that did not run or failed, a refused answer."""
    action = step.action
    if action is None:
        return True
    if isinstance(action, Finish):
        return not last or step.has_error
    return not step.executed or any(f.code.startswith("exec.") for f in step.feedback)


def from_trajectory(record: Trajectory, *, keep_rejected: bool = False, observation_chars: int = 400,
                    ref: DemonstrationRef | None = None) -> Demonstration | None:
    """The trajectory as a demonstration, or None when it does not end with a final answer."""
    steps = record.steps
    if not steps or not isinstance(steps[-1].action, Finish) or not steps[-1].action.has_answer:
        return None
    shown: list[DemoStep] = []
    for position, step in enumerate(steps):
        last = position == len(steps) - 1
        refused = rejected(step, last)
        if refused and not keep_rejected:
            continue
        action = step.action
        if refused:
            observation = shorten(step.observation, observation_chars)
        elif isinstance(action, ToolCall):
            observation = render_result(step.result, observation_chars)  # without budget notes
        else:
            observation = ""
        if action is None:
            shown.append(DemoStep(step.thought, None, {}, observation, raw=shorten(step.raw, observation_chars)))
        elif isinstance(action, Finish):
            answer = record.final_answer if last else action.answer
            shown.append(DemoStep(step.thought, FINISH, {"answer": answer}, observation))
        else:
            shown.append(DemoStep(step.thought, action.tool, dict(action.arguments), observation))
    origin = "gold" if record.agent.get("kind") == GOLD_AGENT_KIND else "store"
    ref = ref or DemonstrationRef(id=record.id, template=record.task.template, task_id=record.task.id, origin=origin)
    return Demonstration(ref=ref, query=record.task.query, steps=tuple(shown))


def gold_thoughts(task: Task) -> list[str]:
    """Short, neutral thoughts for a gold replay (a gold program has none): one per call, then the answer's."""
    thoughts = []
    for i, call in enumerate(task.gold_calls):
        thoughts.append(f"Start with {call.tool}." if i == 0 else f"Next, {call.tool} with what the last result gave.")
    thoughts.append("The results answer the task.")
    return thoughts


def from_gold(task: Task, *, observation_chars: int = 400) -> Demonstration:
    """A clean replay of the task's gold program: its calls, their results, its answer."""
    thoughts = gold_thoughts(task)
    steps = [DemoStep(thoughts[i], call.tool, dict(call.arguments), render_result(call.result, observation_chars))
             for i, call in enumerate(task.gold_calls)]
    steps.append(DemoStep(thoughts[-1], FINISH, {"answer": task.gold_answer}, ""))
    ref = DemonstrationRef(id=f"gold:{task.id}", template=task.template, task_id=task.id, origin="gold")
    return Demonstration(ref=ref, query=task.query, steps=tuple(steps))


# ----- the candidates ----------------------------------------------------------------------------


def _usable(demo: Demonstration, pack: Pack) -> bool:
    """Every tool it calls is still in the pack (a changed pack must not show calls that no longer exist)."""
    return all(s.tool is None or s.tool == FINISH or s.tool in pack.tools for s in demo.steps)


def store_candidates(store: Any, settings: DemonstrationSettings, pack: Pack) -> list[Demonstration]:
    """The trajectories of `store` that count as demonstrations for this pack."""
    statuses = ("accepted", "pending") if settings.include_pending else ("accepted",)
    listings = [item for item in store.listings(status=statuses)
                if item.status == "accepted" or item.success]
    out = []
    for item in listings[-STORE_CANDIDATES_MAX:]:
        record = store.get(item.id)
        if record.pack.name != pack.name:
            continue
        demo = from_trajectory(record, keep_rejected=settings.keep_rejected,
                               observation_chars=settings.observation_chars)
        if demo is not None and _usable(demo, pack):
            out.append(demo)
    return out


def gold_candidates(pack: Pack, session: Session, runner: ToolRunner, seed: int,
                    observation_chars: int = 400) -> list[Demonstration]:
    """Clean gold replays of tasks drawn from the session's templates with their own seed."""
    from lamsim_tui.simulator.tasks import TaskGenerator, template_weights

    weights = template_weights(pack, session.templates)
    size = min(GOLD_TASKS_MAX, GOLD_TASKS_PER_TEMPLATE * max(1, len(weights)))
    tasks = TaskGenerator(pack, weights, runner).generate(size, _derived(seed, "gold")).tasks
    return [from_gold(t, observation_chars=observation_chars) for t in tasks]


def _derived(seed: int, what: str) -> int:
    return int(hashlib.sha1(f"{seed}:demonstrations:{what}".encode()).hexdigest()[:12], 16)


# ----- choosing ----------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> Counter:
    return Counter(_WORD.findall(text.lower()))


def similarity(a: Counter, b: Counter) -> float:
    """Cosine similarity of two word counts (0 to 1)."""
    dot = sum(count * b[word] for word, count in a.items() if word in b)
    if not dot:
        return 0.0
    return dot / math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))


def _tiebreak(seed: int, *parts: str) -> str:
    return hashlib.sha1(":".join((str(seed), *parts)).encode()).hexdigest()


class DemonstrationSelector:
    """Chooses each episode's demonstrations from a fixed list of candidates."""

    def __init__(self, candidates: list[Demonstration], *, source: str, count: int, placement: str = "system",
                 seed: int = 0, token_budget: int = 1200):
        self.candidates = list(candidates)
        self.source = source
        self.count = count
        self.placement = placement
        self.seed = seed
        self.token_budget = token_budget
        self._words = [words(d.query) for d in self.candidates]
        self._tokens = [d.tokens() for d in self.candidates]
        # The session-wide order: a seeded shuffle, then one template after another.
        shuffled = sorted(range(len(self.candidates)), key=lambda i: _tiebreak(seed, self.candidates[i].ref.id))
        first_seen: dict[str, int] = {}
        rank_in_template: list[int] = [0] * len(self.candidates)
        seen: Counter = Counter()
        for i in shuffled:
            template = self.candidates[i].ref.template
            first_seen.setdefault(template, len(first_seen))
            rank_in_template[i] = seen[template]
            seen[template] += 1
        self._session_order = sorted(
            shuffled, key=lambda i: (rank_in_template[i], first_seen[self.candidates[i].ref.template]))

    @classmethod
    def for_session(cls, session: Session, pack: Pack, runner: ToolRunner, store: Any = None,
                    seed: int | None = None) -> DemonstrationSelector | None:
        """The selector a run uses, or None when demonstrations are off or there is nothing to show."""
        settings = session.demonstrations
        if not settings.count:
            return None
        seed = settings.seed if settings.seed is not None else (session.seed if seed is None else seed)
        source_dir, candidates = _read_source(session, settings, pack, store)
        source = str(source_dir) if source_dir is not None else "(no store)"
        if not candidates and settings.cold_start == "gold":
            candidates = gold_candidates(pack, session, runner, seed, settings.observation_chars)
            source = GOLD_SOURCE
        if not candidates:
            return None
        return cls(candidates, source=source, count=settings.count, placement=settings.placement, seed=seed,
                   token_budget=settings.token_budget)

    def for_task(self, task: Task) -> Selection | None:
        """The demonstrations for one episode of `task` (never `task` itself), or None when none fits."""
        own_query = " ".join(task.query.split()).lower()
        allowed = [i for i, d in enumerate(self.candidates)
                   if d.ref.task_id != task.id and " ".join(d.query.split()).lower() != own_query]
        if self.placement == "episode":
            target = words(task.query)
            order = sorted(allowed, key=lambda i: (self.candidates[i].ref.template != task.template,
                                                   -round(similarity(target, self._words[i]), 9),
                                                   _tiebreak(self.seed, task.id, self.candidates[i].ref.id)))
        else:
            allowed_set = set(allowed)
            order = [i for i in self._session_order if i in allowed_set]
        chosen: list[Demonstration] = []
        tasks: set[str] = set()
        left = self.token_budget
        for i in order:
            if len(chosen) >= self.count:
                break
            demo = self.candidates[i]
            if demo.ref.task_id in tasks or self._tokens[i] > left:
                continue
            chosen.append(demo)
            tasks.add(demo.ref.task_id)
            left -= self._tokens[i]
        if not chosen:
            return None
        return Selection(source=self.source, placement=self.placement, demonstrations=tuple(chosen))


def _read_source(session: Session, settings: DemonstrationSettings, pack: Pack,
                 store: Any) -> tuple[Path | None, list[Demonstration]]:
    """(the source store's directory, its candidates). The session's own store is the open one, if any."""
    from lamsim_tui.errors import ConfigError

    own = Path(store.path).resolve() if store is not None else None
    if settings.source is None:
        return own, store_candidates(store, settings, pack) if store is not None else []
    root = session.root or Path.cwd()
    path = (root / Path(settings.source).expanduser()).resolve()
    if own is not None and path == own:
        return own, store_candidates(store, settings, pack)
    from lamsim_tui.errors import StoreError
    from lamsim_tui.store import open_store

    where = f"{session.source or 'the session'}: setting demonstrations.source"
    if not path.is_dir():
        raise ConfigError(f"there is no store at {path}", where=where,
                          hint="name a store directory (one that `lamsim run` wrote), or leave it out to use the "
                               "session's own store")
    try:
        with open_store(path, readonly=True) as source:
            return path, store_candidates(source, settings, pack)
    except StoreError as exc:
        raise ConfigError(exc.message, where=where,
                          hint=exc.hint or "name a store directory that `lamsim run` wrote") from None
