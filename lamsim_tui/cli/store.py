"""`lamsim store check DIR`, `lamsim store salvage DIR NEWDIR`, `lamsim store merge DEST SRC...`.

`check` reads every line of the snapshot and the journal and lists the damaged ones. `salvage`
copies everything readable into a new store (the damaged store is only read, never changed) and
says what it had to leave out. `merge` joins stores written on several machines into one, by
trajectory id, with their review decisions (see `lamsim_tui.store.merge`); trajectories the stores
reviewed differently are listed, not resolved, and make it exit with status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def scan(directory: Path) -> tuple[dict[str, dict[str, dict]], list[str], int]:
    """Read all that can be read. Returns (tables, problems, changes applied)."""
    from lamsim_tui.store.lazy import LAYOUT
    from lamsim_tui.store.storage import SNAPSHOT, DamagedLine, apply_ops, decode_line
    from lamsim_tui.store.store import LISTINGS

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
    for derived in (LAYOUT, LISTINGS):  # where documents were, and the index: rebuilt from the records
        tables.pop(derived, None)
    return tables, problems, applied


def add_commands(sub: Any) -> None:
    store = sub.add_parser("store", help="find and recover damaged stores; merge stores",
                           description="Store maintenance (see docs/store.md, 'Recovery' and 'Merging stores').")
    actions = store.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    p = actions.add_parser("check", help="list damaged lines (exit 1 if any)")
    p.add_argument("store", metavar="DIR")
    p.set_defaults(handler=cmd_store)
    p = actions.add_parser("salvage", help="copy every readable record into a new store")
    p.add_argument("store", metavar="DIR")
    p.add_argument("new_store", metavar="NEWDIR")
    p.set_defaults(handler=cmd_store)
    p = actions.add_parser("merge", help="join stores written on several machines into DEST (by trajectory id)",
                           description="Merge the trajectories and review decisions of each SRC store into DEST "
                           "(created if missing). Trajectories the stores reviewed differently are listed and left "
                           "as DEST has them (exit status 1). Merging again changes nothing.")
    p.add_argument("dest", metavar="DEST")
    p.add_argument("sources", metavar="SRC", nargs="+")
    p.set_defaults(handler=cmd_merge)


def cmd_merge(args: argparse.Namespace) -> int:
    from lamsim_tui.store.merge import merge

    tty = sys.stderr.isatty()

    def progress(source: Path, done: int, total: int) -> None:
        if tty:
            sys.stderr.write(f"\r{source}: {done:,}/{total:,}")
            sys.stderr.flush()

    reports = merge(args.dest, args.sources, progress=progress)
    if tty:
        sys.stderr.write("\r\033[K")
    conflicts = 0
    for report in reports:
        print(report.summary())
        for conflict in report.conflicts:
            print("  conflict " + conflict.describe())
        conflicts += len(report.conflicts)
    if conflicts:
        print(f"lamsim: {conflicts} trajectory(ies) were reviewed differently; {args.dest} keeps its own decisions "
              "for them. Review them there (`lamsim review --store DEST show ID`).", file=sys.stderr)
        return 1
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    from lamsim_tui.errors import StoreError
    from lamsim_tui.store.storage import JournalStorage
    from lamsim_tui.store.store import open_store

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
    try:
        open_store(target).close()  # builds the new store's index from the salvaged records
    except StoreError as exc:
        print(f"lamsim: {exc}", file=sys.stderr)
        return 2
    print(f"salvaged {count} trajectories into {target}; left out: {len(problems)} damaged line(s) listed above")
    return 0

