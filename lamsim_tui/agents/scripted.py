"""The scripted agent: replays a task's gold program, making realistic mistakes first at a
configurable rate and then correcting itself. It exercises the whole pipeline (parser, feedback,
judge, filters, review) with no model at all. Deterministic for a given episode seed.

Gold calls that fail on purpose are replayed too (the recovery shows in the data); an action-only
task ends with a confirmation (the gold program's text, or one made from its writes); a task that
hands off ends with the tool that ends the episode. Now and then it *wanders*: valid but useless
calls, of tools that change nothing, until the step budget is spent, so `budget.*` findings
appear without a failed episode ever looking like a bug in the pack.

Every reply is written as JSON-action text and goes through the same parser as a model's.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter
from datetime import date, timedelta
from typing import Any

from lamsim_tui.agents.base import Agent, AgentFactory, AgentTurn, EpisodeView
from lamsim_tui.events import TextDelta
from lamsim_tui.record import GoldCall, Task
from lamsim_tui.simulator.actions import parse_json_action, render_json_action

# Mistakes made before a gold call, and (separately) before the final answer.
CALL_MISTAKES = ("misspell", "missing_arg", "wrong_type", "bad_enum", "extra_arg", "out_of_range",
                 "missing_record", "neighbour_record", "repeat", "unparseable", "empty", "shape")
RARE_MISTAKES = ("bad_enum", "out_of_range", "wrong_type")
ANSWER_MISTAKES = ("premature", "no_answer", "malformed_answer")
DAWDLE_RATE = 0.04  # chance per episode of wandering until the step budget runs out
DAWDLE_EVERY = 25


class ScriptedAgentFactory(AgentFactory):
    replays_gold = True

    def __init__(self, session, pack, *, stream_cps: float = 0.0):
        self.session = session
        self.pack = pack
        self.mistake_rate = session.agent.mistake_rate if session is not None else 0.35
        self.stream_cps = stream_cps
        # Kinds of mistakes made so far in this run: each episode prefers the least used kinds that
        # fit its task, so a short run still exercises every feedback check.
        self.used: Counter = Counter()
        # The prompt a model agent in the JSON format would get: recorded with each trajectory so
        # exports of scripted runs are complete conversations.
        from lamsim_tui.agents import prompts

        self.system_prompt = prompts.agent_system_prompt(pack, session, "json")

    def describe(self) -> dict:
        return {"kind": "scripted", "mistake_rate": self.mistake_rate, "format": "json"}

    def for_episode(self, episode_id: str, seed: int, gold: Task | None = None):
        if gold is None:
            raise ValueError("the scripted agent replays the task's gold program: for_episode needs it")
        agent = ScriptedAgent(self.pack, gold, random.Random(seed), self.mistake_rate, self.stream_cps, self.used)
        agent.system_prompt = self.system_prompt
        return agent, {}

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _misspell(name: str, rng: random.Random) -> str:
    if len(name) < 3:
        return name + "s"
    i = rng.randrange(1, len(name) - 1)
    choice = rng.random()
    if choice < 0.4:
        return name[:i] + name[i + 1:]  # dropped letter
    if choice < 0.7:
        return name[:i] + name[i + 1] + name[i] + name[i + 2:]  # swapped letters
    return name.replace("_", "") if "_" in name else name + "s"


def _shift_id(value: str, delta: int) -> str | None:
    match = re.search(r"(\d+)(?!.*\d)", value)
    if not match:
        return None
    digits = match.group(1)
    shifted = int(digits) + delta
    if shifted < 0:
        return None
    return value[:match.start()] + str(shifted).zfill(len(digits)) + value[match.end():]


def _wrong_answer(answer_type: str, gold: Any, rng: random.Random) -> Any:
    if answer_type == "number" and isinstance(gold, (int, float)) and not isinstance(gold, bool):
        return gold + rng.choice([1, 2, 10, -1]) if gold > 2 else gold + 3
    if answer_type == "bool":
        return not gold if isinstance(gold, bool) else True
    if answer_type in ("list", "set"):
        return list(gold)[:-1] if isinstance(gold, list) and len(gold) > 1 else ["unknown"]
    if answer_type == "date":
        try:
            return (date.fromisoformat(str(gold)[:10]) + timedelta(days=1)).isoformat()
        except ValueError:
            return "2000-01-01"
    if answer_type == "json":
        return {"unknown": True}
    if answer_type == "none":
        return "Done."
    return "I could not find it"


_MALFORMED = {"number": "about a dozen", "bool": "maybe", "date": "sometime soon", "json": "{not json"}


class ScriptedAgent(Agent):
    def __init__(self, pack, task: Task, rng: random.Random, mistake_rate: float, stream_cps: float = 0.0,
                 used: Counter | None = None):
        self.used = used if used is not None else Counter()
        self.pack = pack
        self.task = task
        self.rng = rng
        self.mistake_rate = mistake_rate
        self.stream_cps = stream_cps
        self.plan: list[str] | None = None

    # ----- planning --------------------------------------------------------------------------
    def _make_plan(self, episode: EpisodeView) -> list[str]:
        task = self.task
        rng = self.rng
        plan: list[str] = []
        # Wander until the budget runs out now and then: at a small rate, and at least once in
        # every DAWDLE_EVERY episodes of a run, so `budget.*` findings appear in short runs too.
        self.used["episodes since wandering"] += 1
        wander = rng.random() < DAWDLE_RATE * (self.mistake_rate / 0.35)
        if self.mistake_rate > 0 and (wander or self.used["episodes since wandering"] >= DAWDLE_EVERY):
            self.used["episodes since wandering"] = 0
            return [self._json("Let me look around first.", "__dawdle__", {})] * (episode.step_budget + 1)
        for call in task.gold_calls:
            while rng.random() < self.mistake_rate:  # sometimes several mistakes in a row
                mistake = self._call_mistake(call)
                if mistake is not None:
                    kind, texts = mistake
                    if kind == "repeat":
                        plan.append(self._json(self._thought(call), call.tool, call.arguments))
                        plan.extend(texts)
                        continue
                    plan.extend(texts)
                if len(plan) > 3 * len(task.gold_calls) + 3:
                    break
            plan.append(self._json(self._thought(call), call.tool, call.arguments))
        if rng.random() < self.mistake_rate:
            options = [k for k in ANSWER_MISTAKES if k != "malformed_answer" or task.answer_type in _MALFORMED]
            kind = self._least_used(options)
            if kind == "premature":
                wrong = _wrong_answer(task.answer_type, task.gold_answer, rng)
                plan.insert(rng.randint(0, len(plan)), self._json("I think I know the answer already.",
                                                                   "finish", {"answer": wrong}))
            elif kind == "no_answer":
                plan.append(self._json("I am done.", "finish", {}))
            elif task.answer_type in _MALFORMED:
                plan.append(self._json("Here is my answer.", "finish", {"answer": _MALFORMED[task.answer_type]}))
        if task.answer_type == "none":
            plan.append(self._json("That is done.", "finish", {"answer": self._confirmation()}))
        else:
            plan.append(self._json("I have everything I need.", "finish", {"answer": task.gold_answer}))
        return plan

    def _confirmation(self) -> str:
        """What an action-only task ends with: the gold program's own text, or one made of its writes."""
        if isinstance(self.task.gold_answer, str) and self.task.gold_answer.strip():
            return self.task.gold_answer
        writes = [c for c in self.task.gold_calls if c.error is None and self._writes(c.tool)]
        if not writes:
            return "Done: nothing needed to change."
        done = "; ".join(f"{c.tool}({', '.join(f'{k}={json.dumps(v, ensure_ascii=False)}' for k, v in c.arguments.items())})"
                         for c in writes)
        return f"Done: {done}."

    def _writes(self, tool: str) -> bool:
        spec = self.pack.tools.get(tool)
        return spec is None or spec.changes_state

    def _harmless(self, tool: str) -> bool:
        spec = self.pack.tools.get(tool)
        return spec is not None and not spec.changes_state and not spec.ends_episode

    def _thought(self, call: GoldCall) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in call.arguments.items())
        return f"I will call {call.tool}({args}) to get what the task needs."

    @staticmethod
    def _json(thought: str, tool: str, arguments: dict) -> str:
        return render_json_action(thought, tool, arguments)

    def _call_mistake(self, call: GoldCall) -> tuple[str, list[str]] | None:
        tool, args = call.tool, dict(call.arguments)
        spec = self.pack.tools.get(tool)
        props = spec.parameters.get("properties", {}) if spec else {}
        required = [a for a in (spec.parameters.get("required", []) if spec else []) if a in args]
        candidates: dict[str, list[str]] = {}
        for kind in CALL_MISTAKES:
            made = self._mistake_of_kind(kind, call, tool, args, props, required)
            if made is not None:
                candidates[kind] = made
        if not candidates:
            return None
        kind = self._least_used(list(candidates))
        return kind, candidates[kind]

    def _least_used(self, kinds: list[str]) -> str:
        ranked = sorted(kinds, key=lambda k: (self.used[k], self.rng.random()))
        self.used[ranked[0]] += 1
        return ranked[0]

    def _mistake_of_kind(self, kind, call, tool, args, props, required) -> list[str] | None:
        rng = self.rng
        if kind == "misspell":
            wrong = _misspell(tool, rng)
            if wrong != tool and wrong not in self.pack.tools:
                return [self._json(self._thought(call), wrong, args)]
        elif kind == "missing_arg" and required:
            name = rng.choice(required)
            return [self._json(self._thought(call), tool, {k: v for k, v in args.items() if k != name})]
        elif kind == "wrong_type":
            for name, value in args.items():
                if isinstance(value, bool):
                    continue
                if isinstance(value, int) and props.get(name, {}).get("type") == "integer":
                    return [self._json(self._thought(call), tool, {**args, name: str(value)})]
                if isinstance(value, str) and props.get(name, {}).get("type") == "string":
                    return [self._json(self._thought(call), tool, {**args, name: [value]})]
        elif kind == "bad_enum":
            # A wrongly cased or invented value for an enum argument (given or optional).
            for name, prop in props.items():
                values = [v for v in prop.get("enum") or [] if v is not None]
                if values and isinstance(values[0], str):
                    value = args.get(name, rng.choice(values))
                    wrong = value.upper() if value.upper() != value else value.lower() + "_"
                    if wrong not in values:
                        return [self._json(self._thought(call), tool, {**args, name: wrong})]
        elif kind == "out_of_range":
            for name, prop in props.items():
                if "maximum" in prop:
                    return [self._json(self._thought(call), tool, {**args, name: prop["maximum"] * 10 + 1})]
                if "minimum" in prop:
                    return [self._json(self._thought(call), tool, {**args, name: prop["minimum"] - 1})]
        elif kind == "extra_arg":
            extra = rng.choice(["verbose", "limit_results", "id", "details"])
            if extra not in props:
                return [self._json(self._thought(call), tool, {**args, extra: True})]
        elif kind in ("missing_record", "neighbour_record"):
            for name, value in args.items():
                if isinstance(value, str) and re.search(r"\d", value) and name.endswith("id"):
                    shifted = _shift_id(value, 7919 if kind == "missing_record" else 1)
                    if shifted:
                        return [self._json(self._thought(call), tool, {**args, name: shifted})]
        elif kind == "repeat":
            return [self._json("Let me check that again.", tool, args)]
        elif kind == "unparseable":
            broken = self._json(self._thought(call), tool, args)
            return [rng.choice([broken[: max(10, len(broken) // 2)],
                                      f"I should use {tool} now with {json.dumps(args)[:40]}"])]
        elif kind == "empty":
            return [""]
        elif kind == "shape":
            return [json.dumps({"thought": self._thought(call), "arguments": args})]
        return None

    # ----- acting ----------------------------------------------------------------------------
    async def step(self, episode: EpisodeView, emit) -> AgentTurn:
        if self.plan is None:
            self.plan = self._make_plan(episode)
        index = len(episode.steps)
        raw = self.plan[index] if index < len(self.plan) else self.plan[-1]
        if '"__dawdle__"' in raw:
            raw = self._dawdle(episode, index)
        if self.stream_cps > 0 and raw:
            await self._stream(episode.episode_id, index, raw, emit)
        return AgentTurn(raw=raw, parsed=parse_json_action(raw))

    def _dawdle(self, episode: EpisodeView, index: int) -> str:
        """Wander: valid but useless calls, each different, until the budget is spent. Only tools that
        change nothing (and do not end the episode): a wandering episode never writes."""
        calls = [c for c in self.task.gold_calls if self._harmless(c.tool)]
        if calls:
            call = calls[index % len(calls)]
            args = {k: (_shift_id(v, index + 1) or v) if isinstance(v, str) else v for k, v in call.arguments.items()}
            return self._json("Maybe a nearby record helps.", call.tool, args)
        for spec in self.pack.tools.values():
            if self._harmless(spec.name) and not spec.parameters.get("required"):
                return self._json("Let me look around.", spec.name, {})
        # Nothing harmless to call: a tool that does not exist, which never runs.
        return self._json("Let me look around.", "look_around", {})

    async def _stream(self, episode_id: str, index: int, raw: str, emit) -> None:
        """Emit the reply in small pieces on a wall-clock schedule, like a model server: a busy
        consumer does not slow the producer down."""
        loop = asyncio.get_running_loop()
        chunk = 8
        started = loop.time()
        for start in range(0, len(raw), chunk):
            emit(TextDelta(episode_id, index, raw[start:start + chunk]))
            due = started + (start + chunk) / self.stream_cps
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def aclose(self) -> None:
        return None
