"""Online feedback: every agent action is checked before and after execution.

Codes are stable identifiers; statistics, filters, tests and the docs refer to them. The table
below is the single source of truth (`docs/feedback.md` is generated from it:
`python -m lamsim_tui.feedback`).

Order of checks for a tool call: format -> tool name -> arguments -> repeat -> execution -> budget.
For a final answer: format -> answer present -> answer well-formed -> (optionally) answer right.
A failed pre-execution check means the tool is not executed; the findings are the observation.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

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
    Code("loop.repeat", "warning", "agent", "the same call was already made in this episode",
         "You already called {tool} with these arguments at step {step}; the result is unchanged. "
         "Use it, try something else, or finish."),
    Code("exec.error", "warning", "agent", "the tool refused the call (a domain error such as 'no such case')",
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
    Code("answer.missing", "error", "agent", "finish without an answer, or no final answer at all",
         "Your final answer is missing: call finish with an \"answer\" argument."),
    Code("answer.malformed", "error", "agent", "the answer does not fit the expected answer type",
         "Your answer {got} is not {expected}. Give the answer as {expected}."),
    Code("answer.wrong", "error", "agent", "the judge found the final answer (or state) wrong",
         "That answer is not correct. Check your steps and try again."),
]

CODES: dict[str, Code] = {c.code: c for c in _TABLE}

# Codes an agent can cause by its own behaviour (the scripted agent must exercise all of them).
AGENT_CODES = tuple(c.code for c in _TABLE if c.source == "agent")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str

    def to_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "message": self.message}


def finding(code: str, **fields: Any) -> Finding:
    spec = CODES[code]
    try:
        message = spec.message.format(**fields)
    except (KeyError, IndexError, ValueError):
        message = spec.message
    return Finding(code, spec.severity, message)


def enabled(code: str, disabled: Iterable[str]) -> bool:
    return not any(code == d or code.startswith(d + ".") for d in disabled)


def nearest_names(name: str, options: Iterable[str], n: int = 3) -> list[str]:
    options = list(options)
    lowered = {o.lower(): o for o in options}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[c] for c in close]


# ----- argument checks -----------------------------------------------------------------------

_JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}
_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "an object", "null": "null"}


def _is_type(value: Any, json_type: str) -> bool:
    if isinstance(value, bool) and json_type in ("integer", "number"):
        return False
    if json_type == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _JSON_TYPES.get(json_type, (object,)))


def _shown(value: Any) -> str:
    import json

    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(schema: dict) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(_shown(v) for v in schema["enum"])
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)
    if kinds:
        word = _TYPE_WORDS.get(kinds, kinds)
        if kinds == "array" and "items" in schema and "type" in schema["items"]:
            word += " of " + _TYPE_WORDS.get(schema["items"]["type"], "values").removeprefix("a ").removeprefix("an ") + "s"
        return word
    if "anyOf" in schema:
        return " or ".join(_expected(s) for s in schema["anyOf"])
    return "a value"


def check_value(tool: str, arg: str, schema: dict, value: Any) -> Finding | None:
    """Check one value against the supported JSON-schema subset."""
    if "anyOf" in schema:
        if any(check_value(tool, arg, s, value) is None for s in schema["anyOf"]):
            return None
        return finding("args.type", tool=tool, arg=arg, expected=_expected(schema), got=_shown(value))
    kinds = schema.get("type")
    if value is None and (kinds == "null" or (isinstance(kinds, list) and "null" in kinds)):
        return None
    if kinds is not None:
        kinds_list = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is_type(value, k) for k in kinds_list):
            return finding("args.type", tool=tool, arg=arg, expected=_expected(schema), got=_shown(value))
    if "enum" in schema and value not in schema["enum"]:
        return finding("args.enum", tool=tool, arg=arg, choices=", ".join(_shown(v) for v in schema["enum"]),
                       got=_shown(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return finding("args.invalid", tool=tool, arg=arg, detail=f"must be at least {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            return finding("args.invalid", tool=tool, arg=arg, detail=f"must be at most {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            return finding("args.invalid", tool=tool, arg=arg, detail=f"must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return finding("args.invalid", tool=tool, arg=arg, detail=f"must have at most {schema['maxLength']} characters")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problem = check_value(tool, f"{arg}[{i}]", schema["items"], item)
            if problem:
                return problem
    if isinstance(value, dict) and ("properties" in schema or "additionalProperties" in schema):
        return check_object(tool, schema, value, prefix=f"{arg}.")
    return None


def check_object(tool: str, schema: dict, args: dict, prefix: str = "") -> Finding | None:
    props: dict = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in args:
            return finding("args.missing", tool=tool, arg=prefix + name, expected=_expected(props.get(name, {})))
    extra = schema.get("additionalProperties", True)
    for name, value in args.items():
        if name in props:
            problem = check_value(tool, prefix + name, props[name], value)
        elif extra is False:
            close = nearest_names(name, props)
            suggestion = f" Did you mean {close[0]!r}?" if close else ""
            return finding("args.unexpected", tool=tool, arg=prefix + name, suggestion=suggestion,
                           params=", ".join(props) or "(none)")
        elif isinstance(extra, dict):
            problem = check_value(tool, prefix + name, extra, value)
        else:
            problem = None
        if problem:
            return problem
    return None


def code_table_markdown() -> str:
    rows = ["| code | severity | caused by | meaning | message to the agent |", "| --- | --- | --- | --- | --- |"]
    for c in _TABLE:
        rows.append(f"| `{c.code}` | {c.severity} | {c.source} | {c.meaning} | {c.message.replace('|', '/')} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(code_table_markdown())
