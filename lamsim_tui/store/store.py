"""The trajectory store: records in TinyDB on a journal storage, looked up by (abbreviated) id.

It keeps `Trajectory.to_dict()` (plain JSON, see docs/record.md and docs/store.md) and gives back
typed records: `get` and `records` return whole `Trajectory`s, `listings` the `Listing`s that
lists, filters and statistics need. Inside the store the tool schemas, system prompt and session,
which are the same for every episode of a session, are kept once (table `blobs`) and referenced
from each record.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lamsim_tui import record as rec
from lamsim_tui.errors import StoreError
from lamsim_tui.record import MIGRATIONS, SCHEMA_VERSION, STATUSES, Listing, RecordError, Trajectory
from lamsim_tui.store.redact import environment_secrets, named_key_variables, redact
from lamsim_tui.store.storage import JournalDB, JournalStorage

RECORD_VERSION = SCHEMA_VERSION  # schema_version of the records this lamsim writes
TRAJECTORIES = "trajectories"
BLOBS = "blobs"
SHARED_FIELDS = ("tools", "system_prompt", "session", "policy")  # the same across a session: kept once, in `blobs`

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
        self._db = JournalDB(self.path, storage=JournalStorage, readonly=readonly, **storage_options)
        self._storage: JournalStorage = self._db.storage  # type: ignore[assignment]
        self._mutex: threading.RLock = self._storage.mutex
        self._table = self._db.table(TRAJECTORIES)
        self._blobs = self._db.table(BLOBS)
        self._index()
        if not readonly:
            self._migrate_all()

    # -- indexes ---------------------------------------------------------------------------------
    def _index(self) -> None:
        live = self._storage.live_table(TRAJECTORIES)
        self._by_id: dict[str, str] = {}  # record id -> TinyDB doc id (as stored)
        versions: Counter = Counter()
        for key, doc in live.items():
            self._by_id[doc["id"]] = key
            versions[doc.get("schema_version")] += 1
        self._sorted_ids = sorted(self._by_id)
        self._blob_keys = {doc["sha"]: key for key, doc in self._storage.live_table(BLOBS).items()}
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

    def _rebuild_caches(self) -> None:
        """After a failed batch the storage reloaded from disk: forget ids TinyDB handed out."""
        self._table._next_id = None
        self._blobs._next_id = None
        self._table.clear_cache()
        self._blobs.clear_cache()
        self._index()

    def _migrate_all(self) -> None:
        live = self._storage.live_table(TRAJECTORIES)
        old = [key for key, doc in live.items() if doc.get("schema_version") != RECORD_VERSION]
        if not old:
            return
        with self._mutex:
            ops = []
            for key in old:
                record = migrate(self._inflate(_copy(live[key])), where=str(self.path))
                ops.append([TRAJECTORIES, key, "put", self._deflate(record)])
            self._storage.commit(ops)

    # -- blobs -----------------------------------------------------------------------------------
    def _deflate(self, record: dict) -> dict:
        doc = dict(record)
        for field in SHARED_FIELDS:
            value = doc.get(field)
            if value is None:
                continue
            text = json.dumps(value, ensure_ascii=False, sort_keys=True)
            sha = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
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
                with self._storage.batch():  # shared data and record: one line, one fsync
                    doc_id = self._table.insert(self._deflate(clean))
            except StoreError:
                self._rebuild_caches()
                raise
            key = str(doc_id)
            self._by_id[record_id] = key
            bisect.insort(self._sorted_ids, record_id)
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
            start = bisect.bisect_left(self._sorted_ids, prefix)
            matches = []
            for record_id in self._sorted_ids[start:]:
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
            doc = self._storage.live_table(TRAJECTORIES)[self._by_id[record_id]]
            return _typed(migrate(self._inflate(_copy(doc)), where=str(self.path)), str(self.path))

    def records(self, status: str | Iterable[str] | None = None) -> Iterator[Trajectory]:
        """Whole records (copies), in the order they were added."""
        for key in self._keys(status):
            with self._mutex:
                doc = self._storage.live_table(TRAJECTORIES).get(key)
                if doc is None:
                    continue
                data = migrate(self._inflate(_copy(doc)), where=str(self.path))
            yield _typed(data, str(self.path))

    def listings(self, status: str | Iterable[str] | None = None) -> list[Listing]:
        """What lists, filters and statistics need of each record, in the order they were added.

        `Listing.number` is the record's place in the store: stable across reopening, undo and filters.
        """
        with self._mutex:
            live = self._storage.live_table(TRAJECTORIES)
            return [Listing.of(live[key], int(key)) for key in self._keys(status) if key in live]

    def number(self, record_id: str) -> int:
        """The record's place in the store (see `listings`)."""
        with self._mutex:
            return int(self._by_id[self.resolve(record_id)])

    def _keys(self, status: str | Iterable[str] | None) -> list[str]:
        wanted = _statuses(status)
        with self._mutex:
            live = self._storage.live_table(TRAJECTORIES)
            if wanted is None:
                return list(live)
            return [key for key, doc in live.items() if doc.get("status") in wanted]

    def count(self, status: str | Iterable[str] | None = None) -> int:
        wanted = _statuses(status)
        with self._mutex:
            live = self._storage.live_table(TRAJECTORIES)
            if wanted is None:
                return len(live)
            return sum(1 for doc in live.values() if doc.get("status") in wanted)

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
            stored = self._storage.live_table(TRAJECTORIES)[key]
            names = named_key_variables(self._inflate({"session": stored.get("session")}))
            try:
                with self._storage.batch():  # new shared data and the change: one line, one fsync
                    clean = self._deflate(redact(dict(fields), environment_secrets(names)))

                    def change(doc: dict) -> None:
                        doc.update(clean)
                        for name in removed:
                            doc.pop(name, None)

                    self._table.update(change, doc_ids=[int(key)])
            except StoreError:
                self._rebuild_caches()
                raise
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
        """Things the operator should be told (an unfinished write dropped after a crash)."""
        return list(self._storage.notices)

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
