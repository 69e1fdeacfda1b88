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
from typing import Any, Literal

from lamsim_tui.errors import PackError
from lamsim_tui.packs import isolation
from lamsim_tui.packs.authoring import ANSWER_TYPES, STATE_CHOICES, TemplateSpec, ToolSpec, derive_tool
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
    policy: str | None = None  # the policy document's text (rules the agent must follow), if the pack has one
    policy_path: Path | None = None
    error_style: str = "tool"  # how domain errors read: "tool" (`<tool> failed: ...`) or "plain" (`Error: ...`)

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


def _pack_hash(path: Path, extra: tuple[Path, ...] = ()) -> str:
    digest = hashlib.sha256()
    files = {f for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts
             and f.suffix in (".py", ".yaml", ".json", ".yml")}
    files.update(f for f in extra if f.is_file())
    for file in sorted(files):
        try:
            name = str(file.relative_to(path))
        except ValueError:
            name = str(file)
        digest.update(name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class TableSettings:
    file: str = field(metadata={"doc": "JSON file relative to the pack: a list of objects, or an object of "
                                       "objects keyed by their id", "nonempty": True})
    key: str = field(default="id", metadata={"doc": "primary key field"})


@dataclass(frozen=True)
class PackSettings:
    name: str = field(metadata={"doc": "pack name", "nonempty": True})
    description: str = field(default="", metadata={"doc": "what the tools are for"})
    now: str = field(default="2026-01-01T09:00:00", metadata={"doc": "the sandbox clock (ISO date-time)"})
    tables: dict[str, TableSettings] = field(default_factory=dict, metadata={"doc": "seed tables"})
    tools: str = field(default="tools.py", metadata={"doc": "module with @tool functions"})
    templates: str = field(default="templates.py", metadata={"doc": "module with @template declarations"})
    policy: str | None = field(default=None, metadata={
        "doc": "a policy document (Markdown or text) the agent must follow; added to every agent's system prompt"})
    fixed_tasks: str | list[str] | None = field(default=None, metadata={
        "doc": "YAML or JSON file(s) of fixed tasks: query, gold calls, expected answer and/or state"})
    error_style: Literal["tool", "plain"] = field(default="tool", metadata={
        "doc": "how a domain error reads to the agent: `tool` (`Note: get_order failed: ...`) or `plain` "
               "(`Error: ...`)"})


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
        rows = _table_rows(rows, tset.key, file)
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

    policy_text, policy_path = _policy(path, settings, located)
    fixed_files = _fixed_task_files(path, settings, located)
    version = _pack_hash(path, tuple(f for f in (policy_path, *fixed_files) if f is not None))
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
                _check_template(value, templates, value.source or str(templates_file))
                templates[value.id] = value
    from lamsim_tui.packs.fixed import load_fixed_tasks

    for file in fixed_files:
        for spec in load_fixed_tasks(file, tools):
            _check_template(spec, templates, spec.source)
            templates[spec.id] = spec
    for spec in templates.values():
        _check_ending(spec, tools)
    return Pack(name=settings.name, path=path.resolve(), description=settings.description, tools=tools,
                templates=templates, seed=seed, version=version, policy=policy_text, policy_path=policy_path,
                error_style=settings.error_style)


def _table_rows(data: Any, key: str, file: Path) -> list[dict]:
    """A seed table's rows: a JSON list of objects, or an object of objects keyed by id (the key
    field is filled in from the object's key where a row does not carry it)."""
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return data
    if isinstance(data, dict) and all(isinstance(r, dict) for r in data.values()):
        rows = []
        for name, row in data.items():
            if key not in row:
                row = {key: name, **row}
            elif str(row[key]) != name:
                raise PackError(f"the row under {name!r} has {key} {row[key]!r}; they must agree", where=str(file),
                                hint=f"drop the {key!r} field from the rows, or make it match the object's keys")
            rows.append(row)
        return rows
    raise PackError("seed data must be a JSON list of objects, or an object of objects keyed by id", where=str(file))


def _policy(path: Path, settings: PackSettings, located) -> tuple[str | None, Path | None]:
    if settings.policy is None:
        return None, None
    file = path / settings.policy
    where = located.where(("policy",))
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PackError(f"policy file not found: {file}", where=where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError(f"cannot read the policy file {file}: {exc}", where=where) from None
    if not text.strip():
        raise PackError(f"the policy file {file} is empty", where=where, hint="write the rules, or drop `policy:`")
    return text.strip(), file


def _fixed_task_files(path: Path, settings: PackSettings, located) -> list[Path]:
    names = settings.fixed_tasks
    if names is None:
        return []
    names = [names] if isinstance(names, str) else names
    files = []
    for i, name in enumerate(names):
        file = path / name
        if not file.is_file():
            key = ("fixed_tasks",) if isinstance(settings.fixed_tasks, str) else ("fixed_tasks", i)
            raise PackError(f"fixed tasks file not found: {file}", where=located.where(key))
        files.append(file)
    return files


def _check_ending(spec: TemplateSpec, tools: dict[str, ToolSpec]) -> None:
    if spec.ends_with is None:
        return
    where = spec.option_sources.get("ends_with") or spec.source
    tool = tools.get(spec.ends_with)
    if tool is None:
        from lamsim_tui.names import nearest_names

        close = nearest_names(spec.ends_with, tools)
        raise PackError(f"{spec.id!r}: ends_with={spec.ends_with!r} is not a tool of the pack", where=where,
                        hint=f"did you mean {close[0]!r}?" if close else None)
    if not tool.ends_episode:
        raise PackError(f"{spec.id!r}: ends_with={spec.ends_with!r}, but that tool does not end the episode",
                        where=where, hint=f"declare it @tool(ends_episode=True) ({tool.source})")


def _check_template(spec: TemplateSpec, known: dict[str, TemplateSpec], where: str) -> None:
    """What can be told of a template without running it (the rest is `lamsim check`'s)."""
    kind = "fixed task" if spec.fixed else "template"
    if spec.answer not in ANSWER_TYPES:
        shown = [a for a in ANSWER_TYPES if a != "none"]
        raise PackError(f"{kind} {spec.id!r}: answer type {spec.answer!r} is not one of {', '.join(shown)}",
                        where=where, hint="answer=None declares an action-only task (judged on its final state)")
    if spec.gold_program is None:
        raise PackError(f"{kind} {spec.id!r} has no gold program", where=where,
                        hint=f"add a function decorated with @{spec.id}.gold")
    if spec.id in known:
        raise PackError(f"two templates or fixed tasks have id {spec.id!r}", where=where)
    if spec.state not in STATE_CHOICES and spec.state != "auto":
        raise PackError(f"{kind} {spec.id!r}: state={spec.state!r} must be True, False or \"unchanged\"", where=where)
    if spec.answer == "none" and spec.state is False:
        raise PackError(f"{kind} {spec.id!r} has no answer (answer=None) and does not judge state", where=where,
                        hint="an action-only task is judged on its final state alone: add state=True "
                             "(or state=\"unchanged\" for a request that must change nothing)")
    fields = spec.state_fields
    if fields is not None and (not isinstance(fields, dict) or not all(
            isinstance(t, str) and isinstance(fs, (list, tuple)) and all(isinstance(f, str) for f in fs)
            for t, fs in fields.items())):
        raise PackError(f"{kind} {spec.id!r}: state_fields must map table names to lists of field names, "
                        f"like {{\"cases\": [\"status\"]}}", where=where)
