#!/usr/bin/env python
"""Benchmark of the Textual app (issue 5). Prints figures; asserts nothing.

1. Time to first paint: `python -m lamsim_tui SESSION` in a pseudo-terminal (160x48), from just
   before the process starts to the first refresh of the first screen; the app reports it and exits.
   Also whether litellm was imported by then (it must not be), with a scripted and a model session.
2. Review throughput: 200 trajectories queued; an operator accepts one after another. For each
   decision key, the time from the key to the next trajectory shown in the detail pane (painted):
   median and p95, with the app idle and with a live 4-episode stream running at the same time.
   `--baseline DIR` runs the same measurement on another checkout (e.g. a worktree of main) in a
   subprocess, alternating with this one, so before/after come from the same machine state.
   `--only idle`: the CPU the app uses doing nothing (a 160x45 pseudo-terminal, 20 s).
3. A fast stream: the scripted agent streaming 2,000 characters per second per episode, 4 episodes
   at once, with the live screen shown and then with the review queue shown (review while
   generating). Reports the engine events waiting at each repaint (the backlog: it must not grow),
   the time between repaints, and key-press latency (key posted -> action run -> screen refreshed)
   for keys pressed every 150 ms during the run.

    .venv/bin/python bench/tui.py [--runs 5] [--tasks 60] [--json] [--only paint|idle|review|stream] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

from lamsim_tui.testing.ui import make_project, wait_for, wait_ready

MODEL_SESSION_EXTRA = """\
agent:
  kind: model
  models:
    - model: openai/local-agent
      api_base: http://127.0.0.1:9/v1
"""


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# ----- 1. first paint ------------------------------------------------------------------------------


def first_paint(session: Path, cwd: Path) -> dict:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
    out = Path(tempfile.mkdtemp()) / "paint.json"
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "48"}
    env["LAMSIM_BENCH_FIRST_PAINT"] = f"{time.time()}:{out}"
    proc = subprocess.Popen([sys.executable, "-m", "lamsim_tui", str(session)], stdin=slave, stdout=slave,
                            stderr=slave, cwd=cwd, env=env, start_new_session=True)
    os.close(slave)

    def drain() -> None:  # keep the terminal's buffer from filling up
        try:
            while os.read(master, 65536):
                pass
        except OSError:
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    if not out.exists():
        raise SystemExit(f"the app did not report its first paint (exit {proc.returncode})")
    return json.loads(out.read_text())


# ----- 2. fast stream ------------------------------------------------------------------------------


def paced_factory(cps: float):
    """The scripted agent, streaming on a wall-clock schedule like a model server: when the app's
    event loop is busy, the characters due meanwhile arrive together instead of later. (The stock
    agent sleeps between chunks, so a busy loop slows the agent down instead of testing the app.)"""
    from lamsim_tui.agents.scripted import ScriptedAgent, ScriptedAgentFactory
    from lamsim_tui.events import TextDelta

    class PacedAgent(ScriptedAgent):
        async def _stream(self, episode_id: str, index: int, raw: str, emit) -> None:
            chunk, start, sent = 8, time.perf_counter(), 0
            while sent < len(raw):
                due = min(len(raw), int((time.perf_counter() - start) * self.stream_cps) + chunk)
                while sent < due:
                    emit(TextDelta(episode_id, index, raw[sent:sent + chunk]))
                    sent += chunk
                await asyncio.sleep(chunk / self.stream_cps)

    class PacedFactory(ScriptedAgentFactory):
        def for_episode(self, episode_id: str, seed: int, gold=None):
            import random

            return PacedAgent(self.pack, gold, random.Random(seed), self.mistake_rate, self.stream_cps), {}

    return lambda session, pack: PacedFactory(session, pack, stream_cps=cps)


async def stream(session: Path, *, cps: float, view: str, key: str, paced: bool) -> dict:
    from lamsim_tui.ui.app import make_app
    from lamsim_tui.ui.screens.live import LiveScreen
    from lamsim_tui.ui.widgets.tables import TrajectoryTable

    app = make_app(session, watch=False, scripted_cps=cps, factory=paced_factory(cps) if paced else None)
    handled: list[float] = []
    painted: list[float] = []
    drains: list[float] = []
    pending: dict[str, float] = {}

    def probe(original):
        def wrapped(self, *args, **kwargs):
            sent = pending.pop("t", None)
            result = original(self, *args, **kwargs)
            if sent is not None:
                handled.append(time.perf_counter() - sent)
                self.call_after_refresh(lambda: painted.append(time.perf_counter() - sent))
            return result
        return wrapped

    follow, down, up = LiveScreen.action_follow, TrajectoryTable.action_cursor_down, TrajectoryTable.action_cursor_up
    LiveScreen.action_follow = probe(follow)
    TrajectoryTable.action_cursor_down = probe(down)
    TrajectoryTable.action_cursor_up = probe(up)
    drain = app._drain

    def timed_drain():
        drains.append(time.perf_counter())
        drain()

    app._drain = timed_drain
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_ready(pilot)
            app.set_interval(1 / 20, timed_drain)  # replaces the drain timer's target for timing
            if view == "review":
                await pilot.press("2")
                await wait_for(pilot, lambda: app.screen.table is not None, what="the review screen")
                app.screen.table.focus()
            started = time.perf_counter()
            app.action_start()
            await wait_for(pilot, lambda: app.engine is not None, what="the engine", timeout=30)
            keys = [key, "k" if key == "j" else key]
            i = 0
            while app.engine is not None:
                await asyncio.sleep(0.15)
                if "t" not in pending:
                    pending["t"] = time.perf_counter()
                    app.simulate_key(keys[i % 2])
                    i += 1
            wall = time.perf_counter() - started
            await pilot.pause(0.2)
            samples = app.backlog_samples
            third = max(1, len(samples) // 3)
            gaps = [b - a for a, b in zip(drains, drains[1:], strict=False)]
            return {
                "view": view,
                "agent": "paced" if paced else "stock",
                "episodes": app.live.progress.done if app.live.progress else 0,
                "wall_s": round(wall, 2),
                "chars_streamed": app.live.streamed_chars,
                "chars_per_s": round(app.live.streamed_chars / wall),
                "queue_rows": len(app.queue),
                "repaints": len(samples),
                "backlog_mean": round(statistics.mean(samples), 1) if samples else 0,
                "backlog_p95": _pct(samples, 0.95),
                "backlog_max": max(samples) if samples else 0,
                "backlog_first_third_mean": round(statistics.mean(samples[:third]), 1) if samples else 0,
                "backlog_last_third_mean": round(statistics.mean(samples[-third:]), 1) if samples else 0,
                "repaint_gap_p50_ms": round(1000 * _pct(gaps, 0.5), 1),
                "repaint_gap_p95_ms": round(1000 * _pct(gaps, 0.95), 1),
                "keys": len(handled),
                "key_handled_p50_ms": round(1000 * _pct(handled, 0.5), 1),
                "key_handled_p95_ms": round(1000 * _pct(handled, 0.95), 1),
                "key_handled_max_ms": round(1000 * max(handled), 1) if handled else None,
                "key_painted_p50_ms": round(1000 * _pct(painted, 0.5), 1),
                "key_painted_p95_ms": round(1000 * _pct(painted, 0.95), 1),
                "key_painted_max_ms": round(1000 * max(painted), 1) if painted else None,
            }
    finally:
        LiveScreen.action_follow, TrajectoryTable.action_cursor_down = follow, down
        TrajectoryTable.action_cursor_up = up


def idle_cpu(session: Path, cwd: Path, *, settle_s: float = 8.0, measure_s: float = 20.0) -> float:
    """Percent of a core the app uses doing nothing: `python -m lamsim_tui` in a 160x45 pseudo-terminal,
    left to settle, then its CPU time (/proc) over `measure_s`."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 160, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    proc = subprocess.Popen([sys.executable, "-m", "lamsim_tui", str(session)], stdin=slave, stdout=slave,
                            stderr=slave, cwd=cwd, env=env, start_new_session=True)
    os.close(slave)

    def drain() -> None:
        try:
            while os.read(master, 65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()

    def cpu_s() -> float:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    try:
        time.sleep(settle_s)
        before = cpu_s()
        time.sleep(measure_s)
        return round(100 * (cpu_s() - before) / measure_s, 1)
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


# ----- 2. review throughput ---------------------------------------------------------------------------

REVIEW_QUEUED = 200
REVIEW_DECISIONS = 60


def review_project(root: Path, queued: int = REVIEW_QUEUED) -> Path:
    """A project whose store holds `queued` pending trajectories (realistic records, no model)."""
    import random

    from lamsim_tui.session.config import load_session
    from lamsim_tui.store import open_store
    from lamsim_tui.testing.synthetic import make_record

    session = make_project(root, tasks=60, concurrency=4, mistake_rate=0.35)
    rng = random.Random(14)
    with open_store(load_session(session).store_dir()) as store, store.batch():
        for i in range(queued):
            store.add(make_record(rng, i, status="pending"))
    return session


async def review_throughput(session: Path, *, live: bool, decisions: int = REVIEW_DECISIONS,
                            cps: float = 2000.0) -> dict:
    """Accept `decisions` trajectories one after another; per key, the time until the next one is shown.

    Uses only what the app had before issue 14 too (`make_app`, the review screen's `shown` and
    `_show_detail`, the `a` key), so the same function measures an older checkout.
    """
    from lamsim_tui.ui.app import make_app
    from lamsim_tui.ui.screens.review import TrajectoryList

    app = make_app(session, watch=False, scripted_cps=cps)
    latencies: list[float] = []
    sent: dict[str, float] = {}
    original = TrajectoryList._show_detail

    def probe(self, *args, **kwargs):
        before = self.shown
        result = original(self, *args, **kwargs)
        t0 = sent.get("t")
        if t0 is not None and self.shown is not None and self.shown != before:
            sent.pop("t")
            self.call_after_refresh(lambda: latencies.append(time.perf_counter() - t0))
        return result

    TrajectoryList._show_detail = probe
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_ready(pilot)
            await pilot.press("2")
            review = app.screen
            await wait_for(pilot, lambda: review.table.row_count >= REVIEW_QUEUED // 2, what="the queue",
                           timeout=60)
            if live:
                app.action_start()
                await wait_for(pilot, lambda: app.engine is not None and len(app.live.running) >= 4,
                               what="4 episodes streaming", timeout=60)
            for _ in range(decisions):
                count = len(latencies)
                sent["t"] = time.perf_counter()
                app.simulate_key("a")
                deadline = time.perf_counter() + 10
                while len(latencies) == count and time.perf_counter() < deadline:
                    await asyncio.sleep(0.001)
                await asyncio.sleep(0.05)  # an operator's pause between keys, not timed
            streaming = app.engine is not None
            if app.engine is not None:
                app.engine.cancel()
                await wait_for(pilot, lambda: app.engine is None, what="the stop", timeout=60)
    finally:
        TrajectoryList._show_detail = original
    return {"live": live, "streaming_throughout": streaming if live else None, "decisions": len(latencies),
            "median_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
            "p95_ms": round(1000 * _pct(latencies, 0.95), 1) if latencies else None,
            "max_ms": round(1000 * max(latencies), 1) if latencies else None}


def review_once(root: Path, live: bool) -> dict:
    session = review_project(root)
    return asyncio.run(review_throughput(session, live=live))


def review_in(checkout: Path, live: bool) -> dict:
    """The same measurement with the lamsim of another checkout (its package first on the path)."""
    code = ("import json, sys, tempfile; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "sys.path.insert(1, sys.argv[2]); import tui; "
            "print(json.dumps(tui.review_once(Path(tempfile.mkdtemp(prefix='lamsim-bench-')), sys.argv[3] == '1')))")
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run([sys.executable, "-c", code, str(checkout), str(Path(__file__).parent), "1" if live else "0"],
                          capture_output=True, text=True, env=env, cwd=checkout, timeout=900)
    if done.returncode:
        raise SystemExit(f"the baseline run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def review_figures(runs: int, baseline: Path | None) -> dict:
    import lamsim_tui

    here = Path(lamsim_tui.__file__).resolve().parents[1]
    out: dict = {}
    for live in (False, True):
        key = "live stream" if live else "idle"
        mine, theirs = [], []
        for _ in range(runs):  # alternate, so both see the same machine state
            mine.append(review_in(here, live))
            if baseline is not None:
                theirs.append(review_in(baseline, live))
        out[key] = {"this": _summary(mine)}
        if baseline is not None:
            out[key]["baseline"] = _summary(theirs)
    return out


def _summary(runs: list[dict]) -> dict:
    return {"runs": len(runs), "median_ms": statistics.median(r["median_ms"] for r in runs),
            "p95_ms": statistics.median(r["p95_ms"] for r in runs),
            "max_ms": max(r["max_ms"] for r in runs), "decisions_per_run": runs[0]["decisions"]}


def print_review(figures: dict) -> None:
    print(f"review throughput ({REVIEW_QUEUED} queued, {REVIEW_DECISIONS} accepts per run, key -> next trajectory "
          "shown and painted; medians over runs)")
    for setting, sides in figures.items():
        for side, r in sides.items():
            print(f"  [{setting}, {side}] median {r['median_ms']} ms, p95 {r['p95_ms']} ms, max {r['max_ms']} ms "
                  f"({r['runs']} runs)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="first-paint runs")
    parser.add_argument("--tasks", type=int, default=60, help="episodes per stream phase")
    parser.add_argument("--cps", type=float, default=2000.0, help="characters per second per episode")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=("paint", "idle", "review", "stream"), help="run one part")
    parser.add_argument("--review-runs", type=int, default=3, help="review-throughput runs (each side)")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure review throughput beside")
    args = parser.parse_args()
    if args.only == "idle":
        root = Path(tempfile.mkdtemp(prefix="lamsim-bench-"))
        session = make_project(root, tasks=4)
        print(f"idle: {idle_cpu(session, root)}% of a core (160x45 pty, 20 s after 8 s to settle)")
        return 0
    if args.only == "review":
        figures = review_figures(args.review_runs, args.baseline)
        if args.json:
            print(json.dumps(figures, indent=2))
        else:
            print_review(figures)
        return 0

    root = Path(tempfile.mkdtemp(prefix="lamsim-bench-"))
    session = make_project(root, tasks=args.tasks, concurrency=4, mistake_rate=0.35)
    model_session = root / "sessions" / "model.yaml"
    text = session.read_text()
    head, _, tail = text.partition("agent:\n")
    tail = tail.split("budget:", 1)[1]
    model_session.write_text(head + MODEL_SESSION_EXTRA + "budget:" + tail)

    results: dict = {"first_paint": {}, "stream": [], "review": None}
    for name, path in (("scripted", session), ("model", model_session)) if args.only in (None, "paint") else ():
        runs = [first_paint(path, root) for _ in range(args.runs)]
        ms = [r["first_paint_ms"] for r in runs]
        results["first_paint"][name] = {
            "runs": args.runs, "median_ms": round(statistics.median(ms)), "min_ms": round(min(ms)),
            "max_ms": round(max(ms)), "litellm_imported_at_paint": any(r["litellm_imported"] for r in runs),
            "modules_at_paint": runs[-1]["modules"],
        }
    if args.only is None:
        results["review"] = review_figures(args.review_runs, args.baseline)
    for paced in (False, True) if args.only in (None, "stream") else ():
        for view, key in (("live", "right_square_bracket"), ("review", "j")):
            store = root / "stores" / "pilot"
            if store.exists():
                import shutil

                shutil.rmtree(store)
            results["stream"].append(asyncio.run(stream(session, cps=args.cps, view=view, key=key, paced=paced)))

    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if results["first_paint"]:
        print("first paint (python -m lamsim_tui in a 160x48 pseudo-terminal, process start -> first refresh)")
    for name, r in results["first_paint"].items():
        print(f"  {name:<9} median {r['median_ms']} ms  (min {r['min_ms']}, max {r['max_ms']}, {r['runs']} runs)  "
              f"litellm imported at paint: {r['litellm_imported_at_paint']}")
    if results["review"]:
        print()
        print_review(results["review"])
    if not results["stream"]:
        return 0
    print(f"\nfast stream: scripted agent at {args.cps:,.0f} chars/s per episode, 4 episodes at once "
          "(stock: sleeps between chunks; paced: on a wall-clock schedule, like a model server)")
    for r in results["stream"]:
        print(f"  [{r['agent']} agent, {r['view']} screen] {r['episodes']} episodes in {r['wall_s']} s, {r['chars_per_s']:,} chars/s "
              f"streamed in total, {r['queue_rows']} in the review queue")
        print(f"    backlog (events waiting per repaint): mean {r['backlog_mean']}, p95 {r['backlog_p95']}, "
              f"max {r['backlog_max']}; first third {r['backlog_first_third_mean']} -> last third "
              f"{r['backlog_last_third_mean']}")
        print(f"    repaint interval: p50 {r['repaint_gap_p50_ms']} ms, p95 {r['repaint_gap_p95_ms']} ms "
              f"({r['repaints']} repaints)")
        print(f"    key press ({r['keys']} keys): handled p50 {r['key_handled_p50_ms']} ms, p95 "
              f"{r['key_handled_p95_ms']} ms, max {r['key_handled_max_ms']} ms; on screen p50 "
              f"{r['key_painted_p50_ms']} ms, p95 {r['key_painted_p95_ms']} ms, max {r['key_painted_max_ms']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
