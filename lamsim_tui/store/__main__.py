"""Store maintenance: `python -m lamsim_tui.store check DIR` and `... salvage DIR NEWDIR`.

`check` reads every line of the snapshot and the journal and lists the damaged ones. `salvage`
copies everything readable into a new store (the damaged store is only read, never changed) and
says what it had to leave out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lamsim_tui.store", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="list damaged lines")
    p.add_argument("store")
    p = sub.add_parser("salvage", help="copy every readable record into a new store")
    p.add_argument("store")
    p.add_argument("new_store")
    args = parser.parse_args(argv)
    directory = Path(args.store)
    if not directory.is_dir():
        print(f"lamsim: {directory}: no such folder", file=sys.stderr)
        return 2
    tables, problems, applied = scan(directory)
    count = len(tables.get("trajectories", {}))
    for problem in problems:
        print(problem)
    if args.command == "check":
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


if __name__ == "__main__":
    raise SystemExit(main())
