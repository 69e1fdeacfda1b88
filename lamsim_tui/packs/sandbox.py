"""The sandbox: the mutable state a pack's tools read and change.

Seed tables are loaded once per pack and shared by every sandbox; a sandbox copies a table only
when a tool first writes to it (copy-on-write), and rows are replaced, never changed in place.
So a fresh sandbox per episode costs microseconds and episodes never see each other's changes.

The values nested inside stored rows (a list of payments inside an order) are read-only
(`FrozenDict` / `FrozenList`, which are a `dict` and a `list` for every reading purpose): reads
hand out a shallow copy of the row whose top-level fields may be set freely, and a tool that
changes a nested value in place gets `RowChangedInPlace` at the line that did it, instead of
silently changing the seed every later episode starts from. Nothing is deep-copied on a read.
The rows themselves stay plain dicts (scans over `iter_rows` run at dict speed); writing into one
of those is caught by `lamsim check` and at the end of a run, naming the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class ToolError(Exception):
    """An expected failure of a tool ("no such order"). The agent sees its message.

    Subclasses work the same way (`class NoSuchOrder(ToolError)`).
    """


class RowChangedInPlace(TypeError):
    """A tool, sampler or gold program tried to change a sandbox row (or a value inside one) in place."""

    def __init__(self, table: str, what: str):
        self.table = table
        super().__init__(
            f"a value read from table {table!r} was changed in place ({what}). Stored rows are read-only: "
            "sb.get/find/rows give copies whose top-level fields may be set, but the lists and objects inside "
            "them may not be changed (nor the rows of sb.iter_rows). Build the new value and write it, e.g. "
            f"sb.update({table!r}, key, field=[*row['field'], item]); copy.deepcopy(row) gives a fully "
            "mutable copy")


class FrozenDict(dict):
    """A read-only dict inside a sandbox row. Copies (`dict(x)`, `x.copy()`, `copy.deepcopy(x)`) are mutable."""

    __slots__ = ("_table",)

    def _no(self, what: str):
        raise RowChangedInPlace(getattr(self, "_table", "?"), what)

    def __setitem__(self, key, value):
        self._no(f"[{key!r}] = ...")

    def __delitem__(self, key):
        self._no(f"del [{key!r}]")

    def __ior__(self, other):
        self._no("|=")

    def update(self, *args, **kwargs):
        self._no(".update(...)")

    def pop(self, *args):
        self._no(".pop(...)")

    def popitem(self):
        self._no(".popitem()")

    def clear(self):
        self._no(".clear()")

    def setdefault(self, key, default=None):
        if key in self:
            return self[key]
        self._no(".setdefault(...)")

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo) -> dict:
        return thaw(self)

    def __reduce__(self):
        return (dict, (dict(self),))


class FrozenList(list):
    """A read-only list inside a sandbox row. Copies (`list(x)`, `x[:]`, `copy.deepcopy(x)`) are mutable."""

    __slots__ = ("_table",)

    def _no(self, what: str):
        raise RowChangedInPlace(getattr(self, "_table", "?"), what)

    def __setitem__(self, index, value):
        self._no("[...] = ...")

    def __delitem__(self, index):
        self._no("del [...]")

    def __iadd__(self, other):
        self._no("+=")

    def __imul__(self, other):
        self._no("*=")

    def append(self, value):
        self._no(".append(...)")

    def extend(self, values):
        self._no(".extend(...)")

    def insert(self, index, value):
        self._no(".insert(...)")

    def remove(self, value):
        self._no(".remove(...)")

    def pop(self, *args):
        self._no(".pop(...)")

    def clear(self):
        self._no(".clear()")

    def sort(self, *args, **kwargs):
        self._no(".sort(...) (use sorted(...))")

    def reverse(self):
        self._no(".reverse() (use reversed(...))")

    def __copy__(self) -> list:
        return list(self)

    def __deepcopy__(self, memo) -> list:
        return thaw(self)

    def __reduce__(self):
        return (list, (list(self),))


def freeze(value: Any, table: str) -> Any:
    """A read-only copy of a value stored in a row (dicts and lists all the way down)."""
    kind = type(value)
    if kind is FrozenDict or kind is FrozenList:
        return value
    if isinstance(value, dict):
        out = FrozenDict({k: freeze(v, table) for k, v in value.items()})
        out._table = table
        return out
    if isinstance(value, list):
        out = FrozenList(freeze(v, table) for v in value)
        out._table = table
        return out
    if isinstance(value, tuple):
        return tuple(freeze(v, table) for v in value)
    if isinstance(value, set):
        return frozenset(value)
    return value


_SCALARS = (str, int, float, bool, type(None))


def _freeze_changes(changes: dict, table: str) -> dict:
    return {k: v if isinstance(v, _SCALARS) else freeze(v, table) for k, v in changes.items()}


def thaw(value: Any) -> Any:
    """A plain, fully mutable copy of a value read from the sandbox."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [thaw(v) for v in value]
    if isinstance(value, tuple):
        return tuple(thaw(v) for v in value)
    return value


def _frozen_row(row: dict, table: str) -> dict:
    """A row to store: a plain dict (fast to read), its nested values read-only."""
    return {k: v if isinstance(v, _SCALARS) else freeze(v, table) for k, v in row.items()}


@dataclass(frozen=True)
class Seed:
    """Immutable seed data of a pack: table name -> {primary key -> row}. Rows are frozen (see above)."""

    tables: dict[str, dict[Any, dict]]
    keys: dict[str, str]
    now: datetime

    def __post_init__(self) -> None:
        for table, rows in self.tables.items():
            for key, row in rows.items():
                if any(not isinstance(v, _SCALARS) for v in row.values()):
                    rows[key] = _frozen_row(row, table)

    def fingerprint(self) -> int:
        """Cheap content hash, used by `lamsim check` and the engine to catch rows changed in place."""
        import json

        return hash(json.dumps(self.tables, sort_keys=True, default=str))

    def table_fingerprints(self) -> dict[str, int]:
        """One content hash per table: which table a tool changed in place."""
        import json

        return {name: hash(json.dumps(rows, sort_keys=True, default=str)) for name, rows in self.tables.items()}


class Sandbox:
    """What a tool receives as its first argument.

    Reads return copies (top-level fields settable, nested values read-only); writes go through
    `update`, `insert` and `delete`. `writes` counts them (the engine uses it to tell whether a call
    changed anything).
    """

    __slots__ = ("_seed", "_tables", "_owned", "log", "writes", "last_write")

    def __init__(self, seed: Seed):
        self._seed = seed
        self._tables: dict[str, dict[Any, dict]] = dict(seed.tables)
        self._owned: set[str] = set()
        self.log: list[str] = []
        self.writes = 0  # number of update/insert/delete calls so far
        self.last_write: str | None = None  # "update orders" etc.: the latest write, for messages

    # ----- reading -------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """The pack's fixed clock: tasks like "last month" stay reproducible."""
        return self._seed.now

    @property
    def tables(self) -> list[str]:
        return list(self._tables)

    def key_field(self, table: str) -> str:
        """The primary-key field of a table (as declared in pack.yaml)."""
        self._table(table)
        return self._seed.keys.get(table, "id")

    def _table(self, table: str) -> dict[Any, dict]:
        try:
            return self._tables[table]
        except KeyError:
            raise KeyError(f"no table {table!r} in this pack (tables: {', '.join(self._tables)})") from None

    def rows(self, table: str) -> list[dict]:
        """Every row of a table, as copies, in seed order."""
        return [row.copy() for row in self._table(table).values()]  # dict.copy: a plain dict, the fastest copy

    def iter_rows(self, table: str) -> Iterator[dict]:
        """The stored rows themselves, without copying: read-only (faster for scans in big tables)."""
        return iter(self._table(table).values())

    def get(self, table: str, key: Any) -> dict | None:
        row = self._table(table).get(key)
        return row.copy() if row is not None else None

    def find(self, table: str, **equals: Any) -> list[dict]:
        items = equals.items()
        return [r.copy() for r in self._table(table).values() if all(r.get(k) == v for k, v in items)]

    def count(self, table: str) -> int:
        return len(self._table(table))

    # ----- writing -------------------------------------------------------------------------
    def _writable(self, table: str) -> dict[Any, dict]:
        data = self._table(table)
        if table not in self._owned:
            data = dict(data)
            self._tables[table] = data
            self._owned.add(table)
        return data

    def _wrote(self, what: str, table: str) -> None:
        self.writes += 1
        self.last_write = f"{what} {table}"

    def update(self, table: str, key: Any, **changes: Any) -> dict:
        data = self._writable(table)
        row = data.get(key)
        if row is None:
            raise ToolError(f"no {table} record with id {key!r}")
        new = {**row, **_freeze_changes(changes, table)}
        data[key] = new
        self._wrote("update", table)
        return new.copy()

    def insert(self, table: str, row: dict) -> dict:
        key_field = self._seed.keys.get(table, "id")
        key = row.get(key_field)
        if key is None:
            raise ValueError(f"insert into {table}: row has no {key_field!r}")
        data = self._writable(table)
        if key in data:
            raise ToolError(f"{table} record {key!r} already exists")
        stored = _frozen_row(row, table)
        data[key] = stored
        self._wrote("insert", table)
        return stored.copy()

    def delete(self, table: str, key: Any) -> dict:
        data = self._writable(table)
        row = data.pop(key, None)
        if row is None:
            raise ToolError(f"no {table} record with id {key!r}")
        self._wrote("delete", table)
        return row.copy()

    def new_key(self, table: str, prefix: str, width: int = 4) -> str:
        """Next free key of the form PREFIX0001, deterministic for a given state."""
        data = self._table(table)
        n = len(data) + 1
        while f"{prefix}{n:0{width}d}" in data:
            n += 1
        return f"{prefix}{n:0{width}d}"

    # ----- state for the judge -------------------------------------------------------------
    def changes(self) -> dict[str, dict[str, dict | None]]:
        """Rows that differ from the seed: {table: {str(key): row or None if deleted}}."""
        out: dict[str, dict[str, dict | None]] = {}
        for table in sorted(self._owned):
            now, seed = self._tables[table], self._seed.tables.get(table, {})
            diff: dict[str, dict | None] = {}
            for key, row in now.items():
                old = seed.get(key)
                if old is not row and old != row:
                    diff[str(key)] = row
            for key in seed.keys() - now.keys():
                diff[str(key)] = None
            if diff:
                out[table] = diff
        return out
