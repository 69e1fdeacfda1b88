"""`lamsim run SESSION --headless`: run a session; progress on stderr, the summary on stdout."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lamsim_tui.errors import LamsimError
from lamsim_tui.text import plain


def add_commands(sub: Any) -> None:
    run = sub.add_parser("run", help="run a session")
    run.add_argument("session", help="session YAML file")
    run.add_argument("--headless", action="store_true", help="no app: progress on stderr, summary on stdout")
    run.add_argument("-n", "--tasks", type=bounded("tasks"), help="number of tasks (overrides the session)")
    run.add_argument("--agent", choices=("scripted", "model", "embedded"), help="agent kind (overrides the session)")
    run.add_argument("--seed", type=bounded("seed"), help="seed (overrides the session)")
    run.add_argument("--store", help="store directory (overrides the session)")
    run.add_argument("--concurrency", type=bounded("concurrency"), help="episodes at once (overrides the session)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--stream", action="store_true",
                     help="headless: stream model replies (records time to first token) instead of asking for "
                          "whole ones, which costs the model client three times the CPU")
    run.set_defaults(handler=cmd_run)


def bounded(setting: str) -> Any:
    """An argparse type for a flag that overrides a session setting: held to the same bounds."""
    import dataclasses

    from lamsim_tui.session.config import Session
    from lamsim_tui.session.schema import MAX_INT

    meta = next(f.metadata for f in dataclasses.fields(Session) if f.name == setting)
    low, high = meta.get("min", -MAX_INT), meta.get("max", MAX_INT)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value

    parse.__name__ = setting  # argparse names the type in its messages
    return parse


def in_session(session: Any, work: Any) -> Any:
    """Run ``work()``; a ConfigError that names no place (a template the pack lacks) names the session file."""
    from lamsim_tui.errors import ConfigError

    try:
        return work()
    except ConfigError as exc:
        if not exc.where and session.source is not None:
            exc.where = str(session.source)
        raise


class _ProgressLine:
    """A one-line progress bar on stderr (redrawn in place when stderr is a terminal)."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""

    def __call__(self, event) -> None:
        from lamsim_tui.events import Notice, Progress, SessionPaused
        from lamsim_tui.text import plain

        if isinstance(event, SessionPaused):
            self.stream.write(f"\nlamsim: session paused: {event.reason}\n")
            self.stream.flush()
        if isinstance(event, Notice):  # e.g. a model server of a pool went down, or came back
            self.stream.write(f"{chr(10) if self.tty else ''}lamsim: {plain(event.title)}: {plain(event.message)}\n")
            self.stream.flush()
        if not isinstance(event, Progress):
            return
        width = 30
        filled = int(width * event.done / max(event.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        line = (f"[{bar}] {event.done}/{event.total} episodes  success {event.succeeded}  "
                f"kept {event.kept}  filtered {event.filtered}")
        if self.tty:
            self.stream.write("\r" + line)
        elif event.done == event.total or event.done % max(1, event.total // 10) == 0:
            self.stream.write(line + "\n")
        self.stream.flush()
        self.last = line

    def close(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")
            self.stream.flush()


def format_summary(summary: dict, store_dir: Path | None) -> str:
    lines = [
        f"episodes          {summary['episodes']} ({summary['tasks']} tasks)",
        f"success rate      {summary['success_rate']:.1%}",
        f"filter pass rate  {summary['filter_pass_rate']:.1%}  (kept {summary['kept']}, filtered {summary['filtered']})",
        f"mean steps        {summary['mean_steps']:.2f}",
        f"valid actions     {summary['valid_action_rate']:.1%}",
        f"wall time         {summary['wall_s']:.2f} s  (model {summary['model_s']:.2f} s, "
        f"engine {summary['engine_s']:.3f} s)",
    ]
    tokens = summary.get("tokens") or {}
    if tokens:
        lines.append("tokens            " + ", ".join(f"{k.replace('_tokens', '')} {v}" for k, v in sorted(tokens.items())))
    reasons = summary.get("end_reasons") or {}
    if reasons:
        lines.append("episode endings   " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    findings = summary.get("findings") or {}
    lines.append("findings by code" + ("" if findings else "  none"))
    for code, count in sorted(findings.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {code:<20} {count}")
    for template, reason in (summary.get("skipped_templates") or {}).items():
        lines.append(plain(f"skipped template {template}: {(reason.splitlines() or [''])[0]}"))
    for tool, headline in (summary.get("tool_bugs") or {}).items():
        lines.append(plain(f"tool bug in {tool}: {headline}", 300))
    if summary.get("tasks_requested") and summary["tasks_requested"] > summary["tasks"]:
        lines.append(f"tasks             only {summary['tasks']} of the {summary['tasks_requested']} asked for: "
                     "the templates have no more distinct tasks")
    if summary.get("paused_reason"):
        lines.append(f"stopped: {summary['paused_reason']}")
    if summary.get("interrupted"):
        cut = (summary.get("end_reasons") or {}).get("cancelled", 0)
        lines.append(f"stopped: {summary['interrupted']}: {summary['episodes']} episode(s) stored"
                     + (f", {cut} of them cut short and stored as cancelled" if cut else "")
                     + f"; {summary.get('not_run', 0)} not run")
    if store_dir is not None:
        lines.append(f"store             {store_dir}")
    return "\n".join(lines)


def cmd_run(args) -> int:
    if not args.headless:
        from lamsim_tui.cli.app import cmd_app

        return cmd_app(args)  # the app, with the same --agent, --tasks and --seed
    import asyncio
    import dataclasses

    from lamsim_tui.agents import make_agent_factory
    from lamsim_tui.packs import load_pack
    from lamsim_tui.session.config import load_session
    from lamsim_tui.simulator.engine import Engine

    session = load_session(args.session)
    if args.concurrency is not None:
        session = dataclasses.replace(session, concurrency=args.concurrency)
    if args.agent:
        session = dataclasses.replace(session, agent=dataclasses.replace(session.agent, kind=args.agent))
    pack = load_pack(session.pack_dir())
    store_dir = session.store_dir(args.store)
    from lamsim_tui.store import open_store

    factory = make_agent_factory(session, pack)
    factory.stream = bool(getattr(args, "stream", False))  # nobody watches the tokens of a headless run
    progress = _ProgressLine()
    stop = _Stop()
    with open_store(store_dir) as store:
        engine = Engine(session, pack, factory, store=store, on_event=progress, tasks=args.tasks, seed=args.seed)
        generation = in_session(session, engine.prepare)
        for template, failures in generation.failures.items():
            print(f"lamsim: template {plain(template)!r} skipped: {plain(failures[0].reason.splitlines()[0])} "
                  f"({plain(failures[0].where)})", file=sys.stderr)
        if not generation.tasks:
            raise LamsimError("no task could be generated", hint="run `lamsim check` on the session")
        if len(generation.tasks) < engine.n_tasks:
            print(f"lamsim: only {len(generation.tasks)} of the {engine.n_tasks} tasks asked for could be made: "
                  "the templates have no more distinct tasks (their slots take too few values); running those",
                  file=sys.stderr)

        async def go():
            stop.arm(asyncio.get_running_loop(), engine)
            try:
                return await engine.run()
            finally:
                stop.disarm()

        def paused_stop(event, _inner=progress):
            from lamsim_tui.events import SessionPaused

            _inner(event)
            if isinstance(event, SessionPaused):
                engine.cancel()  # nobody to resume a headless run

        engine.on_event = paused_stop
        try:
            summary = asyncio.run(go())
        finally:
            progress.close()
    data = summary.to_dict()
    data["tasks_requested"] = engine.n_tasks
    if stop.signal_name:
        data["interrupted"] = f"interrupted by {stop.signal_name}"
        data["not_run"] = len(generation.tasks) * session.attempts - summary.episodes
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_summary(data, store_dir))
    if stop.signal_name:
        return stop.exit_code
    if summary.paused_reason:
        return 3
    return 0


class _Stop:
    """Ctrl-C (SIGINT) or SIGTERM during a headless run: the first stops the run cleanly — episodes
    in flight are stored as `cancelled`, then the summary says so and lamsim exits 130 (143) —
    a second one ends lamsim at once (every episode reported as stored is safe: writes are durable)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.exit_code = 0
        self._loop = None

    def arm(self, loop, engine) -> None:
        import signal

        self._loop = loop
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig, code, engine)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
                pass

    def _on_signal(self, sig, code: int, engine) -> None:
        import os
        import signal

        name = signal.Signals(sig).name
        if self.signal_name is not None:
            print(f"\nlamsim: {name} again: stopping now; every episode reported as stored is safe",
                  file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(self.exit_code)
        self.signal_name = "Ctrl-C (SIGINT)" if sig == signal.SIGINT else name
        self.exit_code = code
        print(f"\nlamsim: {self.signal_name}: stopping; episodes in flight are stored as cancelled "
              "(press Ctrl-C again to quit at once)", file=sys.stderr, flush=True)
        engine.cancel()

    def disarm(self) -> None:
        import signal

        if self._loop is None:
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._loop.remove_signal_handler(sig)
                if self.signal_name is not None:  # until lamsim exits, another one still means "now"
                    signal.signal(sig, lambda number, _frame: self._on_signal(number, self.exit_code, None))
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        self._loop = None
