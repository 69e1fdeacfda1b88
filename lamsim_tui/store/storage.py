"""A TinyDB storage that survives `kill -9`: a snapshot plus an append-only journal, one writer.

Files in a store folder (see docs/store.md):

    store.snapshot.jsonl   every document as of the last compaction (written to a temp file, fsynced,
                           then renamed over the old one: it is always whole)
    journal.<G>.jsonl      every change since snapshot generation G, one line per commit, fsynced
                           before the commit returns
    writer.lock            held (flock) by the one process that may write

Every line is `<crc32 hex> <json>`; a line whose checksum fails is damaged. A damaged *last* journal
line is the unfinished write of a crash (it was never acknowledged) and is dropped; damage anywhere
else stops the store from opening, with the file and line named and nothing changed.

TinyDB's own `Table` rewrites whole tables through `Storage.write`; `JournalTable` instead stages the
documents an operation touches and commits only those, so a write costs the size of what changed,
not the size of the store. `JournalStorage.read/write` still honour the plain `Storage` interface
(correct, O(store)) for TinyDB operations that go around tables (`drop_table`, `drop_tables`).
"""

from __future__ import annotations

import errno
import fcntl
import gc
import json
import os
import socket
import sys
import threading
import time
import zlib
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from lamsim_tui.errors import StoreError
from lamsim_tui.store.lazy import (
    LAYOUT,
    ColumnTable,
    Damaged,
    JournalLine,
    JournalOp,
    LazyTable,
    Source,
    apply_op,
    apply_summaries,
    layout_tables,
    lines_written,
)

STORE_FORMAT = "lamsim-store"
JOURNAL_FORMAT = "lamsim-journal"
STORE_VERSION = 1  # version of the file layout (records carry their own schema_version)

SNAPSHOT = "store.snapshot.jsonl"
LOCK = "writer.lock"

RECOVERY_HINT = (
    "nothing was changed. Keep a copy of the folder. `lamsim store check DIR` lists every "
    "damaged line; `lamsim store salvage DIR NEWDIR` copies every readable record into a new "
    "store (see docs/store.md, 'Recovery')."
)


def journal_name(generation: int) -> str:
    return f"journal.{generation}.jsonl"


# ----- line codec ---------------------------------------------------------------------------------


_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_DUMPS_ASCII = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def json_bytes(obj: Any) -> bytes:
    """Compact JSON in UTF-8; a lone surrogate (model output, a tool's text) is escaped, so it reads back the same."""
    try:
        return _DUMPS(obj).encode("utf-8")
    except UnicodeEncodeError:
        return _DUMPS_ASCII(obj).encode("ascii")


def encode_line(obj: Any) -> bytes:
    body = json_bytes(obj)
    return b"%08x " % zlib.crc32(body) + body + b"\n"


class DamagedLine(ValueError):
    pass


def decode_line(line: bytes) -> Any:
    if len(line) < 10 or line[8:9] != b" ":
        raise DamagedLine("no checksum")
    try:
        expected = int(line[:8], 16)
    except ValueError:
        raise DamagedLine("no checksum") from None
    body = line[9:]
    if zlib.crc32(body) != expected:
        raise DamagedLine("checksum mismatch")
    try:
        return json.loads(body)
    except ValueError as exc:  # a line that passed its checksum but is not JSON: written by something else
        raise DamagedLine(f"not JSON ({exc})") from None


_DECODER = json.JSONDecoder()


def decode_commit(line: bytes) -> Any:
    """A journal commit line, checked; a line this lamsim wrote with a summary of the ops on tables of
    the layout (`"lazy": [[table, key, kind], ...]`, before `"ops"`) is decoded up to there only: the
    record bodies in it are read when a record is (see `lamsim_tui.store.lazy`)."""
    if len(line) < 10 or line[8:9] != b" ":
        raise DamagedLine("no checksum")
    try:
        expected = int(line[:8], 16)
    except ValueError:
        raise DamagedLine("no checksum") from None
    body = line[9:]
    if zlib.crc32(body) != expected:
        raise DamagedLine("checksum mismatch")
    try:
        text = body.decode("utf-8")
        if text.startswith('{"seq":'):
            seq, i = _DECODER.raw_decode(text, 7)
            if text.startswith(',"eager":', i):
                eager, i = _DECODER.raw_decode(text, i + 9)
                if text.startswith(',"lazy":', i):
                    lazy, i = _DECODER.raw_decode(text, i + 8)
                    if text.startswith(',"ops":', i) and text.endswith("}"):
                        ops_at = 9 + len(text[:i + 7].encode("utf-8"))  # where the ops array starts in the line
                        return {"seq": seq, "eager": eager, "lazy": lazy, "ops_at": ops_at}
        return json.loads(text)
    except ValueError as exc:  # passed its checksum but is not JSON: written by something else
        raise DamagedLine(f"not JSON ({exc})") from None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_copy(doc: Any) -> Any:
    return json.loads(json.dumps(doc, ensure_ascii=False))


def _damaged(path: Path, line_no: int | None, why: str) -> StoreError:
    where = f"{path}:{line_no}" if line_no else str(path)
    return StoreError(f"store file is damaged: {why}", where=where, hint=RECOVERY_HINT)


# ----- applying operations ------------------------------------------------------------------------
# An operation is a list: [table, key, "put", doc] | [table, key, "set", {field: value}, [removed fields]]
# | [table, key, "del"] | [table, None, "clear"] | [table, None, "drop"].


def apply_ops(tables: dict[str, dict[str, dict]], ops: list, line: JournalLine | None = None) -> None:
    """Apply one commit's ops; `line` is the journal line they were read from (tables of the store's
    layout refer to it instead of keeping the documents, see `lamsim_tui.store.lazy`)."""
    for op in ops:
        name, key, kind = op[0], op[1], op[2]
        table = tables.get(name)
        if isinstance(table, (LazyTable, ColumnTable)):
            apply_op(table, op, line)
            continue
        if kind == "put":
            tables.setdefault(name, {})[key] = op[3]
        elif kind == "set":
            doc = tables.setdefault(name, {}).get(key)
            if doc is None:
                raise DamagedLine(f"update of unknown document {name}/{key}")
            doc.update(op[3])
            for field in op[4]:
                doc.pop(field, None)
        elif kind == "del":
            tables.get(name, {}).pop(key, None)
        elif kind == "clear":
            tables[name] = {}
        elif kind == "drop":
            tables.pop(name, None)
        else:
            raise DamagedLine(f"unknown operation {kind!r}")


def _diff_doc(name: str, key: str, old: dict | None, new: dict) -> list | None:
    if old is None:
        return [name, key, "put", new]
    changed = {f: v for f, v in new.items() if f not in old or old[f] != v}
    removed = [f for f in old if f not in new]
    if not changed and not removed:
        return None
    return [name, key, "set", changed, removed]


# ----- reading files ------------------------------------------------------------------------------


class Loaded:
    __slots__ = ("tables", "generation", "seq", "journal_size", "journal_lines", "torn", "snapshot_size", "meta",
                 "sources", "journal_source")

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, dict]] = {}
        self.generation = 0
        self.seq = 0
        self.journal_size = 0  # bytes of whole, valid journal lines (where the next commit goes)
        self.journal_lines = 0
        self.torn = b""  # unfinished tail of the journal (a crash during a write)
        self.snapshot_size = 0
        self.meta: dict | None = None  # the snapshot header's "meta" (None: written by an earlier lamsim)
        self.sources: list[Source] = []  # open files that documents are read from on demand
        self.journal_source: Source | None = None


def _check_version(path: Path, header: Any, fmt: str) -> None:
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise StoreError(
            f"not a lamsim store file (first line is not a {fmt} header)",
            where=f"{path}:1",
            hint="point --store at a folder made by lamsim, or at an empty/new folder",
        )
    version = header.get("store_version")
    if not isinstance(version, int) or version > STORE_VERSION:
        raise StoreError(
            f"store layout version {version} is newer than this lamsim understands ({STORE_VERSION})",
            where=f"{path}:1",
            hint="upgrade lamsim to open this store; nothing was changed",
        )
    if version < STORE_VERSION:  # no older layout has existed; a future one adds its migration here
        raise StoreError(f"store layout version {version} cannot be migrated", where=f"{path}:1", hint=RECOVERY_HINT)


def read_snapshot_header(directory: Path) -> dict | None:
    path = directory / SNAPSHOT
    try:
        with open(path, "rb") as f:
            first = f.readline()
    except FileNotFoundError:
        return None
    try:
        header = decode_line(first.rstrip(b"\n"))
    except DamagedLine as exc:
        raise _damaged(path, 1, str(exc)) from None
    _check_version(path, header, STORE_FORMAT)
    return header


def load_snapshot(directory: Path, loaded: Loaded, layout: dict[str, tuple[str, ...] | None] | None = None) -> bool:
    """Read the snapshot into `loaded`. One with a layout (see `lamsim_tui.store.lazy`) is read in part:
    its small tables and where everything else is; an older one is read whole."""
    path = directory / SNAPSHOT
    layout = layout or {}
    try:
        file = open(path, "rb", buffering=0)  # noqa: SIM115 - kept open by the tables that read from it
    except FileNotFoundError:
        return False
    try:
        if _load_with_layout(path, file, loaded, layout):
            return True
        file.seek(0)
        data = file.readall()
    finally:
        if not loaded.sources or loaded.sources[-1].file is not file:
            file.close()
    _load_whole(path, data, loaded, layout)
    return True


def _load_with_layout(path: Path, file: Any, loaded: Loaded, layout: dict[str, tuple[str, ...] | None]) -> bool:
    size = os.fstat(file.fileno()).st_size
    first = file.readline()
    if not first.endswith(b"\n") or size < 3:
        raise _damaged(path, 1, "the snapshot is cut short (it is written whole, so it was damaged later)")
    try:
        header = decode_line(first[:-1])
    except DamagedLine as exc:
        raise _damaged(path, 1, str(exc)) from None
    _check_version(path, header, STORE_FORMAT)
    tail_size = min(size, 1 << 16)
    tail = os.pread(file.fileno(), tail_size, size - tail_size)
    if not tail.endswith(b"\n"):
        raise _damaged(path, None, "the snapshot is cut short (it is written whole, so it was damaged later)")
    start = tail.rfind(b"\n", 0, len(tail) - 1) + 1
    try:
        trailer = decode_line(tail[start:-1])
    except DamagedLine:
        return False  # read whole: that names the damaged line
    if not isinstance(trailer, dict) or not isinstance(trailer.get("layout_at"), int):
        return False  # written by an earlier lamsim: read whole
    trailer_at = size - tail_size + start
    layout_at = trailer["layout_at"]
    if not len(first) <= layout_at <= trailer_at:
        raise _damaged(path, None, "the snapshot's last line points outside it")
    lines = os.pread(file.fileno(), trailer_at - layout_at, layout_at).split(b"\n")
    lines.pop()
    body_lines = trailer.get("docs", 0) - len(lines)
    tables: dict[str, Any] = {name: {} for name in header.get("tables", [])}
    layouts: dict[str, dict] = {}
    for index, raw in enumerate(lines):
        try:
            name, key, doc = decode_line(raw)
        except (DamagedLine, ValueError, TypeError) as exc:
            raise _damaged(path, body_lines + index + 2, str(exc)) from None
        if name == LAYOUT:
            layouts[key] = doc
        else:
            tables.setdefault(name, {})[key] = doc
    source = Source(path, file)
    try:
        if sum(lines_written(d) for d in layouts.values()) != body_lines:
            raise Damaged(path, None, "the snapshot's layout does not account for all its lines")
        for name, described in layouts.items():
            if described["at"] and not (len(first) <= min(described["at"]) and max(described["at"]) <= layout_at):
                raise Damaged(path, None, f"the layout of {name} points outside the snapshot")
            if described["kind"] == "lazy":
                tables[name] = LazyTable.from_layout(name, source, described)
            elif described["kind"] == "columns":
                fields = layout.get(name) or tuple(described["fields"])
                tables[name] = ColumnTable.from_layout(name, fields, source, described)
            else:
                raise Damaged(path, None, f"unknown table layout {described['kind']!r}")
    except (Damaged, KeyError, TypeError) as exc:
        why = exc.why if isinstance(exc, Damaged) else f"the snapshot's layout is unreadable ({exc})"
        raise _damaged(path, getattr(exc, "line_no", None), why) from None
    _adopt_plain_tables(tables, layout)
    loaded.tables = tables
    loaded.generation = header["generation"]
    loaded.seq = header["seq"]
    loaded.meta = header.get("meta") if isinstance(header.get("meta"), dict) else None
    loaded.snapshot_size = size
    loaded.sources.append(source)
    return True


def _adopt_plain_tables(tables: dict[str, Any], layout: dict[str, tuple[str, ...] | None]) -> None:
    """Tables of the layout that were stored as plain documents (by an earlier lamsim, or by a storage
    without this layout) become tables of the layout, held in memory until the next compaction."""
    for name, fields in layout.items():
        docs = tables.get(name)
        if isinstance(docs, (LazyTable, ColumnTable)):
            continue
        docs = docs or {}
        if fields is None:
            tables[name] = LazyTable.from_docs(name, docs)
        else:
            tables[name] = ColumnTable.from_docs(name, fields, {k: v for k, v in docs.items() if isinstance(v, list)})


def _load_whole(path: Path, data: bytes, loaded: Loaded, layout: dict[str, tuple[str, ...] | None]) -> None:
    loaded.snapshot_size = len(data)
    lines = data.split(b"\n")
    if lines[-1] != b"" or len(lines) < 3:
        raise _damaged(path, len(lines), "the snapshot is cut short (it is written whole, so it was damaged later)")
    lines.pop()
    try:
        header = decode_line(lines[0])
    except DamagedLine as exc:
        raise _damaged(path, 1, str(exc)) from None
    _check_version(path, header, STORE_FORMAT)
    tables: dict[str, dict[str, dict]] = {name: {} for name in header.get("tables", [])}
    last = len(lines) - 1
    for index in range(1, last):
        try:
            name, key, doc = decode_line(lines[index])
        except (DamagedLine, ValueError, TypeError) as exc:
            raise _damaged(path, index + 1, str(exc)) from None
        table = tables.get(name)
        if table is None:
            table = tables[name] = {}
        table[key] = doc
    try:
        trailer = decode_line(lines[last])
    except DamagedLine as exc:
        raise _damaged(path, last + 1, str(exc)) from None
    if not isinstance(trailer, dict) or trailer.get("end") is not True or trailer.get("docs") != last - 1:
        raise _damaged(path, last + 1, "the snapshot's last line does not close it (cut short?)")
    tables.pop(LAYOUT, None)  # an earlier lamsim kept a layout it could not use: it is out of date
    _adopt_plain_tables(tables, layout)
    loaded.tables = tables
    loaded.generation = header["generation"]
    loaded.seq = header["seq"]
    loaded.meta = header.get("meta") if isinstance(header.get("meta"), dict) else None


def parse_journal(path: Path, data: bytes, loaded: Loaded, *, first_line: int = 1, live: bool = False,
                  base_offset: int = 0) -> int:
    """Apply journal lines in `data` (which starts at line `first_line`; line 1 is the header).

    Returns the length of the whole, valid lines taken. A damaged region at the end with no valid
    line after it is an unfinished write: it is left out (and kept in `loaded.torn`). With `live`
    (a reader while a writer runs), a last line without its newline is a write in progress.
    `data` starts at `base_offset` of the journal file (`loaded.journal_source`, when set).
    """
    offset = 0
    line_no = first_line
    size = len(data)
    expected_seq = loaded.seq + 1
    loaded.torn = b""
    while offset < size:
        end = data.find(b"\n", offset)
        if end < 0:  # no newline: an unfinished write
            loaded.torn = b"" if live else data[offset:]
            return offset
        try:
            entry = decode_line(data[offset:end]) if line_no == 1 else decode_commit(data[offset:end])
            if line_no == 1:
                _check_version(path, entry, JOURNAL_FORMAT)
                if entry.get("generation") != loaded.generation or entry.get("after_seq") != loaded.seq:
                    raise _damaged(
                        path,
                        1,
                        f"journal belongs to generation {entry.get('generation')}, "
                        f"the snapshot is generation {loaded.generation}",
                    )
            else:
                if entry.get("seq") != expected_seq:
                    raise _damaged(
                        path,
                        line_no,
                        f"change {entry.get('seq')} where {expected_seq} was expected (a line is missing or repeated)",
                    )
                source = loaded.journal_source
                line = (None if source is None else
                        JournalLine(source, base_offset + offset, end + 1 - offset, line_no, expected_seq))
                if "lazy" in entry:
                    if line is not None and all(isinstance(loaded.tables.get(op[0]), LazyTable) for op in entry["lazy"]):
                        apply_ops(loaded.tables, entry["eager"], line)
                        apply_summaries(loaded.tables, entry["lazy"], line, entry["ops_at"])
                    else:
                        apply_ops(loaded.tables, decode_line(data[offset:end])["ops"], line)
                else:
                    apply_ops(loaded.tables, entry["ops"], line)
                loaded.seq = expected_seq
                expected_seq += 1
        except (DamagedLine, KeyError, TypeError, AttributeError, IndexError) as exc:
            if _valid_line_after(data, end + 1):
                raise _damaged(path, line_no, str(exc) or type(exc).__name__) from None
            loaded.torn = data[offset:]
            return offset
        offset = end + 1
        line_no += 1
    return offset


def _valid_line_after(data: bytes, offset: int) -> bool:
    for raw in data[offset:].split(b"\n"):
        try:
            decode_line(raw)
            return True
        except DamagedLine:
            continue
    return False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Loading creates millions of acyclic objects; the cyclic GC would re-scan them over and over
    (3-4x the load time at 10,000 trajectories) without ever finding garbage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


FREEZE_AFTER_DOCS = 2000


def load_store(directory: Path, *, live: bool = False, layout: dict[str, tuple[str, ...] | None] | None = None) -> Loaded:
    """Read snapshot and journal consistently even while a writer compacts (retry on a race)."""
    with _gc_paused():
        loaded = _load_store(directory, live=live, layout=layout or {})
        if sum(len(t) for t in loaded.tables.values()) >= FREEZE_AFTER_DOCS:
            # Move what exists now (the store's documents above all) out of the cyclic GC's sight:
            # otherwise its first passes after a big load walk millions of objects that can never be
            # garbage (2-3 s at 50,000 trajectories). Refcounting still frees them when the store is
            # dropped; only cycles that exist right now are never collected, which these are not.
            gc.freeze()
        return loaded


def _load_store(directory: Path, *, live: bool, layout: dict[str, tuple[str, ...] | None]) -> Loaded:
    for _attempt in range(20):
        loaded = Loaded()
        if not load_snapshot(directory, loaded, layout):
            journals = sorted(directory.glob("journal.*.jsonl"))
            if journals:
                raise _damaged(directory / SNAPSHOT, None, f"the snapshot is missing but {journals[0].name} exists")
            loaded.tables = dict(layout_tables(layout))
            return loaded  # a new, empty store
        path = directory / journal_name(loaded.generation)
        try:
            loaded.journal_source = Source(path)
            loaded.sources.append(loaded.journal_source)
            data = loaded.journal_source.file.readall()
        except FileNotFoundError:
            loaded.journal_source = None
            header = read_snapshot_header(directory)
            if header is not None and header.get("generation") != loaded.generation:
                continue  # compacted between our two reads: start over
            data = b""
        loaded.journal_size = parse_journal(path, data, loaded, live=live) if data else 0
        loaded.journal_lines = data.count(b"\n", 0, loaded.journal_size)
        return loaded
    raise StoreError(
        "the store kept changing while being read",
        where=str(directory),
        hint="try again; if it persists, the writer is compacting in a loop: report it",
    )


def _is_store_file(name: str) -> bool:
    return name in (LOCK, SNAPSHOT, SNAPSHOT + ".tmp") or (name.startswith("journal.") and ".jsonl" in name)


def _refuse_foreign(directory: Path) -> None:
    stray = sorted(p.name for p in directory.iterdir() if not _is_store_file(p.name))
    if stray:
        raise StoreError(
            f"the folder is not empty and holds no store ({', '.join(stray[:5])})",
            where=str(directory),
            hint="give --store a new or empty folder, or a lamsim store",
        )


def _clear_unfinished_creation(directory: Path) -> None:
    """A folder without a snapshot may hold what a creation cut short (a crash, a full disk) left:
    a journal with no more than its header, a partial snapshot temp file. A new store writes its
    snapshot before it acknowledges any change, so these hold nothing: remove them. A journal
    with changes is left as it is (`load_store` reports the missing snapshot as damage)."""
    journals = [p for p in directory.iterdir() if p.name.startswith("journal.") and ".jsonl" in p.name]
    if any(not _holds_no_change(p) for p in journals):
        return
    leftovers = [*journals, *[p for p in [directory / (SNAPSHOT + ".tmp")] if p.exists()]]
    for path in leftovers:
        path.unlink()
    if leftovers:
        _fsync_dir(directory)


def _holds_no_change(journal: Path) -> bool:
    """At most a header line (whole or cut short): no change was ever written to it."""
    try:
        data = journal.read_bytes()[:4096]
    except OSError:
        return False
    lines = [line for line in data.split(b"\n") if line.strip()]
    if not lines:
        return True
    if len(lines) > 1:
        return False
    try:
        entry = decode_line(lines[0])
    except DamagedLine:
        return not data.endswith(b"\n")  # an unfinished header write
    return isinstance(entry, dict) and entry.get("format") == JOURNAL_FORMAT


def _holder_description() -> str:
    """Who holds the lock: pid, host, the lamsim command, since when — never the command line's
    arguments, which may hold a note or a key."""
    command = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1].isalpha() and len(sys.argv[1]) <= 12 else ""
    program = "lamsim" + (f" {command}" if command else "")
    return f"pid {os.getpid()} on {socket.gethostname()}, {program}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"


# ----- the writer lock ----------------------------------------------------------------------------


class WriterLock:
    """An exclusive flock on `writer.lock`: released by the kernel when the holder dies, even by SIGKILL."""

    def __init__(self, directory: Path):
        self.path = directory / LOCK
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create {LOCK}: {exc.strerror}", where=str(directory),
                             hint="free disk space or fix the folder's permissions") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            try:
                holder = os.pread(self.fd, 4096, 0).decode("utf-8", "replace").strip()
            except OSError:
                pass
            os.close(self.fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreError(
                    "the store is open for writing by another process" + (f" ({holder})" if holder else ""),
                    where=str(directory),
                    hint="close that program first; reading (`lamsim review list`, `export`, `stats`) works "
                    "while it runs",
                ) from None
            raise StoreError(f"cannot lock the store: {exc}", where=str(self.path)) from None
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, _holder_description().encode("utf-8", "replace"), 0)
        except OSError:  # a full disk: the lock holds without its note
            pass

    def release(self) -> None:
        if self.fd >= 0:
            try:
                os.ftruncate(self.fd, 0)  # nobody holds it any more: say nothing about who did
            except OSError:
                pass
            os.close(self.fd)  # closing drops the flock
            self.fd = -1


# ----- the storage --------------------------------------------------------------------------------


class JournalStorage(Storage):
    """Snapshot + journal storage for TinyDB. Use with `JournalDB` so tables commit only what changed."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        readonly: bool = False,
        compact_bytes: int = 64 << 20,
        compact_ratio: float = 1.0,
        layout: dict[str, tuple[str, ...] | None] | None = None,
        meta: dict | None = None,
    ):
        self.directory = Path(path)
        self.readonly = readonly
        # Tables kept on disk until read (name -> None) or by column (name -> fields); see store/lazy.py.
        self.layout = dict(layout or {})
        self.meta = dict(meta or {})  # written into every snapshot this process writes
        self.stored_meta: dict | None = None  # what the snapshot said when it was read
        self._sources: list[Source] = []
        self._journal_source: Source | None = None
        self.compact_bytes = compact_bytes
        self.compact_ratio = compact_ratio
        self.notices: list[str] = []  # things the operator should know (a dropped unfinished write)
        self.mutex = threading.RLock()
        self._lock: WriterLock | None = None
        self._fd = -1
        self._broken: str | None = None
        self._closed = False
        self._batch: list | None = None
        if readonly:
            if not (self.directory / SNAPSHOT).exists():
                if not self.directory.is_dir():
                    raise StoreError("no store here (the folder does not exist)", where=str(self.directory))
                raise StoreError(
                    f"no store here (no {SNAPSHOT})",
                    where=str(self.directory),
                    hint="a store is created by the first `lamsim run` that writes to it",
                )
            loaded = load_store(self.directory, live=True, layout=self.layout)
        else:
            loaded = self._open_writer()
        self._adopt(loaded)
        if not readonly and self._journal_source is None:
            self._journal_source = Source(self.directory / journal_name(self._generation))
            self._sources.append(self._journal_source)

    def _adopt(self, loaded: Loaded) -> None:
        self._tables = loaded.tables
        self._generation = loaded.generation
        self._seq = loaded.seq
        self._journal_size = loaded.journal_size
        self._journal_lines = loaded.journal_lines
        self._snapshot_size = loaded.snapshot_size
        self.stored_meta = loaded.meta
        self._sources.extend(loaded.sources)
        self._journal_source = loaded.journal_source

    # -- opening ---------------------------------------------------------------------------------
    def _open_writer(self) -> Loaded:
        directory = self.directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store folder: {exc.strerror}", where=str(directory)) from None
        if not directory.is_dir():
            raise StoreError("the store path is not a folder", where=str(directory),
                             hint="give --store a new or empty folder, or a lamsim store")
        if not (directory / SNAPSHOT).exists():
            _refuse_foreign(directory)  # before the lock: a folder of someone else's gets no lock file
        # Then the lock: a writer racing to create the same new store gets "open for writing by
        # another process", not the other's creation half made.
        self._lock = WriterLock(directory)
        try:
            if not (directory / SNAPSHOT).exists():
                _clear_unfinished_creation(directory)
            loaded = load_store(directory, layout=self.layout)
            if loaded.generation == 0:  # a new store
                self._tables, self._generation, self._seq = loaded.tables, 0, 0
                self._write_snapshot()
                return self._reload_after_create()
            journal = directory / journal_name(loaded.generation)
            if loaded.torn:
                self._set_aside_torn(journal, loaded)
            self._cleanup(loaded.generation)
            if loaded.journal_size == 0:  # missing, or its header was the unfinished write
                self._new_journal(loaded.generation, loaded.seq)
                loaded.journal_size = journal.stat().st_size
                loaded.journal_lines = 1
            self._fd = os.open(journal, os.O_WRONLY | os.O_APPEND)
            return loaded
        except BaseException:
            self._lock.release()
            raise

    def _reload_after_create(self) -> Loaded:
        loaded = load_store(self.directory, layout=self.layout)
        self._fd = os.open(self.directory / journal_name(loaded.generation), os.O_WRONLY | os.O_APPEND)
        return loaded

    def _set_aside_torn(self, journal: Path, loaded: Loaded) -> None:
        """Keep the unfinished bytes beside the journal (never destroy data), then cut them off."""
        kept = journal.with_name(f"{journal.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        with open(kept, "wb") as f:
            f.write(loaded.torn)
            f.flush()
            os.fsync(f.fileno())
        fd = os.open(journal, os.O_WRONLY)
        try:
            os.ftruncate(fd, loaded.journal_size)
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(self.directory)
        self.notices.append(
            f"{journal}: dropped an unfinished write at the end ({len(loaded.torn)} bytes, from a crash during a "
            f"write; it was never acknowledged, so no accepted change is lost). The bytes are kept in {kept.name}."
        )

    def _cleanup(self, generation: int) -> None:
        for path in self.directory.glob("journal.*.jsonl"):
            try:
                gen = int(path.name.split(".")[1])
            except ValueError:
                continue
            if gen < generation:  # wholly contained in the snapshot (written before it was renamed in)
                path.unlink()
            elif gen > generation and path.stat().st_size < 200:  # header of a compaction that did not finish
                path.unlink()
        tmp = self.directory / (SNAPSHOT + ".tmp")
        if tmp.exists():
            tmp.unlink()

    def _new_journal(self, generation: int, seq: int) -> Path:
        path = self.directory / journal_name(generation)
        header = {"format": JOURNAL_FORMAT, "store_version": STORE_VERSION, "generation": generation, "after_seq": seq}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, encode_line(header))
            os.fsync(fd)
        finally:
            os.close(fd)
        return path

    # -- the Storage interface -------------------------------------------------------------------
    def read(self) -> dict[str, dict[str, dict]] | None:
        """A copy of everything (TinyDB may change what it reads in place before calling `write`)."""
        with self.mutex:
            tables = {name: docs if isinstance(docs, dict) else dict(docs.items()) for name, docs in self._tables.items()}
            return _json_copy(tables) if tables else None

    def write(self, data: dict[str, dict[str, dict]]) -> None:
        """Commit the difference between `data` and the store: correct for any caller, costs O(store)."""
        with self.mutex:
            ops: list = [[name, None, "drop"] for name in self._tables if name not in data]
            for name, docs in data.items():
                live = self._tables.get(name)
                if live is None:
                    ops.append([name, None, "clear"])
                    live = {}
                ops.extend([name, key, "del"] for key in live if key not in docs)
                for key, doc in docs.items():
                    op = _diff_doc(name, str(key), live.get(str(key)), doc)
                    if op:
                        ops.append(op)
            if ops:
                self.commit(ops)

    def close(self) -> None:
        with self.mutex:
            if self._closed:
                return
            self._closed = True
            if self._fd >= 0:
                try:
                    if self._broken is None and self._journal_size > self.compact_bytes // 4:
                        self.compact()
                finally:
                    os.close(self._fd)
                    self._fd = -1
            for source in self._sources:
                source.close()
            self._sources = []
            if self._lock:
                self._lock.release()

    # -- what JournalTable uses ------------------------------------------------------------------
    def live_table(self, name: str) -> dict[str, dict]:
        """The documents themselves: read-only for callers (a table of the layout reads them from disk)."""
        table = self._tables.get(name)
        if table is None and name in self.layout:
            table = self._tables[name] = layout_tables({name: self.layout[name]})[name]
        return table if table is not None else {}

    def apply_in_memory(self, ops: list) -> None:
        """Change what this process sees without writing anything (a reader's rebuilt index)."""
        with self.mutex:
            apply_ops(self._tables, ops)

    def commit(self, ops: list) -> None:
        """Append one journal line with all `ops` and fsync it: durable (and atomic) when this returns.

        Inside `batch()`, the ops take effect at once and are written, as one line, when it ends.
        """
        with self.mutex:
            self._check_writable()
            if self._batch is not None:
                try:
                    apply_ops(self._tables, _json_copy(ops))
                except (TypeError, ValueError) as exc:
                    raise StoreError(f"a document is not plain JSON: {exc}", where=str(self.directory)) from None
                self._batch.extend(ops)
                return
            line, located = self._line(ops)
            self._append(line)
            written = self._written_line(line)
            # Apply what was written, as plain JSON again: memory then equals what a reopen reads.
            lazy = {id(item[0]) for item in located}
            apply_ops(self._tables, _json_copy([op for op in ops if id(op) not in lazy]), written)
            for op, where in self._located(located, written):
                table = self._tables[op[0]]
                if op[2] == "put":
                    table.put(op[1], None, where)
                elif op[2] == "set":
                    table.set(op[1], *_json_copy(op[3:5]), where)
                else:
                    apply_op(table, op, written)
            self._after_append(line)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commits into one journal line (one fsync, all or nothing)."""
        with self.mutex:
            if self._batch is not None:  # nested: part of the outer batch
                yield
                return
            self._check_writable()
            self._batch = []
            try:
                yield
                ops, self._batch = self._batch, None
                if ops:
                    line, located = self._line(ops)
                    self._append(line)
                    written = self._written_line(line)
                    at = self._located(located, written)
                    for name, table in self._tables.items():
                        if isinstance(table, LazyTable):
                            table.written([(op, where) for op, where in at if op[0] == name])
                        elif isinstance(table, ColumnTable):
                            table.written_line(ops, written)
                    self._after_append(line)
            except BaseException:
                self._batch = None
                self._reload()  # drop what the batch changed in memory: the disk is the truth
                raise

    def _check_writable(self) -> None:
        if self.readonly:
            raise StoreError("the store is open read-only", where=str(self.directory))
        if self._closed:
            raise StoreError("the store is closed", where=str(self.directory))
        if self._broken:
            raise StoreError(
                f"the store stopped accepting writes after an error: {self._broken}",
                where=str(self.directory),
                hint="close and reopen it",
            )

    def _line(self, ops: list) -> tuple[bytes, list[tuple[list, int, int, int]]]:
        """One commit, and where in it each op on a lazy table is: (op, offset in the line, length, crc).

        With such ops the line starts with the others and a summary of these (`"lazy": [[table, key,
        kind, start, length, crc], ...]`, `start` counted from the ops array), so that a reader takes the
        line in without parsing the record bodies in it (`decode_commit`) and reads one op alone later;
        `ops` holds everything, as always (an earlier lamsim reads only that).
        """
        seq = self._seq + 1
        try:
            if not any(self.layout.get(op[0], ()) is None for op in ops):
                return encode_line({"seq": seq, "ops": ops}), []
            parts = [json_bytes(op) for op in ops]
            starts, position = [], 1
            for part in parts:
                starts.append(position)
                position += len(part) + 1
            lazy = [i for i, op in enumerate(ops) if self.layout.get(op[0], ()) is None]
            summary = [[*ops[i][:3], starts[i], len(parts[i]), zlib.crc32(parts[i])] for i in lazy]
            eager = [op for i, op in enumerate(ops) if self.layout.get(op[0], ()) is not None]
            prefix = json_bytes({"seq": seq, "eager": eager, "lazy": summary})[:-1] + b',"ops":'
            body = prefix + b"[" + b",".join(parts) + b"]}"
        except (TypeError, ValueError) as exc:
            raise StoreError(f"a document is not plain JSON: {exc}", where=str(self.directory)) from None
        ops_at = 9 + len(prefix)
        return (b"%08x " % zlib.crc32(body) + body + b"\n",
                [(ops[i], ops_at + starts[i], len(parts[i]), zlib.crc32(parts[i])) for i in lazy])

    @staticmethod
    def _located(located: list[tuple[list, int, int, int]], line: JournalLine) -> list[tuple[list, JournalOp]]:
        return [(op, JournalOp(line.source, line.offset + at, length, crc, line.line_no, line.seq))
                for op, at, length, crc in located]

    def _append(self, line: bytes) -> None:
        try:
            view = memoryview(line)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fdatasync(self._fd)
        except OSError as exc:
            self._broken = f"{exc.strerror} while writing {journal_name(self._generation)}"
            try:  # take back a partial line so the journal stays clean
                os.ftruncate(self._fd, self._journal_size)
            except OSError:
                pass
            raise StoreError(
                f"could not write the journal: {exc.strerror}",
                where=str(self.directory),
                hint="free disk space or fix permissions, then reopen the store",
            ) from None

    def _written_line(self, line: bytes) -> JournalLine:
        """The line just appended (before `_after_append` counts it)."""
        return JournalLine(self._journal_source, self._journal_size, len(line), self._journal_lines + 1, self._seq + 1)

    def _after_append(self, line: bytes) -> None:
        self._seq += 1
        self._journal_size += len(line)
        self._journal_lines += 1
        if self._journal_size > max(self.compact_bytes, self._snapshot_size * self.compact_ratio):
            self.compact()

    def compact(self) -> None:
        """Write a new snapshot with everything and start a new, empty journal."""
        with self.mutex:
            if self.readonly:
                raise StoreError("the store is open read-only", where=str(self.directory))
            old_generation = self._generation
            self._write_snapshot()
            old_fd = self._fd
            self._fd = os.open(self.directory / journal_name(self._generation), os.O_WRONLY | os.O_APPEND)
            self._journal_source = Source(self.directory / journal_name(self._generation))
            self._sources.append(self._journal_source)
            self._journal_size = (self.directory / journal_name(self._generation)).stat().st_size
            self._journal_lines = 1
            if old_fd >= 0:
                os.close(old_fd)
            old = self.directory / journal_name(old_generation)
            if old_generation and old.exists():
                old.unlink()
                _fsync_dir(self.directory)

    def _write_snapshot(self) -> None:
        try:
            self._write_snapshot_files()
        except OSError as exc:
            raise StoreError(
                f"could not write a snapshot: {exc.strerror}",
                where=str(self.directory),
                hint="free disk space or fix permissions, then reopen the store; every acknowledged change is "
                "in the journal",
            ) from None

    def _write_snapshot_files(self) -> None:
        """New journal first, then the snapshot renamed into place: a reader never sees a gap.

        Tables of the layout go first, each document on its own line (unchanged ones copied as they
        are), then the other tables, then where everything is (see `lamsim_tui.store.lazy`).
        """
        generation = self._generation + 1
        self._new_journal(generation, self._seq)
        tmp = self.directory / (SNAPSHOT + ".tmp")
        count = 0
        layouts: dict[str, dict] = {}
        with open(tmp, "wb") as f:
            f.write(
                encode_line(
                    {
                        "format": STORE_FORMAT,
                        "store_version": STORE_VERSION,
                        "generation": generation,
                        "seq": self._seq,
                        "tables": list(self._tables),
                        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "meta": self.meta,
                    }
                )
            )
            for name, docs in self._tables.items():
                if isinstance(docs, (LazyTable, ColumnTable)):
                    layouts[name] = docs.write_lines(f, count + 2, encode_line)
                    count += lines_written(layouts[name])
            layout_at = f.tell()
            buffer: list[bytes] = []
            for name, docs in self._tables.items():
                if name in layouts:
                    continue
                for key, doc in docs.items():
                    body = json_bytes([name, key, doc])
                    buffer.append(b"%08x " % zlib.crc32(body) + body + b"\n")
                    count += 1
                    if len(buffer) >= 1000:
                        f.write(b"".join(buffer))
                        buffer.clear()
            f.write(b"".join(buffer))
            for name, described in layouts.items():
                f.write(encode_line([LAYOUT, name, described]))
                count += 1
            f.write(encode_line({"end": True, "docs": count, "layout_at": layout_at}))
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
        os.replace(tmp, self.directory / SNAPSHOT)
        _fsync_dir(self.directory)
        if layouts:
            source = Source(self.directory / SNAPSHOT)
            self._sources.append(source)
            for name, described in layouts.items():
                self._tables[name].rebase(source, described)
        self._generation = generation
        self._snapshot_size = size

    # -- readers ---------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Read-only stores: take in what the writer committed since. Returns whether anything changed."""
        with self.mutex:
            journal = self.directory / journal_name(self._generation)
            if not journal.exists():
                return self._reload()
            try:
                if self._journal_source is None:
                    self._journal_source = Source(journal)
                    self._sources.append(self._journal_source)
                fd = self._journal_source.fd
                data = os.pread(fd, max(0, os.fstat(fd).st_size - self._journal_size), self._journal_size)
            except FileNotFoundError:
                return self._reload()
            if not data:
                return False
            loaded = Loaded()
            loaded.tables, loaded.generation, loaded.seq = self._tables, self._generation, self._seq
            loaded.journal_source = self._journal_source
            taken = parse_journal(journal, data, loaded, first_line=self._journal_lines + 1, live=True,
                                  base_offset=self._journal_size)
            changed = loaded.seq != self._seq
            self._seq = loaded.seq
            self._journal_size += taken
            self._journal_lines += data.count(b"\n", 0, taken)
            return changed

    def _reload(self) -> bool:
        loaded = load_store(self.directory, live=True, layout=self.layout)
        writer_source = None if self.readonly else self._journal_source
        self._adopt(loaded)
        if writer_source is not None and self._journal_source is None:
            self._journal_source = writer_source
        return True

    @property
    def generation(self) -> int:
        return self._generation


# ----- tables that commit only what they touch -----------------------------------------------------


class _Staged(MutableMapping):
    """What a TinyDB table operation sees: the live table behind a copy-on-access overlay.

    Documents are copied when first touched, so nothing live changes until the commit has been
    written; then only touched documents are compared and journalled.
    """

    def __init__(self, live: dict[str, dict], id_class: type):
        self._live = live
        self._id = id_class
        self._docs: dict[str, dict] = {}
        self._gone: set[str] = set()
        self._cleared = False

    def _present(self, key: str) -> bool:
        return not self._cleared and key in self._live and key not in self._gone

    def __getitem__(self, doc_id: Any) -> dict:
        key = str(doc_id)
        doc = self._docs.get(key)
        if doc is not None:
            return doc
        if not self._present(key):
            raise KeyError(doc_id)
        doc = self._docs[key] = _json_copy(self._live[key])
        return doc

    def __setitem__(self, doc_id: Any, doc: dict) -> None:
        key = str(doc_id)
        self._docs[key] = doc
        self._gone.discard(key)

    def __delitem__(self, doc_id: Any) -> None:
        key = str(doc_id)
        if key not in self._docs and not self._present(key):
            raise KeyError(doc_id)
        self._docs.pop(key, None)
        self._gone.add(key)

    def __contains__(self, doc_id: object) -> bool:
        key = str(doc_id)
        return (key in self._docs) or self._present(key)

    def __iter__(self) -> Iterator:
        if not self._cleared:
            for key in self._live:
                if key not in self._gone:
                    yield self._id(key)
        for key in self._docs:
            if (self._cleared or key not in self._live) and key not in self._gone:
                yield self._id(key)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def clear(self) -> None:
        self._cleared = True
        self._docs.clear()
        self._gone.clear()

    def ops(self, name: str) -> list:
        ops: list = []
        if self._cleared:
            ops.append([name, None, "clear"])
        else:
            ops.extend([name, key, "del"] for key in sorted(self._gone) if key in self._live)
        for key, doc in self._docs.items():
            op = _diff_doc(name, key, None if self._cleared else self._live.get(key), doc)
            if op:
                ops.append(op)
        return ops


class JournalTable(Table):
    def _read_table(self) -> dict[str, Any]:
        storage = self._storage
        if isinstance(storage, JournalStorage):
            return storage.live_table(self.name)
        return super()._read_table()

    def _update_table(self, updater) -> None:
        storage = self._storage
        if not isinstance(storage, JournalStorage):
            return super()._update_table(updater)
        with storage.mutex:
            staged = _Staged(storage.live_table(self.name), self.document_id_class)
            updater(staged)
            ops = staged.ops(self.name)
            if ops:
                storage.commit(ops)
            self.clear_cache()


class JournalDB(TinyDB):
    """TinyDB on a `JournalStorage`: `JournalDB(path, storage=JournalStorage, readonly=...)`."""

    table_class = JournalTable
