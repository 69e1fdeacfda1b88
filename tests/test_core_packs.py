"""Tool packs: schema derivation, loading errors, sandbox isolation, execution path."""

import asyncio
import time
from typing import Annotated, Literal, TypedDict

import pytest
from packkit import MINI_TEMPLATES, MINI_TOOLS, lamsim, write_pack, write_session

from lamsim_tui.errors import PackError
from lamsim_tui.packs import Sandbox, load_pack, tool
from lamsim_tui.packs.authoring import derive_tool
from lamsim_tui.simulator.actions import ToolCall
from lamsim_tui.simulator.runner import ToolRunner


class Address(TypedDict):
    city: str
    zip: str


def test_schema_is_derived_from_signature_and_docstring(tmp_path):
    @tool
    def search(sb: Sandbox, query: str, status: Literal["open", "closed"] = "open", tags: list[str] | None = None,
               limit: Annotated[int, {"minimum": 1, "maximum": 50}] = 10, ship_to: Address | None = None,
               exact: bool = False, score: float = 0.5) -> list:
        """Search things.

        Longer text the agent also reads.

        Args:
            query: Words to look for,
                continued on a second line.
            status: Which ones.
        """
        return []

    spec = derive_tool(search, tmp_path / "tools.py")
    assert spec.description == "Search things. Longer text the agent also reads."
    params = spec.parameters
    assert params["required"] == ["query"]
    assert params["additionalProperties"] is False
    props = params["properties"]
    assert props["query"] == {"type": "string", "description": "Words to look for, continued on a second line."}
    assert props["status"] == {"type": "string", "enum": ["open", "closed"], "description": "Which ones.",
                               "default": "open"}
    assert props["tags"] == {"type": ["array", "null"], "items": {"type": "string"}}
    assert props["limit"] == {"type": "integer", "minimum": 1, "maximum": 50, "default": 10}
    assert props["ship_to"]["properties"] == {"city": {"type": "string"}, "zip": {"type": "string"}}
    assert props["exact"]["type"] == "boolean" and props["score"]["type"] == "number"


def test_schema_override_and_bad_tools_are_reported(tmp_path):
    @tool(schema={"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]})
    def raw(sb, **kwargs):
        """Raw tool."""

    assert derive_tool(raw, tmp_path / "t.py").parameters["required"] == ["q"]

    @tool
    def undocumented(sb: Sandbox, x: int) -> int:
        return x

    with pytest.raises(PackError, match="has no docstring"):
        derive_tool(undocumented, tmp_path / "t.py")

    @tool
    def finish(sb: Sandbox, answer: str) -> str:
        """Clashes with the reserved final action."""

    with pytest.raises(PackError, match="reserved"):
        derive_tool(finish, tmp_path / "t.py")


def test_pack_loading_errors_name_the_file(tmp_path):
    with pytest.raises(PackError, match="tool pack not found"):
        load_pack(tmp_path / "tools" / "nothing")
    pack = write_pack(tmp_path, tools="def broken(:\n")
    with pytest.raises(PackError) as info:
        load_pack(pack)
    assert "tools.py:1" in str(info.value)
    pack = write_pack(tmp_path, items=[{"id": "a"}, {"id": "a"}])
    with pytest.raises(PackError, match="duplicate key 'a'"):
        load_pack(pack)
    pack = write_pack(tmp_path, manifest_extra="colour: blue\n")
    with pytest.raises(PackError, match="unknown key"):
        load_pack(pack)


def test_sandboxes_are_independent_copies(tmp_path):
    pack = load_pack(write_pack(tmp_path))
    first, second = pack.new_sandbox(), pack.new_sandbox()
    first.update("items", "I-01", colour="blue")
    assert first.get("items", "I-01")["colour"] == "blue"
    assert second.get("items", "I-01")["colour"] == "green"
    assert pack.new_sandbox().get("items", "I-01")["colour"] == "green"
    assert first.changes() == {"items": {"I-01": {"id": "I-01", "colour": "blue", "weight": 1}}}
    assert second.changes() == {}
    row = second.get("items", "I-02")
    row["colour"] = "mutated copy"
    assert second.get("items", "I-02")["colour"] != "mutated copy"


CRASHY_TOOLS = MINI_TOOLS + '''

@tool
def explode(sb: Sandbox, item_id: str) -> dict:
    """A buggy tool."""
    return {"ratio": 1 / 0}


@tool
def spin(sb: Sandbox) -> str:
    """A tool that never returns."""
    while True:
        pass
'''


def test_tool_bug_and_timeout_become_findings_and_the_run_goes_on(tmp_path):
    pack = load_pack(write_pack(tmp_path, tools=CRASHY_TOOLS))
    runner = ToolRunner(pack, timeout=0.3)
    sb = pack.new_sandbox()
    outcome = runner.execute_sync(sb, ToolCall("explode", {"item_id": "I-01"}))
    assert [f.code for f in outcome.findings] == ["exec.crash"]
    assert "ZeroDivisionError" in outcome.crash
    assert "internal error" in runner.observation(outcome)

    started = time.perf_counter()
    outcome = asyncio.run(runner.execute(sb, ToolCall("spin", {})))
    assert [f.code for f in outcome.findings] == ["exec.timeout"]
    assert time.perf_counter() - started < 2
    # The runaway thread was stopped: later calls still run normally and promptly.
    outcome = runner.execute_sync(sb, ToolCall("get_item", {"item_id": "I-02"}))
    assert outcome.ok and outcome.result["colour"] == "blue"

    outcome = runner.execute_sync(sb, ToolCall("get_item", {"item_id": "I-99"}))
    assert [f.code for f in outcome.findings] == ["exec.error"]
    assert "No item with id I-99" in outcome.findings[0].message


def test_template_with_unknown_tool_fails_check_with_location(tmp_path):
    broken = MINI_TEMPLATES + '''

@template(query="Weight of {item_id}?", answer="number")
def weight(data, rng):
    return {"item_id": rng.choice(data.rows("items"))["id"]}


@weight.gold
def _(slots, call):
    return call("get_itme", item_id=slots["item_id"])["weight"]
'''
    write_pack(tmp_path, templates=broken)
    session = write_session(tmp_path, "pack: mini\n")
    result = lamsim("check", str(session))
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    out = result.stdout
    assert "weight" in out and "FAIL" in out
    assert "templates.py:" in out and "tool.unknown" in out and "get_item" in out  # nearest valid name
    assert "item_colour" in out and "paint" in out


def test_check_passes_on_the_default_session():
    result = lamsim("check", "sessions/pilot.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all" in result.stdout and "templates passed" in result.stdout


def test_schema_keywords_work_inside_optional_arguments(tmp_path):
    from lamsim_tui.packs import Schema

    @tool
    def page(sb: Sandbox, size: Annotated[int, Schema(minimum=1, maximum=20)] | None = None) -> list:
        """Page through results."""
        return []

    spec = derive_tool(page, tmp_path / "tools.py")
    assert spec.parameters["properties"]["size"] == {"type": ["integer", "null"], "minimum": 1, "maximum": 20}
    from lamsim_tui.simulator.arguments import check_object

    assert check_object("page", spec.parameters, {"size": 50}).code == "args.invalid"
    assert check_object("page", spec.parameters, {"size": None}) is None
