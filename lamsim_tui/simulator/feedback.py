"""Online feedback: every agent action is checked before and after execution.

Codes are stable identifiers; statistics, filters, tests and the docs refer to them. The table
below is the single source of truth (`docs/feedback.md` is generated from it:
`scripts/gen-docs`).

Order of checks for a tool call: format -> tool name -> arguments -> repeat -> execution -> budget.
For a final answer: format -> answer present -> answer well-formed -> (optionally) answer right.
A failed pre-execution check means the tool is not executed; the findings are the observation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from lamsim_tui.record import Finding

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Code:
    code: str
    severity: Severity
    source: Literal["agent", "tool", "budget"]  # whose behaviour causes it
    meaning: str
    message: str  # template of what the agent is told; {placeholders} filled per finding


_TABLE = [
    Code("format.empty", "error", "agent", "the model returned nothing",
         "Your reply was empty. Reply with one JSON action object."),
    Code("format.unparseable", "error", "agent", "no action could be parsed from the output",
         "Your reply is not a valid action: {detail}. Reply with exactly one JSON object like "
         '{{"thought": "...", "tool": "<tool name>", "arguments": {{...}}}}.'),
    Code("format.schema", "error", "agent", "parsed, but not shaped like an action",
         "Your reply is JSON but not a valid action: {detail}."),
    Code("tool.unknown", "error", "agent", "the tool does not exist",
         "There is no tool named {tool!r}.{suggestion} Available tools: {available}."),
    Code("args.missing", "error", "agent", "a required argument is missing",
         "Tool {tool!r} needs argument {arg!r} ({expected})."),
    Code("args.unexpected", "error", "agent", "an argument the tool does not take",
         "Tool {tool!r} has no argument {arg!r}.{suggestion} Its arguments are: {params}."),
    Code("args.type", "error", "agent", "an argument has the wrong type",
         "Argument {arg!r} of {tool!r} must be {expected}, not {got}."),
    Code("args.enum", "error", "agent", "an argument is not one of the allowed values",
         "Argument {arg!r} of {tool!r} must be one of {choices}, not {got}."),
    Code("args.invalid", "error", "agent", "an argument breaks another schema rule",
         "Argument {arg!r} of {tool!r} is invalid: {detail}."),
    Code("loop.repeat", "warning", "agent", "the same call was already made in this episode, and nothing in the "
         "sandbox has changed since",
         "You already called {tool} with these arguments at step {step}; the result is unchanged. "
         "Use it, try something else, or finish."),
    Code("exec.error", "warning", "agent", "the tool refused the call (a domain error such as 'no such case'); "
         "a pack with `error_style: plain` words it `Error: <message>`",
         "{tool} failed: {detail}"),
    Code("exec.crash", "error", "tool", "the tool raised an unexpected exception: a bug in the pack",
         "The tool {tool} failed unexpectedly (an internal error, not your fault). Try another approach."),
    Code("exec.timeout", "error", "tool", "the tool ran past its time limit",
         "The tool {tool} timed out after {seconds:g} s. Try another approach."),
    Code("budget.low", "warning", "agent", "few steps are left",
         "Only {left} step(s) left: finish soon with your best answer."),
    Code("budget.exhausted", "error", "agent", "the step budget is spent; the episode ends",
         "The step budget is spent."),
    Code("budget.time", "error", "budget", "the episode's time budget is spent; the episode ends",
         "The time budget is spent."),
    Code("answer.missing", "error", "agent", "finish without an answer (for an action-only task: without a "
         "confirmation), or no final answer at all",
         "Your final answer is missing: call finish with an \"answer\" argument."),
    Code("answer.malformed", "error", "agent", "the answer does not fit the expected answer type (never for an "
         "action-only task: any confirmation fits)",
         "Your answer {got} is not {expected}. Give the answer as {expected}."),
    Code("answer.wrong", "error", "agent", "the judge found the final answer (or state) wrong; for an "
         "action-only task, the state",
         "That answer is not correct. Check your steps and try again."),
]

CODES: dict[str, Code] = {c.code: c for c in _TABLE}

# Codes an agent can cause by its own behaviour (the scripted agent must exercise all of them).
AGENT_CODES = tuple(c.code for c in _TABLE if c.source == "agent")



def finding(code: str, **fields: Any) -> Finding:
    spec = CODES[code]
    try:
        message = spec.message.format(**fields)
    except (KeyError, IndexError, ValueError):
        message = spec.message
    return Finding(code, spec.severity, message)


def enabled(code: str, disabled: Iterable[str]) -> bool:
    return not any(code == d or code.startswith(d + ".") for d in disabled)


def code_table_markdown() -> str:
    rows = ["| code | severity | caused by | meaning | message to the agent |", "| --- | --- | --- | --- | --- |"]
    for c in _TABLE:
        rows.append(f"| `{c.code}` | {c.severity} | {c.source} | {c.meaning} | {c.message.replace('|', '/')} |")
    return "\n".join(rows)

