"""Tables that stay on disk until read: record bodies (`LazyTable`) and an index of rows (`ColumnTable`).

A store of 50,000 trajectories holds about 350 MB of JSON; parsing all of it to show one record
takes seconds and gigabytes. So the snapshot says where each document of these tables is, and the
storage reads a document only when it is asked for:

- A **lazy table** keeps, per key, where the document's last whole version is (a line of the
  snapshot, or a line of the journal) and the journal lines that changed it since. Reading a key
  reads those lines and applies them. Nothing of a body is held in memory between reads.
- A **column table** holds small rows of the same fields (the listing index). The snapshot keeps
  it column by column, one line per field, so that opening a store parses none of it and reading
  it parses a few long JSON arrays instead of one object per row.

Snapshot layout (every line is `<crc32> <json>` as everywhere in the store; see docs/store.md):

    header
    [table, key, doc]             one line per document of each lazy table
    [table, "$<field>", values]   one line per field of each column table
    [table, key, doc]             the documents of every other table (small: shared data)
    ["$layout", table, {...}]     where the lines above are: keys and byte offsets
    {"end": true, "docs": N, "layout_at": offset}

An older lamsim reads such a snapshot as ordinary tables (it has no use for them), and a snapshot
an older lamsim wrote has no `layout_at`: it is read whole, as before.
"""

from __future__ import annotations

import json
import operator
import os
import zlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

LAYOUT = "$layout"  # the pseudo-table of the snapshot's layout lines
READ_CHUNK = 8 << 20  # bytes read at once when a compaction copies unchanged lines


class Damaged(ValueError):
    """A line read on demand is not what the layout says (raised with the file and line)."""

    def __init__(self, path: Path, line_no: int | None, why: str):
        super().__init__(why)
        self.path = path
        self.line_no = line_no
        self.why = why


class Source:
    """An open store file that documents are read from by offset (the same inode for as long as it is
    open, even after a compaction renames a new snapshot over it or deletes the journal)."""

    def __init__(self, path: Path, file: BinaryIO | None = None):
        self.path = path
        self.file = file if file is not None else open(path, "rb", buffering=0)  # noqa: SIM115 - held open
        self.fd = self.file.fileno()

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise Damaged(self.path, None, f"cut short: {length} bytes expected at offset {offset}, {len(data)} read")
        return data

    def close(self) -> None:
        self.file.close()


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One committed journal line: where it is and which change (`seq`) it was. Lines an earlier lamsim
    wrote are referred to whole; this lamsim's lines say where each op on a lazy table is (`JournalOp`)."""

    source: Source
    offset: int
    length: int
    line_no: int
    seq: int

    def ops(self) -> list:
        """The line's operations, decoded (shared with other readers of the line: do not change them)."""
        from lamsim_tui.store.storage import DamagedLine, decode_line

        cache_key = (id(self.source), self.offset)
        cached = _recent_lines.get(cache_key)
        if cached is not None and cached[0] is self.source:
            return cached[1]
        raw = self.source.read(self.offset, self.length).rstrip(b"\n")
        try:
            ops = decode_line(raw)["ops"]
        except (DamagedLine, KeyError, TypeError) as exc:
            raise Damaged(self.source.path, self.line_no, str(exc)) from None
        if len(_recent_lines) >= 4:  # records of one line are often read one after the other
            _recent_lines.pop(next(iter(_recent_lines)))
        _recent_lines[cache_key] = (self.source, ops)
        return ops

    def ops_on(self, table: str, key: str) -> list:
        return [op for op in self.ops() if op[0] == table and op[1] == key]


_recent_lines: dict[tuple[int, int], tuple[Source, list]] = {}


@dataclass(frozen=True, slots=True)
class JournalOp:
    """One operation inside a journal line, by its bytes: read without the rest of the line (a batch line
    holds hundreds of records). Its checksum is in the line's summary."""

    source: Source
    offset: int
    length: int
    crc: int
    line_no: int
    seq: int

    def read(self, table: str, key: str) -> list:
        raw = self.source.read(self.offset, self.length)
        if zlib.crc32(raw) != self.crc:
            raise Damaged(self.source.path, self.line_no, "checksum mismatch (of an operation in the line)")
        try:
            op = json.loads(raw)
        except ValueError as exc:
            raise Damaged(self.source.path, self.line_no, f"not JSON ({exc})") from None
        if not (isinstance(op, list) and len(op) >= 3 and op[0] == table and op[1] == key):
            raise Damaged(self.source.path, self.line_no, f"the line's summary says {table}/{key} is here; it is not")
        return op


Where = JournalLine | JournalOp | None


@dataclass(slots=True)
class _Change:
    """What happened to one key since the snapshot."""

    base: dict | JournalLine | JournalOp | None  # the whole document: in memory, where in the journal, or None: the snapshot's
    pending: list = field(default_factory=list)  # later changes: JournalOp / JournalLine, or (fields, removed) in a batch
    seq: int | None = None  # the last change that touched it (None: within a batch not yet written)


def _apply_set(doc: dict, fields: dict, removed: list) -> None:
    doc.update(fields)
    for name in removed:
        doc.pop(name, None)


def _same_line(a: Any, b: Where) -> bool:
    return isinstance(b, JournalLine) and isinstance(a, JournalLine) and a.source is b.source and a.offset == b.offset


class _Keyed(MutableMapping):
    """What both tables keep of their keys: the snapshot's keys in order (`_keys`, `_pos`), those
    gone since (`_gone`) and those added since, in order (`_new`); a change is `put` / `delete`."""

    _keys: list[str]
    _pos: dict[str, int]
    _gone: set[str]
    _new: dict[str, Any]

    def put(self, key: str, value: Any, where: Any) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._keys) - len(self._gone) + len(self._new)

    def __contains__(self, key: object) -> bool:
        return key in self._new or (key in self._pos and key not in self._gone)

    def __iter__(self) -> Iterator[str]:
        gone, new = self._gone, self._new
        if gone or new:
            for key in self._keys:
                if key not in gone and key not in new:
                    yield key
        else:
            yield from self._keys
        yield from new

    def __setitem__(self, key: str, value: Any) -> None:
        self.put(key, value, None)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.delete(key)


class LazyTable(_Keyed):
    """Documents read from the store's files when asked for; see the module docstring.

    Reading gives a fresh document each time (callers must not change it: `_Staged` copies).
    """

    kind = "lazy"

    def __init__(self, name: str):
        self.name = name
        self._source: Source | None = None
        self._keys: list[str] = []
        self._at: list[int] = []  # offset of each key's line, then the end of the last
        self._first_line = 0
        self._pos: dict[str, int] = {}
        self._changed: dict[str, _Change] = {}  # snapshot keys changed since the snapshot
        self._new: dict[str, _Change] = {}  # keys added since, in order
        self._gone: set[str] = set()  # snapshot keys deleted since

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def from_layout(cls, name: str, source: Source, layout: dict) -> LazyTable:
        table = cls(name)
        table._adopt(source, layout)
        return table

    def _adopt(self, source: Source | None, layout: dict) -> None:
        keys, at = layout["keys"], layout["at"]
        if len(at) != len(keys) + 1 or not all(map(operator.lt, at, at[1:])):
            raise Damaged(source.path if source else Path("?"), None, f"the layout of {self.name} is inconsistent")
        self._source = source
        self._keys = keys
        self._at = at
        self._first_line = layout["first_line"]
        self._pos = dict(zip(keys, range(len(keys)), strict=True))
        self._changed = {}
        self._new = {}
        self._gone = set()

    @classmethod
    def from_docs(cls, name: str, docs: dict[str, dict]) -> LazyTable:
        """A table read whole (a snapshot written by an earlier lamsim): held in memory until compacted."""
        table = cls(name)
        table._new = {key: _Change(doc) for key, doc in docs.items()}
        return table

    # -- the mapping -------------------------------------------------------------------------
    def __getitem__(self, key: str) -> dict:
        change = self._new.get(key)
        if change is None:
            if key not in self._pos or key in self._gone:
                raise KeyError(key)
            change = self._changed.get(key)
            if change is None:
                return self._read_snapshot(key)
        return self._materialize(key, change)

    def seq(self, key: str) -> int | None:
        """The change that last touched this key since the snapshot (None: unchanged, or in a batch)."""
        change = self._new.get(key) or self._changed.get(key)
        return change.seq if change is not None else None

    def changed_keys(self) -> Iterator[str]:
        yield from self._changed
        yield from self._new

    # -- reading -----------------------------------------------------------------------------
    def _read_snapshot(self, key: str) -> dict:
        from lamsim_tui.store.storage import DamagedLine, decode_line

        i = self._pos[key]
        raw = self._source.read(self._at[i], self._at[i + 1] - self._at[i]).rstrip(b"\n")
        try:
            entry = decode_line(raw)
        except DamagedLine as exc:
            raise Damaged(self._source.path, self._first_line + i, str(exc)) from None
        if not (isinstance(entry, list) and len(entry) == 3 and entry[0] == self.name and entry[1] == key):
            raise Damaged(self._source.path, self._first_line + i, f"the layout says {self.name}/{key} is here; it is not")
        return entry[2]

    def _materialize(self, key: str, change: _Change) -> dict:
        base = change.base
        if isinstance(base, dict):
            doc = json.loads(json.dumps(base, ensure_ascii=False)) if change.pending else base
        elif isinstance(base, JournalOp):
            doc = base.read(self.name, key)[3]
        elif isinstance(base, JournalLine):
            doc = None
            for op in base.ops_on(self.name, key):
                if op[2] == "put":
                    doc = json.loads(json.dumps(op[3], ensure_ascii=False))  # the decoded line is shared
                elif op[2] == "set" and doc is not None:
                    _apply_set(doc, op[3], op[4])
            if doc is None:
                raise Damaged(base.source.path, base.line_no, f"the journal line does not hold {self.name}/{key}")
        else:
            doc = self._read_snapshot(key)
        for item in change.pending:
            if isinstance(item, JournalOp):
                op = item.read(self.name, key)
                _apply_set(doc, op[3], op[4])
            elif isinstance(item, JournalLine):
                for op in item.ops_on(self.name, key):
                    if op[2] == "set":
                        _apply_set(doc, op[3], op[4])
            else:
                _apply_set(doc, *item)
        return doc

    # -- changing: what a journal op did; `where` is where it is (None: in a batch not yet written) --
    def _change_of(self, key: str) -> _Change | None:
        change = self._new.get(key)
        if change is None and key in self._pos and key not in self._gone:
            change = self._changed.setdefault(key, _Change(None))
        return change

    def put(self, key: str, doc: dict | None, where: Where) -> None:
        change = _Change(where if where is not None else doc, [], where.seq if where is not None else None)
        if key in self._pos and key not in self._gone:
            self._changed[key] = change
        else:
            self._new[key] = change

    def set(self, key: str, fields: dict | None, removed: list | None, where: Where) -> bool:
        """`fields` and `removed` may be None when `where` is a `JournalOp` (then they are read from it)."""
        change = self._change_of(key)
        if change is None:
            return False
        if where is not None:
            change.seq = where.seq
            if _same_line(change.base, where) or (change.pending and _same_line(change.pending[-1], where)):
                return True  # that line is read whole when the document is
        if isinstance(change.base, dict) and not change.pending:  # held in memory: change it there
            if fields is None:
                op = where.read(self.name, key)
                fields, removed = op[3], op[4]
            _apply_set(change.base, fields, removed)
        else:
            change.pending.append(where if where is not None else (fields, removed))
        return True

    def delete(self, key: str) -> None:
        if self._new.pop(key, None) is None and key in self._pos:
            self._gone.add(key)
            self._changed.pop(key, None)

    def clear(self) -> None:
        self._gone = set(self._keys)
        self._changed = {}
        self._new = {}

    def written(self, located: list[tuple[list, JournalOp]]) -> None:
        """A batch was written: refer to where its ops are instead of holding what they put in memory."""
        cleaned: set[str] = set()
        for op, where in located:
            key, kind = op[1], op[2]
            change = self._new.get(key) or self._changed.get(key)
            if change is None:
                continue
            change.seq = where.seq
            if kind == "put":
                change.base = where
                change.pending = []
                cleaned.add(key)
            elif kind == "set":
                if isinstance(change.base, dict):
                    continue  # applied to the document in memory
                if key not in cleaned:  # what the batch held as (fields, removed) is in the line now
                    change.pending = [p for p in change.pending if not isinstance(p, tuple)]
                    cleaned.add(key)
                change.pending.append(where)

    # -- compaction ----------------------------------------------------------------------------
    def write_lines(self, out: BinaryIO, first_line: int, encode) -> dict:
        """Write one line per document to `out` (unchanged ones copied byte for byte); returns the layout."""
        keys: list[str] = []
        at: list[int] = []
        offset = out.tell()
        run: list[str] = []  # unchanged snapshot keys whose lines follow each other

        def flush_run() -> None:
            nonlocal offset
            if not run:
                return
            start, end = self._at[self._pos[run[0]]], self._at[self._pos[run[-1]] + 1]
            position = start
            while position < end:
                data = self._source.read(position, min(READ_CHUNK, end - position))
                out.write(data)
                position += len(data)
            for key in run:
                i = self._pos[key]
                keys.append(key)
                at.append(offset + self._at[i] - start)
            offset += end - start
            run.clear()

        for key in self:
            if key not in self._changed and key not in self._new:
                if run and self._pos[key] != self._pos[run[-1]] + 1:
                    flush_run()
                run.append(key)
                continue
            flush_run()
            line = encode([self.name, key, self[key]])
            out.write(line)
            keys.append(key)
            at.append(offset)
            offset += len(line)
        flush_run()
        at.append(offset)
        return {"kind": self.kind, "keys": keys, "at": at, "first_line": first_line}

    def rebase(self, source: Source, layout: dict) -> None:
        """After a compaction: everything is in the new snapshot now."""
        self._adopt(source, layout)


class ColumnTable(_Keyed):
    """Rows (lists) of the same fields, kept column by column in the snapshot; see the module docstring."""

    kind = "columns"

    def __init__(self, name: str, fields: tuple[str, ...]):
        self.name = name
        self.fields = fields  # what this lamsim writes; `stored_fields` is what the snapshot holds
        self.stored_fields: tuple[str, ...] | None = fields
        self._source: Source | None = None
        self._keys: list[str] = []
        self._pos: dict[str, int] = {}
        self._lines: list[tuple[int, int, int]] = []  # (offset, length, line_no) of each column's line
        self._columns: dict[int, list] = {}  # parsed columns of the snapshot
        self._rows: dict[str, list] = {}  # snapshot keys whose row changed since
        self._new: dict[str, list] = {}  # keys added since, in order
        self._gone: set[str] = set()
        self._seqs: dict[str, int | None] = {}

    @classmethod
    def from_layout(cls, name: str, fields: tuple[str, ...], source: Source, layout: dict) -> ColumnTable:
        table = cls(name, fields)
        table._adopt(source, layout)
        return table

    def _adopt(self, source: Source, layout: dict) -> None:
        stored = tuple(layout["fields"])
        at = layout["at"]
        if len(at) != len(stored) + 1:
            raise Damaged(source.path, None, f"the layout of {self.name} is inconsistent")
        self._source = source
        self.stored_fields = stored
        self._keys = layout["keys"]
        self._pos = dict(zip(self._keys, range(len(self._keys)), strict=True))
        first = layout["first_line"]
        self._lines = [(at[i], at[i + 1] - at[i], first + i) for i in range(len(stored))]
        self._columns = {}
        self._rows = {}
        self._new = {}
        self._gone = set()
        self._seqs = {}

    @classmethod
    def from_docs(cls, name: str, fields: tuple[str, ...], rows: dict[str, list]) -> ColumnTable:
        table = cls(name, fields)
        table.stored_fields = fields if rows else None  # rows from an earlier lamsim: unknown fields
        table._new = dict(rows)
        return table

    def reset(self, rows: dict[str, list]) -> None:
        """Everything replaced (the index rebuilt): held in memory until the next compaction."""
        self._source = None
        self.stored_fields = self.fields
        self._keys, self._pos, self._lines, self._columns = [], {}, [], {}
        self._rows, self._gone, self._seqs = {}, set(), {}
        self._new = dict(rows)

    # -- the mapping -------------------------------------------------------------------------
    def __getitem__(self, key: str) -> list:
        row = self._new.get(key)
        if row is not None:
            return row
        if key not in self._pos or key in self._gone:
            raise KeyError(key)
        row = self._rows.get(key)
        if row is not None:
            return row
        i = self._pos[key]
        return [self.column(j)[i] for j in range(len(self.stored_fields or ()))]

    def column(self, index: int) -> list:
        """Column `index` of the snapshot (parsed once)."""
        values = self._columns.get(index)
        if values is None:
            from lamsim_tui.store.storage import DamagedLine, decode_line

            offset, length, line_no = self._lines[index]
            try:
                entry = decode_line(self._source.read(offset, length).rstrip(b"\n"))
            except DamagedLine as exc:
                raise Damaged(self._source.path, line_no, str(exc)) from None
            field_name = self.stored_fields[index]
            if not (isinstance(entry, list) and len(entry) == 3 and entry[1] == "$" + field_name
                    and isinstance(entry[2], list) and len(entry[2]) == len(self._keys)):
                raise Damaged(self._source.path, line_no, f"the layout says column {field_name} is here; it is not")
            values = self._columns[index] = entry[2]
        return values

    def keys_and_values(self, index: int) -> tuple[list[str], list]:
        """Every key, in order, and its row's value at `index` (lists: fast when little changed since the
        snapshot)."""
        if not (self._rows or self._gone or self._new):
            return list(self._keys), list(self.column(index)) if self._keys else []
        pairs = list(self.values(index))
        return [k for k, _v in pairs], [v for _k, v in pairs]

    def values(self, index: int) -> Iterator[tuple[str, Any]]:
        """(key, row[index]) for every row, in order, with what changed since the snapshot."""
        if self._keys:
            column = self.column(index)
            changed, gone, new = self._rows, self._gone, self._new
            if not (changed or gone or new):
                yield from zip(self._keys, column, strict=True)
            else:
                for key, value in zip(self._keys, column, strict=True):
                    if key in gone or key in new:
                        continue
                    row = changed.get(key)
                    yield key, value if row is None else row[index]
        for key, row in self._new.items():
            yield key, row[index]

    def rows_of(self, keys: list[str]) -> list[tuple]:
        """The rows of `keys` (present ones), read column by column: far cheaper than row by row."""
        width = len(self.stored_fields or ())
        columns = [self.column(j) for j in range(width)] if self._keys else []
        out = []
        pos, changed, new = self._pos, self._rows, self._new
        if columns and not (changed or new or self._gone):
            indexes = [pos[key] for key in keys]
            return list(zip(*[[column[i] for i in indexes] for column in columns], strict=True)) if indexes else []
        for key in keys:
            row = new.get(key) or changed.get(key)
            if row is None:
                i = pos[key]
                row = tuple(column[i] for column in columns)
            out.append(row)
        return out

    def seq(self, key: str) -> int | None:
        return self._seqs.get(key)

    def changed_keys(self) -> Iterator[str]:
        yield from self._rows
        yield from self._new

    # -- changing ------------------------------------------------------------------------------
    def put(self, key: str, row: list, line: JournalLine | None) -> None:
        if not isinstance(row, list):
            from lamsim_tui.store.storage import DamagedLine

            raise DamagedLine(f"a row of {self.name} is not a list")
        if key in self._pos and key not in self._gone:
            self._rows[key] = row
        else:
            self._new[key] = row
        self._seqs[key] = line.seq if line is not None else None

    def set(self, key: str, fields: dict, removed: list, line: JournalLine | None) -> bool:
        return False  # rows are replaced whole, never changed field by field

    def delete(self, key: str) -> None:
        if self._new.pop(key, None) is None and key in self._pos:
            self._gone.add(key)
            self._rows.pop(key, None)
        self._seqs.pop(key, None)

    def clear(self) -> None:
        self._gone = set(self._keys)
        self._rows, self._new, self._seqs = {}, {}, {}

    def written_line(self, ops: list, line: JournalLine) -> None:
        for op in ops:
            if op[0] == self.name and op[2] == "put":
                self._seqs[op[1]] = line.seq

    # -- compaction ----------------------------------------------------------------------------
    def write_lines(self, out: BinaryIO, first_line: int, encode) -> dict:
        keys = list(self)
        width = len(self.fields)
        columns: list[list] = [[] for _ in range(width)]
        for key in keys:
            row = self[key]
            if len(row) != width:
                raise ValueError(f"a row of {self.name} has {len(row)} fields, not {width}")
            for j in range(width):
                columns[j].append(row[j])
        at = []
        for j, name in enumerate(self.fields):
            at.append(out.tell())
            out.write(encode([self.name, "$" + name, columns[j]]))
        at.append(out.tell())
        return {"kind": self.kind, "keys": keys, "fields": list(self.fields), "at": at, "first_line": first_line}

    def rebase(self, source: Source, layout: dict) -> None:
        self._adopt(source, layout)


def lines_written(layout: dict) -> int:
    return len(layout["at"]) - 1


def apply_op(table: LazyTable | ColumnTable, op: list, line: JournalLine | None) -> None:
    """One journal operation on a table of this module (the others are plain dicts: `storage.apply_ops`)."""
    from lamsim_tui.store.storage import DamagedLine

    key, kind = op[1], op[2]
    if kind == "put":
        table.put(key, op[3], line)
    elif kind == "set":
        if not table.set(key, op[3], op[4], line):
            raise DamagedLine(f"update of unknown document {table.name}/{key}")
    elif kind == "del":
        table.delete(key)
    elif kind in ("clear", "drop"):  # a table of the store's layout is emptied, never removed
        table.clear()
    else:
        raise DamagedLine(f"unknown operation {kind!r}")


def apply_summaries(tables: dict[str, Any], summaries: list, line: JournalLine, ops_at: int) -> None:
    """What a journal line did to lazy tables, from its summary (`[table, key, kind, start, length, crc]`,
    `start` counted from the line's ops array at `ops_at`): the documents stay in the line until read."""
    from lamsim_tui.store.storage import DamagedLine

    for name, key, kind, start, length, crc in summaries:
        table: LazyTable = tables[name]
        where = JournalOp(line.source, line.offset + ops_at + start, length, crc, line.line_no, line.seq)
        if kind == "put":
            table.put(key, None, where)
        elif kind == "set":
            if not table.set(key, None, None, where):
                raise DamagedLine(f"update of unknown document {name}/{key}")
        elif kind == "del":
            table.delete(key)
        elif kind in ("clear", "drop"):
            table.clear()
        else:
            raise DamagedLine(f"unknown operation {kind!r}")


def layout_tables(layout: dict[str, tuple[str, ...] | None]) -> dict[str, LazyTable | ColumnTable]:
    """Empty tables for a storage's layout: name -> None (a lazy table) or the fields of a column table."""
    return {name: LazyTable(name) if fields is None else ColumnTable(name, fields) for name, fields in layout.items()}
