"""The sandbox: the mutable state a pack's tools read and change.

Seed tables are loaded once per pack and shared by every sandbox; a sandbox copies a table only
when a tool first writes to it (copy-on-write), and rows are replaced, never changed in place.
So a fresh sandbox per episode costs microseconds and episodes never see each other's changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class ToolError(Exception):
    """An expected failure of a tool ("no such order"). The agent sees its message."""


@dataclass(frozen=True)
class Seed:
    """Immutable seed data of a pack: table name -> {primary key -> row}."""

    tables: dict[str, dict[Any, dict]]
    keys: dict[str, str]
    now: datetime

    def fingerprint(self) -> int:
        """Cheap content hash, used by `lamsim check` to catch tools that mutate rows in place."""
        import json

        return hash(json.dumps(self.tables, sort_keys=True, default=str))


class Sandbox:
    """What a tool receives as its first argument.

    Reads return copies; writes go through `update`, `insert` and `delete`.
    """

    __slots__ = ("_seed", "_tables", "_owned", "log")

    def __init__(self, seed: Seed):
        self._seed = seed
        self._tables: dict[str, dict[Any, dict]] = dict(seed.tables)
        self._owned: set[str] = set()
        self.log: list[str] = []

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
        return [dict(row) for row in self._table(table).values()]

    def iter_rows(self, table: str) -> Iterator[dict]:
        """Rows without copying: read-only use only (faster for scans in big tables)."""
        return iter(self._table(table).values())

    def get(self, table: str, key: Any) -> dict | None:
        row = self._table(table).get(key)
        return dict(row) if row is not None else None

    def find(self, table: str, **equals: Any) -> list[dict]:
        items = equals.items()
        return [dict(r) for r in self._table(table).values() if all(r.get(k) == v for k, v in items)]

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

    def update(self, table: str, key: Any, **changes: Any) -> dict:
        data = self._writable(table)
        row = data.get(key)
        if row is None:
            raise ToolError(f"no {table} record with id {key!r}")
        new = {**row, **changes}
        data[key] = new
        return dict(new)

    def insert(self, table: str, row: dict) -> dict:
        key_field = self._seed.keys.get(table, "id")
        key = row.get(key_field)
        if key is None:
            raise ValueError(f"insert into {table}: row has no {key_field!r}")
        data = self._writable(table)
        if key in data:
            raise ToolError(f"{table} record {key!r} already exists")
        data[key] = dict(row)
        return dict(row)

    def delete(self, table: str, key: Any) -> dict:
        data = self._writable(table)
        row = data.pop(key, None)
        if row is None:
            raise ToolError(f"no {table} record with id {key!r}")
        return dict(row)

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
