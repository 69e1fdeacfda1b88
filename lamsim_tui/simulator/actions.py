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
import warnings
from dataclasses import dataclass, field
from typing import Any

from lamsim_tui.record import Action, Finding, Finish, ToolCall, action_from_dict  # noqa: F401 (re-exported for the parser's users)
from lamsim_tui.simulator.feedback import finding
from lamsim_tui.text import shorten

FINISH = "finish"
MAX_OUTPUT_CHARS = 200_000  # longer model output is cut before parsing


@dataclass(frozen=True)
class Parsed:
    """What the parser made of one model output."""

    thought: str = ""
    action: Action | None = None
    problem: Finding | None = None
    notes: tuple[str, ...] = field(default=())  # repairs applied (fences stripped, quotes fixed, ...)


_FENCE = re.compile(r"```(?:json|JSON|javascript|js|python)?\s*\n?(.*?)```", re.DOTALL)

_TOOL_KEYS = ("tool", "name", "action", "tool_name", "function")
_ARGS_KEYS = ("arguments", "args", "parameters", "params", "tool_input", "action_input", "input")
_THOUGHT_KEYS = ("thought", "thoughts", "reasoning", "reason", "think")
_ANSWER_KEYS = ("answer", "final_answer", "result")


_CLOSERS = {"{": "}", "[": "]"}


def _balanced_objects(text: str, limit: int = 8) -> list[tuple[str, bool]]:
    """Substrings that are brace-balanced `{...}` (string-aware), in order: (text, complete).

    An object still open at the end of the text (a reply cut off) comes back with `complete`
    False, closed where that is unambiguous (outside a string, after a complete value).
    """
    found: list[tuple[str, bool]] = []
    i = 0
    n = len(text)
    while i < n and len(found) < limit:
        start = text.find("{", i)
        if start < 0:
            break
        stack: list[str] = []
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
                # An apostrophe inside a word ("don't") is not a quote.
                if ch == "'" and j > start and text[j - 1].isalnum() and j + 1 < n and text[j + 1].isalnum():
                    pass
                else:
                    quote = ch
            elif ch in "{[":
                stack.append(ch)
            elif ch in "}]":
                if stack and _CLOSERS[stack[-1]] == ch:
                    stack.pop()
                if not stack:
                    end = j
                    break
            j += 1
        if end < 0:
            tail = text[start:].rstrip()
            if quote is None and stack and tail and tail[-1] not in ",:{[":
                found.append((tail + "".join(_CLOSERS[c] for c in reversed(stack)), False))
            else:
                found.append((text[start:], False))
            break
        found.append((text[start:end + 1], True))
        i = end + 1
    return found


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


_BARE_WORDS = re.compile(r"\b(true|false|null)\b")


def _pythonize(candidate: str) -> str:
    """JSON's true/false/null outside strings as Python's, for a single-quoted object."""
    out = []
    quote: str | None = None
    escaped = False
    segment_start = 0
    for k, ch in enumerate(candidate):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
                out.append(candidate[segment_start:k + 1])
                segment_start = k + 1
        elif ch in "\"'":
            out.append(_BARE_WORDS.sub(lambda m: {"true": "True", "false": "False", "null": "None"}[m.group(1)],
                                       candidate[segment_start:k]))
            segment_start = k
            quote = ch
    rest = candidate[segment_start:]
    out.append(rest if quote else _BARE_WORDS.sub(
        lambda m: {"true": "True", "false": "False", "null": "None"}[m.group(1)], rest))
    return "".join(out)


def _literal(candidate: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escapes in model text are not our warnings
        return ast.literal_eval(candidate)


def _load_object(candidate: str) -> tuple[Any, str | None]:
    """JSON first; then a Python literal (single quotes, True/False/None) — parsed, never executed.

    Returns (value, None) for plain JSON, (value, note) after a repair, (None, reason) on failure.
    """
    try:
        return _jsonable(json.loads(candidate, strict=False, parse_constant=_reject_constant)), None
    except json.JSONDecodeError as exc:
        json_error = f"invalid JSON ({exc.msg.removesuffix(' at')} at character {exc.pos})"  # not "starting at at"
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError as exc:  # NaN/Infinity, or an integer with thousands of digits
        return None, f"not valid JSON ({str(exc)[:80]})"
    if len(candidate) > 20_000 or ("'" not in candidate and "True" not in candidate and "None" not in candidate
                                   and ",}" not in candidate.replace(" ", "") and ",]" not in candidate.replace(" ", "")):
        return None, json_error
    for text in (candidate, _pythonize(candidate)):
        try:
            value = _literal(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError, OverflowError):
            continue
        if _json_like(value):
            return _jsonable(value), "python-literal"
    return None, json_error


def _jsonable(value: Any, depth: int = 0) -> Any:
    """Tuples as lists (a Python literal may hold them); depth is bounded by the callers."""
    if isinstance(value, dict):
        return {k: _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    return value


def _json_like(value: Any, depth: int = 0) -> bool:
    if depth > 50:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_like(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_json_like(v, depth + 1) for v in value)
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return value is None or isinstance(value, (str, int, bool))


def _first(data: dict, keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for key in keys:
        if key in data:
            return key, data[key]
    return None, None


def parse_json_action(text: str | None) -> Parsed:
    """Parse one model reply in the JSON action format. Never raises."""
    try:
        return _parse_json_action(text)
    except RecursionError:
        return Parsed(problem=finding("format.unparseable", detail="it is nested too deeply"))


def _parse_json_action(text: str | None) -> Parsed:
    if text is None or not isinstance(text, str) or not text.strip():
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
        for candidate, complete in _balanced_objects(source):
            data, how = _load_object(candidate)
            if data is None:
                last_error = how or last_error
                continue
            if how:
                notes.append(how)
            if not complete:
                notes.append("closed-brackets")
            if candidate.strip() != text.strip() and "code-fence" not in notes and complete:
                notes.append("text-around-object")
            return _interpret(data, tuple(notes))
    last_error = shorten(last_error, 201)
    return Parsed(problem=finding("format.unparseable", detail=last_error), notes=tuple(notes))


def _interpret(data: Any, notes: tuple[str, ...]) -> Parsed:
    if not isinstance(data, dict):
        return Parsed(problem=finding("format.schema", detail="expected a JSON object"), notes=notes)
    _, thought = _first(data, _THOUGHT_KEYS)
    thought = thought if isinstance(thought, str) else ("" if thought is None else json.dumps(thought))
    tool_key, tool = _first(data, _TOOL_KEYS)
    args_key, args = _first(data, _ARGS_KEYS)
    if isinstance(tool, dict):  # {"function": {"name":..., "arguments":...}} or {"action": {"tool": ...}}
        inner = tool
        _, tool = _first(inner, ("name", "tool", "tool_name"))
        inner_args_key, inner_args = _first(inner, _ARGS_KEYS)
        if inner_args_key is not None:
            args = inner_args
        if tool is None:
            tool = {}  # reported below as not a name
    if isinstance(args, str):
        stripped = args.strip()
        if not stripped:
            args = {}
        elif tool == FINISH and not stripped.startswith(("{", "[")):
            args = {"answer": args}
        else:
            loaded, problem = _load_object(stripped)
            if loaded is None:
                if tool == FINISH:
                    args = {"answer": args}
                else:
                    return Parsed(thought=thought, notes=notes,
                                  problem=finding("format.schema", detail="\"arguments\" must be a JSON object"))
            else:
                args = loaded
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
    if tool == FINISH:
        if isinstance(args, dict) and "answer" in args:
            return Parsed(thought=thought, action=Finish(answer=args["answer"]), notes=notes)
        answer_key, answer = _first(data, _ANSWER_KEYS)
        if answer_key is not None:
            return Parsed(thought=thought, action=Finish(answer=answer), notes=notes)
        if isinstance(args, dict) and len(args) == 1:
            return Parsed(thought=thought, action=Finish(answer=next(iter(args.values()))), notes=notes)
        if not isinstance(args, dict):  # {"tool": "finish", "arguments": 42}
            return Parsed(thought=thought, action=Finish(answer=args), notes=notes + ("answer-as-arguments",))
        return Parsed(thought=thought, action=Finish(answer=None, has_answer=False), notes=notes)
    if not isinstance(args, dict):
        return Parsed(thought=thought, notes=notes,
                      problem=finding("format.schema", detail='"arguments" must be a JSON object'))
    return Parsed(thought=thought, action=ToolCall(tool=tool, arguments=args), notes=notes)


def render_json_action(thought: str, tool: str, arguments: dict) -> str:
    """The canonical JSON action text (what the scripted agent writes; what prompts show)."""
    return json.dumps({"thought": thought, "tool": tool, "arguments": arguments}, ensure_ascii=False)


def parse_native_call(name: str | None, arguments: str | dict | None, call_id: str = "", thought: str = "") -> Parsed:
    """Parse one native tool call (`tool_calls[i]`): its name and its JSON arguments string."""
    notes: list[str] = []
    if not isinstance(name, str) or not name.strip():
        return Parsed(thought=thought, problem=finding("format.schema", detail="the tool call names no tool"))
    name = name.strip()
    if isinstance(arguments, dict):
        args: Any = arguments
    else:
        text = (arguments or "").strip()
        if len(text) > MAX_OUTPUT_CHARS:
            return Parsed(thought=thought, problem=finding("format.unparseable", detail="the arguments are too long"))
        if not text:
            args = {}
        else:
            args, how = _load_object(text)
            if args is None:
                return Parsed(thought=thought, problem=finding(
                    "format.unparseable", detail=f"the arguments of {name[:60]!r} are {how or 'not valid JSON'}"))
            if how:
                notes.append(how)
    if not isinstance(args, dict):
        return Parsed(thought=thought, notes=tuple(notes),
                      problem=finding("format.schema", detail='"arguments" must be a JSON object'))
    if name == FINISH:
        if "answer" in args:
            return Parsed(thought=thought, action=Finish(answer=args["answer"], call_id=call_id), notes=tuple(notes))
        return Parsed(thought=thought, action=Finish(answer=None, call_id=call_id, has_answer=False),
                      notes=tuple(notes))
    return Parsed(thought=thought, action=ToolCall(tool=name, arguments=args, call_id=call_id), notes=tuple(notes))
