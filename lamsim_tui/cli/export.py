"""`lamsim export`: write training data from a store (docs/export.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lamsim_tui.cli.review import _open, _statuses


def add_commands(sub: Any) -> None:
    export = sub.add_parser(
        "export",
        help="write training data (chat, sharegpt, xlam; SFT, preference pairs, KTO)",
        description="Export trajectories as training data, with a dataset card and a sidecar. See docs/export.md.",
    )
    export.add_argument("--store", required=True, metavar="DIR")
    export.add_argument("--format", required=True, choices=("chat", "sharegpt", "xlam"),
                        help="chat: TRL / OpenAI messages; sharegpt: LLaMA-Factory; xlam: ActionStudio")
    export.add_argument("--kind", default="sft", choices=("sft", "pairs", "kto"),
                        help="sft (default): conversations; pairs: step-level preference pairs; kto: labelled "
                             "trajectories (default statuses accepted and discarded)")
    export.add_argument("--status", action="append", metavar="S",
                        help="statuses to export (default: accepted; kto: accepted,discarded)")
    export.add_argument("--out", required=True, metavar="FILE",
                        help="output file; a FILE.meta.json sidecar and a README.md dataset card go beside it")
    export.add_argument("--keep-rejected", action="store_true",
                        help="keep steps feedback rejected as context (chat: weight 0); left out by default")
    export.add_argument("--clean", action="store_true",
                        help="leave out steps feedback rejected (the default; kept for older scripts)")
    export.add_argument("--strict", action="store_true",
                        help="also leave out executed calls whose arguments were invented (never seen before)")
    export.add_argument("--system", default="neutral", choices=("neutral", "original"),
                        help="system turn: format-neutral rules and the pack's policy (default), or the agent's "
                             "own prompt")
    export.add_argument("--json-strings", action="store_true",
                        help="tools and call arguments as JSON strings (datasets < 4.7, LLaMA-Factory's stack)")
    export.add_argument("--string-arguments", action="store_true",
                        help="chat, xlam: call arguments as JSON strings (OpenAI fine-tuning files)")
    export.add_argument("--no-thoughts", action="store_true",
                        help="leave the agent's thoughts out of calls and answers (LLaMA-Factory < 0.9.4)")
    export.add_argument("--parquet", action="store_true", help="write Parquet instead of JSON (needs `datasets`)")
    export.add_argument("--split", metavar="eval=F", help="also split into FILE.train/.eval, e.g. eval=0.1")
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
    export.add_argument("--license", default="unknown", metavar="ID",
                        help="licence of the data for the dataset card (an SPDX id such as apache-2.0)")
    export.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.export import DEFAULT_STATUSES, ExportError, export, parse_split
    from lamsim_tui.store import STATUSES

    if args.clean and args.keep_rejected:
        raise ExportError("--clean and --keep-rejected contradict each other", where="--keep-rejected",
                          hint="rejected steps are left out by default; --keep-rejected keeps them as context")
    fraction = parse_split(args.split)
    statuses = list(DEFAULT_STATUSES[args.kind]) if not args.status else (_statuses(args.status) or list(STATUSES))
    with _open(args, write=False) as store:
        meta = export(
            store,
            args.out,
            fmt=args.format,
            kind=args.kind,
            status=statuses,
            keep_rejected=args.keep_rejected,
            strict=args.strict,
            system=args.system,
            json_strings=args.json_strings,
            string_arguments=args.string_arguments,
            thoughts=not args.no_thoughts,
            parquet=args.parquet,
            eval_fraction=fraction,
            split_by=args.by,
            seed=args.seed,
            include_unfinished=args.include_unfinished,
            license_id=args.license,
        )
    counts = meta["counts"]
    named = meta["files"]
    files = ", ".join(f"{name}: {path}" for name, path in named.items()) if len(named) > 1 else next(iter(named.values()))
    what = f"{counts['rows']} preference pairs from {counts['trajectories']} trajectories" if args.kind == "pairs" \
        else f"{counts['trajectories']} trajectories"
    print(f"exported {what} ({args.format}{'' if args.kind == 'sft' else ', ' + args.kind}) to {files}")
    targets = meta["targets"]
    left_out = counts["steps_left_out_by_clean"]
    rejected = f"rejected steps {meta['rejected_steps']}" + (f" ({left_out})" if left_out else "")
    if args.strict:
        rejected += f"; invented calls left out: {counts['calls_left_out_by_strict']}"
    if args.kind != "pairs":
        print(f"{rejected}; rejected share: {targets['rejected_turns']} of {targets['assistant_turns']} assistant "
              f"turns ({100 * targets['rejected_share']:.1f}%), of training targets "
              f"{100 * targets['rejected_share_of_targets']:.1f}%")
    if args.kind == "kto":
        labels = counts["labels"]
        print(f"labels: {labels['desirable']} desirable, {labels['undesirable']} undesirable")
    for note in meta["notes"]:
        print(f"note: {note}", file=sys.stderr)
    if args.string_arguments or args.json_strings:
        print("note: call arguments are JSON strings; decode them before a Hugging Face chat template that applies "
              "tojson to them (docs/export.md)", file=sys.stderr)
    if counts["skipped_unfinished"]:
        print(
            f"left out {counts['skipped_unfinished']} that ended without a final answer "
            "(--include-unfinished keeps them)",
            file=sys.stderr,
        )
    if counts["trajectories"] == 0:
        print(f"note: no trajectory with status {', '.join(statuses)}", file=sys.stderr)
    return 0
