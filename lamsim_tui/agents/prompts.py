"""What a model agent is told: system prompts, compact tool descriptions, messages, action schema.

The prompt prefix (system prompt with the tools and the pack's policy, then the task) is built
only from the pack and the query, so it is byte-identical across the steps of an episode, and the
system message is byte-identical across episodes: servers with prefix caching (llama.cpp, vLLM)
then process only what each step appends. History is only ever appended.

A policy (the rules of the workplace: a pack's `policy:` document, or a session's) is added to
whatever prompt the agent format uses, the default or a session's own `system_prompt`: after it,
or where that prompt says `{policy}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lamsim_tui.record import Demonstrations
from lamsim_tui.simulator.actions import FINISH, render_json_action

if TYPE_CHECKING:
    from lamsim_tui.packs import Pack, ToolSpec
    from lamsim_tui.session.config import Session
    from lamsim_tui.simulator.demos import Demonstration, DemoStep, Selection

TOOLS_PLACEHOLDER = "{tools}"
POLICY_PLACEHOLDER = "{policy}"
POLICY_HEADER = "Policy: the rules of this workplace. Follow them in every task, even when the task asks otherwise."
THOUGHT_MAX_CHARS = 200  # constrained decoding caps the thought so the action always fits
HISTORY_RAW_MAX_CHARS = 8000  # an earlier reply longer than this is cut in the history (deterministically)

DEFAULT_JSON_PROMPT = """\
You solve a task by calling tools, one tool per reply. Reply with exactly one JSON object and nothing else:
{"thought": "<one short sentence>", "tool": "<tool name>", "arguments": {<argument>: <value>}}
The tool's result comes back in the next message. Use only facts from tool results; never invent ids or values.
When you know the answer, reply:
{"thought": "<one short sentence>", "tool": "finish", "arguments": {"answer": <the answer>}}
The answer is a plain value in the form the task asks for (a number, a date YYYY-MM-DD, a name, a list), not an object.
When the task asks you to do something rather than to find something out, do it, then finish with a short confirmation of what you did as the answer.

Tools:
{tools}"""

DEFAULT_NATIVE_PROMPT = """\
You solve a task by calling the tools you are given, one call at a time. The tool's result comes \
back in the next message. Use only facts from tool results; never invent ids or values. When you \
know the answer, call finish with the answer: a plain value in the form the task asks for (a number, a \
date YYYY-MM-DD, a name, a list), not an object. When the task asks you to do something rather than to find \
something out, do it, then call finish with a short confirmation of what you did as the answer."""

FINISH_DESCRIPTION = "Give the final answer to the task and end."


def _type_text(schema: dict) -> str:
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema:
        return "|".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_type_text(s) for s in schema["anyOf"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(_type_text({**schema, "type": k}) for k in kind)
    if kind == "array":
        inner = schema.get("items")
        return f"list of {_type_text(inner)}" if inner else "list"
    if kind == "object":
        props = schema.get("properties")
        if props:
            return "{" + ", ".join(f"{k}: {_type_text(v)}" for k, v in props.items()) + "}"
        return "object"
    return kind or "any"


_LIMITS = (("minimum", ">= {}"), ("maximum", "<= {}"), ("exclusiveMinimum", "> {}"), ("exclusiveMaximum", "< {}"),
           ("minLength", "at least {} characters"), ("maxLength", "at most {} characters"),
           ("minItems", "at least {} items"), ("maxItems", "at most {} items"), ("pattern", "matching {}"),
           ("format", "format {}"), ("multipleOf", "a multiple of {}"))


def _limits(schema: Any) -> str:
    """The rules beyond its type that an argument is held to, in a few words (`>= 1, <= 20`)."""
    if not isinstance(schema, dict):
        return ""
    parts = [text.format(schema[key]) for key, text in _LIMITS if key in schema]
    if schema.get("uniqueItems"):
        parts.append("no repeated items")
    return ", ".join(parts)


def describe_tool(spec: ToolSpec) -> str:
    """One compact line per tool: `- name(arg: type, opt?: type): description. arg: meaning.`

    The line shows every rule the argument checks hold a call to (bounds, patterns, formats), so an
    agent in the JSON format is told what a native tool-calling agent reads in the schema.
    """
    params = spec.parameters or {}
    props: dict = params.get("properties", {}) or {}
    required = set(params.get("required", []) or [])
    signature = []
    notes = []
    for name, schema in props.items():
        mark = "" if name in required else "?"
        text = f"{name}{mark}: {_type_text(schema)}"
        limits = _limits(schema)
        if limits:
            text += f" ({limits})"
        if isinstance(schema, dict) and "default" in schema:
            text += f" = {json.dumps(schema['default'], ensure_ascii=False)}"
        signature.append(text)
        if isinstance(schema, dict) and schema.get("description"):
            notes.append(f"{name}: {schema['description'].strip().rstrip('.')}.")
    line = f"- {spec.name}({', '.join(signature)})"
    description = " ".join((spec.description or "").split())
    if description:
        line += ": " + description.rstrip(".") + "."
    if getattr(spec, "ends_episode", False):
        line += " Calling it ends the task."
    if notes:
        line += " " + " ".join(notes)
    return line


def describe_tools(tools: Iterable[ToolSpec]) -> str:
    lines = [describe_tool(t) for t in tools]
    lines.append(f"- {FINISH}(answer: any): {FINISH_DESCRIPTION}")
    return "\n".join(lines)


def _with_policy(prompt: str, policy: str | None) -> str:
    if POLICY_PLACEHOLDER in prompt:
        block = f"{POLICY_HEADER}\n{policy.strip()}" if policy else ""
        return prompt.replace(POLICY_PLACEHOLDER, block)
    if not policy:
        return prompt
    return prompt.rstrip() + f"\n\n{POLICY_HEADER}\n{policy.strip()}"


def system_prompt(tools: list[ToolSpec], fmt: str, override: str | None = None, policy: str | None = None) -> str:
    """The system message. A session's `system_prompt` replaces the default; `{tools}` in it is
    replaced by the tool list (JSON format), which is otherwise appended. A policy is added to
    either (after it, or at `{policy}`)."""
    if fmt == "native":
        return _with_policy(override if override is not None else DEFAULT_NATIVE_PROMPT, policy)
    template = override if override is not None else DEFAULT_JSON_PROMPT
    listing = describe_tools(tools)
    if TOOLS_PLACEHOLDER in template:
        return _with_policy(template.replace(TOOLS_PLACEHOLDER, listing), policy)
    return _with_policy(template.rstrip() + "\n\nTools:\n" + listing, policy)


def resolve_policy(pack: Pack, session: Session | None = None) -> str | None:
    """The policy the agent works under: the session's `policy` (a file; `none` for no policy) or the pack's."""
    from pathlib import Path

    from lamsim_tui.errors import ConfigError

    setting = getattr(session, "policy", None) if session is not None else None
    if setting is None:
        return pack.policy
    if setting.strip().lower() == "none":
        return None
    base = session.source.parent if session.source else Path.cwd()
    file = (base / Path(setting).expanduser()).resolve()
    where = f"{session.source}: policy" if session.source else "session setting policy"
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"policy file not found: {file}", where=where,
                          hint="the path is relative to the session file; `policy: none` runs without one") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the policy file {file}: {exc}", where=where) from None
    return text.strip() or None


def agent_system_prompt(pack: Pack, session: Session | None, fmt: str) -> str:
    """The exact system prompt an agent in this format gets for this pack and session."""
    override = session.agent.system_prompt if session is not None else None
    return system_prompt(list(pack.tools.values()), fmt, override, resolve_policy(pack, session))


def task_message(query: str) -> str:
    return f"Task: {query}"


def native_tools(tools: Iterable[ToolSpec]) -> list[dict]:
    schemas = [t.openai_schema() for t in tools]
    schemas.append({
        "type": "function",
        "function": {
            "name": FINISH,
            "description": FINISH_DESCRIPTION,
            "parameters": {"type": "object", "properties": {"answer": {"description": "the final answer"}},
                           "required": ["answer"]},
        },
    })
    return schemas


# ----- constrained decoding ------------------------------------------------------------------

_KEEP = {"type", "properties", "required", "items", "enum", "const", "anyOf", "additionalProperties",
         "minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum"}


def _grammar_schema(schema: Any) -> Any:
    """The schema subset grammar converters understand, without descriptions (smaller grammar)."""
    if not isinstance(schema, dict):
        return {}
    out: dict = {}
    for key, value in schema.items():
        if key not in _KEEP:
            continue
        if key == "properties":
            out[key] = {k: _grammar_schema(v) for k, v in value.items()}
        elif key in ("items",) or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _grammar_schema(value)
        elif key == "anyOf":
            out[key] = [_grammar_schema(v) for v in value]
        else:
            out[key] = value
    return out


_SCALAR = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]
# A plain value: small models otherwise wrap the answer as {"name": "Daniel Novak"} (measured:
# 3 of 5 right answers lost that way on the CRM pack).
ANSWER_SCHEMA = {"anyOf": [*_SCALAR, {"type": "array", "items": {"anyOf": _SCALAR}}]}


def action_schema(tools: Iterable[ToolSpec]) -> dict:
    """JSON schema of one action: one `anyOf` branch per tool, the tool name as a `const`."""
    branches = []
    thought = {"type": "string", "maxLength": THOUGHT_MAX_CHARS}
    for spec in tools:
        args = _grammar_schema(spec.parameters or {"type": "object"})
        args.setdefault("type", "object")
        branches.append({
            "type": "object",
            "properties": {"thought": thought, "tool": {"const": spec.name}, "arguments": args},
            "required": ["thought", "tool", "arguments"],
            "additionalProperties": False,
        })
    branches.append({
        "type": "object",
        "properties": {
            "thought": thought,
            "tool": {"const": FINISH},
            "arguments": {"type": "object", "properties": {"answer": ANSWER_SCHEMA}, "required": ["answer"],
                          "additionalProperties": False},
        },
        "required": ["thought", "tool", "arguments"],
        "additionalProperties": False,
    })
    return {"anyOf": branches}


def response_format(schema: dict, style: str) -> dict:
    """How to ask a server for constrained decoding of `schema`."""
    if style == "json_object_schema":  # llama-cpp-python's server
        return {"type": "json_object", "schema": schema}
    if style == "json_object":
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": "action", "schema": schema, "strict": False}}


# ----- history -------------------------------------------------------------------------------


def _cut(text: str) -> str:
    return text if len(text) <= HISTORY_RAW_MAX_CHARS else text[:HISTORY_RAW_MAX_CHARS] + " …"


def native_assistant_message(raw: str) -> tuple[dict, str]:
    """The assistant message a native-format raw output stands for, and the id of its (first)
    tool call ("" when it made none)."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("tool_calls"), list) and data["tool_calls"]:
        call = data["tool_calls"][0]
        message = {"role": "assistant", "content": data.get("content") or None, "tool_calls": [call]}
        return message, str(call.get("id", ""))
    return {"role": "assistant", "content": _cut(raw) or ""}, ""


# ----- exports -------------------------------------------------------------------------------

NEUTRAL_PROMPT = """\
You solve a task by calling the tools you are given, one call at a time. The tool's result comes \
back in the next message. Use only facts from the task and tool results; never invent ids or values. \
When you know the answer, reply without a tool call and end your reply with the answer on a line of \
its own: a plain value in the form the task asks for (a number, a date YYYY-MM-DD, a name, a list), \
not an object."""


def neutral_instruction(policy: str | None = None) -> str:
    """The default prompts' rules without an action format, for exported conversations.

    No JSON-action block, no tool listing (trainers' chat templates render the `tools` column) and
    no `finish` tool: the conversation's own encoding (native tool calls, then a plain final answer)
    shows how to act. A pack's policy, when the agent was given one, follows the rules.
    """
    if policy and policy.strip():
        return f"{NEUTRAL_PROMPT}\n\nPolicy:\n{policy.strip()}"
    return NEUTRAL_PROMPT


# ----- demonstrations ------------------------------------------------------------------------

DEMONSTRATIONS_HEADER = (
    "Examples: other tasks, already solved with these tools. They show how to act; the ids, values and "
    "answers in them are not those of your task.")
EXAMPLE_TASK_PREFIX = "Example task: "
NATIVE_FINISH_RESULT = "Answer accepted."


def _demo_action_text(step: DemoStep, fmt: str) -> str:
    """A demonstration step's action as the agent itself writes it."""
    if step.tool is None:
        return step.raw
    if fmt == "native":
        return f"Call: {step.tool} {json.dumps(step.arguments, ensure_ascii=False, default=str)}"
    return render_json_action(step.thought, step.tool, step.arguments)


def demonstration_block(demonstrations: Iterable[Demonstration], fmt: str) -> str:
    """The demonstrations as one text, for the end of the system message (placement `system`)."""
    parts = [DEMONSTRATIONS_HEADER]
    for n, demo in enumerate(demonstrations, 1):
        lines = [f"Example {n}", f"Task: {demo.query}"]
        for step in demo.steps:
            lines.append(_demo_action_text(step, fmt))
            if step.observation:
                lines.append(f"Result: {step.observation}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def demonstration_messages(demonstrations: Iterable[Demonstration], fmt: str) -> list[dict]:
    """The demonstrations as chat turns in the agent's own format (placement `episode`): JSON-action
    replies and user turns with the results, or native `tool_calls` and `tool` results."""
    messages: list[dict] = []
    for n, demo in enumerate(demonstrations, 1):
        messages.append({"role": "user", "content": EXAMPLE_TASK_PREFIX + demo.query})
        for j, step in enumerate(demo.steps):
            if fmt == "native" and step.tool is not None:
                call_id = f"example_{n}_{j}"
                messages.append({"role": "assistant", "content": step.thought or None, "tool_calls": [{
                    "id": call_id, "type": "function",
                    "function": {"name": step.tool,
                                 "arguments": json.dumps(step.arguments, ensure_ascii=False, default=str)}}]})
                messages.append({"role": "tool", "tool_call_id": call_id,
                                 "content": step.observation or NATIVE_FINISH_RESULT})
                continue
            messages.append({"role": "assistant", "content": _demo_action_text(step, fmt)})
            if step.observation:
                messages.append({"role": "user", "content": step.observation})
    return messages


def demonstrations_shown(selection: Selection, fmt: str) -> Demonstrations:
    """What the agent is shown for `selection`, as the record keeps it."""
    if selection.placement == "episode":
        return Demonstrations(source=selection.source, placement="episode", items=selection.refs,
                              messages=tuple(demonstration_messages(selection.demonstrations, fmt)))
    return Demonstrations(source=selection.source, placement="system", items=selection.refs,
                          prompt=demonstration_block(selection.demonstrations, fmt))
