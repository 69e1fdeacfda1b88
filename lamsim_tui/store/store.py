"""The trajectory store: records in TinyDB on a journal storage, looked up by (abbreviated) id.

It keeps `Trajectory.to_dict()` (plain JSON, see docs/record.md and docs/store.md) and gives back
typed records: `get` and `records` return whole `Trajectory`s, `listings` the `Listing`s that
lists, filters and statistics need. Inside the store the tool schemas, system prompt and session,
which are the same for every episode of a session, are kept once (table `blobs`) and referenced
from each record.

**The index.** Every record's `Listing` (and its schema version) is kept in table `listings`,
written in the same journal line as the change of the record it describes, so the two never
disagree. Record bodies stay on disk until one is read (`get`, `records`, export); opening a store
reads the index's ids, and listing, filtering and statistics read the index only (see
`lamsim_tui.store.lazy` for how both are laid out). A store whose index is missing (written by
an earlier lamsim) or older than its records gets it rebuilt from the records, with a notice.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lamsim_tui import record as rec
from lamsim_tui.errors import StoreError
from lamsim_tui.record import MIGRATIONS, SCHEMA_VERSION, STATUSES, Listing, RecordError, Trajectory
from lamsim_tui.store.lazy import ColumnTable, Damaged, LazyTable
from lamsim_tui.store.redact import environment_secrets, named_key_variables, redact
from lamsim_tui.store.storage import RECOVERY_HINT, JournalDB, JournalStorage, _gc_paused

RECORD_VERSION = SCHEMA_VERSION  # schema_version of the records this lamsim writes
TRAJECTORIES = "trajectories"
BLOBS = "blobs"
SHARED_FIELDS = ("tools", "system_prompt", "session", "policy")  # the same across a session: kept once, in `blobs`
LISTINGS = "listings"

# A row of the index: the Listing's fields but its number (that is the row's key), then the record's
# schema version. The format names them, so a lamsim whose Listing differs rebuilds the index.
INDEX_FIELDS = tuple(f.name for f in dataclasses.fields(Listing) if f.name != "number") + ("schema_version",)
INDEX_FORMAT = "listing-1:" + hashlib.sha256(",".join(INDEX_FIELDS).encode()).hexdigest()[:12]
LAYOUT = {TRAJECTORIES: None, LISTINGS: INDEX_FIELDS}
_ID, _STATUS, _VERSION = INDEX_FIELDS.index("id"), INDEX_FIELDS.index("status"), INDEX_FIELDS.index("schema_version")
_TUPLES = frozenset(i for i, f in enumerate(dataclasses.fields(Listing)) if f.type.startswith("tuple"))

_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def migrate(record: dict, *, where: str) -> dict:
    """A stored dict at the current schema version (see `record.migrate`), as a StoreError if it cannot be."""
    try:
        return rec.migrate(record)
    except RecordError as exc:
        version = record.get("schema_version")
        if not isinstance(version, int):
            hint = "it was not written by lamsim; remove it with `lamsim store salvage`"
        elif version > RECORD_VERSION:
            hint = "upgrade lamsim; nothing was changed"
        else:
            hint = "export it with the lamsim that wrote it"
        raise StoreError(str(exc), where=where, hint=hint) from None


def _typed(doc: dict, where: str) -> Trajectory:
    try:
        return Trajectory.from_dict(doc)
    except RecordError as exc:
        raise StoreError(str(exc), where=where, hint="the store is damaged; see docs/store.md, 'Recovery'") from None


def _plain(value: Any) -> Any:
    """A record field for storage: typed parts as their dicts."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _copy(doc: Any) -> Any:
    return json.loads(json.dumps(doc, ensure_ascii=False))


def _older(row_seq: int | None, record_seq: int | None) -> bool:
    """The index row was written before the record's last change (by a lamsim that kept no index)."""
    return record_seq is not None and (row_seq is None or row_seq < record_seq)


def index_row(doc: dict) -> list:
    """The index row of a stored record (its listing's fields, then its schema version)."""
    listing = Listing.of(doc)
    row = [getattr(listing, name) for name in INDEX_FIELDS[:-1]]
    row.append(doc.get("schema_version"))
    return json.loads(json.dumps(row, ensure_ascii=False, default=str))


def listing_of_row(row: list | tuple, key: str) -> Listing:
    values = [row[0], int(key), *row[1:-1]]
    for i in _TUPLES:
        values[i] = tuple(values[i] or ())
    return Listing(*values)


def _statuses(status: str | Iterable[str] | None) -> frozenset[str] | None:
    if status is None:
        return None
    wanted = frozenset([status] if isinstance(status, str) else status)
    unknown = wanted - set(STATUSES)
    if unknown:
        raise StoreError(
            f"unknown status {', '.join(sorted(unknown))}",
            where="--status",
            hint="statuses are: " + ", ".join(STATUSES),
        )
    return wanted


class Store:
    """One store folder. Open with `open_store`; a context manager; safe to share between threads."""

    def __init__(self, path: str | Path, *, readonly: bool = False, **storage_options: Any):
        self.path = Path(path)
        self.readonly = readonly
        self._notices: list[str] = []
        self._storage_options = storage_options
        self._open()
        try:
            if readonly and self._index_missing():
                self._upgrade_for_reading()
            self._check_index()
            self._index()
            if not readonly:
                self._migrate_all()
        except BaseException:
            self._db.close()  # a store refused after opening leaves no lock behind
            raise

    def _open(self) -> None:
        self._db = JournalDB(self.path, storage=JournalStorage, readonly=self.readonly, layout=LAYOUT,
                             meta={"index": INDEX_FORMAT}, **self._storage_options)
        self._storage: JournalStorage = self._db.storage  # type: ignore[assignment]
        self._mutex: threading.RLock = self._storage.mutex
        self._table = self._db.table(TRAJECTORIES)
        self._blobs = self._db.table(BLOBS)

    # -- the index -------------------------------------------------------------------------------
    def _trajectories(self) -> LazyTable:
        return self._storage.live_table(TRAJECTORIES)  # type: ignore[return-value]

    def _rows(self) -> ColumnTable:
        return self._storage.live_table(LISTINGS)  # type: ignore[return-value]

    def _index_missing(self) -> bool:
        """The index is not there or not this lamsim's (the store was written by another version)."""
        meta = self._storage.stored_meta or {}
        stored = self._rows().stored_fields
        return meta.get("index") != INDEX_FORMAT or (stored is not None and stored != INDEX_FIELDS)

    def _upgrade_for_reading(self) -> None:
        """A reader of a store without an index: when nobody writes to it, open it once as its writer
        (which builds the index and saves it), so that this and every later reader opens it fast."""
        try:
            writer = Store(self.path, **self._storage_options)
        except (StoreError, OSError):
            return  # a writer holds it, or the folder is read-only: build the index in memory below
        try:
            self._notices.extend(writer.notices)
        finally:
            writer.close()
        self._db.close()
        self._open()

    def _check_index(self) -> None:
        """Rebuild the index where it is missing or older than the records (an earlier lamsim wrote them)."""
        traj, rows = self._trajectories(), self._rows()
        started = time.perf_counter()
        if self._index_missing():
            fresh = {key: index_row(self._doc(key)) for key in traj}
            self._check_versions(Counter(row[_VERSION] for row in fresh.values()))  # before anything is written
            with self._mutex:
                rows.reset(fresh)
                if not self.readonly:
                    self._storage.compact()  # the snapshot now holds the index
            self._notices.append(
                f"{self.path}: this store had no index (it was written by an earlier lamsim): built it from "
                f"{len(fresh):,} records in {time.perf_counter() - started:.1f} s"
                + ("; it is saved, so later opens are fast" if not self.readonly else
                   "; it is saved the next time the store is opened for writing"))
            return
        stale = [key for key in traj.changed_keys() if _older(rows.seq(key), traj.seq(key)) or key not in rows]
        if len(rows) != len(traj) or any(key not in traj for key in rows.changed_keys()):
            stale = list(dict.fromkeys([*stale, *(key for key in traj if key not in rows)]))
            gone = [key for key in rows if key not in traj]
        else:
            gone = []
        if not stale and not gone:
            return
        ops = [[LISTINGS, key, "put", index_row(self._doc(key))] for key in stale]
        ops += [[LISTINGS, key, "del"] for key in gone]
        with self._mutex:
            if self.readonly:
                self._storage.apply_in_memory(ops)
            else:
                self._storage.commit(ops)
        self._notices.append(
            f"{self.path}: the index was older than {len(stale) + len(gone):,} record(s) (changed by an earlier "
            f"lamsim): updated it from them")

    def _index(self) -> None:
        rows = self._rows()
        keys, ids = rows.keys_and_values(_ID)
        self._by_id: dict[str, str] = dict(zip(ids, keys, strict=True))  # record id -> TinyDB doc id (as stored)
        self._sorted: list[str] | None = None  # the ids in order, for prefixes: made when first needed
        self._listings: dict[str, Listing] = {}  # key -> Listing, read from the index when first asked for
        self._blob_keys = {doc["sha"]: key for key, doc in self._storage.live_table(BLOBS).items()}
        self._check_versions(Counter(rows.keys_and_values(_VERSION)[1]))

    def _check_versions(self, versions: Counter) -> None:
        newer = {v: n for v, n in versions.items() if isinstance(v, int) and v > RECORD_VERSION}
        if newer:
            v = max(newer)
            raise StoreError(
                f"{sum(newer.values())} record(s) have schema_version {v}, newer than this lamsim "
                f"reads ({RECORD_VERSION})",
                where=str(self.path),
                hint="upgrade lamsim; nothing was changed",
            )
        stuck = [v for v in versions if v != RECORD_VERSION and (not isinstance(v, int) or v not in MIGRATIONS)]
        if stuck:
            raise StoreError(
                f"{sum(versions[v] for v in stuck)} record(s) have schema_version {stuck[0]!r}, which "
                f"this lamsim cannot migrate to {RECORD_VERSION}",
                where=str(self.path),
                hint="open the store with the lamsim that wrote it and export it",
            )

    def _doc(self, key: str) -> dict:
        """A stored document (not a copy: do not change it), read from disk."""
        try:
            return self._trajectories()[key]
        except Damaged as exc:
            where = f"{exc.path}:{exc.line_no}" if exc.line_no else str(exc.path)
            raise StoreError(f"store file is damaged: {exc.why}", where=where, hint=RECOVERY_HINT) from None

    def _listing(self, key: str) -> Listing:
        listing = self._listings.get(key)
        if listing is None:
            listing = self._listings[key] = listing_of_row(self._rows()[key], key)
        return listing

    def _rebuild_caches(self) -> None:
        """After a failed batch the storage reloaded from disk: forget ids TinyDB handed out."""
        self._table._next_id = None
        self._blobs._next_id = None
        self._table.clear_cache()
        self._blobs.clear_cache()
        self._index()

    def _migrate_all(self) -> None:
        old = [key for key, version in self._rows().values(_VERSION) if version != RECORD_VERSION]
        if not old:
            return
        with self._mutex:
            ops = []
            for key in old:
                record = migrate(self._inflate(_copy(self._doc(key))), where=str(self.path))
                doc = self._deflate(record)
                ops.append([TRAJECTORIES, key, "put", doc])
                ops.append([LISTINGS, key, "put", index_row(doc)])
            self._storage.commit(ops)
            self._listings = {}

    # -- blobs -----------------------------------------------------------------------------------
    def _deflate(self, record: dict) -> dict:
        doc = dict(record)
        for field in SHARED_FIELDS:
            value = doc.get(field)
            if value is None:
                continue
            text = json.dumps(value, ensure_ascii=False, sort_keys=True)
            sha = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]
            if sha not in self._blob_keys:
                doc_id = self._blobs.insert({"sha": sha, "value": value})
                self._blob_keys[sha] = str(doc_id)
            doc[field] = {"$blob": sha}
        return doc

    def _inflate(self, doc: dict) -> dict:
        blobs = self._storage.live_table(BLOBS)
        for field in SHARED_FIELDS:
            value = doc.get(field)
            if isinstance(value, dict) and "$blob" in value:
                key = self._blob_keys.get(value["$blob"])
                if key is None:
                    raise StoreError(
                        f"record {doc.get('id')} refers to missing shared data {value['$blob']}",
                        where=str(self.path),
                        hint="the store is damaged; see docs/store.md, 'Recovery'",
                    )
                doc[field] = _copy(blobs[key]["value"])
        return doc

    # -- the contract ----------------------------------------------------------------------------
    def add(self, trajectory: Trajectory) -> str:
        """Store a new record; durable when this returns. Returns its id."""
        if not isinstance(trajectory, Trajectory):
            raise StoreError(f"a record must be a Trajectory, not {type(trajectory).__name__}", where=str(self.path))
        record = trajectory.to_dict()
        record_id = record.get("id")
        if not isinstance(record_id, str) or not _HEX32.match(record_id):
            raise StoreError(f"record id must be 32 lowercase hex characters, not {record_id!r}", where=str(self.path))
        if record.get("status") not in STATUSES:
            raise StoreError(
                f"record {record_id} has status {record.get('status')!r}; expected one of " + ", ".join(STATUSES),
                where=str(self.path),
            )
        record = migrate(record, where=f"record {record_id}")
        clean = redact(record, environment_secrets(named_key_variables(record)))
        with self._mutex:
            if record_id in self._by_id:
                raise StoreError(f"record {record_id} is already in the store", where=str(self.path))
            try:
                with self._storage.batch():  # shared data, record and its index row: one line, one fsync
                    doc = self._deflate(clean)
                    key = str(self._table.insert(doc))
                    row = index_row(doc)
                    self._storage.commit([[LISTINGS, key, "put", row]])
            except StoreError:
                self._rebuild_caches()
                raise
            self._by_id[record_id] = key
            if self._sorted is not None:
                bisect.insort(self._sorted, record_id)
            self._listings[key] = listing_of_row(row, key)
        return record_id

    def resolve(self, id_or_prefix: str) -> str:
        """The full id for an id or a unique prefix of one (at least 4 characters, like git)."""
        prefix = (id_or_prefix or "").strip().lower()
        with self._mutex:
            if prefix in self._by_id:
                return prefix
            if len(prefix) < 4 or not re.fullmatch(r"[0-9a-f]+", prefix):
                raise StoreError(
                    f"{id_or_prefix!r} is not a trajectory id (give at least 4 hex characters)",
                    where=str(self.path),
                    hint="`lamsim review --store DIR list` shows the ids",
                )
            if self._sorted is None:
                self._sorted = sorted(self._by_id)
            start = bisect.bisect_left(self._sorted, prefix)
            matches = []
            for record_id in self._sorted[start:]:
                if not record_id.startswith(prefix):
                    break
                matches.append(record_id)
        if not matches:
            raise StoreError(
                f"no trajectory with id {id_or_prefix}",
                where=str(self.path),
                hint="`lamsim review --store DIR list` shows the ids",
            )
        if len(matches) > 1:
            shown = ", ".join(matches[:10]) + (f" (and {len(matches) - 10} more)" if len(matches) > 10 else "")
            raise StoreError(
                f"id {id_or_prefix} is ambiguous: it starts {len(matches)} trajectories: {shown}",
                where=str(self.path),
                hint="give more characters of the id",
            )
        return matches[0]

    def get(self, id_or_prefix: str) -> Trajectory:
        """One whole record (a copy: nothing done to it changes the store)."""
        with self._mutex:
            record_id = self.resolve(id_or_prefix)
            doc = self._doc(self._by_id[record_id])
            return _typed(migrate(self._inflate(_copy(doc)), where=str(self.path)), str(self.path))

    def records(self, status: str | Iterable[str] | None = None, *,
                keys: Iterable[str] | None = None) -> Iterator[Trajectory]:
        """Whole records (copies), in the order they were added (or of `keys`, store keys as in
        `Listing.number`), read one at a time."""
        for key in self._keys(status) if keys is None else [str(k) for k in keys]:
            with self._mutex:
                if key not in self._trajectories():
                    continue
                data = migrate(self._inflate(_copy(self._doc(key))), where=str(self.path))
            yield _typed(data, str(self.path))

    def listings(self, status: str | Iterable[str] | None = None) -> list[Listing]:
        """What lists, filters and statistics need of each record, in the order they were added.

        `Listing.number` is the record's place in the store: stable across reopening, undo and filters.
        Read from the index: no record body is read.
        """
        with self._mutex:
            keys = self._keys(status)
            cache = self._listings
            missing = [key for key in keys if key not in cache]
            if missing:
                with _gc_paused():  # tens of thousands of small objects that are never garbage
                    for key, row in zip(missing, self._rows().rows_of(missing), strict=True):
                        cache[key] = listing_of_row(row, key)
            return [cache[key] for key in keys]

    def decisions(self) -> tuple[int, list[tuple[int, str]]]:
        """(the highest decision number, [(number, record id)] of the decisions that stand), from the index:
        what the undo ledger needs, without building every listing."""
        with self._mutex:
            rows = self._rows()
            keys, ids = rows.keys_and_values(_ID)
            _keys, last = rows.keys_and_values(INDEX_FIELDS.index("last_seq"))
            _keys, live = rows.keys_and_values(INDEX_FIELDS.index("live_seqs"))
            undoable = [(seq, record_id) for record_id, seqs in zip(ids, live, strict=True) if seqs for seq in seqs]
            return max(last, default=0), undoable

    def number(self, record_id: str) -> int:
        """The record's place in the store (see `listings`)."""
        with self._mutex:
            return int(self._by_id[self.resolve(record_id)])

    def _keys(self, status: str | Iterable[str] | None) -> list[str]:
        wanted = _statuses(status)
        with self._mutex:
            if wanted is None:
                return list(self._rows())
            return [key for key, value in self._rows().values(_STATUS) if value in wanted]

    def count(self, status: str | Iterable[str] | None = None) -> int:
        wanted = _statuses(status)
        with self._mutex:
            if wanted is None:
                return len(self._rows())
            return sum(1 for _key, value in self._rows().values(_STATUS) if value in wanted)

    def __len__(self) -> int:
        return self.count()

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._by_id

    def update(self, record_id: str, fields: dict, *, remove: Iterable[str] = ()) -> Trajectory:
        """Change top-level fields of one record in one durable write; returns the new record.

        ``fields`` maps record field names to values: typed parts (`Verdict`, a tuple of `Step`s, ...)
        or their plain JSON.
        """
        fields = {name: _plain(value) for name, value in fields.items()}
        with self._mutex:
            record_id = self.resolve(record_id)
            key = self._by_id[record_id]
            if "id" in fields and fields["id"] != record_id:
                raise StoreError("a record's id cannot change", where=str(self.path))
            if "status" in fields and fields["status"] not in STATUSES:
                raise StoreError(f"unknown status {fields['status']!r}", where=str(self.path))
            removed = list(remove)
            stored = self._storage.live_table(TRAJECTORIES)[key]  # the session names its key variables
            names = named_key_variables(self._inflate({"session": stored.get("session")}))
            changed: list[dict] = []
            try:
                with self._storage.batch():  # new shared data, the change, its index row: one line, one fsync
                    clean = self._deflate(redact(dict(fields), environment_secrets(names)))

                    def change(doc: dict) -> None:
                        doc.update(clean)
                        for name in removed:
                            doc.pop(name, None)
                        changed.append(doc)

                    self._table.update(change, doc_ids=[int(key)])
                    row = index_row(changed[-1])
                    self._storage.commit([[LISTINGS, key, "put", row]])
            except StoreError:
                self._rebuild_caches()
                raise
            self._listings[key] = listing_of_row(row, key)
            return self.get(record_id)

    def ids(self) -> list[str]:
        with self._mutex:
            return list(self._by_id)

    # -- housekeeping ----------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Read-only stores: take in what a writer committed since opening. Returns whether anything changed."""
        with self._mutex:
            if not self.readonly:
                return False
            changed = self._storage.refresh()
            if changed:
                self._table.clear_cache()
                self._blobs.clear_cache()
                self._check_index()
                self._index()
            return changed

    def compact(self) -> None:
        self._storage.compact()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group writes into one durable commit (bulk imports): all of them or none."""
        try:
            with self._storage.batch():
                yield
        except BaseException:
            self._rebuild_caches()
            raise

    @property
    def lock(self) -> threading.RLock:
        """Held across a read-modify-write (a review decision) when several threads share the store."""
        return self._mutex

    @property
    def notices(self) -> list[str]:
        """Things the operator should be told (an unfinished write dropped after a crash, an index rebuilt)."""
        return [*self._notices, *self._storage.notices]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.path} {'read-only' if self.readonly else 'writer'} records={len(self._by_id)}>"


def open_store(path: str | Path, readonly: bool = False, **storage_options: Any) -> Store:
    """Open (or, for a writer, create) the store in folder `path`.

    Raises StoreError when another process writes to it, or when a file is damaged (naming it).
    """
    return Store(path, readonly=readonly, **storage_options)
