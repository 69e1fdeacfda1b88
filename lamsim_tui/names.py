"""Nearest-name hints ("did you mean ...?") for config keys, choices, tools, arguments and codes."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest_names(name: str, options: Iterable[str], n: int = 3) -> list[str]:
    options = list(options)
    lowered = {o.lower(): o for o in options}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[c] for c in close]
