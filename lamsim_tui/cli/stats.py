"""`lamsim stats`: statistics of a store, per template and overall."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lamsim_tui.cli.review import _open


def add_commands(sub: Any) -> None:
    stats = sub.add_parser("stats", help="statistics per template and overall")
    stats.add_argument("--store", required=True, metavar="DIR")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(handler=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.stats import compute, format_table

    with _open(args, write=False) as store:
        stats = compute(store)
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(format_table(stats))
    return 0
