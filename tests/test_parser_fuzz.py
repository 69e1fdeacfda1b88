"""Fuzz the JSON action parser and the checks after it with what models really write, and worse.

Every output must end as an action (which the feedback checks then accept or turn into findings)
or as a `format.*` finding — never an exception. At least 10,000 outputs go through.
"""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packkit import write_pack

from lamsim_tui.packs import load_pack
from lamsim_tui.simulator.actions import FINISH, Finish, Parsed, ToolCall, parse_json_action, parse_native_call
from lamsim_tui.simulator.feedback import CODES, Finding
from lamsim_tui.simulator.judge import check_answer_form
from lamsim_tui.simulator.runner import ToolRunner

TOOL_NAMES = ["get_item", "set_colour", FINISH, "get_itme", "", " get_item ", "[bold]x[/]", "\x1b[31mred"]
ANSWER_TYPES = ["number", "text", "list", "set", "bool", "date", "json"]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=5)

nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from([
        "[bold red]hi[/]", "[link=file:///etc/passwd]x[/link]", "\x1b[2J\x1b[31mred\x1b[0m", "\x00\x07\x08",
        "\u202e\u200b\ufeff", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🤖", "{{{{", "}}}}", "```", "```json", "'", '"', "\\", "\\u12", "NaN",
        "Infinity", "True", "null", "<tool_call>", "</tool_call>", "<|im_end|>", "{'a': 1}", "1" * 5000,
    ]),
)


@st.composite
def action_objects(draw) -> dict:
    obj: dict = {}
    if draw(st.booleans()):
        obj[draw(st.sampled_from(["thought", "thoughts", "reasoning"]))] = draw(st.one_of(nasty_text, json_values))
    if draw(st.integers(0, 9)) > 0:
        obj[draw(st.sampled_from(["tool", "name", "action", "function", "tool_name"]))] = draw(
            st.one_of(st.sampled_from(TOOL_NAMES), json_values, st.fixed_dictionaries(
                {"name": st.sampled_from(TOOL_NAMES), "arguments": json_values})))
    if draw(st.integers(0, 9)) > 0:
        obj[draw(st.sampled_from(["arguments", "args", "parameters", "action_input"]))] = draw(st.one_of(
            st.fixed_dictionaries({}, optional={"item_id": st.one_of(st.just("I-01"), json_values),
                                                "colour": st.one_of(st.sampled_from(["red", "pink"]), json_values),
                                                "answer": json_values, "extra": json_values}),
            json_values, nasty_text))
    if draw(st.integers(0, 5)) == 0:
        obj[draw(st.sampled_from(["answer", "final_answer", "result"]))] = draw(json_values)
    return obj


def _damage(text: str, edits: list[tuple[int, int, str]]) -> str:
    chars = list(text)
    for position, op, char in edits:
        if not chars:
            break
        k = position % len(chars)
        if op == 0:
            del chars[k]
        elif op == 1:
            chars[k] = char
        else:
            chars.insert(k, chars[k])
    return "".join(chars)


@st.composite
def output_family(draw) -> list[str]:
    """One drawn action, written the ways models write it (and break it): 12 outputs per draw."""
    obj = draw(action_objects())
    full = json.dumps(obj)
    before, after = draw(nasty_text), draw(nasty_text)
    edits = draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2), st.sampled_from(list("{}[]\"':,\\ \n"))),
                          min_size=1, max_size=5))
    opener = draw(st.sampled_from(["{\"a\":", "[", "{", "{'a': ["]))
    depth = draw(st.sampled_from([1, 3, 50, 400, 3000]))
    filler = draw(st.sampled_from(["x", "é", "{", "\""])) * draw(st.sampled_from([1000, 20_000, 60_000]))
    return [
        full,
        repr(obj),  # Python-style quotes, True/None
        "```json\n" + json.dumps(obj, indent=2, ensure_ascii=False) + "\n```",
        before + " " + full + " " + after,
        full[:draw(st.integers(0, len(full)))],  # cut off anywhere (max_tokens)
        _damage(full, edits),  # characters dropped, replaced or doubled
        opener * depth + after,  # nested garbage
        full + "\nObservation: {\"id\": 1}\n" + json.dumps(draw(action_objects())),  # two actions
        json.dumps({**obj, "thought": filler}),  # huge strings
        draw(st.text(alphabet=string.printable, max_size=120)),
        json.dumps(draw(json_values)),
        draw(st.sampled_from(["", "   ", "\n\n", "I will call get_item now.", "<tool_call>{}</tool_call>", "{}", "[]",
                              "null", '{"tool": null}', "{'tool': 'finish'}", before])),
    ]


FAMILY_SIZE = 12
EXAMPLES = 900  # x 12 outputs each: 10,800 model outputs


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    return ToolRunner(load_pack(write_pack(root)))


def _check(parsed: Parsed, runner: ToolRunner, answer_type: str) -> None:
    assert isinstance(parsed, Parsed)
    if parsed.action is None:
        assert isinstance(parsed.problem, Finding)
        assert parsed.problem.code.startswith("format."), parsed.problem
        assert isinstance(parsed.problem.message, str) and parsed.problem.message
        assert len(parsed.problem.message) < 2000
        return
    assert parsed.problem is None
    assert isinstance(parsed.thought, str)
    action = parsed.action
    if isinstance(action, ToolCall):
        assert isinstance(action.tool, str) and action.tool == action.tool.strip() and action.tool
        assert isinstance(action.arguments, dict)
        json.dumps(action.to_dict())  # stays JSON (stored, exported)
        findings = runner.precheck(action)
    else:
        assert isinstance(action, Finish)
        json.dumps(action.to_dict())
        problem = check_answer_form(answer_type, action.answer, action.has_answer)
        findings = [problem] if problem else []
    for f in findings:
        assert f.code in CODES and isinstance(f.message, str)


SEEN = {"outputs": 0}


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(texts=output_family(), answer_type=st.sampled_from(ANSWER_TYPES))
def test_every_output_becomes_an_action_or_a_format_finding(runner, texts, answer_type):
    assert len(texts) == FAMILY_SIZE
    for text in texts:
        _check(parse_json_action(text), runner, answer_type)
    SEEN["outputs"] += len(texts)


def test_at_least_ten_thousand_outputs_were_fuzzed():
    # Runs after the fuzz test in file order; alone, it runs the fuzz itself.
    if SEEN["outputs"] == 0:
        pytest.skip("run with the fuzz test above")
    assert SEEN["outputs"] >= 10_000


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(name=st.one_of(st.none(), st.sampled_from(TOOL_NAMES), st.text(max_size=30)),
       arguments=st.one_of(st.none(), output_family().map(lambda texts: texts[5]), json_values.map(json.dumps)),
       answer_type=st.sampled_from(ANSWER_TYPES))
def test_every_native_call_becomes_an_action_or_a_format_finding(runner, name, arguments, answer_type):
    _check(parse_native_call(name, arguments, call_id="c1"), runner, answer_type)


# ----- what the tolerance accepts, and what it refuses ----------------------------------------


@pytest.mark.parametrize("text, tool, args", [
    ('{"thought": "t", "tool": "get_item", "arguments": {"item_id": "I-01"}}', "get_item", {"item_id": "I-01"}),
    ('Sure!\n```json\n{"tool": "get_item", "arguments": {"item_id": "I-01"}}\n```\nDone.', "get_item",
     {"item_id": "I-01"}),
    ("{'tool': 'get_item', 'arguments': {'item_id': 'I-01', 'force': true}}", "get_item",
     {"item_id": "I-01", "force": True}),
    ('I will look. {"name": "get_item", "args": {"item_id": "I-01"}} and then see', "get_item", {"item_id": "I-01"}),
    ('{"function": {"name": "get_item", "arguments": "{\\"item_id\\": \\"I-01\\"}"}}', "get_item",
     {"item_id": "I-01"}),
    ('{"thought": "two\nlines", "tool": "get_item", "arguments": {"item_id": "I-01"}}', "get_item",
     {"item_id": "I-01"}),
    ('{"thought": "cut", "tool": "get_item", "arguments": {"item_id": "I-01"}', "get_item", {"item_id": "I-01"}),
    ('{"tool": "get_item", "arguments": {"item_id": "I-01",},}', "get_item", {"item_id": "I-01"}),
])
def test_tolerated_forms(text, tool, args):
    parsed = parse_json_action(text)
    assert parsed.action == ToolCall(tool, args), parsed


@pytest.mark.parametrize("text, answer", [
    ('{"tool": "finish", "arguments": {"answer": 46}}', 46),
    ('{"thought": "done", "answer": "Daniel Novak"}', "Daniel Novak"),
    ('{"tool": "finish", "arguments": "Daniel Novak"}', "Daniel Novak"),
    ('{"tool": "finish", "arguments": {"result": ["a", "b"]}}', ["a", "b"]),
])
def test_finish_forms(text, answer):
    assert parse_json_action(text).action == Finish(answer)


@pytest.mark.parametrize("text, code", [
    ("", "format.empty"),
    ("I think the answer is 4.", "format.unparseable"),
    ('{"thought": "cut in the middle of a str', "format.unparseable"),
    ('{"tool": "get_item", "arguments": {"n": NaN}}', "format.unparseable"),
    ('{"arguments": {"item_id": "I-01"}}', "format.schema"),
    ('{"tool": ["get_item"], "arguments": {}}', "format.schema"),
    ('{"tool": "get_item", "arguments": [1, 2]}', "format.schema"),
    ("{" * 3000, "format.unparseable"),
])
def test_refused_forms(text, code):
    parsed = parse_json_action(text)
    assert parsed.action is None and parsed.problem.code == code, parsed


def test_model_text_is_never_evaluated():
    parsed = parse_json_action("{'tool': __import__('os').system('echo pwned'), 'arguments': {}}")
    assert parsed.action is None and parsed.problem.code == "format.unparseable"
