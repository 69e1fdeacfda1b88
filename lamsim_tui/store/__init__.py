"""The trajectory store (TinyDB on a crash-safe journal storage). See docs/store.md."""

from lamsim_tui.errors import StoreError
from lamsim_tui.store.store import MIGRATIONS, RECORD_VERSION, STATUSES, Store, open_store

__all__ = ["MIGRATIONS", "RECORD_VERSION", "STATUSES", "Store", "StoreError", "open_store"]
