"""`lamsim pack new NAME`: scaffold a tool pack that passes `lamsim check` as written.

The pack is a small shop inventory (one table, one tool, one template, a seeded data generator)
plus a session file that runs it; docs/tool-packs.md walks through growing it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lamsim_tui.errors import PackError

NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")

PACK_YAML = """\
# The {name} tool pack. Every key is explained in docs/tool-packs.md.
name: {name}
description: An example shop inventory. Replace it with your own domain.
now: "2026-01-05T09:00:00"  # the sandbox clock: tasks about "today" stay reproducible
tables:
  items: {{file: data/items.json, key: id}}
tools: tools.py
templates: templates.py
"""

TOOLS_PY = '''\
"""Tools of the {name} pack. How to write them: docs/tool-packs.md, "Writing tools"."""

from __future__ import annotations

from lamsim_tui.packs import Sandbox, ToolError, tool


@tool
def get_item(sb: Sandbox, item_id: str) -> dict:
    """Get one item of the inventory: name, category, price and stock.

    Args:
        item_id: Item id, IT-nnn.
    """
    item = sb.get("items", item_id.strip())
    if item is None:
        raise ToolError(f"No item {{item_id!r}}. Item ids look like IT-nnn.")
    return item
'''

TEMPLATES_PY = '''\
"""Task templates of the {name} pack. How to write them: docs/tool-packs.md, "Writing templates"."""

from __future__ import annotations

from lamsim_tui.packs import template


@template(query="How many units of item {{item_id}} are in stock?", answer="number")
def item_stock(data, rng):
    """One lookup: the stock of an item."""
    return {{"item_id": rng.choice(data.rows("items"))["id"]}}


@item_stock.gold
def _(slots, call):
    return call("get_item", item_id=slots["item_id"])["stock"]
'''

GENERATE_PY = '''\
"""Seeded generator of the {name} pack's seed data (stdlib only, deterministic).

    python tools/{name}/generate_data.py            # rewrites the files in data/
    python tools/{name}/generate_data.py OUT_DIR    # writes them into OUT_DIR

Running it twice gives byte-identical files.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 1
CATEGORIES = {{
    "kitchen": ["Kettle", "Toaster", "Chef Knife", "Cutting Board", "Coffee Grinder", "Mixing Bowl"],
    "garden": ["Watering Can", "Pruning Shears", "Garden Hose", "Rake", "Plant Pot", "Seed Tray"],
    "office": ["Desk Lamp", "Stapler", "Notebook", "Monitor Stand", "Pen Set", "Paper Tray"],
    "outdoor": ["Tent", "Sleeping Bag", "Headlamp", "Camping Stove", "Water Bottle", "Backpack"],
}}


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    """Every table of the pack: {{table name: list of rows}}."""
    rng = random.Random(seed)
    items = []
    for category, names in CATEGORIES.items():
        for name in names:
            items.append({{"id": f"IT-{{len(items) + 1:03d}}", "name": name, "category": category,
                          "price": round(rng.uniform(4, 120), 2), "stock": rng.randint(0, 40)}})
    return {{"items": items}}


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for table, rows in generate().items():
        path = out_dir / f"{{table}}.json"
        path.write_text("[\\n" + ",\\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\\n]\\n",
                        encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "data"
    for p in write(target):
        print(p)
'''

README_MD = """\
# {name}

A tool pack scaffolded by `lamsim pack new {name}`: an example shop inventory with one tool
(`get_item`), one template (`item_stock`) and 24 seeded items. Grow it, or replace the domain
with your own, following docs/tool-packs.md.

| file | what |
| --- | --- |
| `pack.yaml` | manifest: name, sandbox clock, seed tables, module names |
| `tools.py` | `@tool` functions: what the agent can call |
| `templates.py` | `@template` tasks with their gold programs |
| `generate_data.py` | seeded generator of `data/*.json` |
| `data/` | seed tables (JSON lists of objects) |

    lamsim check {session}
    lamsim pack show {pack_ref}
    lamsim run {session} --headless --agent scripted
"""

SESSION_YAML = """\
# A session for the {name} pack, written by `lamsim pack {command}`. Keys: docs/sessions.md
name: {name}
description: {description}
pack: {pack_ref}
templates: all
tasks: 10
attempts: 1
seed: 7
concurrency: 2
agent:
  kind: scripted
  mistake_rate: 0.35
budget:
  steps: 10
  seconds: 300
  tool_seconds: 5
feedback:
  reveal_wrong_answer: true
  answer_attempts: 2
filters:
  require_success: true
  no_loops: true
  dedupe: true
"""


def check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise PackError(f"invalid pack name {name!r}",
                        hint="use a letter, then letters, digits, '_' or '-' (at most 40 characters)")


def plan_paths(name: str, tools_dir: str | Path, sessions_dir: str | Path | None = None) -> tuple[Path, Path]:
    """(pack folder, session file) for a new pack; refuses to overwrite either."""
    check_name(name)
    tools_dir = Path(tools_dir)
    pack_dir = tools_dir / name
    sessions = Path(sessions_dir) if sessions_dir is not None else tools_dir.absolute().parent / "sessions"
    session = sessions / f"{name}.yaml"
    if pack_dir.exists():
        raise PackError(f"{pack_dir} already exists", hint="choose another name, or move the folder away")
    if session.exists():
        raise PackError(f"{session} already exists", hint="choose another name, or move the session file away")
    return pack_dir, session


def pack_reference(pack_dir: Path, session: Path) -> str:
    """How the session names the pack: its bare name under `<root>/tools/`, else a relative path."""
    pack_dir, session = pack_dir.absolute(), session.absolute()
    root = session.parent.parent if session.parent.name == "sessions" else session.parent
    if pack_dir.parent == root / "tools":
        return pack_dir.name
    rel = os.path.relpath(pack_dir, session.parent)
    return rel if "/" in rel else "./" + rel


def write_session(name: str, pack_dir: Path, session: Path, *, command: str, description: str) -> Path:
    ref = pack_reference(pack_dir, session)
    session.parent.mkdir(parents=True, exist_ok=True)
    session.write_text(SESSION_YAML.format(name=name, pack_ref=ref, command=command, description=description),
                       encoding="utf-8")
    return session


def _shown(path: Path) -> str:
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def new_pack(name: str, tools_dir: str | Path = "tools", sessions_dir: str | Path | None = None) -> dict[str, Path]:
    """Write a working pack `tools_dir/name` and its session; return what was written by role."""
    pack_dir, session = plan_paths(name, tools_dir, sessions_dir)
    ref = pack_reference(pack_dir, session)
    pack_dir.mkdir(parents=True)
    files = {
        "pack.yaml": PACK_YAML.format(name=name),
        "tools.py": TOOLS_PY.format(name=name),
        "templates.py": TEMPLATES_PY.format(name=name),
        "generate_data.py": GENERATE_PY.format(name=name),
        "README.md": README_MD.format(name=name, session=_shown(session), pack_ref=ref if "/" not in ref
                                      else _shown(pack_dir)),
    }
    written: dict[str, Path] = {}
    for rel, text in files.items():
        path = pack_dir / rel
        path.write_text(text, encoding="utf-8")
        written[rel] = path
    # The seed data comes from the generator just written: one source of truth.
    namespace: dict = {"__name__": "lamsim_scaffold_generate"}
    exec(compile(files["generate_data.py"], str(pack_dir / "generate_data.py"), "exec"), namespace)
    for path in namespace["write"](pack_dir / "data"):
        written[f"data/{path.name}"] = path
    written["session"] = write_session(name, pack_dir, session, command="new",
                                       description=f"Scripted pilot of the {name} pack.")
    return written
