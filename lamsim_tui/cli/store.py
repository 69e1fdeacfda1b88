"""`lamsim store check DIR` and `lamsim store salvage DIR NEWDIR`: find and recover damage.

`check` reads every line of the snapshot and the journal and lists the damaged ones. `salvage`
copies everything readable into a new store (the damaged store is only read, never changed) and
says what it had to leave out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lamsim_tui.errors import StoreError
from lamsim_tui.store.storage import (
    SNAPSHOT,
    DamagedLine,
    JournalStorage,
    apply_ops,
    decode_line,
)


def scan(directory: Path) -> tuple[dict[str, dict[str, dict]], list[str], int]:
    """Read all that can be read. Returns (tables, problems, changes applied)."""
    tables: dict[str, dict[str, dict]] = {}
    problems: list[str] = []
    snapshot = directory / SNAPSHOT
    generation = None
    if not snapshot.exists():
        problems.append(f"{snapshot}: missing")
    else:
        lines = snapshot.read_bytes().split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for number, raw in enumerate(lines, 1):
            try:
                entry = decode_line(raw)
            except DamagedLine as exc:
                problems.append(f"{snapshot}:{number}: {exc}")
                continue
            if number == 1 and isinstance(entry, dict):
                generation = entry.get("generation")
            elif isinstance(entry, list) and len(entry) == 3:
                name, key, doc = entry
                tables.setdefault(name, {})[key] = doc
    journals = sorted(directory.glob("journal.*.jsonl"), key=lambda p: int(p.name.split(".")[1]))
    if generation is not None:
        journals = [p for p in journals if int(p.name.split(".")[1]) >= generation]
    applied = 0
    for journal in journals:
        data = journal.read_bytes()
        lines = data.split(b"\n")
        tail = lines.pop() if lines else b""
        for number, raw in enumerate(lines, 1):
            try:
                entry = decode_line(raw)
                if number > 1:
                    apply_ops(tables, entry["ops"])
                    applied += 1
            except (DamagedLine, KeyError, TypeError, IndexError) as exc:
                problems.append(f"{journal}:{number}: {exc}")
        if tail:
            problems.append(
                f"{journal}:{len(lines) + 1}: unfinished last write ({len(tail)} bytes; never acknowledged)"
            )
    return tables, problems, applied


def add_commands(sub: Any) -> None:
    store = sub.add_parser("store", help="find and recover damaged stores",
                           description="Store maintenance (see docs/store.md, 'Recovery').")
    actions = store.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    p = actions.add_parser("check", help="list damaged lines (exit 1 if any)")
    p.add_argument("store", metavar="DIR")
    p.set_defaults(handler=cmd_store)
    p = actions.add_parser("salvage", help="copy every readable record into a new store")
    p.add_argument("store", metavar="DIR")
    p.add_argument("new_store", metavar="NEWDIR")
    p.set_defaults(handler=cmd_store)


def cmd_store(args: argparse.Namespace) -> int:
    directory = Path(args.store)
    if not directory.is_dir():
        print(f"lamsim: {directory}: no such folder", file=sys.stderr)
        return 2
    tables, problems, applied = scan(directory)
    count = len(tables.get("trajectories", {}))
    for problem in problems:
        print(problem)
    if args.store_command == "check":
        print(f"{count} trajectories readable, {applied} journal changes, {len(problems)} problem(s)")
        return 1 if problems else 0
    target = Path(args.new_store)
    if target.exists() and any(target.iterdir()):
        print(f"lamsim: {target}: must be a new or empty folder", file=sys.stderr)
        return 2
    try:
        storage = JournalStorage(target)
    except StoreError as exc:
        print(f"lamsim: {exc}", file=sys.stderr)
        return 2
    try:
        storage._tables = tables  # a fresh store: its first snapshot is everything we could read
        storage.compact()
    finally:
        storage.close()
    print(f"salvaged {count} trajectories into {target}; left out: {len(problems)} damaged line(s) listed above")
    return 0

