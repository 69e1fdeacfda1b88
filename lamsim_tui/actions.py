"""Agent actions and the parser of the JSON action format.

One action per step: a tool call, or the reserved `finish` tool with an `answer` argument.
The parser is tolerant of what small models really write (code fences, text around the
object, Python-style quotes, `name`/`args` key variants) and strict about what it accepts:
anything else becomes a `format.*` finding, never an exception.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from lamsim_tui.feedback import Finding, finding

FINISH = "finish"
MAX_OUTPUT_CHARS = 200_000  # longer model output is cut before parsing


@dataclass(frozen=True)
class ToolCall:
    tool: str
    arguments: dict
    call_id: str = ""

    def to_dict(self) -> dict:
        return {"type": "call", "tool": self.tool, "arguments": self.arguments, "call_id": self.call_id}

    def signature(self) -> str:
        return self.tool + json.dumps(self.arguments, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Finish:
    answer: Any
    call_id: str = ""
    has_answer: bool = True

    def to_dict(self) -> dict:
        return {"type": "finish", "answer": self.answer, "call_id": self.call_id}


Action = ToolCall | Finish


@dataclass(frozen=True)
class Parsed:
    """What the parser made of one model output."""

    thought: str = ""
    action: Action | None = None
    problem: Finding | None = None
    notes: tuple[str, ...] = field(default=())  # repairs applied (fences stripped, quotes fixed, ...)


def action_from_dict(data: dict) -> Action:
    if data.get("type") == "finish":
        return Finish(answer=data.get("answer"), call_id=data.get("call_id", ""), has_answer="answer" in data)
    return ToolCall(tool=data["tool"], arguments=data.get("arguments") or {}, call_id=data.get("call_id", ""))


_FENCE = re.compile(r"```(?:json|JSON|javascript|js|python)?\s*\n?(.*?)```", re.DOTALL)

_TOOL_KEYS = ("tool", "name", "action", "tool_name", "function")
_ARGS_KEYS = ("arguments", "args", "parameters", "params", "tool_input", "action_input", "input")
_THOUGHT_KEYS = ("thought", "thoughts", "reasoning", "reason", "think")
_ANSWER_KEYS = ("answer", "final_answer", "result")


def _balanced_objects(text: str, limit: int = 8) -> list[str]:
    """Substrings that are brace-balanced `{...}` (string-aware), outermost first."""
    found = []
    i = 0
    n = len(text)
    while i < n and len(found) < limit:
        start = text.find("{", i)
        if start < 0:
            break
        depth = 0
        quote: str | None = None
        escaped = False
        j = start
        end = -1
        while j < n:
            ch = text[j]
            if quote:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    end = j
                    break
            j += 1
        if end < 0:
            # An unterminated object: maybe the model was cut off, or a quote confused us.
            found.append(text[start:])
            break
        found.append(text[start:end + 1])
        i = end + 1
    return found


def _load_object(candidate: str) -> tuple[Any, str | None]:
    """JSON first; then a Python literal (single quotes, True/False/None) — parsed, never executed."""
    try:
        return json.loads(candidate), None
    except (json.JSONDecodeError, RecursionError):
        pass
    if len(candidate) > 20_000:
        return None, "not valid JSON"
    try:
        value = ast.literal_eval(candidate)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        try:
            json.loads(candidate)
        except json.JSONDecodeError as exc:
            return None, f"invalid JSON ({exc.msg} at character {exc.pos})"
        except RecursionError:
            return None, "JSON nested too deeply"
        return None, "not valid JSON"
    if not _json_like(value):
        return None, "not valid JSON"
    return value, "python-literal"


def _json_like(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_like(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_json_like(v, depth + 1) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def _first(data: dict, keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for key in keys:
        if key in data:
            return key, data[key]
    return None, None


def parse_json_action(text: str | None) -> Parsed:
    """Parse one model reply in the JSON action format."""
    if text is None or not text.strip():
        return Parsed(problem=finding("format.empty"))
    notes: list[str] = []
    if len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS]
        notes.append("truncated")
    fenced = _FENCE.findall(text)
    sources = fenced + [text] if fenced else [text]
    if fenced:
        notes.append("code-fence")
    last_error = "no JSON object found"
    for source in sources:
        for candidate in _balanced_objects(source):
            data, how = _load_object(candidate)
            if data is None:
                last_error = how or last_error
                continue
            if how:
                notes.append(how)
            if candidate.strip() != text.strip() and "code-fence" not in notes:
                notes.append("text-around-object")
            return _interpret(data, tuple(notes))
    return Parsed(problem=finding("format.unparseable", detail=last_error), notes=tuple(notes))


def _interpret(data: Any, notes: tuple[str, ...]) -> Parsed:
    if not isinstance(data, dict):
        return Parsed(problem=finding("format.schema", detail="expected a JSON object"), notes=notes)
    _, thought = _first(data, _THOUGHT_KEYS)
    thought = thought if isinstance(thought, str) else ("" if thought is None else json.dumps(thought))
    tool_key, tool = _first(data, _TOOL_KEYS)
    args_key, args = _first(data, _ARGS_KEYS)
    if isinstance(tool, dict) and tool_key == "function":  # {"function": {"name":..., "arguments":...}}
        args = tool.get("arguments", args)
        tool = tool.get("name")
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return Parsed(thought=thought, notes=notes,
                          problem=finding("format.schema", detail="\"arguments\" must be a JSON object"))
    if tool is None:
        answer_key, answer = _first(data, _ANSWER_KEYS)
        if answer_key is not None:
            return Parsed(thought=thought, action=Finish(answer=answer), notes=notes)
        return Parsed(thought=thought, notes=notes, problem=finding(
            "format.schema", detail='it names no tool: give "tool" (or "finish" with an "answer")'))
    if not isinstance(tool, str) or not tool.strip():
        return Parsed(thought=thought, notes=notes,
                      problem=finding("format.schema", detail='"tool" must be a tool name (a string)'))
    tool = tool.strip()
    if args is None:
        args = {}
    if not isinstance(args, dict):
        return Parsed(thought=thought, notes=notes,
                      problem=finding("format.schema", detail='"arguments" must be a JSON object'))
    if tool == FINISH:
        if "answer" in args:
            return Parsed(thought=thought, action=Finish(answer=args["answer"]), notes=notes)
        answer_key, answer = _first(data, _ANSWER_KEYS)
        if answer_key is not None:
            return Parsed(thought=thought, action=Finish(answer=answer), notes=notes)
        if len(args) == 1:
            return Parsed(thought=thought, action=Finish(answer=next(iter(args.values()))), notes=notes)
        return Parsed(thought=thought, action=Finish(answer=None, has_answer=False), notes=notes)
    return Parsed(thought=thought, action=ToolCall(tool=tool, arguments=args), notes=notes)


def render_json_action(thought: str, tool: str, arguments: dict) -> str:
    """The canonical JSON action text (what the scripted agent writes; what prompts show)."""
    return json.dumps({"thought": thought, "tool": tool, "arguments": arguments}, ensure_ascii=False)
