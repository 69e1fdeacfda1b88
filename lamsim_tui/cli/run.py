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
    run.add_argument("-n", "--tasks", type=int, help="number of tasks (overrides the session)")
    run.add_argument("--agent", choices=("scripted", "model", "embedded"), help="agent kind (overrides the session)")
    run.add_argument("--seed", type=int, help="seed (overrides the session)")
    run.add_argument("--store", help="store directory (overrides the session)")
    run.add_argument("--concurrency", type=int, help="episodes at once (overrides the session)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--stream", action="store_true",
                     help="headless: stream model replies (records time to first token) instead of asking for "
                          "whole ones, which costs the model client three times the CPU")
    run.set_defaults(handler=cmd_run)


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
        lines.append(f"skipped template {template}: {reason.splitlines()[0]}")
    for tool, headline in (summary.get("tool_bugs") or {}).items():
        lines.append(plain(f"tool bug in {tool}: {headline}", 300))
    if summary.get("paused_reason"):
        lines.append(f"stopped: {summary['paused_reason']}")
    if store_dir is not None:
        lines.append(f"store             {store_dir}")
    return "\n".join(lines)


def cmd_run(args) -> int:
    if not args.headless:
        from lamsim_tui.cli.app import cmd_app

        return cmd_app(argparse.Namespace(session=args.session))
    import asyncio
    import dataclasses

    from lamsim_tui.agents import make_agent_factory
    from lamsim_tui.packs import load_pack
    from lamsim_tui.session.config import load_session
    from lamsim_tui.simulator.engine import Engine

    session = load_session(args.session)
    if args.concurrency:
        session = dataclasses.replace(session, concurrency=args.concurrency)
    if args.agent:
        session = dataclasses.replace(session, agent=dataclasses.replace(session.agent, kind=args.agent))
    pack = load_pack(session.pack_dir())
    store_dir = session.store_dir(args.store)
    from lamsim_tui.store import open_store

    factory = make_agent_factory(session, pack)
    factory.stream = bool(getattr(args, "stream", False))  # nobody watches the tokens of a headless run
    progress = _ProgressLine()
    with open_store(store_dir) as store:
        engine = Engine(session, pack, factory, store=store, on_event=progress, tasks=args.tasks, seed=args.seed)
        generation = engine.prepare()
        for template, failures in generation.failures.items():
            print(f"lamsim: template {template!r} skipped: {failures[0].reason.splitlines()[0]} "
                  f"({failures[0].where})", file=sys.stderr)
        if not generation.tasks:
            raise LamsimError("no task could be generated", hint="run `lamsim check` on the session")

        async def go():
            run = asyncio.ensure_future(engine.run())
            try:
                return await asyncio.shield(run)
            except asyncio.CancelledError:
                engine.cancel()
                return await run

        def paused_stop(event, _inner=progress):
            from lamsim_tui.events import SessionPaused

            _inner(event)
            if isinstance(event, SessionPaused):
                engine.cancel()  # nobody to resume a headless run

        engine.on_event = paused_stop
        try:
            summary = asyncio.run(go())
        except KeyboardInterrupt:
            progress.close()
            print("lamsim: interrupted; finished episodes are stored", file=sys.stderr)
            return 130
        progress.close()
    data = summary.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_summary(data, store_dir))
    if summary.paused_reason:
        return 3
    return 0
