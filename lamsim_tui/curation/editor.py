"""Editing a trajectory's JSON in the operator's own editor (`$VISUAL`, else `$EDITOR`).

The CLI (`lamsim review edit`) and the app (ctrl+e, inside `App.suspend()`) both run it here.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from lamsim_tui.errors import LamsimError


def editor_command(*, fallback: str | None = None) -> list[str] | None:
    """The operator's editor as a command line, or `fallback` (e.g. "vi"), or None when there is none."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or fallback
    return shlex.split(editor) if editor else None


def run_editor(path: Path, *, fallback: str | None = None) -> None:
    """Open `path` in the editor and wait. Raises LamsimError when there is no editor, it is not
    found, or it exits with an error (the file is then left as the editor left it)."""
    command = editor_command(fallback=fallback)
    if not command:
        raise LamsimError("no editor: set $EDITOR (or $VISUAL)", where="$EDITOR",
                          hint=f"or edit {path} yourself and apply it with `lamsim review edit ID --file {path}`")
    try:
        code = subprocess.call([*command, str(path)])
    except FileNotFoundError:
        raise LamsimError(f"the editor {command[0]!r} was not found", where="$EDITOR",
                          hint=f"set $EDITOR, or apply {path} with --file") from None
    if code != 0:
        raise LamsimError(f"the editor exited with status {code}; nothing was changed", where="$EDITOR",
                          hint=f"your edit is kept in {path}; apply it with --file")
