"""A horizontal bar chart as Content: one line per label, bars scaled to the largest value."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from textual.content import Content

from lamsim_tui.ui.text import literal

_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(value: float, largest: float, width: int) -> str:
    if largest <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / largest * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def bar_chart(items: Iterable[tuple[str, float]], *, width: int = 40, label_width: int | None = None,
              style_of: Callable[[str], str] | None = None, value_format: str = "{:,.0f}") -> Content:
    items = list(items)
    if not items:
        return Content.styled("nothing to show", "$text-muted")
    largest = max(v for _, v in items)
    label_width = label_width or max(len(label) for label, _ in items)
    parts: list[tuple[str, str] | str] = []
    for i, (label, value) in enumerate(items):
        if i:
            parts.append("\n")
        style = style_of(label) if style_of else ""
        parts.append((f"{literal(label):<{label_width}} ", style))
        parts.append((bar(value, largest, width), "$chart-bar"))
        parts.append((" " + value_format.format(value), "$text-muted"))
    return Content.assemble(*parts)
