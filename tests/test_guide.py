"""docs/tool-packs.md, followed step by step in a fresh project folder.

Every code block of the guide carries a directive in an HTML comment just before it:

    <!-- guide: write PATH -->       create PATH with the block
    <!-- guide: append PATH -->      append the block to PATH
    <!-- guide: excerpt PATH -->     the block must occur in PATH exactly as shown
    <!-- guide: try PATH -->         append to PATH for the next `run` only (restored afterwards)
    <!-- guide: try-write PATH -->   replace PATH for the next `run` only
    <!-- guide: run [exit=N] -->     run each `$ ` command of the console block with the real CLI;
                                     the lines after a command must appear in its output
                                     (`...` matches anything); exit status N (default 0)

so the guide cannot drift from what lamsim does. Blocks of kind `text` are illustrations
(folder trees) and carry no directive.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "tool-packs.md"
BIN = Path(sys.executable).parent
DIRECTIVE = re.compile(r"^<!--\s*guide:\s*([\w-]+)\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
ACTIONS = {"write", "append", "excerpt", "try", "try-write", "run"}


@dataclass
class Block:
    line: int
    lang: str
    text: str
    action: str | None
    arg: str


def parse(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    pending: tuple[str, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = DIRECTIVE.match(line)
        if directive:
            pending = (directive.group(1), directive.group(2))
            i += 1
            continue
        fence = FENCE.match(line)
        if fence:
            start = i + 1
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                i += 1
            action, arg = pending or (None, "")
            blocks.append(Block(start, fence.group(1), "\n".join(lines[start:i]) + "\n", action, arg))
            pending = None
        elif line.strip() and pending is not None:
            raise AssertionError(f"guide line {i + 1}: a directive must come right before a code block")
        i += 1
    return blocks


def _pattern(expected: str) -> re.Pattern:
    """An expected output line as a regex: `...` matches anything, any run of spaces any spaces."""
    out = []
    for chunk in re.split(r"(\.\.\.|\s+)", expected.strip()):
        if chunk == "...":
            out.append(".*")
        elif chunk.isspace():
            out.append(r"\s+")
        elif chunk:
            out.append(re.escape(chunk))
    return re.compile("".join(out))


def _command(text: str) -> list[str]:
    argv = shlex.split(text)
    if argv[0] == "lamsim":
        argv[0] = str(BIN / "lamsim")
    elif argv[0] == "python":
        argv[0] = sys.executable
    return argv


def run_block(block: Block, project: Path) -> None:
    expected_status = int(block.arg.split("=", 1)[1]) if block.arg.startswith("exit=") else 0
    commands: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif line.strip():
            assert commands, f"guide line {block.line}: output before any command"
            commands[-1][1].append(line)
    assert commands, f"guide line {block.line}: a run block needs a `$ ` command"
    for command, expected in commands:
        env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # the guide's pytest step, without plugins
        done = subprocess.run(_command(command), cwd=project, capture_output=True, text=True, timeout=120, env=env)
        output = done.stdout + done.stderr
        where = f"guide line {block.line}: `{command}`"
        assert done.returncode == expected_status, f"{where} exited {done.returncode}, not {expected_status}:\n{output}"
        out_lines = output.splitlines()
        for want in expected:
            pattern = _pattern(want)
            assert any(pattern.search(got) for got in out_lines), f"{where}: no output line matches\n  {want}\n" \
                                                                  f"output was:\n{output}"


def test_every_example_in_the_guide_has_a_directive():
    blocks = parse(GUIDE.read_text(encoding="utf-8"))
    assert len(blocks) > 30
    for block in blocks:
        if block.lang == "text":
            assert block.action is None, f"guide line {block.line}: text blocks are not run"
            continue
        assert block.action in ACTIONS, f"guide line {block.line}: code block without a `guide:` directive"


def test_pattern_matching_of_expected_output():
    assert _pattern("pack shop (...) version ...: 1 tools").search("pack shop (/tmp/x/tools/shop) version ab12: 1 tools")
    assert _pattern("a    b").search("a b")
    assert not _pattern("all 4 templates passed").search("all 3 templates passed")


def test_the_guide_step_by_step(tmp_path):
    """Scaffold, add seed data, tools and templates, check, show, run a scripted session, test,
    make every documented mistake, and start a pack from an OpenAPI description."""
    project = tmp_path / "project"
    project.mkdir()
    saved: dict[Path, str | None] = {}
    ran = 0
    for block in parse(GUIDE.read_text(encoding="utf-8")):
        if block.action is None:
            continue
        path = project / block.arg if block.action != "run" else None
        if block.action == "write":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text, encoding="utf-8")
        elif block.action == "append":
            assert path.exists(), f"guide line {block.line}: {block.arg} does not exist yet"
            path.write_text(path.read_text(encoding="utf-8") + block.text, encoding="utf-8")
        elif block.action == "excerpt":
            assert block.text in path.read_text(encoding="utf-8"), \
                f"guide line {block.line}: {block.arg} no longer reads as the guide shows"
        elif block.action in ("try", "try-write"):
            if path not in saved:
                saved[path] = path.read_text(encoding="utf-8") if path.exists() else None
            before = path.read_text(encoding="utf-8") if block.action == "try" else ""
            path.write_text(before + block.text, encoding="utf-8")
        elif block.action == "run":
            run_block(block, project)
            ran += 1
            for restored, text in saved.items():
                if text is None:
                    restored.unlink()
                else:
                    restored.write_text(text, encoding="utf-8")
            saved.clear()
    assert ran >= 15

    # The walk ends with stored trajectories, one per task of the scripted run.
    from lamsim_tui.store import open_store

    with open_store(project / "stores" / "shop", readonly=True) as store:
        records = list(store.records())
    assert len(records) == 20
    templates = {r.template for r in records}
    assert templates <= {"item_stock", "cheap_items", "item_supplier", "restock"} and len(templates) == 4
    assert sum(r.verdict.success for r in records) >= 15
    restocks = [r for r in records if r.template == "restock"]
    assert all(r.task.judge_state and r.task.gold_state["items"] for r in restocks)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
