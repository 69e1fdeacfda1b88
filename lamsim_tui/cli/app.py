"""`lamsim [SESSION] [--agent scripted|embedded|model] [--tasks N] [--seed S]` (also `lamsim app ...`):
open the Textual app on a session. The flags override the session file for this app, as they do
for `lamsim run --headless`; hot reloads of the file keep them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DEFAULT_SESSION = Path("sessions/pilot.yaml")
AGENTS = ("scripted", "embedded", "model")


def add_commands(sub: Any) -> None:
    app = sub.add_parser("app", help="open the Textual app (the default command)",
                         description="Open the app on a session (default: sessions/pilot.yaml).")
    app.add_argument("session", nargs="?", default=str(DEFAULT_SESSION), help="session YAML file")
    add_overrides(app)
    app.set_defaults(handler=cmd_app)


def add_overrides(parser: Any) -> None:
    parser.add_argument("--agent", choices=AGENTS, help="agent kind (overrides the session's agent.kind)")
    parser.add_argument("-n", "--tasks", type=int, help="number of tasks (overrides the session)")
    parser.add_argument("--seed", type=int, help="seed (overrides the session)")


def cmd_app(args) -> int:
    from lamsim_tui.errors import ConfigError, LamsimError
    from lamsim_tui.session.config import load_session

    session_path = Path(args.session)
    agent, tasks, seed = getattr(args, "agent", None), getattr(args, "tasks", None), getattr(args, "seed", None)
    if tasks is not None and tasks < 1:
        raise ConfigError(f"--tasks must be at least 1, not {tasks}", where="--tasks")
    try:
        session = load_session(session_path)  # a broken session is reported here, before the screen opens
    except LamsimError:
        raise
    except Exception as exc:  # whatever a reader raised on a hostile file: one line, not a traceback
        from lamsim_tui.ui.themes import unreadable

        raise ConfigError(unreadable(session_path, exc).removeprefix(f"{session_path}: "),
                          where=str(session_path)) from None
    if agent == "model" and not session.agent.models:
        raise ConfigError("--agent model needs at least one entry under `agent.models` in the session",
                          where=str(session_path), hint="add one (see docs/models.md), or use --agent embedded "
                          "(the model that ships with lamsim) or --agent scripted (no model)")
    try:
        from lamsim_tui.ui.app import run_app
    except ImportError:
        print("lamsim: the app is not available in this build; use `lamsim run SESSION --headless`",
              file=sys.stderr)
        return 2
    return run_app(session_path, agent=agent, tasks=tasks, seed=seed)
