"""Arguments are held to the full schema the agent is shown (jsonschema, Draft 2020-12), with stable codes."""

from __future__ import annotations

from typing import Annotated

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamsim_tui.packs import Sandbox, Schema, tool
from lamsim_tui.packs.authoring import derive_tool
from lamsim_tui.simulator.arguments import ArgumentCheck, _compile_fast, _validator_for, check_object

SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3, "uniqueItems": True},
        "version": {"const": 2},
        "target": {"oneOf": [{"type": "string", "minLength": 3}, {"type": "integer", "minimum": 1}]},
        "window": {"allOf": [{"type": "integer"}, {"minimum": 1}, {"maximum": 30}]},
        "day": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "date-time"},
        "email": {"type": "string", "format": "email"},
        "status": {"type": "string", "enum": ["open", "closed"]},
        "limit": {"type": ["integer", "null"], "minimum": 1},
        "ship_to": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                    "additionalProperties": False},
    },
    "required": ["code"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(("arguments", "code", "words"), [
    ({}, "args.missing", "needs argument 'code' (a string)"),
    ({"code": "ABC-12", "colour": "red"}, "args.unexpected", "has no argument 'colour'"),
    ({"code": "ABC-12", "staus": "open"}, "args.unexpected", "Did you mean 'status'?"),
    ({"code": 12}, "args.type", "must be a string, not 12"),
    ({"code": "ABC-12", "status": "Open"}, "args.enum", 'must be one of "open", "closed", not "Open"'),
    ({"code": "abc-12"}, "args.invalid", "must match the pattern ^[A-Z]{3}-[0-9]{2}$"),
    ({"code": "ABC-12", "tags": []}, "args.invalid", "'tags' of 't' is invalid: must have at least 1 item"),
    ({"code": "ABC-12", "tags": ["a", "b", "c", "d"]}, "args.invalid", "must have at most 3 items"),
    ({"code": "ABC-12", "tags": ["a", "a"]}, "args.invalid", "must not repeat an item"),
    ({"code": "ABC-12", "tags": [1]}, "args.type", "'tags[0]' of 't' must be a string"),
    ({"code": "ABC-12", "version": 3}, "args.invalid", "'version' of 't' is invalid: must be 2"),
    ({"code": "ABC-12", "target": "ab"}, "args.invalid", "must have at least 3 characters"),
    ({"code": "ABC-12", "target": 0}, "args.invalid", "must be at least 1"),
    ({"code": "ABC-12", "target": [1]}, "args.type", "must be a string or an integer, not [1]"),
    ({"code": "ABC-12", "window": 31}, "args.invalid", "'window' of 't' is invalid: must be at most 30"),
    ({"code": "ABC-12", "day": "2026-02-30"}, "args.invalid", "must be a date like 2026-03-14"),
    ({"code": "ABC-12", "at": "2026-02-03"}, "args.invalid", "must be a date and time like 2026-03-14T09:30:00Z"),
    ({"code": "ABC-12", "email": "no-at-sign"}, "args.invalid", "must be an email address"),
    ({"code": "ABC-12", "limit": "3"}, "args.type", "must be an integer or null"),
    ({"code": "ABC-12", "ship_to": {}}, "args.missing", "needs argument 'ship_to.city'"),
    ({"code": "ABC-12", "ship_to": {"city": "Oslo", "zip": "1"}}, "args.unexpected", "no argument 'ship_to.zip'"),
])
def test_every_keyword_is_held_with_its_code(arguments, code, words):
    problem = check_object("t", SCHEMA, arguments)
    assert problem is not None, arguments
    assert problem.code == code, problem
    assert words in problem.message, problem.message


def test_valid_arguments_pass_every_keyword():
    good = {"code": "ABC-12", "tags": ["a", "b"], "version": 2, "target": "abc", "window": 7, "day": "2026-02-28",
            "at": "2026-02-03T10:00:00Z", "email": "a@b.example", "status": "open", "limit": None,
            "ship_to": {"city": "Oslo"}}
    assert check_object("t", SCHEMA, good) is None
    assert check_object("t", SCHEMA, {**good, "target": 5, "limit": 3}) is None


def test_keywords_given_through_schema_reach_the_check(tmp_path):
    @tool
    def find(sb: Sandbox, code: Annotated[str, Schema(pattern="^R-[0-9]+$")],
             ids: Annotated[list[str], Schema(minItems=1)] | None = None) -> list:
        """Find rooms."""
        return []

    spec = derive_tool(find, tmp_path / "tools.py")
    assert check_object("find", spec.parameters, {"code": "X-1"}).code == "args.invalid"
    assert check_object("find", spec.parameters, {"code": "R-1", "ids": []}).code == "args.invalid"
    assert check_object("find", spec.parameters, {"code": "R-1", "ids": None}) is None


def test_the_first_problem_is_the_one_reported():
    """Missing arguments first, then the arguments in the order the call gave them."""
    assert check_object("t", SCHEMA, {"status": "x"}).code == "args.missing"
    assert check_object("t", SCHEMA, {"code": "ABC-12", "status": "x", "colour": 1}).code == "args.enum"
    assert check_object("t", SCHEMA, {"code": "ABC-12", "colour": 1, "status": "x"}).code == "args.unexpected"


# ----- the fast path agrees with the validator ---------------------------------------------------------

_leaf = st.one_of(
    st.just({"type": "string"}), st.just({"type": "integer"}), st.just({"type": "number"}),
    st.just({"type": "boolean"}), st.just({"type": ["integer", "null"]}), st.just({"type": ["string", "null"]}),
    st.just({"type": "string", "enum": ["a", "b"]}), st.just({"type": "integer", "minimum": 0, "maximum": 5}),
    st.just({"type": "string", "minLength": 1, "maxLength": 3}), st.just({}),
)
_schema = st.recursive(_leaf, lambda inner: st.one_of(
    st.builds(lambda items: {"type": "array", "items": items}, inner),
    st.builds(lambda props, req, extra: {"type": "object", "properties": props,
                                         "required": sorted(set(req) & set(props)), "additionalProperties": extra},
              st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
              st.lists(st.sampled_from(["a", "b", "c"]), max_size=3), st.booleans()),
), max_leaves=6)
_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 8), st.floats(-3, 8, allow_nan=False), st.text(max_size=4),
              st.sampled_from(["a", "b", "abcd"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner,
                                                                         max_size=3)),
    max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(_schema, _value)
def test_the_fast_path_never_accepts_what_the_validator_rejects(schema, value):
    fast = _compile_fast(schema)
    assert fast is not None  # every generated schema uses plain keywords only
    if fast(value):
        assert _validator_for(schema).is_valid(value), (schema, value)
    # and the whole check gives a finding exactly when the validator finds an error
    wrapped = {"type": "object", "properties": {"x": schema}, "required": ["x"], "additionalProperties": False}
    problem = ArgumentCheck("t", wrapped).check({"x": value})
    assert (problem is None) == _validator_for(wrapped).is_valid({"x": value}), (schema, value, problem)


def test_schemas_beyond_the_plain_keywords_always_go_to_the_validator():
    assert _compile_fast({"type": "string", "pattern": "^a"}) is None
    assert _compile_fast({"type": "object", "properties": {"a": {"const": 1}}}) is None
    assert _compile_fast({"type": "integer", "minimum": "1"}) is None  # malformed: left to jsonschema
