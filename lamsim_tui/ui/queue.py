"""The lists the review queue and the store browser show: trajectories by their `Listing`, in a
stable order, narrowed by the operator's filter.

A list holds only the cheap summaries the table and the filter read (`store.listings`); the
whole record is loaded when one is opened, and its text (query, thoughts, observations) only
when a text filter has to search it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from lamsim_tui.errors import LamsimError
from lamsim_tui.record import Listing, Trajectory

TEXT_PER_PART = 2000  # characters of each step's output and observation that the text filter searches


def search_text(record: Trajectory) -> str:
    """What the text filter searches in a trajectory (lower case)."""
    task = record.task
    parts = [task.query, task.template, str(record.final_answer)]
    for step in record.steps:
        parts.append(step.thought)
        parts.append(step.raw[:TEXT_PER_PART])
        parts.append(step.observation[:TEXT_PER_PART])
    return "\n".join(parts).lower()


@dataclass(eq=False)
class Row:
    """One trajectory in a list: its summary and the order it joined the list in.

    What the operator sees as its number is `listing.number`, its place in the store: the same in
    the live pane, the queue and the store browser, and across restarts, undo and filters.
    """

    listing: Listing
    seq: int
    text: str | None = field(default=None, repr=False)  # search_text, once a text filter needed it

    @property
    def id(self) -> str:
        return self.listing.id

    @property
    def status(self) -> str:
        return self.listing.status

    @property
    def number(self) -> int:
        return self.listing.number


QUERY_KEYS = ("status", "template", "code")


@dataclass(frozen=True)
class RowFilter:
    """What the operator narrowed the list to: status, template, feedback code, free text.

    `RowFilter.parse` reads the same from one line, as typed in the `/` box:
    ``code:loop.repeat template:case_status status:filtered some words``.
    """

    status: str | None = None
    template: str | None = None
    code: str | None = None
    text: str = ""

    @classmethod
    def parse(cls, line: str, base: RowFilter | None = None) -> RowFilter:
        """`key:value` words set those fields (an empty value clears one); the other words are the text."""
        fields: dict[str, str | None] = {}
        words = []
        for word in line.split():
            key, sep, value = word.partition(":")
            key = key.lower()
            if sep and key in QUERY_KEYS:
                fields[key] = value or None
            elif sep and key in ("s", "t", "c"):  # short forms
                fields[{"s": "status", "t": "template", "c": "code"}[key]] = value or None
            else:
                words.append(word)
        merged = dataclasses.replace(base, **fields) if base is not None else cls(**fields)
        return dataclasses.replace(merged, text=" ".join(words))

    def query(self) -> str:
        """The filter as one line that `parse` reads back."""
        parts = [f"{key}:{getattr(self, key)}" for key in QUERY_KEYS if getattr(self, key)]
        if self.text.strip():
            parts.append(self.text.strip())
        return " ".join(parts)

    @property
    def active(self) -> bool:
        return bool(self.status or self.template or self.code or self.text.strip())

    def matches(self, listing: Listing, text: Callable[[], str]) -> bool:
        """Whether the trajectory is listed; ``text`` gives its search text (asked only for a text filter)."""
        if self.status and listing.status != self.status:
            return False
        if self.template and listing.template != self.template and not listing.template.startswith(self.template):
            return False
        if self.code and not any(c == self.code or c.startswith(self.code + ".") for c in listing.findings):
            return False
        words = self.text.strip().lower().split()
        if words:
            haystack = text()
            if not all(word in haystack or word in listing.id for word in words):
                return False
        return True

    def describe(self) -> str:
        parts = [f"status {self.status}" if self.status else "", f"template {self.template}" if self.template else "",
                 f"code {self.code}" if self.code else "", f"text “{self.text.strip()}”" if self.text.strip() else ""]
        return ", ".join(p for p in parts if p) or "none"


class TrajectoryRows:
    """An ordered list of trajectories. The review queue lists pending ones before filtered ones;
    both keep arrival order within a status. A trajectory that leaves and comes back (undo) gets
    its old place again.

    ``load`` gives a whole record by id (for the text filter).
    """

    def __init__(self, load: Callable[[str], Trajectory], *, pending_first: bool = False):
        self._load = load
        self.pending_first = pending_first
        self._rows: dict[str, Row] = {}
        self._seq: dict[str, int] = {}

    # ----- membership --------------------------------------------------------------------------
    def replace(self, listings: Iterable[Listing]) -> None:
        """Everything listed anew (the store was opened or read again)."""
        self._rows = {}
        self._seq = {}
        for listing in listings:
            self.put(listing)

    def put(self, listing: Listing) -> Row:
        """Add a trajectory, or replace what is known of it (a review changed it)."""
        seq = self._seq.setdefault(listing.id, len(self._seq))
        row = Row(listing, seq)
        self._rows[listing.id] = row
        return row

    def numbered(self, record_id: str, number: int) -> bool:
        """The record is now durable as store number `number`; whether what its row shows changed."""
        row = self._rows.get(record_id)
        if row is None or row.listing.number == number:
            return False
        row.listing = dataclasses.replace(row.listing, number=number)
        return True

    def remove(self, record_id: str) -> bool:
        return self._rows.pop(record_id, None) is not None

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._rows

    def __getitem__(self, record_id: str) -> Row:
        return self._rows[record_id]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.ordered())

    def count(self, status: str) -> int:
        return sum(1 for row in self._rows.values() if row.status == status)

    # ----- order and filter --------------------------------------------------------------------
    def sort_key(self, row: Row) -> tuple:
        # Store order; a record the store has not numbered yet (still being written) goes last.
        place = (row.number or float("inf"), row.seq)
        return (row.status != "pending", *place) if self.pending_first else place

    def ordered(self) -> list[Row]:
        return sorted(self._rows.values(), key=self.sort_key)

    def matching(self, row_filter: RowFilter) -> list[Row]:
        return [row for row in self.ordered() if self.matches(row, row_filter)]

    def matches(self, row: Row, row_filter: RowFilter) -> bool:
        return row_filter.matches(row.listing, lambda: self.text(row))

    def text(self, row: Row) -> str:
        if row.text is None:
            try:
                row.text = search_text(self._load(row.id))
            except LamsimError:
                row.text = ""  # gone from the store meanwhile: nothing to search
        return row.text

    def templates(self) -> set[str]:
        return {row.listing.template for row in self._rows.values()}

    def codes(self) -> set[str]:
        return {code for row in self._rows.values() for code in row.listing.findings}
