"""Turning untrusted text (model output, tool results, file contents) into displayable Content.

Nothing here interprets markup: text goes into `Content` as literal characters, and control
characters (ANSI escapes, carriage returns, bells) are shown as visible escapes such as `\\x1b`,
so a model that writes `[bold red]` or `\\x1b[31m` cannot restyle or break the screen.
"""

from __future__ import annotations

import json
import re
from typing import Any

from textual.content import Content

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

SEVERITY_STYLE = {
    "error": "bold $severity-error",
    "warning": "bold $severity-warning",
    "info": "$severity-info",
}
STATUS_STYLE = {
    "pending": "$status-pending",
    "filtered": "$status-filtered",
    "accepted": "bold $status-accepted",
    "discarded": "$status-discarded",
}


def literal(text: Any) -> str:
    """The text with every control character (except newline) made visible and tabs expanded."""
    if not isinstance(text, str):
        text = str(text)
    text = text.replace("\r\n", "\n").replace("\t", "    ")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


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


def one_line_json(value: Any, limit: int = 80) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def severity_style(severity: str) -> str:
    return SEVERITY_STYLE.get(severity, "")


def status_content(status: str | None) -> Content:
    status = status or "?"
    return Content.styled(status, STATUS_STYLE.get(status, ""))


def verdict_content(verdict: dict | None) -> Content:
    if not verdict:
        return Content("—")
    if verdict.get("success"):
        return Content.styled("success", "$verdict-success")
    return Content.styled("failed", "$verdict-failure")


def findings_summary(verdict: dict | None, limit: int = 40) -> str:
    findings = (verdict or {}).get("findings") or {}
    text = " ".join(f"{code}×{n}" if n > 1 else code for code, n in sorted(findings.items(), key=lambda kv: (-kv[1], kv[0])))
    return text if len(text) <= limit else text[: limit - 1] + "…"
