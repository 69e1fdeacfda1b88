"""`lamsim export`: write training data from a store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lamsim_tui.cli.review import _open, _statuses


def add_commands(sub: Any) -> None:
    export = sub.add_parser(
        "export",
        help="write training data (chat, sharegpt, xlam JSONL)",
        description="Export trajectories as JSONL training data.",
    )
    export.add_argument("--store", required=True, metavar="DIR")
    export.add_argument("--format", required=True, choices=("chat", "sharegpt", "xlam"))
    export.add_argument("--status", action="append", metavar="S", help="statuses to export (default: accepted)")
    export.add_argument("--clean", action="store_true", help="leave out steps feedback rejected, and their feedback")
    export.add_argument("--out", required=True, metavar="FILE", help="output JSONL (a .meta.json sidecar is written)")
    export.add_argument("--split", metavar="eval=F", help="also split into FILE.train/.eval.jsonl, e.g. eval=0.1")
    export.add_argument(
        "--by",
        default="template",
        choices=("template", "task"),
        help="keep whole templates (default) or tasks on one side of the split",
    )
    export.add_argument("--seed", type=int, default=0, help="seed of the split")
    export.add_argument(
        "--include-unfinished", action="store_true", help="also export trajectories that ended without a final answer"
    )
    export.add_argument(
        "--string-arguments",
        action="store_true",
        help="chat: tool-call arguments as a JSON string (OpenAI fine-tuning files)",
    )
    export.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.export import export, parse_split

    fraction = parse_split(args.split)
    from lamsim_tui.store import STATUSES

    statuses = ["accepted"] if not args.status else (_statuses(args.status) or list(STATUSES))
    with _open(args, write=False) as store:
        meta = export(
            store,
            args.out,
            fmt=args.format,
            status=statuses,
            clean=args.clean,
            eval_fraction=fraction,
            split_by=args.by,
            seed=args.seed,
            include_unfinished=args.include_unfinished,
            string_arguments=args.string_arguments,
        )
    counts = meta["counts"]
    named = meta["files"]
    files = ", ".join(f"{name}: {path}" for name, path in named.items()) if len(named) > 1 else next(iter(named.values()))
    print(f"exported {counts['trajectories']} trajectories ({args.format}) to {files}")
    if counts["skipped_unfinished"]:
        print(
            f"left out {counts['skipped_unfinished']} that ended without a final answer "
            "(--include-unfinished keeps them)",
            file=sys.stderr,
        )
    if counts["trajectories"] == 0:
        print(f"note: no trajectory with status {', '.join(statuses)}", file=sys.stderr)
    return 0
