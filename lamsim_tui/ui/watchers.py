"""Hot reload: the session file, the tool pack and the theme files, watched with `watchfiles.awatch`.

One exclusive async worker per watched set; a new pack folder replaces the old pack watcher. The
watchers only say *that* something changed: the app reloads it and keeps the last good version
when the new one is broken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App

DEBOUNCE_MS = 300
RUST_TIMEOUT_MS = 500  # how often a quiet watcher reports in (that is how `ready` learns it runs)


class Watchers:
    """The app's file watchers. ``ready`` names those that are watching (tests wait on it)."""

    def __init__(self, app: App, *, session_file: Path, on_session: Callable[[], Any],
                 on_pack: Callable[[], Any], on_themes: Callable[[], Any]):
        self.app = app
        self.session_file = session_file
        self.on_session = on_session
        self.on_pack = on_pack
        self.on_themes = on_themes
        self.ready: set[str] = set()
        self._current: dict[str, object] = {}  # the latest watcher started for each name

    def start(self, *, pack_dir: Path | None, themes_dir: Path) -> None:
        if self.session_file.parent.is_dir():
            self.watch_sessions()
        if pack_dir is not None:
            self.watch_pack(pack_dir)
        if themes_dir.is_dir():
            self.watch_themes(themes_dir)

    def watch_sessions(self) -> None:
        self._start("sessions", self.session_file.parent, self._session_files_changed)

    def watch_pack(self, pack_dir: Path) -> None:
        """Watch this pack folder (instead of the one watched before)."""
        if pack_dir.is_dir():
            self._start("pack", pack_dir, lambda paths: self.on_pack())
        else:
            self.app.workers.cancel_group(self.app, "watch-pack")
            self._current.pop("pack", None)
            self.ready.discard("pack")

    def watch_themes(self, themes_dir: Path) -> None:
        self._start("themes", themes_dir, lambda paths: self.on_themes())

    def _session_files_changed(self, paths: set[Path]) -> None:
        wanted = self.session_file
        if wanted in paths or any(p.resolve() == wanted for p in paths if p.exists()):
            self.on_session()

    def _start(self, name: str, path: Path, on_change: Callable[[set[Path]], Any]) -> None:
        token = object()
        self._current[name] = token
        self.ready.discard(name)
        self.app.run_worker(self._watch(name, token, path, on_change), group=f"watch-{name}", exclusive=True,
                            exit_on_error=False, name=f"watch {name}")

    async def _watch(self, name: str, token: object, path: Path, on_change: Callable[[set[Path]], Any]) -> None:
        from watchfiles import awatch

        try:
            async for changes in awatch(path, debounce=DEBOUNCE_MS, step=50, rust_timeout=RUST_TIMEOUT_MS,
                                        yield_on_timeout=True):
                if self._current.get(name) is token:
                    self.ready.add(name)  # it watched before its first report: every change from now on is seen
                if not changes:
                    continue
                try:
                    result = on_change({Path(p) for _, p in changes})
                    if asyncio.iscoroutine(result):
                        await result
                except Exception as exc:  # one bad edit must not end the watching: report it, keep going
                    self.app.notify(f"reloading after a change in {path} failed: {type(exc).__name__}: {exc}",
                                    title="hot reload", severity="error", markup=False, timeout=12)
        finally:
            # A replaced watcher may finish after its successor reported in: only the current one counts.
            if self._current.get(name) is token:
                self.ready.discard(name)
