"""Themes are data: YAML files in `themes/` become `textual.theme.Theme` objects.

A file holds Textual's theme colours (`primary`, `background`, ...) and, under `variables`, the
app's own colours (severity, review status, verdict, charts). A broken file gives one `ThemeError`
naming the file and line; the caller keeps the last good version of that theme (or the built-in
fallback) and says so once.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

from lamsim_tui.errors import LamsimError

FALLBACK_THEME = "lamsim-dark"

# App colours every theme may set under `variables`; these defaults fill any it leaves out.
APP_VARIABLES = {
    "severity-error": "#ff6b6b",
    "severity-warning": "#f0b94d",
    "severity-info": "#6cb6ff",
    "status-pending": "#6cb6ff",
    "status-filtered": "#c49bff",
    "status-accepted": "#5fd68a",
    "status-discarded": "#9a9a9a",
    "verdict-success": "#5fd68a",
    "verdict-failure": "#ff6b6b",
    "chart-bar": "#6cb6ff",
    "stream-text": "#b8b8b8",
}

_COLOUR_KEYS = ("primary", "secondary", "accent", "foreground", "background", "surface", "panel", "boost",
                "warning", "error", "success")
_OTHER_KEYS = ("name", "dark", "luminosity_spread", "text_alpha", "variables")

BUILTIN = Theme(
    name=FALLBACK_THEME,
    primary="#4f9cf9",
    secondary="#8a7bf0",
    accent="#f0b94d",
    foreground="#e3e6eb",
    background="#15181d",
    surface="#1d2127",
    panel="#262b33",
    warning="#f0b94d",
    error="#ff6b6b",
    success="#5fd68a",
    dark=True,
    variables=dict(APP_VARIABLES),
)


class ThemeError(LamsimError):
    """A theme file is invalid."""


# Numbers a theme may set, with the range Textual can use.
_NUMBER_RANGES = {"luminosity_spread": (0.0, 1.0), "text_alpha": (0.0, 1.0)}


def unreadable(path: Path, exc: BaseException) -> str:
    """One line for a data file (a theme, a session) that could not be read at all, whatever the reader
    raised: a NUL byte, a recursive anchor, an encoding. A `LamsimError` already says it well."""
    if isinstance(exc, LamsimError):
        return str(exc)
    if isinstance(exc, RecursionError):
        detail = "it nests too deeply (a recursive YAML anchor?)"
    else:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0].strip() or type(exc).__name__
    return f"{path}: cannot be read: {detail}"


def load_theme_file(path: Path) -> Theme:
    from lamsim_tui.session.yamlload import load_yaml

    try:
        located = load_yaml(path, ThemeError)
    except ThemeError:
        raise
    except Exception as exc:  # the YAML reader itself failed (a NUL, a recursive anchor)
        raise ThemeError(unreadable(path, exc).removeprefix(f"{path}: "), where=str(path),
                         hint="fix the file; the built-in theme is used meanwhile") from None
    data = located.data
    if not isinstance(data, dict):
        raise ThemeError("a theme file must be a mapping (name: ..., primary: ..., ...)", where=located.where(()))
    for key in data:
        if key not in _COLOUR_KEYS and key not in _OTHER_KEYS:
            raise ThemeError(f"unknown key {key!r}; theme keys are: {', '.join(_COLOUR_KEYS + _OTHER_KEYS)}",
                             where=located.where((key,)))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeError("`name` is required (a non-empty string)", where=located.where(("name",)))
    if "primary" not in data:
        raise ThemeError("`primary` is required (a colour such as \"#4f9cf9\")", where=located.where(()))
    colours: dict[str, str] = {}
    for key in _COLOUR_KEYS:
        if key in data:
            colours[key] = _colour(data[key], located.where((key,)), key)
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise ThemeError("`variables` must be a mapping of name: colour", where=located.where(("variables",)))
    checked: dict[str, str] = {}
    for key, value in variables.items():
        where = located.where(("variables", key))
        if key in APP_VARIABLES:
            checked[str(key)] = _colour(value, where, f"variables.{key}")
        else:
            checked[str(key)] = str(value)
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeError("`dark` must be true or false", where=located.where(("dark",)))
    extra = {}
    for key, (low, high) in _NUMBER_RANGES.items():
        if key in data:
            value = data[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ThemeError(f"`{key}` must be a number", where=located.where((key,)))
            if not math.isfinite(value) or not low <= value <= high:
                raise ThemeError(f"`{key}` must be a number from {low:g} to {high:g}, not {value!r}",
                                 where=located.where((key,)))
            extra[key] = float(value)
    theme = Theme(name=name.strip(), dark=dark, variables={**APP_VARIABLES, **checked}, **colours, **extra)
    try:
        theme.to_color_system().generate()  # what applying it does: fails here, not in the running app
    except Exception as exc:
        raise ThemeError(f"the theme's colours cannot be used: {exc}", where=located.where(())) from None
    return theme


def _colour(value: object, where: str, key: str) -> str:
    text = str(value)
    try:
        Color.parse(text)
    except ColorParseError:
        raise ThemeError(f"{key}: {text!r} is not a colour (use e.g. \"#4f9cf9\" or \"rgb(79,156,249)\")",
                         where=where) from None
    return text


@dataclass
class ThemeSet:
    """The themes found in a folder: good ones by name, and one error per broken file."""

    themes: dict[str, Theme] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # theme name -> file
    errors: dict[Path, ThemeError] = field(default_factory=dict)


def load_themes(folder: Path | None) -> ThemeSet:
    found = ThemeSet()
    if folder is None or not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.y*ml")):
        try:
            theme = load_theme_file(path)
        except ThemeError as exc:
            found.errors[path] = exc
            continue
        except Exception as exc:  # never a traceback for a file the operator edits
            found.errors[path] = ThemeError(unreadable(path, exc).removeprefix(f"{path}: "), where=str(path))
            continue
        if theme.name in found.themes:
            found.errors[path] = ThemeError(f"theme name {theme.name!r} is already used by {found.files[theme.name]}",
                                            where=f"{path}:1")
            continue
        found.themes[theme.name] = theme
        found.files[theme.name] = path
    return found


# ----- the remembered choice -----------------------------------------------------------------


def prefs_path(project_root: Path) -> Path:
    override = os.environ.get("LAMSIM_APP_STATE")
    if override:
        return Path(override)
    return project_root / ".lamsim" / "app.json"


def load_prefs(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_prefs(path: Path, prefs: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(prefs, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
