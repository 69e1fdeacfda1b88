"""Fixed tasks from a data file (`fixed_tasks:` in pack.yaml): real requests with their gold calls.

A YAML or JSON list; each entry is one task:

    - id: refund-1042                   # optional (default: <file name>-<n>)
      query: Ana Ruiz wants order O-50123 refunded in full.
      calls:                            # the gold calls, run in order through the agent's checks
        - {tool: get_order, arguments: {order_id: O-50123}}
        - {tool: issue_refund, arguments: {order_id: O-50123, amount: 120.0, reason: request}}
      answer: 120.0                     # the expected final answer; leave it out for an action-only task
      answer_type: number               # default: from the answer's JSON type (none without an answer)
      state: true                       # default: judged (the final state must be the calls' end state)
      ends_with: transfer_to_human      # optional: the task must end with this tool (a hand-off)
      state_fields: {refunds: [order_id, amount]}

A call with `expect_error: true` (or a piece of the expected message) must fail with a domain
error: it stays in the gold calls and the scripted agent replays it. Each entry becomes a
`TemplateSpec` with `fixed=True`, checked by `lamsim check` like any template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lamsim_tui.errors import ConfigError, PackError
from lamsim_tui.packs.authoring import TemplateSpec, ToolSpec
from lamsim_tui.session.yamlload import Located

AnswerType = Literal["number", "text", "list", "set", "bool", "date", "json", "none"]


@dataclass(frozen=True)
class FixedCall:
    tool: str = field(metadata={"doc": "tool name", "nonempty": True})
    arguments: dict[str, Any] = field(default_factory=dict, metadata={"doc": "the call's arguments"})
    expect_error: bool | str = field(default=False, metadata={
        "doc": "the call must fail with a domain error (`true`, or a piece of the expected message)"})


@dataclass(frozen=True)
class FixedTaskEntry:
    query: str = field(metadata={"doc": "what the agent is asked, verbatim", "nonempty": True})
    id: str | None = field(default=None, metadata={"doc": "task id (default `<file name>-<n>`)"})
    calls: list[FixedCall] = field(default_factory=list, metadata={"doc": "the gold calls, in order"})
    answer: Any = field(default=None, metadata={"doc": "the expected final answer (absent: action-only)"})
    answer_type: AnswerType | None = field(default=None, metadata={"doc": "how the answer is compared"})
    tolerance: float = field(default=1e-6, metadata={"doc": "allowed difference for numbers", "min": 0.0})
    state: bool | Literal["unchanged"] | None = field(default=None, metadata={
        "doc": "judge the final state (default: yes, it must be where the calls left it)"})
    state_fields: dict[str, list[str]] | None = field(default=None, metadata={"doc": "fields the state judge compares"})
    weight: float = field(default=1.0, metadata={"doc": "relative frequency", "min": 0.0})
    description: str = field(default="", metadata={"doc": "free text"})
    ends_with: str | None = field(default=None, metadata={
        "doc": "the task must end with this tool (a hand-off): the last gold call"})


def _infer_answer_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "json"
    return "text"


def json_lines(text: str) -> dict[tuple, int]:
    """The 1-based line where each value of a JSON document starts, by key path (a light scanner:
    json.loads has parsed the text already, so it is well formed)."""
    lines: dict[tuple, int] = {(): 1}
    stack: list[list] = []  # [kind, key or index, expecting_key]
    line = 1
    i, n = 0, len(text)

    def here() -> tuple:
        return tuple(frame[1] for frame in stack if frame[1] is not None)

    def value_starts() -> None:
        if stack:
            frame = stack[-1]
            if frame[0] == "list":
                frame[1] = 0 if frame[1] is None else frame[1] + 1
            lines.setdefault(here(), line)

    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        elif ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            literal = text[i:j + 1]
            if stack and stack[-1][0] == "dict" and stack[-1][2]:
                try:
                    stack[-1][1] = json.loads(literal)
                except ValueError:
                    stack[-1][1] = literal
                stack[-1][2] = False
            else:
                value_starts()
            line += literal.count("\n")
            i = j
        elif ch in "[{":
            value_starts()
            stack.append(["list", None, False] if ch == "[" else ["dict", None, True])
        elif ch in "]}":
            stack.pop()
        elif ch == ",":
            if stack and stack[-1][0] == "dict":
                stack[-1][2] = True
        elif ch not in " \t\r:":
            value_starts()
            while i + 1 < n and text[i + 1] not in ",]}\n \t\r":
                i += 1
        i += 1
    return lines


def _located(file: Path) -> Located:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError(f"cannot read the fixed tasks file: {exc}", where=str(file)) from None
    if file.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PackError(f"invalid JSON at line {exc.lineno}: {exc.msg}", where=f"{file}:{exc.lineno}") from None
        except (ValueError, RecursionError) as exc:  # a huge number, deep nesting
            what = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:300]
            raise PackError(f"the fixed tasks file cannot be read: {what}", where=str(file)) from None
        return Located(data=data, path=file, lines=json_lines(text))
    from lamsim_tui.session.yamlload import parse_yaml

    return parse_yaml(text, file, PackError)


def load_fixed_tasks(file: Path, tools: dict[str, ToolSpec]) -> list[TemplateSpec]:
    """The fixed tasks of one file, as `TemplateSpec`s (fixed=True)."""
    from lamsim_tui.session.schema import Builder

    located = _located(file)
    if not isinstance(located.data, list):
        raise PackError("a fixed tasks file is a list of tasks (each with a query and its calls)",
                        where=located.where(()))
    builder = Builder(located)
    specs = []
    for n, raw in enumerate(located.data):
        where = located.where((n,))
        try:
            entry: FixedTaskEntry = builder.build_dataclass(FixedTaskEntry, raw, (n,))
        except ConfigError as exc:
            raise PackError(exc.message, where=exc.where, hint=exc.hint) from None
        has_answer = isinstance(raw, dict) and "answer" in raw and raw["answer"] is not None
        answer_type = entry.answer_type or (_infer_answer_type(entry.answer) if has_answer else "none")
        if answer_type == "none" and has_answer:
            raise PackError(f"task {n + 1}: answer_type none with an answer", where=located.where((n, "answer")),
                            hint="drop the answer (an action-only task), or give its type")
        state = entry.state if entry.state is not None else "auto"
        call_lines = [located.where((n, "calls", i)) for i in range(len(entry.calls))]
        specs.append(TemplateSpec(
            id=entry.id or f"{file.stem}-{n + 1}", query=entry.query, answer=answer_type, sample=_no_slots,
            gold_program=_replay_program(entry.calls, call_lines, entry.answer if has_answer else None),
            weight=entry.weight, tolerance=entry.tolerance, state=state, state_fields=entry.state_fields,
            description=entry.description, source=where, fixed=True, gold_source=where,
            option_sources={key: located.where((n, key)) for key in raw if isinstance(key, str)},
            ends_with=entry.ends_with))
    return specs


def _no_slots(data: Any, rng: Any) -> dict:
    return {}


class FixedCallFailed(Exception):
    """A gold call of a fixed task did not do what the file says; `where` is its line."""

    def __init__(self, message: str, where: str):
        super().__init__(message)
        self.where = where


MAY_FAIL = "may fail"  # FixedCall.expect_error: kept whether it succeeds or fails with a domain error


def _replay_program(calls: list[FixedCall], lines: list[str], answer: Any):
    def gold(slots: dict, call: Any) -> Any:
        for spec, where in zip(calls, lines, strict=True):
            try:
                if spec.expect_error is False:
                    call(spec.tool, **spec.arguments)
                    continue
                if spec.expect_error == MAY_FAIL:
                    call.attempt(spec.tool, **spec.arguments)
                    continue
                message = call.expect_error(spec.tool, **spec.arguments)
            except Exception as exc:  # the gold runner's own failure, placed at the call's line
                try:
                    exc.where = where
                except AttributeError:
                    pass
                raise
            if isinstance(spec.expect_error, str) and spec.expect_error.casefold() not in message.casefold():
                raise FixedCallFailed(f"gold call {spec.tool} failed as expected, but with {message!r}, which does "
                                      f"not contain {spec.expect_error!r}", where)
        return answer

    return gold
