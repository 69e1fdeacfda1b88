"""Argument checks: a proposed call's arguments against the tool's JSON schema, before it runs.

Each problem becomes one finding with a stable `args.*` code and a message that names the
argument and what was expected.
"""

from __future__ import annotations

from typing import Any

from lamsim_tui.names import nearest_names
from lamsim_tui.simulator.feedback import Finding, finding
from lamsim_tui.text import shorten

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
    return shorten(text, 60, "...")


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
