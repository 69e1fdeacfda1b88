"""The lamsim app: run a session live, review its trajectories, export them.

`run_app` is what `lamsim` calls; `make_app` builds the same app for tests, snapshots and the
benchmark. The app owns the session, the pack, the store and the engine, and wires them to the
screens: the screens render the engine's events and call the review and export modules, and
decide nothing about a trajectory. The review queue's model is in `queue`, the hot-reload file
watchers in `watchers`.

Start-up stays fast: only the session file and theme files are read before the first paint. The
pack, the store and the agent (which may import litellm or load a model) come in workers after it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from lamsim_tui.errors import LamsimError
from lamsim_tui.record import Listing, Trajectory
from lamsim_tui.text import visible
from lamsim_tui.ui.live import LiveState
from lamsim_tui.ui.messages import Hub, QueueChanged, SessionReloaded
from lamsim_tui.ui.queue import Row, TrajectoryRows
from lamsim_tui.ui.themes import (
    APP_VARIABLES,
    BUILTIN,
    FALLBACK_THEME,
    load_prefs,
    load_themes,
    prefs_path,
    save_prefs,
    unreadable,
)
from lamsim_tui.ui.watchers import Watchers

DRAIN_INTERVAL_S = 1 / 20  # engine events are folded into the panes at most this often
SCRIPTED_STREAM_CPS = 400.0  # the scripted agent "types" at this rate in the app, so the panes can be followed
RECENT_KEPT = 300  # finished records kept in memory while the store may still be writing them
READ_AHEAD_PAUSE_S = 0.003  # between two records the text filter's read-ahead reads (bench/tui.py, review)
PACE_GAP_S = 300.0  # a longer pause between two decisions is a break, not time spent deciding


def _screen(module: str, name: str) -> Callable[[], Screen]:
    """A mode's screen, imported when first shown (the first paint needs only the live screen)."""

    def build() -> Screen:
        import importlib

        return getattr(importlib.import_module(f"lamsim_tui.ui.screens.{module}"), name)()

    return build


class LamsimApp(App[int]):
    TITLE = "lamsim"
    CSS_PATH = "app.tcss"
    MODES = {}  # set per instance: screens are imported when first shown
    DEFAULT_MODE = "live"
    BINDINGS = [
        Binding("1", "show('live')", "Live", id="screen.live"),
        Binding("2", "show('review')", "Review", id="screen.review"),
        Binding("3", "show('store')", "Store", id="screen.store"),
        Binding("4", "show('stats')", "Stats", id="screen.stats"),
        Binding("question_mark", "help", "Help", key_display="?", id="help"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit"),
    ]

    def __init__(self, session_path: str | Path, *, watch: bool = True, snapshot: bool = False,
                 scripted_cps: float = SCRIPTED_STREAM_CPS, factory: Callable | None = None,
                 tasks: int | None = None, seed: int | None = None, agent: str | None = None,
                 state_file: Path | None = None):
        self.MODES = {"live": _screen("live", "LiveScreen"), "review": _screen("review", "ReviewScreen"),
                      "store": _screen("store", "StoreScreen"), "stats": _screen("stats", "StatsScreen")}
        super().__init__()
        self.started_at = time.perf_counter()
        self.first_paint_s: float | None = None
        self.session_path = Path(session_path).resolve()
        self.watching = watch
        self.snapshot = snapshot
        self.scripted_cps = scripted_cps
        self.factory_override = factory
        self.tasks_override = tasks
        self.seed_override = seed
        self.agent_override = agent  # `lamsim --agent scripted|embedded|model`

        self.session = None
        self.session_problem: str | None = None
        self.pack = None
        self.pack_problem: str | None = None
        self.store = None
        self.store_problem: str | None = None
        self.engine = None
        self.run_state = "idle"
        self.run_note = ""
        self.starting_since: float | None = None  # while the agent starts (a model loads)
        self.live = LiveState()
        self.queue = TrajectoryRows(self.record, pending_first=True)  # pending, then filtered
        self._recent: dict[str, Trajectory] = {}  # records that just arrived (the store may still be writing)
        self._inbox: deque = deque()
        self.backlog_samples: list[int] = []  # events waiting at each drain (the benchmark reads it)
        self.drafts: dict[str, str] = {}  # edit text per trajectory: leaving the editor loses nothing typed
        self._last_problem: dict[str, str] = {}
        self.notices: deque[tuple[str, str, str]] = deque(maxlen=200)  # (severity, title, message)
        self.decisions: list[tuple[float, int]] = []  # (when, how many trajectories) of each review decision
        self.last_acknowledged = ""

        # Signals the screens subscribe to.
        self.live_changed = Hub("live")  # Changes
        self.queue_changed = Hub("queue")  # QueueChanged
        self.state_changed = Hub("state")  # run state name
        self.session_changed = Hub("session")  # SessionReloaded
        self.acknowledged = Hub("acknowledged")  # a routine confirmation, for the status line

        self._load_session_now()
        root = self.project_root
        self.watchers = Watchers(self, session_file=self.session_path, on_session=self.reload_session,
                                 on_pack=self.load_pack, on_themes=self._load_themes)
        self.state_file = state_file or prefs_path(root)
        self.prefs = load_prefs(self.state_file)
        self.theme_files = self.project_root / "themes"
        self.register_theme(BUILTIN)
        self._theme_problems: list[str] = []
        self._themes_from_files: dict[str, Any] = {}
        self._load_themes(initial=True)
        wanted = self.prefs.get("theme")
        if not isinstance(wanted, str) or wanted not in self.available_themes:
            if wanted:
                self._theme_problems.append(f"remembered theme {wanted!r} is not available; using {FALLBACK_THEME}")
            wanted = FALLBACK_THEME
        try:
            self.theme = wanted
        except Exception as exc:  # a theme that loaded but cannot be applied: the built-in one instead
            self._theme_problems.append(f"theme {wanted!r} cannot be used ({exc}); using {FALLBACK_THEME}")
            self.register_theme(BUILTIN)
            self.theme = FALLBACK_THEME

    # ----- paths and state ---------------------------------------------------------------------
    @property
    def project_root(self) -> Path:
        if self.session is not None and self.session.root is not None:
            return Path(self.session.root)
        parent = self.session_path.parent
        return parent.parent if parent.name == "sessions" else parent

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(APP_VARIABLES)

    def _load_session_now(self) -> bool:
        from lamsim_tui.session.config import load_session

        try:
            self.session = load_session(self.session_path)
        except Exception as exc:  # a LamsimError, or whatever a reader raised on a hostile file: one message
            self.session_problem = unreadable(self.session_path, exc)
            return False
        self.session_problem = None
        self.session = self.overridden(self.session)
        self.title = f"lamsim · {self.session.session_name}"
        return True

    def overridden(self, session):
        """The session with the command line's --agent, --tasks and --seed applied."""
        import dataclasses

        changes: dict[str, Any] = {}
        if self.tasks_override is not None:
            changes["tasks"] = self.tasks_override
        if self.seed_override is not None:
            changes["seed"] = self.seed_override
        if self.agent_override is not None:
            changes["agent"] = dataclasses.replace(session.agent, kind=self.agent_override)
        return dataclasses.replace(session, **changes) if changes else session

    @property
    def overrides(self) -> list[str]:
        """The command-line flags in force, as typed (the session panel shows them)."""
        flags = [("--agent", self.agent_override), ("--tasks", self.tasks_override), ("--seed", self.seed_override)]
        return [f"{flag} {value}" for flag, value in flags if value is not None]

    # ----- start -------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.watch(self, "theme", self._remember_theme, init=False)
        self.call_after_refresh(self._painted)
        self.set_interval(DRAIN_INTERVAL_S, self._drain, name="drain engine events")
        for problem in self._theme_problems:
            self.notify(problem, title="theme", severity="warning", markup=False, timeout=8)
        if self.session_problem:
            self.notify(self.session_problem, title="session", severity="error", markup=False, timeout=10)
        else:
            self.load_pack()
            self.open_store()
            self.warm_agent()
        if self.watching:
            self.start_watchers()

    def _painted(self) -> None:
        if self.first_paint_s is None:
            self.first_paint_s = time.perf_counter() - self.started_at
            report = os.environ.get("LAMSIM_BENCH_FIRST_PAINT")  # bench/tui.py: "<t0 epoch seconds>:<file>"
            if report:
                import json
                import sys

                t0, _, path = report.partition(":")
                Path(path).write_text(json.dumps({
                    "first_paint_ms": (time.time() - float(t0)) * 1000,
                    "app_init_to_paint_ms": self.first_paint_s * 1000,
                    "litellm_imported": "litellm" in sys.modules,
                    "modules": len(sys.modules),
                    "session": None if self.session is None else {
                        "agent": self.session.agent.kind, "tasks": self.session.tasks, "seed": self.session.seed},
                }))
                self.exit(return_code=0)

    def _remember_theme(self, name: str) -> None:
        if self.snapshot or self.prefs.get("theme") == name:
            return
        self.prefs["theme"] = name
        try:
            save_prefs(self.state_file, self.prefs)
        except OSError as exc:
            self.notify(f"could not remember the theme in {self.state_file}: {exc}", severity="warning", markup=False)

    @work(thread=True, group="pack", exclusive=True, exit_on_error=False, name="load pack")
    def load_pack(self) -> None:
        from lamsim_tui.packs import load_pack

        session = self.session
        try:
            pack = load_pack(session.pack_dir())
        except LamsimError as exc:
            self.call_from_thread(self._pack_failed, str(exc))
            return
        self.call_from_thread(self._pack_loaded, pack)

    def _pack_loaded(self, pack) -> None:
        reloaded = self.pack is not None
        self.pack = pack
        self.pack_problem = None
        self._last_problem.pop("pack", None)
        if reloaded:
            note = " (the running session keeps the version it started with)" if self.session_running else ""
            self.notify(f"pack {pack.name} reloaded: version {pack.version}{note}", title="hot reload", markup=False)
        self.session_changed.publish(SessionReloaded("pack"))

    def _pack_failed(self, problem: str) -> None:
        self.pack_problem = problem
        if self._last_problem.get("pack") != problem:
            self._last_problem["pack"] = problem
            keep = " — keeping the last good version" if self.pack is not None else ""
            self.notify(problem + keep, title="tool pack", severity="error", markup=False, timeout=12)
        self.session_changed.publish(SessionReloaded("pack"))

    @work(thread=True, group="store", exclusive=True, exit_on_error=False, name="open store")
    def open_store(self) -> None:
        from lamsim_tui.store import open_store

        path = self.session.store_dir()
        try:
            store = open_store(path)
        except LamsimError as exc:
            self.call_from_thread(self._store_failed, str(exc))
            return
        except OSError as exc:
            self.call_from_thread(self._store_failed, f"{path}: cannot open the store: {exc}")
            return
        listings = store.listings(("pending", "filtered"))
        self.call_from_thread(self._store_opened, store, listings)

    def _store_opened(self, store, listings: list[Listing]) -> None:
        self.store = store
        self.store_problem = None
        self.queue.replace(listings)
        self.read_queue_text(self.queue.ordered())
        for notice in store.notices:
            self.notify(notice, title="store", severity="warning", markup=False, timeout=10)
        self.queue_changed.publish(QueueChanged(added=[], removed=[]))
        self.session_changed.publish(SessionReloaded("store"))
        self.call_after_refresh(self._settle_memory)

    def _settle_memory(self) -> None:
        """What start-up loaded (modules, the pack, the queue) stays for the app's life: leave it out of
        the garbage collector's full passes, which otherwise walk it again and again (pauses of 100 ms
        and more between two keys, measured by bench/tui.py)."""
        import gc

        gc.collect()
        gc.freeze()

    @work(thread=True, group="queue-text", exclusive=True, exit_on_error=False, name="read the queue's text")
    def read_queue_text(self, rows: list[Row]) -> None:
        """Read ahead what the text filter searches, so the first search does not wait on the store."""
        worker = get_current_worker()
        for row in rows:
            if worker.is_cancelled:
                return
            self.queue.text(row)
            time.sleep(READ_AHEAD_PAUSE_S)  # leave the interpreter to the screen: an operator may be deciding

    def _store_failed(self, problem: str) -> None:
        self.store_problem = problem
        self.notify(problem, title="store", severity="error", markup=False, timeout=15)
        self.session_changed.publish(SessionReloaded("store"))

    @work(thread=True, group="agent", exclusive=True, exit_on_error=False, name="load model client")
    def warm_agent(self) -> None:
        """Import the model client (litellm is slow to import) after the first paint, not before."""
        if self.session.agent.kind in ("model", "embedded"):
            import importlib

            importlib.import_module("lamsim_tui.agents.model")

    # ----- the session run ---------------------------------------------------------------------
    @property
    def session_running(self) -> bool:
        return self.run_state in ("starting", "running", "pausing", "paused", "stopping")

    def set_state(self, state: str, note: str = "") -> None:
        self.run_state = state
        self.run_note = note
        self.state_changed.publish(state)

    def make_factory(self, session, pack):
        if self.factory_override is not None:
            return self.factory_override(session, pack)
        if session.agent.kind == "scripted":
            from lamsim_tui.agents.scripted import ScriptedAgentFactory

            return ScriptedAgentFactory(session, pack, stream_cps=self.scripted_cps)
        from lamsim_tui.agents import make_agent_factory

        return make_agent_factory(session, pack)

    def action_start(self) -> None:
        if self.session_running:
            self.notify("the session is already running", markup=False)
            return
        problem = self.session_problem or self.pack_problem if self.pack is None else self.session_problem
        if self.session is None or self.pack is None or problem:
            self.notify(problem or "the pack is still loading", title="cannot start", severity="error", markup=False)
            return
        if self.store is None:
            self.notify(self.store_problem or "the store is still opening", title="cannot start", severity="error",
                        markup=False)
            return
        self.live.reset()
        self.set_state("starting")
        self.run_engine(self.session, self.pack)

    @work(group="engine", exclusive=True, exit_on_error=False, name="session run")
    async def run_engine(self, session, pack) -> None:
        from lamsim_tui.simulator.engine import Engine

        try:
            factory = await asyncio.to_thread(self.make_factory, session, pack)
            engine = Engine(session, pack, factory, store=self.store, on_event=self._inbox.append)
            generation = await asyncio.to_thread(engine.prepare)
            for template, failures in generation.failures.items():
                self.notify(f"template {template} skipped: {failures[0].reason.splitlines()[0]} ({failures[0].where})",
                            title="task generation", severity="warning", markup=False, timeout=10)
            if not generation.tasks:
                self.notify("no task could be generated; run `lamsim check` on the session", title="session",
                            severity="error", markup=False)
                self.set_state("idle")
                return
            if self.run_state == "stopping":
                self.set_state("idle", "stopped before it started")
                return
            await self._start_agent(session, factory)
            self.engine = engine
            self.set_state("running")
            summary = await engine.run()  # the agent is started: its start() returns at once
        except BaseException:
            self.engine = None
            self._drain()
            self._run_over()
            if self.run_state != "stopping":
                self.set_state("failed")
            else:
                self.set_state("idle", "stopped")
            raise
        self.engine = None
        self._drain()
        self._run_over()
        episodes = f"{summary.episodes} episode{'' if summary.episodes == 1 else 's'}"
        note = ("stopped: " if summary.cancelled else "") + f"{episodes}, {summary.kept} kept"
        self.set_state("idle" if summary.cancelled else "finished", note)
        if summary.paused_reason:
            self.notify(summary.paused_reason, title="session stopped", severity="error", markup=False, timeout=15)

    # ----- what the model is doing ----------------------------------------------------------------
    def model_name(self, session=None) -> str:
        agent = (session or self.session).agent
        if agent.kind == "embedded":
            return agent.embedded_model
        if agent.kind == "model":
            return agent.models[0].model if agent.models else "the model"
        return "the scripted agent"

    def expected_first_reply_s(self, name: str) -> float | None:
        """How long this machine took, last time, from starting `name` to its first token: its load time
        (measured here when it started) plus its first reply's time to first token (the step's `ttft_s`)."""
        load = (self.prefs.get("model_start_s") or {}).get(name)
        first = (self.prefs.get("first_reply_s") or {}).get(name)
        if not isinstance(load, (int, float)) and not isinstance(first, (int, float)):
            return None
        return float(load or 0) + float(first or 0)

    def first_reply_s(self, name: str) -> float | None:
        """The time to first token of `name`'s first reply after its start, last time (a cold prompt)."""
        value = (self.prefs.get("first_reply_s") or {}).get(name)
        return float(value) if isinstance(value, (int, float)) else None

    def starting_note(self, session) -> str | None:
        """What the session panel says while the model starts, e.g. "starting qwen2.5-coder-1.5b (loading
        1.1 GB)… first reply in about 21 s"."""
        agent = session.agent
        if agent.kind == "scripted":
            return None
        name = self.model_name(session)
        if agent.kind == "embedded":
            from lamsim_tui.agents.embedded.catalogue import MODELS

            known = MODELS.get(name)
            what = f"starting {name}" + (f" (loading {known.size_bytes / 1e9:.1f} GB)…" if known else "…")
        else:
            api_base = agent.models[0].api_base if agent.models else None
            what = f"connecting to {name}" + (f" at {api_base}" if api_base else "") + "…"
        expected = self.expected_first_reply_s(name)
        if expected is not None:
            return f"{what} first reply in about {expected:.0f} s"
        return what + (" (its first start here: no time measured yet)" if agent.kind == "embedded" else "")

    async def _start_agent(self, session, factory) -> None:
        """Start the agent (the embedded server loads its model here), saying what happens and for how long."""
        note = self.starting_note(session)
        if note is None:
            return
        self.starting_since = time.monotonic()
        self.set_state("starting", note)
        started = time.perf_counter()
        await factory.start()
        self.starting_since = None
        if session.agent.kind == "embedded":
            self._remember_measure("model_start_s", self.model_name(session), time.perf_counter() - started)

    def _remember_measure(self, key: str, name: str, seconds: float) -> None:
        if self.snapshot:
            return
        self.prefs.setdefault(key, {})
        if not isinstance(self.prefs[key], dict):
            self.prefs[key] = {}
        self.prefs[key][name] = round(seconds, 2)
        try:
            save_prefs(self.state_file, self.prefs)
        except OSError:
            pass  # a measure not kept only makes the next estimate vaguer

    def _run_over(self) -> None:
        """Episodes still shown as running when the run ends were cancelled with it."""
        from lamsim_tui.ui.live import Changes

        if self.session is not None and self.live.first_ttft is not None:
            self._remember_measure("first_reply_s", self.model_name(), self.live.first_ttft)
        stopped = self.live.stop_all()
        if stopped:
            self.live_changed.publish(Changes(episodes=stopped, progress=True))

    def action_pause(self) -> None:
        engine = self.engine
        if engine is None:
            self.notify("nothing is running", markup=False)
            return
        if engine.paused:
            engine.resume()
            self.set_state("running")
        else:
            engine.pause()
            self.set_state("paused", "running steps finish; no new step starts")

    def action_stop(self) -> None:
        if self.engine is not None:
            self.set_state("stopping")
            self.engine.cancel()
        elif self.run_state == "starting":
            self.set_state("stopping")
            self.workers.cancel_group(self, "engine")  # a model still loading: stop its server too
        else:
            self.notify("nothing is running", markup=False)

    def _drain(self) -> None:
        self.rescue_focus()  # the footer shows the keys of the focused widget: keep it one that exists
        inbox = self._inbox
        waiting = len(inbox)
        if self.engine is not None or waiting:
            self.backlog_samples.append(waiting)
        if not waiting:
            return
        events = [inbox.popleft() for _ in range(waiting)]
        changes = self.live.apply(events)
        if changes.finished or changes.stored or changes.kept_cancelled:
            added = []
            for record_id in changes.kept_cancelled:  # stored without an EpisodeFinished: read it back
                try:
                    record = self.store.get(record_id) if self.store is not None else None
                except LamsimError:
                    record = None
                if record is not None and record.status in ("pending", "filtered"):
                    self.queue.put(self._listing(record))
                    added.append(record.id)
            for record in changes.finished:
                self._recent[record.id] = record
                if record.status in ("pending", "filtered"):
                    self.queue.put(self._listing(record))
                    added.append(record.id)
            while len(self._recent) > RECENT_KEPT:
                self._recent.pop(next(iter(self._recent)))
            numbered = [record_id for record_id, number in changes.stored.items()
                        if self.queue.numbered(record_id, number) and record_id not in added]
            if added or numbered:
                self.queue_changed.publish(QueueChanged(added=added, updated=numbered))
        if changes.paused:
            self.set_state("paused", changes.paused)
            self.notify(changes.paused, title="session paused", severity="error", markup=False, timeout=15)
        for notice in changes.notices:  # plain text: markup=False, and not one raw byte to the terminal
            severity = notice.severity if notice.severity in ("information", "warning", "error") else "warning"
            self.notify(visible(notice.message), title=visible(notice.title), severity=severity, markup=False,
                        timeout=10)
        self.live_changed.publish(changes)

    # ----- records and review ------------------------------------------------------------------
    def record(self, record_id: str) -> Trajectory:
        """The whole record: from the store, or from the engine's event while the store writes it."""
        try:
            return self.store.get(record_id)
        except LamsimError:
            if record_id in self._recent:
                return self._recent[record_id]
            raise

    def _listing(self, record: Trajectory) -> Listing:
        store = self.store
        number = store.number(record.id) if store is not None and record.id in store else 0  # 0: not written yet
        return record.listing(number)

    def listings(self, statuses: Iterable[str]) -> list[Listing]:
        """The store's trajectories with these statuses, in the order they were added."""
        return self.store.listings(tuple(statuses)) if self.store is not None else []

    def undo_last_decision(self, *, select: bool = False) -> list[Trajectory]:
        """Undo the store's last review decision, a bulk one whole (both review screens bind `u` to this)."""
        from lamsim_tui.curation import review

        if self.store is None:
            return []
        try:
            records, undone = review.undo_last(self.store)
        except LamsimError as exc:
            self.notify(str(exc), title="undo", severity="warning", markup=False)
            return []
        self.reviewed(*records, select=records[0].id if select else None, decision=False)
        if len(records) == 1:
            record = records[0]
            what = f"#{self._number(record.id)} {record.id[:8]}"
        else:
            what = f"{len(records)} trajectories"
        self.acknowledge(f"undid {undone.action} of {what}: now {records[0].status} · u undoes the one before")
        return records

    def reviewed(self, *records: Trajectory, select: str | None = None, decision: bool = True) -> None:
        """A decision (or undo) changed `records`: move them into or out of the queue."""
        added, removed = [], []
        for record in records:
            self._recent.pop(record.id, None)
            if record.status in ("pending", "filtered"):
                self.queue.put(self._listing(record))
                added.append(record.id)
            else:
                self.queue.remove(record.id)
                removed.append(record.id)
        if decision:
            self.decisions.append((time.monotonic(), len(records)))
        self.queue_changed.publish(QueueChanged(added=added, removed=removed, select=select))

    def _number(self, record_id: str) -> int | str:
        try:
            return self.store.number(record_id) if self.store is not None else "…"
        except LamsimError:
            return "…"

    def acknowledge(self, message: str) -> None:
        """A routine confirmation ("accepted #12"): shown in the screen's status line, not as a toast over the
        detail. Kept in `notices` like every message."""
        self.notices.append(("information", "", message))
        self.last_acknowledged = message
        self.acknowledged.publish(message)

    def review_pace(self) -> tuple[int, float | None]:
        """(trajectories decided in this app session, median seconds per decision or None)."""
        decided = sum(n for _, n in self.decisions)
        times = [t for t, _ in self.decisions]
        gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False) if b - a < PACE_GAP_S)
        return decided, (gaps[len(gaps) // 2] if gaps else None)

    def recent_reasons(self) -> list[str]:
        """Discard reasons to offer on keys 1-9: the session's, then those used lately in this store."""
        reasons = list(self.session.review.reasons) if self.session is not None else []
        recent = sorted((listing for listing in self.listings(("discarded",)) if listing.decision_tags),
                        key=lambda listing: -listing.last_seq)
        for listing in recent:
            tag = ", ".join(listing.decision_tags)
            if tag not in reasons:
                reasons.append(tag)
        return reasons[:9]

    # ----- hot reload --------------------------------------------------------------------------
    def start_watchers(self) -> None:
        pack_dir = self.session.pack_dir() if self.session is not None else None
        self.watchers.start(pack_dir=pack_dir, themes_dir=self.theme_files)

    def reload_session(self) -> None:
        from lamsim_tui.session.config import load_session

        old = self.session
        try:
            load_session(self.session_path)
        except Exception as exc:  # the last good version stays, whatever the reader raised
            problem = unreadable(self.session_path, exc)
            self.session_problem = None if old is not None else problem
            if self._last_problem.get("session") != problem:
                self._last_problem["session"] = problem
                keep = " — keeping the last good version" if old is not None else ""
                self.notify(problem + keep, title="session file", severity="error", markup=False, timeout=12)
            return
        self._last_problem.pop("session", None)
        self._load_session_now()
        note = " (the running session keeps the version it started with)" if self.session_running else ""
        self.notify(f"{self.session_path.name} reloaded{note}", title="hot reload", markup=False)
        self.session_changed.publish(SessionReloaded("session"))
        if old is None or old.pack_dir() != self.session.pack_dir():
            self.load_pack()
            if self.watching:
                self.watchers.watch_pack(self.session.pack_dir())
        if old is not None and old.store_dir() != self.session.store_dir():
            self.notify("the store folder changed: it is used after the app restarts", severity="warning", markup=False)

    def _load_themes(self, initial: bool = False) -> None:
        found = load_themes(self.theme_files)
        for name, theme in found.themes.items():
            self.register_theme(theme)
            self._themes_from_files[name] = theme
        for path, error in found.errors.items():
            key = f"theme:{path}"
            problem = str(error)
            if self._last_problem.get(key) == problem:
                continue
            self._last_problem[key] = problem
            message = problem + (" — keeping the last good version" if not initial else " — using the built-in theme")
            if initial:
                self._theme_problems.append(message)
            else:
                self.notify(message, title="theme", severity="error", markup=False, timeout=12)
        for key in [k for k in self._last_problem if k.startswith("theme:")]:
            if Path(key[6:]) not in found.errors:
                del self._last_problem[key]
        if not initial and self.theme in found.themes:
            self.theme = self.theme  # re-apply the (possibly changed) current theme
            self.refresh_css()

    # ----- navigation, help, palette -----------------------------------------------------------
    def action_show(self, mode: str) -> None:
        if self.current_mode != mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        from lamsim_tui.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        seen = {"quit", "command_palette"}
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.action in seen or binding.system:
                continue
            if not binding.show and not isinstance(active.node, (Screen, App)):
                continue  # a widget's own navigation keys (cursor moves): not actions of lamsim
            seen.add(binding.action)
            help_text = binding.tooltip or f"{type(active.node).__name__.replace('Screen', ' screen')}"
            yield SystemCommand(binding.description, f"{help_text} · key {binding.key_display or key}",
                                partial(self.run_action, binding.action, active.node))
        for title, help_text, action in getattr(screen, "EXTRA_COMMANDS", ()):
            yield SystemCommand(title, help_text, partial(self.run_action, action, screen))
        for mode, label in (("live", "Live session"), ("review", "Review queue"), ("store", "Store browser"),
                            ("stats", "Statistics")):
            if f"show('{mode}')" not in seen:
                yield SystemCommand(f"Go to {label}", f"show the {label.lower()} screen", partial(self.action_show, mode))

    # ----- focus -------------------------------------------------------------------------------
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.rescue_focus()  # before the key is routed: a key sent to a removed widget is lost
        await super().on_event(event)

    def rescue_focus(self) -> None:
        """Never leave the focus on a widget that was removed (its keys, and the app's, would go nowhere).

        Textual moves the focus off a widget it removes, but it may move it to a sibling that is itself
        on its way out. The focus then goes to the screen's usual widget (`AUTO_FOCUS`), or to the
        screen itself, whose keys work with nothing focused.
        """
        try:
            screen = self.screen
        except Exception:  # no screen yet, or the app is closing
            return
        focused = screen.focused
        if focused is None or focused.is_attached:
            return
        screen.set_focus(None)
        if screen.AUTO_FOCUS:
            for candidate in screen.query(screen.AUTO_FOCUS):
                if candidate.focusable:
                    screen.set_focus(candidate)
                    break

    # ----- failures and notices ----------------------------------------------------------------
    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = True) -> None:
        """As `App.notify`, and kept in `notices` (the last 200), which tests and the log read."""
        self.notices.append((severity, title, message))
        if self.snapshot and severity == "information":
            return  # toasts that time out would make snapshots depend on timing
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            text = str(error) if isinstance(error, LamsimError) else f"{type(error).__name__}: {error}"
            self.notify(f"{worker.name or 'a background task'} failed: {text}", title="error", severity="error",
                        markup=False, timeout=15)

    async def on_unmount(self) -> None:
        if self.engine is not None:
            self.engine.cancel()
        store, self.store = self.store, None
        if store is not None:
            await asyncio.to_thread(store.close)


def make_app(session_path: str | Path, **options: Any) -> LamsimApp:
    """The app as `lamsim` opens it; tests, snapshots and the benchmark pass options."""
    return LamsimApp(session_path, **options)


def run_app(session_path: Path, *, agent: str | None = None, tasks: int | None = None, seed: int | None = None) -> int:
    app = make_app(session_path, agent=agent, tasks=tasks, seed=seed)
    app.run()
    return int(app.return_code or 0)
