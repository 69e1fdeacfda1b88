"""What the model is told: compact tool lines, overridable prompts, the constrained-decoding schema."""

from __future__ import annotations

import json

import pytest
from packkit import write_pack

from lamsim_tui.agents import prompts
from lamsim_tui.packs import load_pack


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    return list(load_pack(write_pack(tmp_path_factory.mktemp("p"))).tools.values())


def test_tools_are_one_compact_line_each(tools):
    text = prompts.describe_tools(tools)
    lines = text.splitlines()
    assert lines[0] == '- get_item(item_id: string): Get one item by id. item_id: Item id such as "I-01".'
    assert lines[1].startswith('- set_colour(item_id: string, colour: "red"|"green"|"blue"): Change an item')
    assert lines[-1] == "- finish(answer: any): Give the final answer to the task and end."


def test_default_prompt_and_override(tools):
    default = prompts.system_prompt(tools, "json")
    assert default.startswith("You solve a task by calling tools")
    assert default.endswith(prompts.describe_tools(tools))
    placed = prompts.system_prompt(tools, "json", "Be brief.\n{tools}\nGo.")
    assert placed == "Be brief.\n" + prompts.describe_tools(tools) + "\nGo."
    appended = prompts.system_prompt(tools, "json", "Be brief.")
    assert appended == "Be brief.\n\nTools:\n" + prompts.describe_tools(tools)
    assert prompts.system_prompt(tools, "native") == prompts.DEFAULT_NATIVE_PROMPT
    assert prompts.system_prompt(tools, "json") == prompts.system_prompt(list(tools), "json"), "same bytes every time"


def test_action_schema_accepts_valid_actions_only(tools):
    schema = prompts.action_schema(tools)
    branches = {b["properties"]["tool"]["const"]: b for b in schema["anyOf"]}
    assert set(branches) == {"get_item", "set_colour", "finish"}
    answer = branches["finish"]["properties"]["arguments"]["properties"]["answer"]
    kinds = json.dumps(answer)
    assert '"object"' not in kinds, "the answer is a plain value, not an object"
    for branch in schema["anyOf"]:
        assert "description" not in json.dumps(branch["properties"]["arguments"])


def test_native_history_pairs_each_tool_result_with_its_call():
    raw = json.dumps({"content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_item", "arguments": "{}"}},
        {"id": "c2", "type": "function", "function": {"name": "get_item", "arguments": "{}"}}]})
    message, call_id = prompts.native_assistant_message(raw)
    assert call_id == "c1" and len(message["tool_calls"]) == 1, "only the call that was executed"
    text_message, none = prompts.native_assistant_message("just text")
    assert none == "" and text_message == {"role": "assistant", "content": "just text"}


def test_model_modules_import_without_litellm_or_llama_cpp():
    import subprocess
    import sys

    from packkit import ROOT

    code = ("import sys, lamsim_tui.agents.model, lamsim_tui.agents.embedded.server, lamsim_tui.agents.llm\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('litellm', 'llama_cpp', 'openai')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", "litellm is imported lazily, when the agent starts"
