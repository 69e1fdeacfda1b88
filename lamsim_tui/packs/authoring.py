"""The authoring API of tool packs: `@tool` (schema derived from type hints and the docstring),
`Schema` (extra JSON-schema keywords), `@template` with its `.gold` program, `@fixed_task` (one
task with its gold program), and the read-only `DataView` samplers get. Pack authors import
these from `lamsim_tui.packs`.

A gold program receives `call`: `call(tool, **arguments)` runs a tool through the agent's
checks and returns its result; `call.one(...)` returns the only row of a list result (and fails
the task when there are several); `call.first(...)` the first row of an ordered list, on purpose;
`call.expect_error(...)` makes a call that must fail with a domain error and returns its message
(kept in the gold calls, so the scripted agent replays it and recovers); `call.attempt(...)` one
that may fail: `(result, None)` or `(None, message)`.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import re
import string
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from lamsim_tui.errors import PackError
from lamsim_tui.packs.sandbox import Sandbox

ANSWER_TYPES = ("number", "text", "list", "set", "bool", "date", "json", "none")
RESERVED_TOOL_NAMES = ("finish",)
STATE_CHOICES = (True, False, "unchanged")


# ----- tools ---------------------------------------------------------------------------------


class Schema:
    """Extra JSON-schema keywords for one argument: `Annotated[int, Schema(minimum=1, maximum=50)]`.

    Hashable, so it also works inside `Annotated[...] | None` (a plain dict there breaks typing).
    """

    __slots__ = ("_items",)

    def __init__(self, **keywords: Any):
        self._items = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in keywords.items()))

    @property
    def keywords(self) -> dict:
        return {k: json.loads(v) for k, v in self._items}

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and other._items == self._items

    def __repr__(self) -> str:
        return f"Schema({', '.join(f'{k}={v}' for k, v in self._items)})"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict  # JSON schema of the arguments (an object schema)
    func: Callable[..., Any] = field(repr=False, compare=False)
    changes_state: bool = False
    source: str = ""  # file:line of the definition
    ends_episode: bool = False  # a call that succeeds ends the episode (a hand-off to a person, ...)

    def openai_schema(self) -> dict:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


def tool(func: Callable | None = None, *, name: str | None = None, schema: dict | None = None,
         changes_state: bool = False, ends_episode: bool = False):
    """Mark a function as a tool. Its schema comes from its signature and docstring.

    ``schema`` replaces the derived argument schema (rarely needed). ``changes_state`` says that the
    tool writes to the sandbox: `lamsim check` fails a tool that writes without it, and the scripted
    agent's wandering never calls such a tool. ``ends_episode``: a call of this tool that succeeds
    ends the episode (its result is the last observation), like a hand-off to a human agent.
    """

    def mark(f: Callable) -> Callable:
        f.__lamsim_tool__ = {"name": name or f.__name__, "schema": schema, "changes_state": changes_state,
                             "ends_episode": ends_episode}
        return f

    return mark(func) if func is not None else mark


_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters)\s*:\s*$")
_SECTION_HEADER = re.compile(r"^\s*(Returns|Raises|Yields|Examples?|Notes?)\s*:\s*$")
_ARG_LINE = re.compile(r"^\s*(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Google-style docstring -> (description, {param: description})."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    mode = "summary"
    current: str | None = None
    arg_indent: int | None = None
    for line in lines:
        if _ARGS_HEADER.match(line):
            mode, current, arg_indent = "args", None, None
            continue
        if _SECTION_HEADER.match(line):
            mode = "other"
            continue
        if mode == "summary":
            summary.append(line)
        elif mode == "args":
            if not line.strip():
                current = None
                continue
            indent = len(line) - len(line.lstrip())
            match = _ARG_LINE.match(line)
            if match and (arg_indent is None or indent <= arg_indent):
                arg_indent = indent
                current = match.group(1).lstrip("*")
                params[current] = match.group(3).strip()
            elif current:
                params[current] = (params[current] + " " + line.strip()).strip()
    description = " ".join(" ".join(summary).split())
    return description, params


def type_schema(tp: Any, where: str) -> dict:
    """JSON schema of one Python type hint."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        # Annotated[int, {"minimum": 1, "maximum": 50}]: extra JSON-schema keywords for the argument.
        base, *extras = get_args(tp)
        schema = dict(type_schema(base, where))
        for extra in extras:
            if isinstance(extra, dict):
                schema.update(extra)
            elif isinstance(extra, Schema):
                schema.update(extra.keywords)
        return schema
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is Any or tp is inspect.Parameter.empty:
        return {}
    if tp is dict or origin is dict:
        args = get_args(tp)
        schema: dict = {"type": "object"}
        if args and args[1] is not Any:
            schema["additionalProperties"] = type_schema(args[1], where)
        return schema
    if tp is list or origin in (list, tuple, set, frozenset):
        args = get_args(tp)
        schema = {"type": "array"}
        if args and args[0] is not Any and args[0] is not Ellipsis:
            schema["items"] = type_schema(args[0], where)
        return schema
    if origin is Literal:
        values = list(get_args(tp))
        kinds = {type(v) for v in values}
        schema = {"enum": values}
        if kinds == {str}:
            schema = {"type": "string", "enum": values}
        elif kinds <= {int}:
            schema = {"type": "integer", "enum": values}
        return schema
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"type": "string", "enum": [m.value for m in tp]}
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        nullable = len(options) < len(get_args(tp))
        if len(options) == 1:
            schema = dict(type_schema(options[0], where))
        else:
            schema = {"anyOf": [type_schema(o, where) for o in options]}
        if nullable and "type" in schema:
            schema["type"] = [schema["type"], "null"] if isinstance(schema["type"], str) else schema["type"]
        if nullable and "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]  # `null` is allowed, so the enum must list it too
        return schema
    if typing.is_typeddict(tp):
        hints = typing.get_type_hints(tp)
        required = sorted(getattr(tp, "__required_keys__", set(hints)))
        return {
            "type": "object",
            "properties": {k: type_schema(v, where) for k, v in hints.items()},
            "required": required,
            "additionalProperties": False,
        }
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        props, required = {}, []
        for f in dataclasses.fields(tp):
            props[f.name] = type_schema(hints[f.name], where)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    raise PackError(f"cannot derive a JSON schema for type {tp!r}", where=where,
                    hint="use str, int, float, bool, Literal, list[...], dict[...], a TypedDict, "
                         "or give @tool(schema=...)")


def schema_problem(schema: Any) -> str | None:
    """Why a tool's argument schema is not a valid JSON schema (Draft 2020-12), or None.

    A schema made only of the plain keywords type hints give (well formed, as the argument checks'
    fast path reads them) needs no metaschema check, which keeps loading quick."""
    if not isinstance(schema, dict):
        return f"the argument schema must be a JSON object, not {type(schema).__name__}"
    from lamsim_tui.simulator.arguments import plain_schema

    if plain_schema(schema):
        return None if schema.get("type", "object") == "object" else \
            'the argument schema must describe an object ({"type": "object", "properties": {...}})'
    from jsonschema import Draft202012Validator, SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"invalid JSON schema{f' at {where}' if where else ''}: {exc.message[:200]}"
    if schema.get("type", "object") != "object":
        return 'the argument schema must describe an object ({"type": "object", "properties": {...}})'
    return None


def derive_tool(func: Callable, module_path: Path) -> ToolSpec:
    meta = func.__lamsim_tool__
    try:
        line = inspect.getsourcelines(func)[1]
    except (OSError, TypeError):
        line = 1
    where = f"{module_path}:{line}"
    name = meta["name"]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
        raise PackError(f"tool name {name!r} must be a Python identifier of at most 64 characters", where=where)
    if name in RESERVED_TOOL_NAMES:
        raise PackError(f"tool name {name!r} is reserved for the final answer", where=where)
    description, param_docs = parse_docstring(func.__doc__)
    if not description:
        raise PackError(f"tool {name!r} has no docstring", where=where,
                        hint="the first docstring line is the description the agent reads")
    signature = inspect.signature(func)
    params = list(signature.parameters.values())
    if not params:
        raise PackError(f"tool {name!r} must take the sandbox as its first argument", where=where)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:  # a NameError in an annotation is the author's to fix
        raise PackError(f"tool {name!r}: cannot read type hints: {exc}", where=where) from None
    if meta["schema"] is not None:
        parameters = meta["schema"]
        problem = schema_problem(parameters)
        if problem:
            raise PackError(f"tool {name!r}: {problem}", where=where,
                            hint="@tool(schema=...) takes a JSON schema (Draft 2020-12) of the arguments object")
    else:
        properties: dict[str, dict] = {}
        required: list[str] = []
        for param in params[1:]:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise PackError(f"tool {name!r}: *args/**kwargs cannot be described to an agent", where=where)
            if param.name not in hints:
                raise PackError(f"tool {name!r}: argument {param.name!r} has no type hint", where=where)
            prop = dict(type_schema(hints[param.name], where))
            if param.name in param_docs:
                prop["description"] = param_docs[param.name]
            if param.default is inspect.Parameter.empty:
                required.append(param.name)
            elif param.default is not None:
                prop["default"] = param.default
            properties[param.name] = prop
        parameters = {"type": "object", "properties": properties, "required": required,
                      "additionalProperties": False}
        problem = schema_problem(parameters)
        if problem:
            raise PackError(f"tool {name!r}: {problem}", where=where,
                            hint="check the keywords given with Annotated[..., Schema(...)]")
    return ToolSpec(name=name, description=description, parameters=parameters, func=func,
                    changes_state=bool(meta["changes_state"]), source=where,
                    ends_episode=bool(meta.get("ends_episode", False)))


# ----- templates -----------------------------------------------------------------------------


class DataView:
    """Read-only view of the seed data for slot samplers."""

    def __init__(self, sandbox: Sandbox):
        self._sb = sandbox

    def rows(self, table: str) -> list[dict]:
        return self._sb.rows(table)

    def iter_rows(self, table: str):
        """Rows without copying (read-only use): faster for samplers over big tables."""
        return self._sb.iter_rows(table)

    def get(self, table: str, key: Any) -> dict | None:
        return self._sb.get(table, key)

    def find(self, table: str, **equals: Any) -> list[dict]:
        return self._sb.find(table, **equals)

    @property
    def now(self) -> datetime:
        return self._sb.now


def _source_of(func: Callable) -> str:
    try:
        line = inspect.getsourcelines(func)[1]
        return f"{inspect.getsourcefile(func)}:{line}"
    except (OSError, TypeError):
        return ""


@dataclass
class TemplateSpec:
    """A parameterised task (or, with `fixed`, one task with no slots). See docs/tool-packs.md#templates."""

    id: str
    query: str
    answer: str  # one of ANSWER_TYPES; "none": an action-only task, judged on its final state alone
    sample: Callable[[DataView, Any], dict] = field(repr=False)
    gold_program: Callable | None = field(default=None, repr=False)
    weight: float = 1.0
    tolerance: float = 1e-6
    state: bool | str = False  # True, False, "unchanged" (judged: nothing may change), "auto" (fixed tasks)
    state_fields: dict[str, list[str]] | None = None
    description: str = ""
    source: str = ""  # file:line of the declaration
    fixed: bool = False  # one task, its query taken literally (a fixed task, not a template)
    gold_source: str = ""  # file:line of the gold program
    option_sources: dict[str, str] = field(default_factory=dict, repr=False)  # option -> file:line, where known
    ends_with: str | None = None  # the task must end with this tool (a hand-off; a tool with ends_episode=True)

    def gold(self, func: Callable) -> Callable:
        """Decorator: the gold program `func(slots, call) -> answer`."""
        self.gold_program = func
        self.gold_source = _source_of(func)
        return func

    @property
    def slot_names(self) -> list[str]:
        """The slots the query uses: `{name}`, also with a format spec or an index (`{price:.2f}`, `{item[id]}`)."""
        if self.fixed:
            return []
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(self.query) if name is not None]
        except ValueError:  # a lone brace: the query cannot be filled, which `check` reports
            return re.findall(r"\{(\w+)", self.query)
        out: list[str] = []
        for name in fields:
            base = re.split(r"[.\[]", name, maxsplit=1)[0]
            if base not in out:
                out.append(base)
        return out

    @property
    def judges_state(self) -> bool:
        return self.state is not False

    def render_query(self, slots: dict) -> str:
        return self.query if self.fixed else self.query.format(**slots)


def _answer_type(answer: str | None) -> str:
    return "none" if answer is None else answer


def template(*, query: str, answer: str | None = "text", id: str | None = None, weight: float = 1.0,
             tolerance: float = 1e-6, state: bool | str = False, state_fields: dict[str, list[str]] | None = None,
             description: str = "", ends_with: str | None = None):
    """Declare a template; the decorated function samples slots: `sample(data, rng) -> dict`.

    Attach the gold program with `@<name>.gold`. `answer` is one of number, text, list, set,
    bool, date, json, or None for an action-only task (no answer: the agent finishes with a
    confirmation and the task is judged on its final state alone). `state=True` also judges the
    final sandbox state against the gold state (only the fields in `state_fields` per table, if
    given; a field may be a dotted path into nested values, `address.city`, `items.*.status`);
    `state="unchanged"` judges that the task changes nothing (a request the policy refuses).
    `ends_with="tool"` says the task must end with that tool (a hand-off; a tool declared with
    `ends_episode=True`): the gold program calls it last, and the judge fails an episode that
    ends otherwise.
    """

    def wrap(func: Callable) -> TemplateSpec:
        return TemplateSpec(id=id or func.__name__, query=query, answer=_answer_type(answer), sample=func,
                            weight=weight, tolerance=tolerance, state=state, state_fields=state_fields,
                            description=description or (inspect.getdoc(func) or "").split("\n")[0],
                            source=_source_of(func), ends_with=ends_with)

    return wrap


def _no_slots(data: DataView, rng: Any) -> dict:
    return {}


def fixed_task(*, query: str, answer: str | None = "text", id: str | None = None, weight: float = 1.0,
               tolerance: float = 1e-6, state: bool | str = False, state_fields: dict[str, list[str]] | None = None,
               description: str = "", ends_with: str | None = None):
    """Declare one fixed task (a real request from a log, a ticket or a benchmark): the decorated
    function is its gold program, `gold(call) -> answer`. The query is taken literally (no slots).
    Options as for `template`; `lamsim check` checks it the same way.
    """

    def wrap(func: Callable) -> TemplateSpec:
        def gold(slots: dict, call: Any) -> Any:
            return func(call)

        source = _source_of(func)
        return TemplateSpec(id=id or func.__name__, query=query, answer=_answer_type(answer), sample=_no_slots,
                            gold_program=gold, weight=weight, tolerance=tolerance, state=state,
                            state_fields=state_fields,
                            description=description or (inspect.getdoc(func) or "").split("\n")[0],
                            source=source, fixed=True, gold_source=source, ends_with=ends_with)

    return wrap
