"""A trajectory as the turns of an exported conversation, in one encoding: native tool calls, then a
plain final answer.

Every layout (chat, sharegpt, xlam, preference pairs) is built from these turns, so they agree on
what is left out and what is a training target:

- **Rejected steps** (output that was not an action, calls feedback refused before they ran, final
  answers the judge refused) are never targets. By default they are left out with the feedback
  they caused; `keep_rejected` keeps them as context, marked `rejected` (chat writes `weight: 0`).
- **Invented arguments** (`strict`): an executed call whose id-like argument values appear nowhere
  in the task, the tools' schemas, the gold program or an earlier observation left in the
  conversation is left out with its result, like `get_agent(agent_id='AG-7943')` answered "no such
  agent". Leaving one out can orphan a later value, so the check repeats until nothing changes.
- **The final answer** is a plain assistant message (its thought, then the answer on its own line);
  `finish` appears nowhere, since trainers' chat templates and tool-calling models end a turn with
  text, not with a call.
- **Feedback** is worded for this encoding: messages that ask for "one JSON action object" or name
  `finish` are reworded (`export_message`); the rest is what the agent saw.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from lamsim_tui.record import Finding, Finish, Step, ToolCall, Trajectory

FINISH = "finish"


@dataclass
class Turn:
    kind: str  # "call" | "result" | "text" (assistant text) | "feedback" (to the agent) | "answer"
    content: str = ""
    tool: str = ""
    arguments: dict | None = None
    call_id: str = ""
    rejected: bool = False  # an assistant turn feedback refused: context, never a training target
    step: int = -1  # index of the step it came from
    codes: tuple[str, ...] = ()  # the feedback codes of that step

    @property
    def assistant(self) -> bool:
        return self.kind in ("call", "text", "answer")


@dataclass(frozen=True)
class TurnOptions:
    keep_rejected: bool = False
    strict: bool = False
    thoughts: bool = True


@dataclass
class Conversation:
    turns: list[Turn]
    rejected_left_out: int = 0  # rejected steps left out
    invented_left_out: int = 0  # executed calls left out by `strict`
    invented: list[int] = field(default_factory=list)  # their step indexes


def answer_text(answer: Any) -> str:
    if isinstance(answer, str):
        return answer
    return json.dumps(answer, ensure_ascii=False)


def is_rejected(step: Step) -> bool:
    """A step feedback refused: no action, a call not executed because of a finding, a refused answer."""
    if step.action is None:
        return True
    if isinstance(step.action, Finish):
        return step.has_error
    return not step.executed and bool(step.feedback)


# ----- feedback worded for the exported encoding --------------------------------------------------

_ANY_ACTION = "Call one of the tools, or reply with your final answer."


def export_message(item: Finding) -> str:
    """What the agent is told, in words that fit native tool calls and a plain final answer."""
    message = item.message
    if item.code == "format.empty":
        return f"Your reply was empty. {_ANY_ACTION}"
    if item.code in ("format.unparseable", "format.schema"):
        # the parser's detail is about the JSON action text; in this encoding the reply is just not a call
        return f"Your reply is not a valid tool call. {_ANY_ACTION}"
    if item.code == "answer.missing":
        return "Your final answer is missing: reply with the answer itself."
    if item.code == "loop.repeat":
        return message.replace("try something else, or finish.", "try something else, or give your final answer.")
    if item.code == "budget.low":
        return message.replace("finish soon with your best answer", "give your best final answer soon")
    return message


def reworded(observation: str, findings: tuple[Finding, ...]) -> str:
    for item in findings:
        new = export_message(item)
        if new != item.message and item.message:
            observation = observation.replace(item.message, new)
    return observation


# ----- invented arguments -------------------------------------------------------------------------


def _leaves(value: Any, name: str = ""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, name)
    else:
        yield name, value


def _id_like(name: str, value: Any) -> bool:
    """Values an agent can only copy, never compute: strings with a digit, or any `*id` argument."""
    if not isinstance(value, str) or not value.strip():
        return False
    return bool(re.search(r"\d", value)) or name.lower().endswith(("id", "ids"))


def invented_arguments(arguments: dict, known: str) -> list[str]:
    """The id-like argument values (as `name=value`) that do not occur in `known` (lower-cased text)."""
    out = []
    for name, value in _leaves(arguments):
        if _id_like(name, value) and value.strip().lower() not in known:
            out.append(f"{name}={value!r}")
    return out


def background(record: Trajectory) -> str:
    """What an agent may copy from without a tool call: the task, the tools' schemas, the gold program."""
    parts = [record.task.query, record.policy or "", json.dumps(record.tools, ensure_ascii=False)]
    parts.extend(json.dumps(c.arguments, ensure_ascii=False) for c in record.task.gold_calls)
    parts.append(json.dumps(record.task.slots, ensure_ascii=False, default=str))
    return "\n".join(parts).lower()


def _strict_drops(record: Trajectory, kept: list[int]) -> list[int]:
    """Indexes of executed calls (among `kept`) with invented arguments, to a fixed point."""
    known_text = background(record)
    dropped: set[int] = set()
    while True:
        known = [known_text]
        found = False
        for index in kept:
            if index in dropped:
                continue
            step = record.steps[index]
            if isinstance(step.action, ToolCall) and step.executed:
                if invented_arguments(step.action.arguments or {}, "\n".join(known)):
                    dropped.add(index)
                    found = True
                    continue
            known.append(step.observation.lower())
        if not found:
            return sorted(dropped)


# ----- the turns ----------------------------------------------------------------------------------


def final_text(thought: str, answer: Any) -> str:
    """The final assistant message: the thought (if any), then the answer on its own line."""
    text = answer_text(answer)
    thought = (thought or "").strip()
    return f"{thought}\n{text}" if thought else text


def step_turns(step: Step, *, final: bool, rejected: bool, call_id: str, thoughts: bool = True) -> list[Turn]:
    """The turns one step stands for."""
    action = step.action
    codes = tuple(step.codes)
    observation = reworded(step.observation, step.feedback)
    common = {"rejected": rejected, "step": step.index, "codes": codes}
    if action is None:
        return [Turn("text", step.raw or step.thought, **common),
                Turn("feedback", observation, step=step.index, codes=codes)]
    if isinstance(action, Finish):
        if final:
            return [Turn("answer", final_text(step.thought if thoughts else "", action.answer), **common)]
        content = final_text(step.thought if thoughts else "", action.answer) if action.has_answer \
            else (step.thought or "")
        return [Turn("text", content, **common), Turn("feedback", observation, step=step.index, codes=codes)]
    return [Turn("call", step.thought if thoughts else "", action.tool, action.arguments or {}, call_id, **common),
            Turn("result", observation, action.tool, None, call_id, step=step.index, codes=codes)]


def conversation(record: Trajectory, options: TurnOptions = TurnOptions()) -> Conversation:
    """The trajectory's turns after the task; what was left out is counted."""
    steps = record.steps
    rejected = {i for i, s in enumerate(steps) if is_rejected(s)}
    candidates = [i for i in range(len(steps)) if i not in rejected]
    invented = _strict_drops(record, candidates) if options.strict else []
    left_out = set(invented) | (set() if options.keep_rejected else rejected)
    out: list[Turn] = []
    seen_ids: set[str] = set()
    finished = record.end_reason == "finished"
    for position, step in enumerate(steps):
        if position in left_out:
            continue
        call_id = ""
        if isinstance(step.action, ToolCall):
            call_id = step.action.call_id or f"call_{step.index}"
            if call_id in seen_ids:  # some servers number calls per response: keep ids unique
                call_id = f"call_{step.index}"
            seen_ids.add(call_id)
        final = finished and position == len(steps) - 1 and isinstance(step.action, Finish)
        out.extend(step_turns(step, final=final, rejected=position in rejected, call_id=call_id,
                              thoughts=options.thoughts))
    return Conversation(out, rejected_left_out=0 if options.keep_rejected else len(rejected),
                        invented_left_out=len(invented), invented=invented)
