"""Errors a user can cause. The CLI prints them as one message, never a traceback."""

from __future__ import annotations


class LamsimError(Exception):
    """A mistake in input the user controls (a session, a pack, a store, a flag).

    ``where`` names the file (and line) or setting; ``hint`` says what to do.
    """

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(LamsimError):
    """A session file is invalid."""


class PackError(LamsimError):
    """A tool pack cannot be loaded or is inconsistent."""


class StoreError(LamsimError):
    """A store cannot be opened or written."""
