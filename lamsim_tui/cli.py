"""The `lamsim` command line. Heavy modules (Textual, litellm, the engine) are imported lazily.

    lamsim [SESSION.yaml]                       open the app (default: sessions/pilot.yaml)
    lamsim run SESSION --headless [-n N] [--agent scripted|model|embedded] [--seed S] [--store DIR]
    lamsim check SESSION                        sample tasks from every template and run gold programs
    lamsim review --store DIR list|show|accept|discard|edit|undo ...
    lamsim export --store DIR --format chat|sharegpt|xlam --out FILE
    lamsim stats --store DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lamsim_tui import __version__
from lamsim_tui.errors import LamsimError

DEFAULT_SESSION = Path("sessions/pilot.yaml")
SUBCOMMANDS = ("run", "check", "review", "export", "stats", "pack", "app")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lamsim", description="Supervised generation of tool-use trajectories.")
    parser.add_argument("--version", action="version", version=f"lamsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    app = sub.add_parser("app", help="open the Textual app (the default command)")
    app.add_argument("session", nargs="?", default=str(DEFAULT_SESSION))
    app.set_defaults(handler=cmd_app)

    run = sub.add_parser("run", help="run a session")
    run.add_argument("session", help="session YAML file")
    run.add_argument("--headless", action="store_true", help="no app: progress on stderr, summary on stdout")
    run.add_argument("-n", "--tasks", type=int, help="number of tasks (overrides the session)")
    run.add_argument("--agent", choices=("scripted", "model", "embedded"), help="agent kind (overrides the session)")
    run.add_argument("--seed", type=int, help="seed (overrides the session)")
    run.add_argument("--store", help="store directory (overrides the session)")
    run.add_argument("--concurrency", type=int, help="episodes at once (overrides the session)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.set_defaults(handler=cmd_run)

    check = sub.add_parser("check", help="check a session's pack and templates")
    check.add_argument("session", help="session YAML file")
    check.add_argument("--samples", type=int, default=20, help="tasks sampled per template")
    check.set_defaults(handler=cmd_check)

    try:
        from lamsim_tui import cli_review
    except ImportError:
        cli_review = None
    if cli_review is not None:
        cli_review.add_commands(sub)
    try:
        from lamsim_tui import cli_pack
    except ImportError:
        cli_pack = None
    if cli_pack is not None:
        cli_pack.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and not argv[0].startswith("-")):
        argv = ["app", *argv]
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except LamsimError as exc:
        print(f"lamsim: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lamsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lamsim review list | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


# ----- app -------------------------------------------------------------------------------------


def cmd_app(args) -> int:
    from lamsim_tui.config import load_session

    session_path = Path(args.session)
    load_session(session_path)  # a broken session is reported here, before the screen opens
    try:
        from lamsim_tui.ui.app import run_app
    except ImportError:
        print("lamsim: the app is not available in this build; use `lamsim run SESSION --headless`",
              file=sys.stderr)
        return 2
    return run_app(session_path)


# ----- run -------------------------------------------------------------------------------------


class _ProgressLine:
    """A one-line progress bar on stderr (redrawn in place when stderr is a terminal)."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ""

    def __call__(self, event) -> None:
        from lamsim_tui.events import Progress, SessionPaused

        if isinstance(event, SessionPaused):
            self.stream.write(f"\nlamsim: session paused: {event.reason}\n")
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
    if summary.get("paused_reason"):
        lines.append(f"stopped: {summary['paused_reason']}")
    if store_dir is not None:
        lines.append(f"store             {store_dir}")
    return "\n".join(lines)


def cmd_run(args) -> int:
    if not args.headless:
        return cmd_app(argparse.Namespace(session=args.session))
    import asyncio
    import dataclasses

    from lamsim_tui.agents import make_agent_factory
    from lamsim_tui.config import load_session
    from lamsim_tui.engine import Engine
    from lamsim_tui.packs import load_pack

    session = load_session(args.session)
    if args.concurrency:
        session = _with(session, concurrency=args.concurrency)
    if args.agent:
        session = _with(session, agent=dataclasses.replace(session.agent, kind=args.agent))
    pack = load_pack(session.pack_dir())
    store_dir = session.store_dir(args.store)
    from lamsim_tui.store import open_store

    factory = make_agent_factory(session, pack)
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


def _with(session, **changes):
    import dataclasses

    new = dataclasses.replace(session, **changes)
    object.__setattr__(new, "source", session.source)
    object.__setattr__(new, "root", session.root)
    return new


# ----- check -----------------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def cmd_check(args) -> int:
    from lamsim_tui.config import load_session
    from lamsim_tui.packs import load_pack
    from lamsim_tui.runner import ToolRunner
    from lamsim_tui.tasks import check_templates, template_weights

    session = load_session(args.session)
    pack = load_pack(session.pack_dir())
    selected = list(template_weights(pack, session.templates))
    runner = ToolRunner(pack, timeout=session.budget.tool_seconds,
                        observation_chars=session.budget.observation_chars)
    before = pack.seed.fingerprint()
    reports = check_templates(pack, runner, samples=args.samples, seed=session.seed, only=selected)
    mutated = pack.seed.fingerprint() != before
    print(f"pack {pack.name} ({pack.path}) version {pack.version}: {_plural(len(pack.tools), 'tool')}, "
          f"{_plural(len(pack.templates), 'template')}, tables "
          + ", ".join(f"{t} {len(rows)}" for t, rows in pack.seed.tables.items()))
    width = max([len("template"), *(len(r.template) for r in reports)])
    header = f"{'template':<{width}} {'tried':>5} {'ok':>4} {'fail':>4} {'distinct':>9} {'calls':>6} {'gold ms':>8}  example"
    print(header)
    print("-" * len(header))
    failed = 0
    for r in reports:
        distinct = f"{r.distinct}" if r.saturated else f"{r.distinct}+"
        calls = f"{r.gold_calls[0]}-{r.gold_calls[1]}" if r.gold_calls[0] != r.gold_calls[1] else str(r.gold_calls[0])
        example = ""
        if r.examples:
            query, answer = r.examples[0]
            example = f"{query}  => {json.dumps(answer, ensure_ascii=False)}"
            example = example if len(example) < 110 else example[:107] + "..."
        print(f"{r.template:<{width}} {r.tried:>5} {r.ok:>4} {len(r.failures):>4} {distinct:>9} {calls:>6} "
              f"{r.max_gold_s * 1000:>8.1f}  {example}")
        if r.failures:
            failed += 1
            first = r.failures[0]
            print(f"    FAIL {first.where}: {first.reason.splitlines()[0]}")
            for more in first.reason.splitlines()[1:4]:
                print(f"         {more}")
        elif r.distinct < 10:
            print(f"    warning: only {r.distinct} distinct tasks: the template is narrow")
        if r.truncated_observations:
            print(f"    warning: {r.truncated_observations} gold call result(s) are longer than "
                  f"budget.observation_chars ({runner.observation_chars}); the agent would see them cut")
        if r.max_gold_s > 0.5:
            print(f"    warning: slow gold program ({r.max_gold_s:.2f} s)")
    if mutated:
        failed += 1
        print("FAIL: a tool changed seed rows in place; write with sb.update/insert/delete instead")
    print()
    if failed:
        print(f"{failed} problem(s) found")
        return 1
    print(f"all {_plural(len(reports), 'template')} passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
