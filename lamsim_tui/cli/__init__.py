"""The `lamsim` command line: one entry point, one module per subcommand. Heavy modules (Textual,
litellm, the engine) are imported lazily by the handlers.

    lamsim [SESSION.yaml]                       open the app (default: sessions/pilot.yaml)
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

SUBCOMMANDS = ("app", "run", "check", "review", "export", "stats", "pack", "store", "model")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lamsim", description="Supervised generation of tool-use trajectories.")
    parser.add_argument("--version", action="version", version=f"lamsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"lamsim_tui.cli.{name}").add_commands(sub)
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


if __name__ == "__main__":
    raise SystemExit(main())
