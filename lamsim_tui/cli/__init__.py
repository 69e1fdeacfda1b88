"""The `lamsim` command line: one entry point, one module per subcommand. Heavy modules (Textual,
litellm, the engine) are imported lazily by the handlers.

    lamsim [SESSION.yaml] [--agent K] [-n N] [--seed S]   open the app (default: sessions/pilot.yaml)
    lamsim run SESSION --headless [-n N] [--agent scripted|model|embedded] [--seed S] [--store DIR]
    lamsim check SESSION                        sample tasks from every template and run gold programs
    lamsim review --store DIR list|show|accept|discard|edit|undo|history ...
    lamsim export --store DIR --format chat|sharegpt|xlam --out FILE
    lamsim stats --store DIR
    lamsim pack new|show|from-openapi ...
    lamsim store check|salvage DIR ...          find and recover damaged stores
    lamsim store merge DEST SRC...              join stores from several machines
    lamsim model status|install ...             the embedded model's weights
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from lamsim_tui import __version__
from lamsim_tui.errors import LamsimError
from lamsim_tui.text import shorten, visible

SUBCOMMANDS = ("app", "run", "check", "review", "export", "stats", "pack", "store", "model")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lamsim", description="Supervised generation of tool-use trajectories.")
    parser.add_argument("--version", action="version", version=f"lamsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"lamsim_tui.cli.{name}").add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The program (``argv`` None: from the command line) or one command run in-process (tests)."""
    code = _main(list(sys.argv[1:] if argv is None else argv))
    if argv is None:
        _exit_past_lingering_threads(code)
    return code


def _main(argv: list[str]) -> int:
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["app", *argv]  # `lamsim`, `lamsim S.yaml`, `lamsim --agent scripted`: the app
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except LamsimError as exc:
        print(f"lamsim: {visible(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lamsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lamsim review list | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except SystemExit as exc:  # sys.exit() in pack code run on this thread: never a silent exit 0
        where = _origin(exc)
        print(f"lamsim: pack code called sys.exit({exc.code!r})" + (f" at {visible(where)}" if where else "")
              + "; lamsim stopped", file=sys.stderr)
        return 2
    except (Exception, GeneratorExit) as exc:  # a bug in lamsim: one message, the traceback in a file
        if os.environ.get("LAMSIM_DEBUG"):
            raise
        print(f"lamsim: internal error: {type(exc).__name__}: {visible(shorten(str(exc), 300))}", file=sys.stderr)
        saved = _save_traceback(exc)
        if saved:
            print(f"  the traceback is in {saved}; please report it (LAMSIM_DEBUG=1 shows it here)", file=sys.stderr)
        return 70


def _origin(exc: BaseException) -> str | None:
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


def _save_traceback(exc: BaseException) -> str | None:
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix="lamsim-error-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        return path
    except OSError:
        return None


def _exit_past_lingering_threads(code: int) -> None:
    """Threads that pack code started (or a tool blocked past its limit in a non-daemon thread)
    would keep the process alive after its summary: everything is written and flushed by now."""
    import threading
    import time

    def lingering() -> list[threading.Thread]:
        return [t for t in threading.enumerate()
                if t is not threading.main_thread() and t.is_alive() and not t.daemon]

    deadline = time.monotonic() + 2.0  # threads that are about to end may
    for thread in lingering():
        thread.join(max(0.0, deadline - time.monotonic()))
    left = lingering()
    if not left:
        return
    names = ", ".join(sorted({t.name for t in left})[:3])
    try:
        print(f"lamsim: {len(left)} thread(s) are still running ({visible(names)}), started by pack code or a "
              "library; exiting without waiting for them", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":
    raise SystemExit(main())
