"""Argument checks: a proposed call's arguments against the tool's JSON schema, before it runs.

The schema is the one the agent is shown, held in full: validation is `jsonschema` (Draft 2020-12,
with format assertion), compiled once per tool. Its errors become findings with stable codes:
`required` -> `args.missing`, `additionalProperties` -> `args.unexpected` (with the nearest
argument names), `type` -> `args.type`, `enum` -> `args.enum`, every other keyword (`pattern`,
`minItems`, `const`, `oneOf`, `format`, ...) -> `args.invalid`, each message naming the argument
and what was expected.

Speed: most calls are valid, and for schemas built only from the plain keywords that packs derive
from type hints (`type`, `properties`, `required`, `additionalProperties`, `items`, `enum` of
strings, numeric and length bounds) a compiled acceptor answers "valid" without the validator.
It only ever *accepts*: whatever it cannot decide, and every invalid call, goes to jsonschema, so
both always agree (a property test checks it).
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any
from urllib.parse import urlsplit

from lamsim_tui.names import nearest_names
from lamsim_tui.simulator.feedback import Finding, finding
from lamsim_tui.text import shorten

_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "an object", "null": "null"}
_FORMAT_WORDS = {"date": "a date like 2026-03-14", "date-time": "a date and time like 2026-03-14T09:30:00Z",
                 "time": "a time like 09:30:00", "email": "an email address", "uri": "a URI such as https://...",
                 "uuid": "a UUID", "ipv4": "an IPv4 address", "ipv6": "an IPv6 address",
                 "hostname": "a host name", "regex": "a regular expression"}


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return shorten(text, 60, "...")


def _expected(schema: Any) -> str:
    """What a schema asks for, in words ("an integer or null", "one of 'a', 'b'")."""
    if not isinstance(schema, dict):
        return "a value" if schema is not False else "nothing (not allowed)"
    if "const" in schema:
        return _shown(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(_shown(v) for v in schema["enum"])
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return " or ".join(_TYPE_WORDS.get(k, str(k)) for k in kinds)
    if kinds:
        word = _TYPE_WORDS.get(kinds, str(kinds))
        if kinds == "string" and schema.get("format") in _FORMAT_WORDS:
            return _FORMAT_WORDS[schema["format"]]
        items = schema.get("items")
        if kinds == "array" and isinstance(items, dict) and isinstance(items.get("type"), str):
            word += " of " + _TYPE_WORDS.get(items["type"], "values").removeprefix("a ").removeprefix("an ") + "s"
        return word
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return " or ".join(_expected(s) for s in schema[key])
    return "a value"


# ----- formats -------------------------------------------------------------------------------------

def _format_checker():
    """jsonschema's format checker, plus the common formats whose checks need optional packages."""
    from jsonschema import FormatChecker

    checker = FormatChecker()
    date_time_form = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
    time_form = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$")
    label = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    hostname_form = re.compile(rf"^(?=.{{1,253}}$){label}(\.{label})*\.?$")

    def add(name: str, test: Callable[[str], bool]) -> None:
        if name not in checker.checkers:
            checker.checks(name)(lambda value: not isinstance(value, str) or test(value))

    def date_time(text: str) -> bool:
        if not date_time_form.match(text):
            return False
        try:
            datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
        except ValueError:
            return False
        return True

    def time_of_day(text: str) -> bool:
        if not time_form.match(text):
            return False
        try:
            time.fromisoformat(text[:8])
        except ValueError:
            return False
        return True

    def uri(text: str) -> bool:
        try:
            parts = urlsplit(text)
        except ValueError:
            return False
        return bool(parts.scheme) and " " not in text

    def a_date(text: str) -> bool:
        try:
            date.fromisoformat(text)
        except ValueError:
            return False
        return len(text) == 10

    add("date", a_date)
    add("date-time", date_time)
    add("time", time_of_day)
    add("uri", uri)
    add("hostname", lambda text: bool(hostname_form.match(text)))
    return checker


_FORMATS = None


def _validator_for(schema: dict):
    global _FORMATS
    from jsonschema import Draft202012Validator

    if _FORMATS is None:
        _FORMATS = _format_checker()
    return Draft202012Validator(schema, format_checker=_FORMATS)


# ----- the fast acceptor ---------------------------------------------------------------------------

# Keywords the acceptor understands fully; any other keyword in a schema sends it to jsonschema.
_ANNOTATIONS = {"description", "title", "default", "examples", "deprecated", "readOnly", "writeOnly", "$comment"}
_PLAIN = {"type", "properties", "required", "additionalProperties", "items", "enum", "minimum", "maximum",
          "minLength", "maxLength"} | _ANNOTATIONS
_UNDECIDED = None


def _fast_type(kind: str) -> Callable[[Any], bool] | None:
    if kind == "string":
        return lambda v: isinstance(v, str)
    if kind == "boolean":
        return lambda v: v is True or v is False
    if kind == "integer":
        return lambda v: type(v) is int
    if kind == "number":
        return lambda v: (type(v) is int) or (type(v) is float and math.isfinite(v))
    if kind == "null":
        return lambda v: v is None
    if kind == "array":
        return lambda v: isinstance(v, list)
    if kind == "object":
        return lambda v: isinstance(v, dict)
    return None


def _compile_fast(schema: Any) -> Callable[[Any], bool] | None:
    """A function that returns True only for values the schema accepts (False: ask jsonschema);
    None when the schema uses keywords outside the plain set."""
    if schema is True or schema == {}:
        return lambda v: True
    if not isinstance(schema, dict) or not set(schema) <= _PLAIN:
        return None
    tests: list[Callable[[Any], bool]] = []
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        type_tests = [_fast_type(k) for k in names]
        if any(t is None for t in type_tests):
            return None
        tests.append(type_tests[0] if len(type_tests) == 1 else lambda v, ts=type_tests: any(t(v) for t in ts))
    if "enum" in schema:
        values = schema["enum"]
        if not isinstance(values, list) or not all(isinstance(x, str) for x in values):
            return None
        allowed = frozenset(values)
        tests.append(lambda v: isinstance(v, str) and v in allowed)
    for key, check in (("minimum", lambda v, m: v >= m), ("maximum", lambda v, m: v <= m)):
        if key in schema:
            bound = schema[key]
            if type(bound) not in (int, float):
                return None
            tests.append(lambda v, b=bound, c=check: type(v) not in (int, float) or c(v, b))
    for key, check in (("minLength", lambda n, m: n >= m), ("maxLength", lambda n, m: n <= m)):
        if key in schema:
            bound = schema[key]
            if type(bound) is not int:
                return None
            # Lengths count code points, as JSON Schema does; Python's len() does the same.
            tests.append(lambda v, b=bound, c=check: not isinstance(v, str) or c(len(v), b))
    if "items" in schema:
        inner = _compile_fast(schema["items"])
        if inner is None:
            return None
        tests.append(lambda v, f=inner: not isinstance(v, list) or all(f(x) for x in v))
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            return None
        compiled = {}
        for name, sub in props.items():
            f = _compile_fast(sub)
            if f is None:
                return None
            compiled[name] = f
        required = schema.get("required", [])
        if not isinstance(required, list):
            return None
        extra = schema.get("additionalProperties", True)
        extra_test = None
        if extra is False:
            extra_test = False
        elif extra is not True:
            extra_test = _compile_fast(extra)
            if extra_test is None:
                return None

        def object_test(v, compiled=compiled, required=tuple(required), extra_test=extra_test) -> bool:
            if not isinstance(v, dict):
                return True  # the type test decides
            for name in required:
                if name not in v:
                    return False
            for name, value in v.items():
                f = compiled.get(name)
                if f is not None:
                    if not f(value):
                        return False
                elif extra_test is False:
                    return False
                elif extra_test is not None and not extra_test(value):
                    return False
            return True

        tests.append(object_test)
    if not tests:
        return lambda v: True
    if len(tests) == 1:
        return tests[0]
    return lambda v, ts=tuple(tests): all(t(v) for t in ts)


def plain_schema(schema: Any) -> bool:
    """A well-formed schema made only of the keywords the fast acceptor reads (no validator needed to trust it)."""
    return isinstance(schema, dict) and _compile_fast(schema) is not None


# ----- mapping jsonschema's errors to findings ---------------------------------------------------------


def _arg_path(path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_DETAILS: dict[str, Callable[[Any, Any], str]] = {
    "minimum": lambda v, s: f"must be at least {v}",
    "maximum": lambda v, s: f"must be at most {v}",
    "exclusiveMinimum": lambda v, s: f"must be greater than {v}",
    "exclusiveMaximum": lambda v, s: f"must be less than {v}",
    "multipleOf": lambda v, s: f"must be a multiple of {v}",
    "minLength": lambda v, s: f"must have at least {v} characters",
    "maxLength": lambda v, s: f"must have at most {v} characters",
    "pattern": lambda v, s: f"must match the pattern {shorten(str(v), 80, '...')}",
    "format": lambda v, s: f"must be {_FORMAT_WORDS.get(v, 'in the format ' + repr(v))}",
    "minItems": lambda v, s: f"must have at least {v} item{'s' if v != 1 else ''}",
    "maxItems": lambda v, s: f"must have at most {v} item{'s' if v != 1 else ''}",
    "uniqueItems": lambda v, s: "must not repeat an item",
    "minProperties": lambda v, s: f"must have at least {v} field{'s' if v != 1 else ''}",
    "maxProperties": lambda v, s: f"must have at most {v} field{'s' if v != 1 else ''}",
    "const": lambda v, s: f"must be {_shown(v)}",
    "not": lambda v, s: f"must not be {_expected(v)}",
    "contains": lambda v, s: f"must contain {_expected(v)}",
}
_RANK = {"required": 0, "additionalProperties": 1, "unevaluatedProperties": 1, "type": 2, "enum": 3}


def _sub_errors(error) -> list:
    return sorted(error.context or (), key=lambda e: (len(e.relative_path), _RANK.get(e.validator, 5)))


def _to_finding(tool: str, error, props_of: Callable[[Any], dict]) -> Finding:
    kind = error.validator
    path = list(error.absolute_path)
    arg = _arg_path(path) or "(arguments)"
    prefix = (_arg_path(path) + ".") if path else ""
    value = error.instance
    if kind == "required":
        props = props_of(error.schema)
        missing = next((n for n in error.validator_value if isinstance(value, dict) and n not in value),
                       error.validator_value[0] if error.validator_value else "?")
        return finding("args.missing", tool=tool, arg=prefix + str(missing), expected=_expected(props.get(missing, {})))
    if kind in ("additionalProperties", "unevaluatedProperties"):
        props = props_of(error.schema)
        patterns = [re.compile(p) for p in (error.schema.get("patternProperties") or {})]
        extras = [k for k in (value if isinstance(value, dict) else {})
                  if k not in props and not any(p.search(k) for p in patterns)]
        name = extras[0] if extras else "?"
        close = nearest_names(str(name), props)
        suggestion = f" Did you mean {close[0]!r}?" if close else ""
        return finding("args.unexpected", tool=tool, arg=prefix + str(name), suggestion=suggestion,
                       params=", ".join(props) or "(none)")
    if kind == "type":
        return finding("args.type", tool=tool, arg=arg, expected=_expected(error.schema), got=_shown(value))
    if kind == "enum":
        return finding("args.enum", tool=tool, arg=arg, choices=", ".join(_shown(v) for v in error.validator_value),
                       got=_shown(value))
    if kind in ("anyOf", "oneOf"):
        subs = _sub_errors(error)
        if kind == "oneOf" and not subs:
            return finding("args.invalid", tool=tool, arg=arg, detail="matches more than one of the allowed forms")
        same_place = [e for e in subs if not e.relative_path]
        if same_place and all(e.validator in ("type", "enum", "const") for e in same_place):
            return finding("args.type", tool=tool, arg=arg, expected=_expected(error.schema), got=_shown(value))
        from jsonschema.exceptions import best_match

        # The branch whose type fits says what is wrong (a string too short), not the others' type errors.
        best = best_match([e for e in subs if e.validator != "type"] or subs)
        if best is not None:
            return _to_finding(tool, best, props_of)
    detail_of = _DETAILS.get(kind)
    if detail_of is not None:
        detail = detail_of(error.validator_value, error.schema)
    elif error.validator is None or error.schema is False:
        detail = "is not allowed here"
    else:
        detail = shorten(error.message, 160, "...")
    return finding("args.invalid", tool=tool, arg=arg, detail=detail)


def _props_of(schema: Any) -> dict:
    return schema.get("properties", {}) if isinstance(schema, dict) and isinstance(schema.get("properties"), dict) \
        else {}


class ArgumentCheck:
    """One tool's compiled argument check: `check(arguments) -> Finding | None` (the first problem)."""

    __slots__ = ("tool", "schema", "_fast", "_validator")

    def __init__(self, tool: str, schema: dict):
        self.tool = tool
        self.schema = schema
        self._fast = _compile_fast(schema)
        self._validator = None

    def check(self, arguments: Any) -> Finding | None:
        fast = self._fast
        if fast is not None and fast(arguments):
            return None
        if self._validator is None:
            self._validator = _validator_for(self.schema)
        errors = list(self._validator.iter_errors(arguments))
        if not errors:
            return None
        order = {name: i for i, name in enumerate(arguments)} if isinstance(arguments, dict) else {}

        def relevance(error) -> tuple:
            path = list(error.absolute_path)
            top = order.get(path[0], len(order)) if path else -1
            if not path and error.validator in ("additionalProperties", "unevaluatedProperties"):
                known = _props_of(error.schema)
                top = min((order[k] for k in order if k not in known), default=-1)
            return (0 if error.validator == "required" else 1, top, len(path), _RANK.get(error.validator, 4))

        return _to_finding(self.tool, min(errors, key=relevance), _props_of)


_CHECKS: OrderedDict[tuple[int, str], tuple[dict, ArgumentCheck]] = OrderedDict()
_CACHE_SIZE = 2048


def argument_check(tool: str, schema: dict) -> ArgumentCheck:
    """The compiled check of a schema (kept while the schema lives; the newest 2,048 are kept)."""
    key = (id(schema), tool)
    entry = _CHECKS.get(key)
    if entry is not None and entry[0] is schema:
        return entry[1]
    check = ArgumentCheck(tool, schema)
    _CHECKS[key] = (schema, check)
    if len(_CHECKS) > _CACHE_SIZE:
        _CHECKS.popitem(last=False)
    return check


def check_object(tool: str, schema: dict, args: dict, prefix: str = "") -> Finding | None:
    """The first problem of a call's arguments against the tool's schema, or None."""
    return argument_check(tool, schema).check(args)
