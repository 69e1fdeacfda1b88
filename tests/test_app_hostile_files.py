"""Broken theme and session files in the running app (issue 15, item 9): one notice naming the file,
the last good version (or the built-in theme) in use, and the file watchers still alive afterwards."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from lamsim_tui.testing.ui import make_project, wait_for, wait_ready, wait_watching
from lamsim_tui.ui.app import make_app

SIZE = (120, 36)

BROKEN_THEMES = {
    "nul.yaml": 'name: nul-theme\x00\nprimary: "#123456"\n',
    "recursive.yaml": 'name: &a [*a]\nprimary: "#123456"\n',
    "nan.yaml": 'name: nan-theme\nprimary: "#123456"\nluminosity_spread: .nan\n',
    "inf.yaml": 'name: inf-theme\nprimary: "#123456"\ntext_alpha: .inf\n',
    "bytes.yaml": b'name: latin1-\xe9\nprimary: "#123456"\n',
}


def run(coro):
    return asyncio.run(coro)


def write(path: Path, content: str | bytes) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def theme_notices(app) -> list[str]:
    return [message for severity, title, message in app.notices if title == "theme"]


def test_unreadable_theme_files_give_one_notice_each_and_the_app_starts(tmp_path: Path):
    session = make_project(tmp_path, tasks=2)
    themes = tmp_path / "themes"
    for name, content in BROKEN_THEMES.items():
        write(themes / name, content)

    async def scenario():
        app = make_app(session, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            notices = theme_notices(app)
            for name in BROKEN_THEMES:
                mine = [n for n in notices if name in n]
                assert len(mine) == 1, (name, notices)
                assert "Traceback" not in mine[0]
            assert app.theme == "lamsim-dark"
            assert not {"nan-theme", "inf-theme"} & set(app.available_themes), "non-finite numbers are refused"
            await pilot.press("2")  # the app is usable
            assert type(app.screen).__name__ == "ReviewScreen"

    run(scenario())


def test_a_remembered_theme_that_became_broken_falls_back(tmp_path: Path):
    session = make_project(tmp_path, tasks=2)
    themes = tmp_path / "themes"
    write(themes / "mine.yaml", 'name: mine\nprimary: "#123456"\nluminosity_spread: 0.2\n')
    state = tmp_path / ".lamsim" / "app.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"theme": "mine"}))

    async def scenario(expect: str):
        app = make_app(session, watch=False, state_file=state)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            assert app.theme == expect
            return theme_notices(app)

    assert run(scenario("mine")) == []
    write(themes / "mine.yaml", 'name: mine\nprimary: "#123456"\nluminosity_spread: .nan\n')
    notices = run(scenario("lamsim-dark"))
    assert any("mine.yaml" in n and "luminosity_spread" in n for n in notices), notices


@pytest.mark.parametrize("bad", ["\x00", "tasks: &a [*a]\n"])
def test_one_bad_edit_does_not_stop_the_watchers(tmp_path: Path, bad: str):
    session = make_project(tmp_path, tasks=6)
    themes = tmp_path / "themes"

    async def scenario():
        app = make_app(session, watch=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_ready(pilot)
            await wait_watching(pilot)
            good = session.read_text()
            session.write_text(good + bad)
            await wait_for(pilot, lambda: any(t == "session file" for _, t, _ in app.notices), timeout=10,
                           what="the session error")
            message = next(m for _, t, m in app.notices if t == "session file")
            assert session.name in message and "Traceback" not in message
            assert app.session.tasks == 6, "the last good session stays"
            session.write_text(good.replace("tasks: 6", "tasks: 4"))
            await wait_for(pilot, lambda: app.session.tasks == 4, timeout=10, what="the next, valid edit")

            (themes / "broken.yaml").write_text("name: broken\n" + bad, encoding="utf-8")
            await wait_for(pilot, lambda: any("broken.yaml" in n for n in theme_notices(app)), timeout=10,
                           what="the theme error")
            light = themes / "light.yaml"
            light.write_text(light.read_text().replace('"#1f5fbf"', '"#123456"', 1))
            await wait_for(pilot, lambda: app.get_theme("lamsim-light").primary == "#123456", timeout=10,
                           what="the next, valid theme edit")
            assert "watch-sessions" not in [w.group for w in app.workers if w.is_finished]

    run(scenario())
