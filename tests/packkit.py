"""Helpers for core tests: write small real packs and sessions into a temp project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MINI_TOOLS = '''
from typing import Literal
from lamsim_tui.packs import Sandbox, ToolError, tool


@tool
def get_item(sb: Sandbox, item_id: str) -> dict:
    """Get one item by id.

    Args:
        item_id: Item id such as "I-01".
    """
    item = sb.get("items", item_id)
    if item is None:
        raise ToolError(f"No item with id {item_id}.")
    return item


@tool(changes_state=True)
def set_colour(sb: Sandbox, item_id: str, colour: Literal["red", "green", "blue"]) -> dict:
    """Change an item's colour.

    Args:
        item_id: Item id.
        colour: New colour.
    """
    if sb.get("items", item_id) is None:
        raise ToolError(f"No item with id {item_id}.")
    return sb.update("items", item_id, colour=colour)
'''

MINI_TEMPLATES = '''
from lamsim_tui.packs import template


@template(query="What colour is item {item_id}?", answer="text")
def item_colour(data, rng):
    return {"item_id": rng.choice(data.rows("items"))["id"]}


@item_colour.gold
def _(slots, call):
    return call("get_item", item_id=slots["item_id"])["colour"]


@template(query="Paint item {item_id} {colour}, then say its new colour.", answer="text", state=True)
def paint(data, rng):
    item = rng.choice(data.rows("items"))
    return {"item_id": item["id"], "colour": rng.choice(["red", "green", "blue"])}


@paint.gold
def _(slots, call):
    return call("set_colour", item_id=slots["item_id"], colour=slots["colour"])["colour"]
'''

MINI_ITEMS = [{"id": f"I-{i:02d}", "colour": ["red", "green", "blue"][i % 3], "weight": i} for i in range(1, 13)]


def write_pack(root: Path, name: str = "mini", tools: str = MINI_TOOLS, templates: str = MINI_TEMPLATES,
               items: list | None = None, manifest_extra: str = "") -> Path:
    pack = root / "tools" / name
    (pack / "data").mkdir(parents=True, exist_ok=True)
    (pack / "pack.yaml").write_text(textwrap.dedent(f"""\
        name: {name}
        description: A tiny pack for tests.
        now: "2026-03-01T09:00:00"
        tables:
          items: {{file: data/items.json, key: id}}
        """) + manifest_extra)
    (pack / "data" / "items.json").write_text(json.dumps(MINI_ITEMS if items is None else items))
    (pack / "tools.py").write_text(tools)
    (pack / "templates.py").write_text(templates)
    return pack


def write_session(root: Path, text: str, name: str = "s.yaml") -> Path:
    sessions = root / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    path = sessions / name
    path.write_text(textwrap.dedent(text))
    return path


def lamsim(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "lamsim_tui", *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
