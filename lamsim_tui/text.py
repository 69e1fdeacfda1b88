"""Untrusted text (model output, tool results, pack data) made safe to show, and cut to size.

One sanitizer for every surface (the CLI, the app, `pack show`, `check`): control characters
(ANSI escapes, carriage returns, bells) are shown as visible escapes such as `\\x1b`, so text
from a model or a pack can neither restyle a terminal nor rewrite what it shows.
"""

from __future__ import annotations

import json
import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: Any) -> str:
    """The text with every control character except newline shown as an escape; tabs expanded."""
    if not isinstance(text, str):
        text = str(text)
    text = text.replace("\r\n", "\n").replace("\t", "    ")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def shorten(text: str, limit: int, marker: str = "…") -> str:
    """At most ``limit`` characters; a cut text ends with ``marker``."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker


def as_text(value: Any) -> str:
    """A value as one would read it: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def plain(value: Any, limit: int | None = None) -> str:
    """A value made safe for a terminal line (see `visible`), optionally cut to ``limit``."""
    text = visible(as_text(value))
    return shorten(text, limit) if limit is not None else text
