"""Turning untrusted text (model output, tool results, file contents) into displayable Content.

Nothing here interprets markup: text goes into `Content` as literal characters, and control
characters (ANSI escapes, carriage returns, bells) are shown as visible escapes such as `\\x1b`
by the one sanitizer the CLI and the exports use too (`lamsim_tui.text.visible`), so a model that
writes `[bold red]` or `\\x1b[31m` cannot restyle or break the screen.
"""

from __future__ import annotations

import json
from typing import Any

from textual.content import Content

from lamsim_tui.text import visible

SEVERITY_STYLE = {
    "error": "bold $severity-error",
    "warning": "bold $severity-warning",
    "info": "$severity-info",
}


def literal(text: Any) -> str:
    """The text as the screen shows it: `lamsim_tui.text.visible` (control characters made visible)."""
    return visible(text)


def lit(text: Any, style: str = "") -> Content:
    """Untrusted text as Content, never parsed as markup."""
    return Content.styled(literal(text), style) if style else Content(literal(text))


def clip(text: str, limit: int, max_lines: int | None = None) -> tuple[str, int]:
    """At most ``limit`` characters (and ``max_lines`` lines); returns the part and how much was cut."""
    cut = text[:limit]
    if max_lines is not None:
        lines = cut.split("\n")
        if len(lines) > max_lines:
            cut = "\n".join(lines[:max_lines])
    return cut, len(text) - len(cut)


def pretty_json(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        return repr(value)


def severity_style(severity: str) -> str:
    return SEVERITY_STYLE.get(severity, "")


def code_style(code: str) -> str:
    """The style of a feedback code: that of its severity (see docs/feedback.md)."""
    from lamsim_tui.simulator.feedback import CODES

    spec = CODES.get(code)
    return severity_style(spec.severity if spec else "info")
