"""Typed YAML: build frozen dataclasses from parsed YAML, with errors that name file, line and key.

A config dataclass *is* its schema: field types are checked, unknown keys are rejected with the
nearest valid name, and ``field(metadata={"doc": ..., "min": ..., "max": ...})`` documents and
bounds a value. Supported field types: bool, int, float, str, Literal[...], list[T], dict[str, T],
nested dataclasses, ``T | None`` and unions of the above.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from lamsim_tui.errors import ConfigError
from lamsim_tui.names import nearest_names as nearest
from lamsim_tui.session.yamlload import KeyPath, Located
from lamsim_tui.text import shorten

#: The largest integer a setting may hold (a 64-bit signed integer: what JSON readers keep exactly).
MAX_INT = 2**63 - 1


def _short_number(value: int) -> str:
    if abs(value) < 10**30:
        return str(value)
    return f"of about {int(value.bit_length() * 0.30103) + 1} digits"


def describe(tp: Any) -> str:
    """A human name for a type hint: 'integer', 'list of string', 'one of "a", "b"'."""
    origin = get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is Any:
        return "any value"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {describe(get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}"
    if origin is dict:
        return f"a mapping of {describe(get_args(tp)[1]).removeprefix('a ').removeprefix('an ')}"
    if origin in (Union, types.UnionType):
        parts = [describe(a) for a in get_args(tp) if a is not type(None)]
        return " or ".join(parts)
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, float) and math.isnan(value):
        return "NaN (not a number)"
    if isinstance(value, float) and math.isinf(value):
        return "infinity" if value > 0 else "minus infinity"
    if isinstance(value, int):
        return f"the number {_short_number(value)}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {shorten(repr(value), 80)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _same_shape(tp: Any, value: Any) -> bool:
    """Whether a value has the container shape a type expects (a list for list[...], a mapping for ...)."""
    origin = get_origin(tp)
    if origin is list:
        return isinstance(value, list)
    if origin is dict or dataclasses.is_dataclass(tp):
        return isinstance(value, dict)
    if origin is Literal:
        return isinstance(value, str | int | float | bool)
    return False


class Builder:
    def __init__(self, located: Located):
        self.located = located

    def fail(self, key_path: KeyPath, message: str, hint: str | None = None) -> typing.NoReturn:
        shown = ".".join(str(k) for k in key_path) or "(top level)"
        raise ConfigError(f"{shown}: {message}", where=self.located.where(key_path), hint=hint)

    def build(self, tp: Any, value: Any, key_path: KeyPath, meta: dict | None = None) -> Any:
        meta = meta or {}
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            options = get_args(tp)
            if value is None and type(None) in options:
                return None
            errors = []
            for option in options:
                if option is type(None):
                    continue
                try:
                    return self.build(option, value, key_path, meta)
                except ConfigError as exc:
                    errors.append(exc)
            if len(errors) == 1:
                raise errors[0]
            shaped = [exc for option, exc in zip([o for o in options if o is not type(None)], errors, strict=True)
                      if _same_shape(option, value)]
            if len(shaped) == 1:  # e.g. a mapping given where a list or a mapping may be: the mapping's problem
                raise shaped[0]
            self.fail(key_path, f"expected {describe(tp)}, got {_type_name(value)}")
        if dataclasses.is_dataclass(tp):
            return self.build_dataclass(tp, value, key_path)
        if tp is Any:
            return value
        if origin is Literal:
            choices = get_args(tp)
            if value not in choices:
                close = nearest(str(value), [str(c) for c in choices])
                hint = f"did you mean {close[0]!r}?" if close else None
                self.fail(key_path, f"expected {describe(tp)}, got {_type_name(value)}", hint)
            return value
        if origin is list:
            if not isinstance(value, list):
                self.fail(key_path, f"expected {describe(tp)}, got {_type_name(value)}")
            (item_tp,) = get_args(tp)
            return [self.build(item_tp, v, key_path + (i,)) for i, v in enumerate(value)]
        if origin is dict:
            if not isinstance(value, dict):
                self.fail(key_path, f"expected {describe(tp)}, got {_type_name(value)}")
            _, val_tp = get_args(tp)
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    self.fail(key_path + (k,), f"keys must be strings, got {_type_name(k)}")
                out[k] = self.build(val_tp, v, key_path + (k,))
            return out
        if tp is bool:
            if not isinstance(value, bool):
                self.fail(key_path, f"expected true or false, got {_type_name(value)}")
            return value
        if tp in (int, float):
            ok = isinstance(value, int) and not isinstance(value, bool)
            if tp is float:
                ok = ok or isinstance(value, float)
            if not ok:
                self.fail(key_path, f"expected {describe(tp)}, got {_type_name(value)}")
            if isinstance(value, float) and not math.isfinite(value):
                self.fail(key_path, f"expected a finite number, got {_type_name(value)}",
                          "write a plain number such as 30 or 0.5")
            if isinstance(value, int) and abs(value) > MAX_INT:
                self.fail(key_path, f"the number {_short_number(value)} is too large (at most {MAX_INT})")
            value = tp(value)
            low, high = meta.get("min"), meta.get("max")
            if low is not None and value < low:
                self.fail(key_path, f"must be at least {low}, got {value}")
            if high is not None and value > high:
                self.fail(key_path, f"must be at most {high}, got {value}")
            return value
        if tp is str:
            if not isinstance(value, str):
                self.fail(key_path, f"expected a string, got {_type_name(value)}")
            if "\x00" in value:
                self.fail(key_path, "contains a NUL character (\\x00)", "remove it")
            if meta.get("nonempty") and not value.strip():
                self.fail(key_path, "must not be empty")
            if meta.get("max_chars") is not None and len(value) > meta["max_chars"]:
                self.fail(key_path, f"is {len(value):,} characters long (at most {meta['max_chars']:,})")
            return value
        raise TypeError(f"unsupported config type {tp!r}")  # a bug in lamsim, not user input

    def build_dataclass(self, cls: Any, value: Any, key_path: KeyPath) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(key_path, f"expected a mapping of settings, got {_type_name(value)}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("internal")}
        for key in value:
            if key not in fields:
                close = nearest(str(key), fields)
                hint = f"did you mean {close[0]!r}?" if close else "valid keys: " + ", ".join(fields)
                self.fail(key_path + (key,), "unknown key", hint)
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                kwargs[name] = self.build(hints[name], value[name], key_path + (name,), dict(f.metadata))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.fail(key_path, f"missing required key {name!r} ({describe(hints[name])})")
        obj = cls(**kwargs)
        check = getattr(obj, "check", None)
        if check is not None:
            problem = check()
            if problem:
                sub, message = problem if isinstance(problem, tuple) else ((), problem)
                self.fail(key_path + tuple(sub), message)
        return obj


def schema_table(cls: Any, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) rows for documenting a config dataclass."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        tp = hints[f.name]
        key = prefix + f.name
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            produced = f.default_factory()
            default = "(see below)" if dataclasses.is_dataclass(produced) else repr(produced)
        else:
            default = "required"
        rows.append((key, describe(tp), default, f.metadata.get("doc", "")))
        inner = [a for a in get_args(tp) if dataclasses.is_dataclass(a)] or (
            [tp] if dataclasses.is_dataclass(tp) else []
        )
        if get_origin(tp) is list and dataclasses.is_dataclass(get_args(tp)[0]):
            inner = [get_args(tp)[0]]
            key = key + "[]"
        for sub in inner:
            rows.extend(schema_table(sub, key + "."))
    return rows
