"""The rows of each export layout, built from a trajectory's turns (`curation.turns`).

- `chat`: `{"id", "messages", "tools"}`, the layout of TRL conversational datasets, Hugging Face
  chat templates and OpenAI-style fine-tuning files. A rejected assistant turn kept as context
  carries `"weight": 0` (OpenAI fine-tuning and Axolotl's `message_field_training: weight` skip it).
- `sharegpt`: `{"id", "conversations", "system", "tools"}`, LLaMA-Factory's tool-use layout
  (human / function_call / observation / gpt). A call with a thought is written
  `thought\\n<tool_call>{"name", "arguments"}</tool_call>` (LLaMA-Factory >= 0.9.4), one without as
  the bare JSON object.
- `xlam`: `{"unique_trajectory_id", "task_instruction", "tools", "conversation"}`, the unified
  trajectory layout of Salesforce xLAM / ActionStudio (written as one JSON array).

`Layout.strings` writes `tools` and every call's `arguments` as JSON strings: what `datasets`
before 4.7 (no `Json()` type) loads without merging argument objects into one padded struct.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lamsim_tui.agents.prompts import neutral_instruction
from lamsim_tui.curation.turns import FINISH, Turn
from lamsim_tui.record import Trajectory


@dataclass(frozen=True)
class Layout:
    fmt: str = "chat"
    system: str = "neutral"  # "neutral" | "original"
    strings: bool = False  # tools and arguments as JSON strings
    string_arguments: bool = False  # arguments only (OpenAI fine-tuning files)

    @property
    def arguments_as_text(self) -> bool:
        return self.strings or self.string_arguments


def system_text(record: Trajectory, layout: Layout) -> str:
    """The system turn: the format-neutral rules (with the pack's policy), or the agent's own prompt."""
    if layout.system == "original":
        return record.system_prompt or ""
    return neutral_instruction(record.policy)


def exported_tools(record: Trajectory) -> list[dict]:
    """The tool schemas the agent saw, without a `finish` tool (the final answer is plain text)."""
    out = []
    for tool in record.tools:
        name = (tool.get("function") or tool).get("name") if isinstance(tool, dict) else None
        if name != FINISH:
            out.append(tool)
    return out


def functions(record: Trajectory) -> list[dict]:
    return [t.get("function", t) for t in exported_tools(record)]


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# ----- chat ---------------------------------------------------------------------------------------


def chat_message(turn: Turn, layout: Layout) -> dict:
    if turn.kind == "call":
        arguments: Any = turn.arguments or {}
        if layout.arguments_as_text:
            arguments = _dumps(arguments)
        message: dict = {"role": "assistant", "content": turn.content, "tool_calls": [
            {"id": turn.call_id, "type": "function", "function": {"name": turn.tool, "arguments": arguments}}]}
    elif turn.kind == "result":
        return {"role": "tool", "tool_call_id": turn.call_id, "name": turn.tool, "content": turn.content}
    elif turn.kind in ("text", "answer"):
        message = {"role": "assistant", "content": turn.content}
    else:
        return {"role": "user", "content": turn.content}
    if turn.rejected:
        message["weight"] = 0
    return message


def chat_head(record: Trajectory, layout: Layout) -> list[dict]:
    messages = []
    system = system_text(record, layout)
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": record.task.query})
    return messages


def chat_tools(record: Trajectory, layout: Layout) -> Any:
    tools = exported_tools(record)
    return _dumps(tools) if layout.strings else tools


def chat_row(record: Trajectory, turns: list[Turn], layout: Layout) -> dict:
    messages = chat_head(record, layout) + [chat_message(t, layout) for t in turns]
    return {"id": record.id, "messages": messages, "tools": chat_tools(record, layout)}


# ----- sharegpt -----------------------------------------------------------------------------------


def sharegpt_entry(turn: Turn) -> dict:
    if turn.kind == "call":
        call = _dumps({"name": turn.tool, "arguments": turn.arguments or {}})
        thought = turn.content.strip()
        value = f"{thought}\n<tool_call>{call}</tool_call>" if thought else call
        return {"from": "function_call", "value": value}
    if turn.kind == "result":
        return {"from": "observation", "value": turn.content}
    if turn.kind in ("text", "answer"):
        return {"from": "gpt", "value": turn.content}
    return {"from": "human", "value": turn.content}


def sharegpt_turns(record: Trajectory, turns: list[Turn]) -> list[dict]:
    conversations: list[dict] = [{"from": "human", "value": record.task.query}]
    for turn in turns:
        entry = sharegpt_entry(turn)
        last = conversations[-1]
        if last["from"] == entry["from"]:  # keep the strict alternation LLaMA-Factory checks
            last["value"] = f"{last['value']}\n{entry['value']}".strip()
        else:
            conversations.append(entry)
    return conversations


def sharegpt_row(record: Trajectory, turns: list[Turn], layout: Layout) -> dict:
    return {"id": record.id, "conversations": sharegpt_turns(record, turns), "system": system_text(record, layout),
            "tools": _dumps(functions(record))}


# ----- xlam ---------------------------------------------------------------------------------------


def xlam_row(record: Trajectory, turns: list[Turn], layout: Layout) -> dict:
    conversation = [{"role": "user", "content": record.task.query}]
    for turn in turns:
        message = chat_message(turn, layout)
        message.pop("weight", None)  # ActionStudio has no per-turn weight
        conversation.append(message)
    return {"unique_trajectory_id": record.id, "task_instruction": system_text(record, layout),
            "tools": chat_tools(record, layout), "conversation": conversation}


def sft_row(record: Trajectory, turns: list[Turn], layout: Layout) -> dict:
    if layout.fmt == "chat":
        return chat_row(record, turns, layout)
    if layout.fmt == "sharegpt":
        return sharegpt_row(record, turns, layout)
    return xlam_row(record, turns, layout)
