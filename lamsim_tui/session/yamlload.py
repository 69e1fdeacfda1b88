"""YAML loading that remembers where every key came from, so errors can name file and line.

Every settings file (sessions, `pack.yaml`, themes, OpenAPI descriptions, the app's hot reload)
loads through `load_yaml`/`parse_yaml`, so the guards against hostile files live here, before
anything is built from the document:

- aliases may not make the document much bigger than it is written ("billion laughs": ten
  aliases of ten aliases of ... is 10**9 values from a few hundred bytes), and may not refer to
  their own anchor (a recursive structure);
- nesting deeper than `MAX_DEPTH`, integers of more than `MAX_INT_DIGITS` digits and characters
  YAML forbids (NUL) are refused with their line;
- a key given twice is refused, but a merge key (`<<: *base`) is YAML: the keys it brings in may
  be overridden by the mapping's own keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lamsim_tui.errors import ConfigError

KeyPath = tuple[str | int, ...]

#: How many values aliases may add to a document beyond what is written in it.
MAX_ALIAS_EXPANSION = 100_000
#: Nesting of mappings and lists.
MAX_DEPTH = 100
#: Digits of one integer (Python refuses to convert more than 4300 anyway).
MAX_INT_DIGITS = 100

_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT_TAG = "tag:yaml.org,2002:int"


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
    except UnicodeDecodeError as exc:
        raise error_cls(f"not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r})",
                        where=f"{path}:{_line_of_byte(exc.object, exc.start)}",
                        hint="save the file as UTF-8") from None
    except (OSError, ValueError) as exc:
        raise error_cls(f"cannot read {path}: {exc}") from None
    return parse_yaml(text, path, error_cls)


def _line_of_byte(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing integers too long to be settings (and to convert, past 4300 digits)."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(c.isalnum() for c in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {digits} digits is too large (at most {MAX_INT_DIGITS})", node.start_mark)
        return super().construct_yaml_int(node)


_Loader.add_constructor(_INT_TAG, _Loader.construct_yaml_int)


def parse_yaml(text: str, path: Path, error_cls: type[Exception] = ConfigError) -> Located:
    path = Path(path)
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else 1
        raise error_cls(f"invalid YAML: the character {_char_name(exc.character)} is not allowed in a YAML file",
                        where=f"{path}:{line}", hint="remove it (write \\0 inside double quotes if you mean it)") \
            from None
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise error_cls(f"invalid YAML: nested more than {MAX_DEPTH} levels deep",
                            where=f"{path}:{loader.line + 1}") from None
        located = Located(data=None, path=path)
        if node is not None:
            _check_graph(node, path, error_cls)
            _walk(node, located, error_cls)  # before construction: it rewrites merge keys in place
            try:
                located.data = loader.construct_document(node)
            except RecursionError:
                raise error_cls(f"invalid YAML: nested more than {MAX_DEPTH} levels deep",
                                where=f"{path}:{node.start_mark.line + 1}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise error_cls(f"invalid YAML: {problem}", where=f"{path}:{line}") from None
    except yaml.YAMLError as exc:
        raise error_cls(f"invalid YAML: {exc}", where=str(path)) from None
    except (ValueError, TypeError, OverflowError) as exc:  # a scalar PyYAML itself could not convert
        raise error_cls(f"invalid YAML: {exc}", where=f"{path}:{loader.line + 1}") from None
    finally:
        loader.dispose()
    return located


def _char_name(character: Any) -> str:
    code = ord(character) if isinstance(character, str) and len(character) == 1 else character
    if not isinstance(code, int):
        return repr(character)
    return "NUL (\\x00)" if code == 0 else f"U+{code:04X}"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_graph(root: yaml.Node, path: Path, error_cls) -> None:
    """Refuse recursive aliases, alias bombs and deep nesting, without ever expanding an alias.

    Aliases make the composed document a graph in which one node can be reached many times; the
    size it has once expanded is computed bottom-up with each node counted once (memoised).
    """
    expanded: dict[int, int] = {}  # id(node) -> values it stands for, aliases expanded
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            expanded[key] = 1 + sum(expanded[id(c)] for c in _children(node))
            continue
        if key in expanded:
            continue
        if key in on_path:
            raise error_cls("invalid YAML: an alias refers to the anchor it is inside (a recursive structure)",
                            where=f"{path}:{node.start_mark.line + 1}",
                            hint="copy the values instead of referring to the mapping or list that holds them")
        if depth > MAX_DEPTH:
            raise error_cls(f"invalid YAML: nested more than {MAX_DEPTH} levels deep",
                            where=f"{path}:{node.start_mark.line + 1}")
        on_path.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            child_key = id(child)
            if child_key in on_path:
                raise error_cls("invalid YAML: an alias refers to the anchor it is inside (a recursive structure)",
                                where=f"{path}:{child.start_mark.line + 1}",
                                hint="copy the values instead of referring to the mapping or list that holds them")
            if child_key not in expanded:
                stack.append((child, depth + 1, False))
    written = len(expanded)
    total = expanded[id(root)]
    if total - written > MAX_ALIAS_EXPANSION:
        referred = _reference_counts(root)
        worst = max((n for n in _distinct_nodes(root) if referred[id(n)] > 1),
                    key=lambda n: expanded[id(n)] * referred[id(n)], default=root)
        raise error_cls(
            f"invalid YAML: its aliases expand it to {total:,} values from {written:,} written "
            f"(at most {MAX_ALIAS_EXPANSION:,} more are allowed)",
            where=f"{path}:{worst.start_mark.line + 1}",
            hint="this is an 'alias bomb' (aliases of aliases); write the values out or use fewer aliases")


def _distinct_nodes(root: yaml.Node) -> list[yaml.Node]:
    nodes: dict[int, yaml.Node] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in nodes:
            nodes[id(node)] = node
            stack.extend(_children(node))
    return list(nodes.values())


def _reference_counts(root: yaml.Node) -> dict[int, int]:
    """How often each distinct node is referred to by its parents (more than once: through aliases)."""
    counts: dict[int, int] = {id(root): 1}
    for node in _distinct_nodes(root):
        for child in _children(node):
            counts[id(child)] = counts.get(id(child), 0) + 1
    return counts


def _key_of(node: yaml.Node) -> Any:
    """A mapping key as written: a scalar's text (with its tag, so `1` and `"1"` differ), or its node."""
    if isinstance(node, yaml.ScalarNode):
        return (node.tag, node.value)
    return ("node", id(node))


def _walk(root: yaml.Node, located: Located, error_cls) -> None:
    """Record the line of every key path; refuse duplicate keys (merged keys may be overridden)."""
    stack: list[tuple[yaml.Node, KeyPath]] = [(root, ())]
    while stack:
        node, key_path = stack.pop()
        located.lines.setdefault(key_path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            merged: list[yaml.Node] = []
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if key_node.tag == _MERGE_TAG:
                    merged.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
                    continue
                key = _key_of(key_node)
                if key in seen:
                    raise error_cls(
                        f"duplicate key {key_node.value!r} (first at line {seen[key]})",
                        where=f"{located.path}:{line}",
                    )
                seen[key] = line
                child = key_path + (_path_part(key_node),)
                located.lines[child] = line
                stack.append((value_node, child))
            for source in merged:  # keys a merge brings in: where they are written, unless overridden
                if not isinstance(source, yaml.MappingNode):
                    continue
                for key_node, value_node in source.value:
                    if key_node.tag == _MERGE_TAG or _key_of(key_node) in seen:
                        continue
                    seen[_key_of(key_node)] = key_node.start_mark.line + 1
                    child = key_path + (_path_part(key_node),)
                    located.lines.setdefault(child, key_node.start_mark.line + 1)
                    stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = key_path + (index,)
                located.lines[child] = item.start_mark.line + 1
                stack.append((item, child))


def _path_part(key_node: yaml.Node) -> str | int:
    return key_node.value if isinstance(key_node, yaml.ScalarNode) else f"<{key_node.tag}>"
