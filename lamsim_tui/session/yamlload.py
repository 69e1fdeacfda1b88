"""YAML loading that remembers where every key came from, so errors can name file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lamsim_tui.errors import ConfigError

KeyPath = tuple[str | int, ...]


@dataclass
class Located:
    """Parsed YAML data plus the 1-based line of every key path."""

    data: Any
    path: Path
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def where(self, key_path: KeyPath) -> str:
        """`file:line` for the closest known ancestor of ``key_path``."""
        probe = tuple(key_path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe, 1)
        return f"{self.path}:{line}"


def load_yaml(path: Path, error_cls: type[Exception] = ConfigError) -> Located:
    """Load one YAML document; reject syntax errors and duplicate keys with file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error_cls(f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error_cls(f"cannot read {path}: {exc}") from None
    return parse_yaml(text, path, error_cls)


def parse_yaml(text: str, path: Path, error_cls: type[Exception] = ConfigError) -> Located:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise error_cls(f"invalid YAML: {problem}", where=f"{path}:{line}") from None
    except yaml.YAMLError as exc:
        raise error_cls(f"invalid YAML: {exc}", where=str(path)) from None
    finally:
        loader.dispose()
    located = Located(data=data, path=path)
    if node is not None:
        _walk(node, (), located, error_cls)
    return located


def _walk(node: yaml.Node, key_path: KeyPath, located: Located, error_cls) -> None:
    located.lines.setdefault(key_path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise error_cls(
                    f"duplicate key {key!r} (first at line {seen[key]})",
                    where=f"{located.path}:{line}",
                )
            seen[key] = line
            child = key_path + (key,)
            located.lines[child] = line
            _walk(value_node, child, located, error_cls)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = key_path + (index,)
            located.lines[child] = item.start_mark.line + 1
            _walk(item, child, located, error_cls)
