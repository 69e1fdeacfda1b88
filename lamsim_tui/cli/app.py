"""`lamsim [SESSION]` / `lamsim app SESSION`: open the Textual app on a session."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DEFAULT_SESSION = Path("sessions/pilot.yaml")


def add_commands(sub: Any) -> None:
    app = sub.add_parser("app", help="open the Textual app (the default command)")
    app.add_argument("session", nargs="?", default=str(DEFAULT_SESSION))
    app.set_defaults(handler=cmd_app)


def cmd_app(args) -> int:
    from lamsim_tui.session.config import load_session

    session_path = Path(args.session)
    load_session(session_path)  # a broken session is reported here, before the screen opens
    try:
        from lamsim_tui.ui.app import run_app
    except ImportError:
        print("lamsim: the app is not available in this build; use `lamsim run SESSION --headless`",
              file=sys.stderr)
        return 2
    return run_app(session_path)
