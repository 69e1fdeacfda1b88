"""Untrusted text (model output, tool results, pack data) made safe to show, and cut to size.

One sanitizer for every surface (the CLI, the app, `pack show`, `check`): control characters
(ANSI escapes, carriage returns, bells) are shown as visible escapes such as `\\x1b`, and invisible
formatting characters (bidi overrides such as `\\u202e`, zero-width spaces and joiners) as escapes
such as `\\u200b`, so text from a model or a pack can neither restyle a terminal, nor rewrite what
it shows, nor hide or reorder words.
"""

from __future__ import annotations

import json
import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: Characters that change how text around them is shown while being invisible themselves:
#: bidirectional overrides and isolates (a "Trojan Source" reorders what a reader sees), zero-width
#: spaces and joiners, the byte-order mark, line/paragraph separators, interlinear annotations, and
#: Unicode tag characters (invisible ASCII look-alikes used to smuggle instructions).
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
                        "\ufff9-\ufffb\U000e0000-\U000e007f]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: Any) -> str:
    """The text with every control character except newline, and every invisible formatting
    character (bidi overrides, zero-width characters, ...), shown as an escape; tabs expanded."""
    if not isinstance(text, str):
        text = str(text)
    text = text.replace("\r\n", "\n").replace("\t", "    ")
    text = _CONTROL.sub(_escape, text)
    return _INVISIBLE.sub(_escape, text) if not text.isascii() else text


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
