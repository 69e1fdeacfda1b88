"""Helpers for the app's tests, snapshots and benchmark: a throwaway project folder, a store filled
by a real scripted run, and waiting on a condition instead of sleeping.

Not imported by the app itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import lamsim_tui
from lamsim_tui.record import Timing, Trajectory

REPO = Path(lamsim_tui.__file__).resolve().parents[1]
CRM_PACK = REPO / "tools" / "crm"

SESSION_TEMPLATE = """\
# A test session (written by lamsim_tui.testing.ui).
name: {name}
pack: {pack}
templates: all
tasks: {tasks}
attempts: 1
seed: {seed}
concurrency: {concurrency}
agent:
  kind: scripted
  mistake_rate: {mistake_rate}
budget:
  steps: 10
filters:
  require_success: true
  no_loops: true
  dedupe: true
store: stores/{name}
"""


def make_project(root: Path, *, name: str = "pilot", tasks: int = 4, seed: int = 7, concurrency: int = 1,
                 mistake_rate: float = 0.35, pack: Path = CRM_PACK, themes: bool = True) -> Path:
    """A project folder (sessions/, themes/, stores/) using the repo's CRM pack; returns the session file."""
    (root / "sessions").mkdir(parents=True, exist_ok=True)
    session = root / "sessions" / f"{name}.yaml"
    session.write_text(SESSION_TEMPLATE.format(name=name, pack=pack, tasks=tasks, seed=seed, concurrency=concurrency,
                                               mistake_rate=mistake_rate), encoding="utf-8")
    if themes and not (root / "themes").exists():
        shutil.copytree(REPO / "themes", root / "themes")
    return session


def scripted_records(session_path: Path, *, tasks: int | None = None) -> list[Trajectory]:
    """Run the session's scripted agent headless (no store) and return its records with stable ids."""
    from lamsim_tui.agents.scripted import ScriptedAgentFactory
    from lamsim_tui.events import EpisodeFinished
    from lamsim_tui.packs import load_pack
    from lamsim_tui.session.config import load_session
    from lamsim_tui.simulator.engine import Engine

    session = load_session(session_path)
    pack = load_pack(session.pack_dir())
    records: list[Trajectory] = []

    def collect(event) -> None:
        if isinstance(event, EpisodeFinished):
            records.append(event.trajectory)

    engine = Engine(session, pack, ScriptedAgentFactory(session, pack), on_event=collect, tasks=tasks)
    asyncio.run(engine.run())
    records.sort(key=lambda r: (r.task.id, r.episode.attempt))
    stable = []
    for i, record in enumerate(records):
        at = f"2026-01-01T09:{i // 60:02d}:{i % 60:02d}+00:00"
        stable.append(record.replace(id=hashlib.sha256(f"{session.seed}:{i}".encode()).hexdigest()[:32],
                                     created_at=at, finished_at=at, timing=Timing()))
    return stable


def fill_store(session_path: Path, records: list[Trajectory]) -> Path:
    from lamsim_tui.session.config import load_session
    from lamsim_tui.store import open_store

    store_dir = load_session(session_path).store_dir()
    with open_store(store_dir) as store:
        for record in records:
            store.add(record)
    return store_dir


async def wait_for(pilot, predicate: Callable[[], bool], *, timeout: float = 15.0, what: str = "",
                   interval: float = 0.02) -> None:
    """Let the app run until `predicate()` holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        await pilot.pause(interval)


async def wait_ready(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: (app.store is not None or app.store_problem) and
                   (app.pack is not None or app.pack_problem), what="the pack and store to load")


async def wait_watching(pilot, names: tuple[str, ...] = ("sessions", "pack", "themes")) -> None:
    """Wait until the hot-reload watchers named are watching: a file changed from now on is seen."""
    app = pilot.app
    await wait_for(pilot, lambda: set(names) <= app.watchers.ready, what="the file watchers to start")


async def run_session(pilot, timeout: float = 30.0) -> None:
    """Start the session and wait until it has finished."""
    app = pilot.app
    await wait_ready(pilot)
    await pilot.press("1", "r")
    await wait_for(pilot, lambda: app.run_state == "starting" or app.session_running or app.run_state == "finished",
                   what="the session to start")
    await wait_for(pilot, lambda: app.run_state in ("finished", "failed", "idle") and app.engine is None,
                   timeout=timeout, what="the session to finish")
    await pilot.pause()


def screen_text(app) -> str:
    """What a user would read on the screen (the SVG screenshot's text, tags stripped)."""
    return "\n".join(screen_lines(app))


def screen_lines(app) -> list[str]:
    """The screen's rows as text, top to bottom, each character in its column (from the SVG screenshot)."""
    import html
    import re

    svg = app.export_screenshot()
    cell = 12.2  # the width of a character cell in Textual's SVG export
    rows: dict[str, list[tuple[int, str]]] = {}
    for match in re.finditer(r'<text class="[^"]*-r\d+" x="([\d.]+)" y="[\d.]+"[^>]*'
                             r'clip-path="url\(#[^")]*-line-(\d+)\)">(.*?)</text>', svg, re.S):
        column = round(float(match.group(1)) / cell) - 1
        text = html.unescape(re.sub(r"<[^>]+>", "", match.group(3))).replace("\xa0", " ")
        rows.setdefault(match.group(2), []).append((column, text))
    lines = []
    for key in sorted(rows, key=int):
        line = ""
        for column, text in sorted(rows[key]):
            line = line.ljust(column) + text
        lines.append(line.rstrip())
    return lines
