"""Loading a pack folder: `pack.yaml` (checked, with line numbers), seed tables, the tools and
templates modules; the pack's version is a content hash of its files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
import traceback
import types
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lamsim_tui.errors import PackError
from lamsim_tui.packs import isolation
from lamsim_tui.packs.authoring import ANSWER_TYPES, TemplateSpec, ToolSpec, derive_tool
from lamsim_tui.packs.sandbox import Sandbox, Seed

# ----- pack loading --------------------------------------------------------------------------


@dataclass
class Pack:
    name: str
    path: Path
    description: str
    tools: dict[str, ToolSpec]
    templates: dict[str, TemplateSpec]
    seed: Seed
    version: str  # content hash of the pack's files: records say which pack produced them

    def new_sandbox(self) -> Sandbox:
        return Sandbox(self.seed)

    def tool_schemas(self) -> list[dict]:
        return [t.openai_schema() for t in self.tools.values()]


def _load_module(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PackError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    isolation.install_guards()  # its top level is pack code too: no exits, processes or prints
    isolation.guard_output()
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit, GeneratorExit, isolation.PackCodeExit) as exc:
        sys.modules.pop(name, None)
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        line = frames[-1].lineno if frames else getattr(exc, "lineno", 1)
        how = isolation.describe_exit(exc)
        what = f"it called {how}" if how else f"{type(exc).__name__}: {str(exc)[:2000]}"
        raise PackError(f"error while importing: {what}", where=f"{path}:{line}") from None
    return module


def _pack_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        if file.is_file() and "__pycache__" not in file.parts and file.suffix in (".py", ".yaml", ".json", ".yml"):
            digest.update(str(file.relative_to(path)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class TableSettings:
    file: str = field(metadata={"doc": "JSON file (a list of objects) relative to the pack", "nonempty": True})
    key: str = field(default="id", metadata={"doc": "primary key field"})


@dataclass(frozen=True)
class PackSettings:
    name: str = field(metadata={"doc": "pack name", "nonempty": True})
    description: str = field(default="", metadata={"doc": "what the tools are for"})
    now: str = field(default="2026-01-01T09:00:00", metadata={"doc": "the sandbox clock (ISO date-time)"})
    tables: dict[str, TableSettings] = field(default_factory=dict, metadata={"doc": "seed tables"})
    tools: str = field(default="tools.py", metadata={"doc": "module with @tool functions"})
    templates: str = field(default="templates.py", metadata={"doc": "module with @template declarations"})


def load_pack(path: str | Path) -> Pack:
    from lamsim_tui.session.schema import Builder
    from lamsim_tui.session.yamlload import load_yaml

    path = Path(path)
    manifest = path / "pack.yaml"
    if not path.is_dir():
        parent = path.parent
        known = sorted(p.name for p in parent.iterdir() if (p / "pack.yaml").exists()) if parent.is_dir() else []
        hint = ("packs there: " + ", ".join(known)) if known else "run `lamsim pack new NAME` to create one"
        raise PackError(f"tool pack not found: {path}", hint=hint)
    if not manifest.exists():
        raise PackError(f"not a tool pack (no pack.yaml): {path}")
    located = load_yaml(manifest, PackError)
    try:
        settings: PackSettings = Builder(located).build_dataclass(PackSettings, located.data, ())
    except Exception as exc:  # ConfigError from the builder: same message, pack flavour
        if hasattr(exc, "where"):
            raise PackError(exc.message, where=exc.where, hint=exc.hint) from None
        raise
    try:
        now = datetime.fromisoformat(settings.now)
    except ValueError:
        raise PackError(f"now: not an ISO date-time: {settings.now!r}", where=located.where(("now",))) from None

    tables: dict[str, dict[Any, dict]] = {}
    keys: dict[str, str] = {}
    for table, tset in settings.tables.items():
        file = path / tset.file
        where = located.where(("tables", table))
        try:
            rows = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PackError(f"seed data file not found: {file}", where=where) from None
        except UnicodeDecodeError as exc:
            line = exc.object.count(b"\n", 0, exc.start) + 1
            raise PackError(f"seed data is not UTF-8 text (byte {exc.start})", where=f"{file}:{line}",
                            hint="save the file as UTF-8") from None
        except json.JSONDecodeError as exc:
            raise PackError(f"invalid JSON at line {exc.lineno}: {exc.msg}", where=f"{file}:{exc.lineno}") from None
        except (OSError, ValueError, RecursionError) as exc:  # a directory, a huge number, deep nesting
            what = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:300]
            raise PackError(f"seed data cannot be read: {what}", where=str(file)) from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise PackError("seed data must be a JSON list of objects", where=str(file))
        by_key: dict[Any, dict] = {}
        for i, row in enumerate(rows):
            if tset.key not in row:
                raise PackError(f"row {i} has no key field {tset.key!r}", where=str(file))
            if not isinstance(row[tset.key], str | int | float) or isinstance(row[tset.key], bool):
                raise PackError(f"row {i}: key field {tset.key!r} must be a string or a number, "
                                f"not {type(row[tset.key]).__name__}", where=str(file))
            if row[tset.key] in by_key:
                raise PackError(f"duplicate key {row[tset.key]!r} in row {i}", where=str(file))
            by_key[row[tset.key]] = row
        tables[table] = by_key
        keys[table] = tset.key
    seed = Seed(tables=tables, keys=keys, now=now)

    version = _pack_hash(path)
    prefix = f"lamsim_pack_{re.sub(r'[^0-9A-Za-z_]', '_', settings.name)}_{version}"
    tools: dict[str, ToolSpec] = {}
    tools_file = path / settings.tools
    if not tools_file.exists():
        raise PackError(f"tools module not found: {tools_file}", where=located.where(("tools",)))
    module = _load_module(tools_file, prefix + "_tools")
    for value in vars(module).values():
        if callable(value) and hasattr(value, "__lamsim_tool__") and getattr(value, "__module__", "") == module.__name__:
            spec = derive_tool(value, tools_file)
            if spec.name in tools:
                raise PackError(f"two tools are named {spec.name!r}", where=spec.source)
            tools[spec.name] = spec
    if not tools:
        raise PackError("the tools module defines no @tool functions", where=str(tools_file))

    templates: dict[str, TemplateSpec] = {}
    templates_file = path / settings.templates
    if templates_file.exists():
        tmod = _load_module(templates_file, prefix + "_templates")
        for value in vars(tmod).values():
            if isinstance(value, TemplateSpec):
                where = value.source or str(templates_file)
                if value.answer not in ANSWER_TYPES:
                    raise PackError(f"template {value.id!r}: answer type {value.answer!r} is not one of "
                                    f"{', '.join(ANSWER_TYPES)}", where=where)
                if value.gold_program is None:
                    raise PackError(f"template {value.id!r} has no gold program", where=where,
                                    hint=f"add a function decorated with @{value.id}.gold")
                if value.id in templates:
                    raise PackError(f"two templates have id {value.id!r}", where=where)
                templates[value.id] = value
    return Pack(name=settings.name, path=path.resolve(), description=settings.description, tools=tools,
                templates=templates, seed=seed, version=version)
