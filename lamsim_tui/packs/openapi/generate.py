"""`lamsim pack from-openapi SPEC NAME`: a tool pack whose tools are the operations of an API.

Generation (`pack_from_openapi`):

- every operation becomes a `@tool(name=..., schema=...)`: its name is the operationId (or
  method + path), its description the summary, its argument schema the path, query and header
  parameters plus the properties of a JSON request body (or one `body` argument when they clash);
- each resource schema that operations fetch by id (Pet, Order, User, ...) becomes a seed table
  `data/<schema>.json`, filled with rows made from the schema's examples: a small in-memory store
  the author edits or extends;
- operations that read, create, update or delete such a resource are served from that store;
  every other operation answers with the spec's example response (`examples.json`);
- one example template looks a resource up by id, and a session file runs the pack.

The generated `tools.py` calls `lamsim_tui.packs.openapi.runtime` (`get_row`, `find_rows`,
`create_row`, `update_row`, `delete_row`, `example`). The generated files are the author's from
then on: the generator never rewrites an existing pack.
"""

from __future__ import annotations

import copy
import json
import keyword
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from lamsim_tui.errors import PackError
from lamsim_tui.text import shorten

METHODS = ("get", "put", "post", "delete", "patch")
WRITES = ("create", "create_many", "update", "delete")
_KEEP = ("type", "enum", "description", "default", "minimum", "maximum", "minLength", "maxLength", "pattern",
         "minItems", "maxItems")
_FORMATS = ("date", "date-time", "email", "uri", "uuid")
_RESERVED = {"tool", "Sandbox", "api", "json", "Path", "EXAMPLES", "annotations"}


# ----- reading the spec ------------------------------------------------------------------------


def load_spec(path: str | Path) -> dict:
    from lamsim_tui.session.yamlload import load_yaml

    path = Path(path)
    if not path.is_file():
        raise PackError(f"OpenAPI file not found: {path}")
    data = load_yaml(path, PackError).data  # JSON is YAML too
    if not isinstance(data, dict):
        raise PackError("not an OpenAPI document (expected a mapping at the top level)", where=str(path))
    if "swagger" in data:
        raise PackError(f"this is a Swagger {data.get('swagger')} document; lamsim reads OpenAPI 3",
                        where=str(path), hint="convert it first, e.g. with `npx swagger2openapi in.yaml -o out.yaml`")
    if not str(data.get("openapi", "")).startswith("3"):
        raise PackError("not an OpenAPI 3 document (no `openapi: 3.x` key)", where=str(path))
    if not isinstance(data.get("paths"), dict) or not data["paths"]:
        raise PackError("the document has no paths", where=str(path))
    return data


class Resolver:
    """Resolves local `$ref`s (`#/components/...`); external references are not followed."""

    def __init__(self, spec: dict, where: str):
        self.spec = spec
        self.where = where

    def lookup(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise PackError(f"external $ref {ref!r} is not supported", where=self.where,
                            hint="bundle the spec into one file first (e.g. `redocly bundle`)")
        node: Any = self.spec
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise PackError(f"$ref {ref!r} points nowhere", where=self.where)
            node = node[part]
        return node

    def deref(self, node: Any) -> Any:
        seen = set()
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise PackError(f"$ref cycle at {ref!r}", where=self.where)
            seen.add(ref)
            node = self.lookup(ref)
        return node

    @staticmethod
    def ref_name(node: Any) -> str | None:
        if isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith(
                "#/components/schemas/"):
            return node["$ref"].rsplit("/", 1)[1]
        return None

    def clean(self, node: Any, depth: int = 0, request: bool = False) -> dict:
        """A self-contained JSON schema (no $ref, no xml/example noise) for a tool argument."""
        if depth > 6:
            return {"type": "object"}
        node = self.deref(node)
        if not isinstance(node, dict):
            return {}
        out: dict = {k: copy.deepcopy(node[k]) for k in _KEEP if k in node}
        if node.get("format") in _FORMATS:
            out["format"] = node["format"]
        if "allOf" in node:
            merged_props: dict = {}
            merged_req: list = []
            for part in node["allOf"]:
                sub = self.clean(part, depth + 1, request)
                merged_props.update(sub.get("properties", {}))
                merged_req += [r for r in sub.get("required", []) if r not in merged_req]
                for k, v in sub.items():
                    if k not in ("properties", "required"):
                        out.setdefault(k, v)
            if merged_props:
                out["type"] = "object"
                out["properties"] = merged_props
            if merged_req:
                out["required"] = merged_req
        for key in ("anyOf", "oneOf"):
            if key in node:
                out["anyOf"] = [self.clean(s, depth + 1, request) for s in node[key]]
        if "properties" in node:
            props = {}
            for name, sub in node["properties"].items():
                resolved = self.deref(sub)
                if request and isinstance(resolved, dict) and resolved.get("readOnly"):
                    continue
                props[name] = self.clean(sub, depth + 1, request)
            out["properties"] = props
            out.setdefault("type", "object")
            required = [r for r in node.get("required", []) if r in props]
            if required:
                out["required"] = required
        if "items" in node:
            out["items"] = self.clean(node["items"], depth + 1, request)
        if isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = self.clean(node["additionalProperties"], depth + 1, request)
        if node.get("nullable") and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out


# ----- operations ------------------------------------------------------------------------------


@dataclass
class Operation:
    name: str  # tool name
    func: str  # Python function name
    method: str
    path: str
    description: str
    schema: dict  # argument schema
    params: list[dict]  # [{"name", "in", "schema", "required"}]
    body_fields: list[str] | None = None  # flattened body properties
    body_arg: bool = False  # the body is one `body` argument
    body_ref: str | None = None  # component schema name of the body (or its items)
    body_is_array: bool = False
    response_ref: str | None = None
    response_is_array: bool = False
    missing: str | None = None  # the 404 description
    behaviour: str = "example"
    table: str | None = None
    match: dict[str, str] = field(default_factory=dict)  # table field -> argument name
    changes: list[str] = field(default_factory=list)  # arguments copied into the row (update)
    filters: dict[str, str] = field(default_factory=dict)  # table field -> argument name (find)
    defaults: dict[str, Any] = field(default_factory=dict)


def _snake(name: str) -> str:
    name = re.sub(r"[^0-9A-Za-z]+", "_", name)
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().strip("_")
    return name or "operation"


def _tool_name(op: dict, method: str, path: str) -> str:
    raw = op.get("operationId")
    if not raw:
        parts = []
        for seg in path.strip("/").split("/"):
            if not seg:
                continue
            parts.append("by_" + seg[1:-1] if seg.startswith("{") else seg)
        raw = "_".join([method, *parts])
    name = re.sub(r"[^0-9A-Za-z_]", "_", str(raw)).strip("_") or method
    if name[0].isdigit():
        name = "op_" + name
    if name == "finish":
        name = "finish_op"
    return name[:64]


def _first_sentence(text: str, limit: int = 160) -> str:
    text = " ".join(str(text or "").split())
    if len(text) <= limit:
        return text
    cut = re.split(r"(?<=[.!?])\s", text)[0]
    return shorten(cut, limit, "...")


def _describe(op: dict, method: str, path: str) -> str:
    summary = _first_sentence(op.get("summary", ""))
    if summary:
        return summary[0].upper() + summary[1:]
    description = re.split(r"(?<=[.!?])\s", " ".join(str(op.get("description") or "").split()))[0]
    description = _first_sentence(description)
    return (description[0].upper() + description[1:]) if description else f"{method.upper()} {path}"


def _json_content(content: Any) -> tuple[str | None, dict | None]:
    if not isinstance(content, dict):
        return None, None
    for kind in ("application/json", *[k for k in content if k.endswith("+json")],
                 "application/x-www-form-urlencoded", "multipart/form-data"):
        if kind in content and isinstance(content[kind], dict):
            return kind, content[kind]
    return None, None


def _success(op: dict, resolver: Resolver) -> tuple[str | None, dict | None]:
    """(status, response object) of the first 2xx response, else `default`."""
    responses = op.get("responses") or {}
    codes = sorted(str(c) for c in responses if str(c).startswith("2"))
    for code in [*codes, "default"]:
        if code in responses or (code.isdigit() and int(code) in responses):
            response = responses.get(code, responses.get(int(code)) if code.isdigit() else None)
            return code, resolver.deref(response)
    return None, None


def _missing_text(op: dict, resolver: Resolver) -> str | None:
    responses = op.get("responses") or {}
    response = responses.get("404", responses.get(404))
    if response is not None:
        text = _first_sentence(resolver.deref(response).get("description", ""), 120)
        return text or None
    return None


def read_operations(spec: dict, where: str) -> tuple[list[Operation], Resolver]:
    resolver = Resolver(spec, where)
    operations: list[Operation] = []
    names: set[str] = set()
    funcs: set[str] = set()
    for path, item in spec["paths"].items():
        item = resolver.deref(item)
        if not isinstance(item, dict):
            continue
        shared = [resolver.deref(p) for p in item.get("parameters", []) or []]
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            name = base = _tool_name(op, method, path)
            n = 2
            while name in names:
                name, n = f"{base}_{n}", n + 1
            names.add(name)
            func = base_func = _snake(name)
            if keyword.iskeyword(func) or func in _RESERVED:
                func = base_func = func + "_op"
            n = 2
            while func in funcs:
                func, n = f"{base_func}_{n}", n + 1
            funcs.add(func)

            params: dict[tuple[str, str], dict] = {}
            for p in [*shared, *[resolver.deref(p) for p in op.get("parameters", []) or []]]:
                if isinstance(p, dict) and p.get("in") in ("path", "query", "header") and p.get("name"):
                    params[(p["name"], p["in"])] = p
            properties: dict[str, dict] = {}
            required: list[str] = []
            plist = []
            for (pname, where_in), p in params.items():
                if pname in properties:  # same name in two places: keep the first
                    continue
                schema = resolver.clean(p.get("schema") or {"type": "string"})
                if p.get("description") and str(p["description"]).strip():
                    schema["description"] = _first_sentence(p["description"], 120)
                properties[pname] = schema
                is_required = where_in == "path" or bool(p.get("required"))
                if is_required:
                    required.append(pname)
                plist.append({"name": pname, "in": where_in, "required": is_required,
                              "schema": resolver.deref(p.get("schema") or {})})

            operation = Operation(name=name, func=func, method=method, path=path,
                                  description=_describe(op, method, path), schema={}, params=plist,
                                  missing=_missing_text(op, resolver))
            body = resolver.deref(op.get("requestBody")) if op.get("requestBody") else None
            if isinstance(body, dict):
                _, media = _json_content(body.get("content"))
                if media is not None and media.get("schema") is not None:
                    raw = media["schema"]
                    operation.body_ref = Resolver.ref_name(raw)
                    deref = resolver.deref(raw)
                    if operation.body_ref is None and isinstance(deref, dict) and deref.get("type") == "array":
                        operation.body_ref = Resolver.ref_name(deref.get("items"))
                        operation.body_is_array = operation.body_ref is not None
                    cleaned = resolver.clean(raw, request=True)
                    body_props = cleaned.get("properties") if cleaned.get("type") == "object" else None
                    if body_props and not set(body_props) & set(properties):
                        operation.body_fields = list(body_props)
                        properties.update(body_props)
                        if body.get("required"):
                            required += [r for r in cleaned.get("required", []) if r not in required]
                    else:
                        if body.get("description"):
                            cleaned.setdefault("description", _first_sentence(body["description"], 120))
                        operation.body_arg = True
                        properties["body"] = cleaned
                        if body.get("required"):
                            required.append("body")
            operation.schema = {"type": "object", "properties": properties, "required": required,
                                "additionalProperties": False}
            _, response = _success(op, resolver)
            if isinstance(response, dict):
                _, media = _json_content(response.get("content"))
                if media is not None and media.get("schema") is not None:
                    raw = media["schema"]
                    operation.response_ref = Resolver.ref_name(raw)
                    deref = resolver.deref(raw)
                    if operation.response_ref is None and isinstance(deref, dict) and deref.get("type") == "array":
                        operation.response_ref = Resolver.ref_name(deref.get("items"))
                        operation.response_is_array = operation.response_ref is not None
            operations.append(operation)
    if not operations:
        raise PackError("the document has no operations (get, put, post, delete, patch)", where=where)
    return operations, resolver


# ----- resources: which schemas become tables, and how operations use them ----------------------


def _table_name(schema_name: str) -> str:
    return _snake(schema_name)


def _path_field(param: str, schema_name: str, props: dict) -> str | None:
    """The resource field a path parameter names: `petId` -> `id` of Pet, `username` -> `username`."""
    if param in props:
        return param
    low = param.lower()
    if low.endswith("id") and "id" in props:
        stem = low[:-2].rstrip("_")
        if stem in ("", schema_name.lower()) or schema_name.lower().endswith(stem) or stem.endswith(
                schema_name.lower()):
            return "id"
    return None


def plan_resources(operations: list[Operation], resolver: Resolver) -> dict[str, dict]:
    """{schema name: {"table", "key", "props"}} for schemas operations look up by a path parameter."""
    schemas = (resolver.spec.get("components") or {}).get("schemas") or {}
    # the schema an operation is about: its own response or body, else one of its path's siblings'
    by_path: dict[str, str] = {}
    for op in operations:
        ref = op.response_ref or op.body_ref
        if ref and (op.path not in by_path or op.method == "get"):
            by_path[op.path] = ref
    resources: dict[str, dict] = {}
    for op in operations:
        ref = op.response_ref or op.body_ref or by_path.get(op.path)
        if not ref or ref not in schemas:
            continue
        schema = resolver.clean(schemas[ref])
        props = schema.get("properties") or {}
        if not props:
            continue
        path_params = [p["name"] for p in op.params if p["in"] == "path"]
        fields = [_path_field(p, ref, props) for p in path_params]
        if ref not in resources and ("id" in props or any(fields)):
            key = "id" if "id" in props else next(f for f in fields if f)
            resources[ref] = {"table": _table_name(ref), "key": key, "props": props, "schema": schema}
    return resources


def classify(operations: list[Operation], resources: dict[str, dict]) -> None:
    by_path: dict[str, str] = {}
    for op in operations:
        ref = op.response_ref or op.body_ref
        if ref in resources and (op.path not in by_path or op.method == "get"):
            by_path[op.path] = ref
    for op in operations:
        ref = op.response_ref if op.response_ref in resources else None
        ref = ref or (op.body_ref if op.body_ref in resources else None) or by_path.get(op.path)
        if ref is None:
            continue
        res = resources[ref]
        props = res["props"]
        path_params = [p["name"] for p in op.params if p["in"] == "path"]
        match = {}
        for p in path_params:
            f = _path_field(p, ref, props)
            if f is None:
                match = None
                break
            match[f] = p
        if match is None:
            continue
        body_is_resource = op.body_ref == ref and not op.body_is_array
        query_fields = [p["name"] for p in op.params if p["in"] == "query" and p["name"] in props]
        behaviour = None
        if op.method == "get" and match and op.response_ref == ref and not op.response_is_array:
            behaviour = "get"
        elif op.method == "get" and not match and op.response_ref == ref and op.response_is_array:
            behaviour = "find"
            op.filters = {f: f for f in query_fields}
            for p in op.params:
                if p["name"] in op.filters and isinstance(p["schema"], dict) and "default" in p["schema"]:
                    op.defaults[p["name"]] = p["schema"]["default"]
        elif op.method == "post" and not match and body_is_resource:
            behaviour = "create"
        elif op.method == "post" and not match and op.body_ref == ref and op.body_is_array:
            behaviour = "create_many"
        elif op.method in ("put", "patch") and not match and body_is_resource:
            behaviour = "update"  # PUT /pet with the pet (and its key) in the body
            match = {res["key"]: res["key"]} if (op.body_fields and res["key"] in op.body_fields) else None
            op.changes = list(op.body_fields or [])
        elif op.method in ("put", "patch", "post") and match and (
                body_is_resource or query_fields or set(op.body_fields or ()) & set(props)):
            behaviour = "update"  # PUT /user/{username}, PATCH /items/{id}, POST /pet/{petId}?name=..
            if op.body_arg:
                op.changes = []
            else:
                op.changes = [f for f in (op.body_fields or []) if f in props] + query_fields
        elif op.method == "delete" and match:
            behaviour = "delete"
        if behaviour is None or match is None:
            continue
        op.behaviour, op.table, op.match = behaviour, res["table"], match


# ----- example responses and seed rows ---------------------------------------------------------


_BASE_TIME = datetime(2026, 1, 1, 9, 0)


def synth(schema: Any, resolver: Resolver, name: str = "value", i: int = 0, depth: int = 0,
          tables: dict[str, list] | None = None) -> Any:
    """A plausible value for a schema, varied by row index `i`: its example with a number added.

    `depth` 0 is the row itself, 1 its fields; values nested deeper (a pet's category, its tags)
    take only three variants, so filters such as "find by tag" match several rows.
    """
    schema = resolver.deref(schema)
    if not isinstance(schema, dict) or depth > 5:
        return None
    example = schema.get("example")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][i % len(schema["enum"])]
    if "allOf" in schema or "anyOf" in schema or "oneOf" in schema:
        cleaned = resolver.clean(schema)
        return synth(cleaned.get("anyOf", [cleaned])[0], resolver, name, i, depth, tables)
    kind = schema.get("type")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        return {p: synth(s, resolver, p if depth == 0 else f"{name}.{p}", i, depth + 1, tables)
                for p, s in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [synth(schema.get("items") or {}, resolver, name, i, depth + 1, tables)]
    nested = depth > 1
    parts = name.split(".")
    leaf = parts[-1]
    n = (i % 3 + 1) if nested else i + 1
    if kind == "integer":
        if leaf == "id":
            return n
        if leaf.lower().endswith("id") and tables:
            target = tables.get(_snake(leaf[:-2]))
            if target:
                return target[i % len(target)]
        base = example if isinstance(example, int) and not isinstance(example, bool) else 1
        return base + (i % 5)
    if kind == "number":
        base = example if isinstance(example, (int, float)) and not isinstance(example, bool) else 9.5
        return round(base * (1 + (i % 7) / 10), 2)
    if kind == "boolean":
        return i % 2 == 0
    if kind == "string" or kind is None:
        fmt = schema.get("format")
        if fmt == "date-time":
            return (_BASE_TIME + timedelta(days=i)).isoformat() + "Z"
        if fmt == "date":
            return (_BASE_TIME + timedelta(days=i)).date().isoformat()
        if fmt == "binary":
            return ""
        if isinstance(example, str) and example:
            if "@" in example:
                local, _, domain = example.partition("@")
                return f"{local}{n}@{domain}"
            return str(int(example) + n - 1) if example.isdigit() else f"{example}{n}"
        if fmt == "email":
            return f"user{n}@example.com"
        stem = parts[-2] if leaf in ("name", "value", "label") and len(parts) > 1 else leaf
        stem = stem[:-1] if stem.endswith("s") and len(stem) > 3 else stem
        return f"{stem}{n}"
    return example


def example_response(op_spec: dict, resolver: Resolver) -> Any:
    code, response = _success(op_spec, resolver)
    if not isinstance(response, dict):
        return {"ok": True}
    _, media = _json_content(response.get("content"))
    if media is None:
        for kind in ("application/xml", "text/plain"):
            if isinstance(response.get("content"), dict) and kind in response["content"]:
                media = response["content"][kind]
                break
    if media is None:
        return {"ok": True, "status": code, "message": response.get("description") or "done"}
    if "example" in media:
        return media["example"]
    examples = media.get("examples")
    if isinstance(examples, dict) and examples:
        first = resolver.deref(next(iter(examples.values())))
        if isinstance(first, dict) and "value" in first:
            return first["value"]
    schema = resolver.deref(media.get("schema") or {})
    if isinstance(schema, dict) and "example" in schema:
        return schema["example"]
    if isinstance(schema, dict) and schema.get("type") == "string" and "format" not in schema:
        return response.get("description") or "ok"
    if isinstance(schema, dict) and schema.get("type") == "object" and "properties" not in schema:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return {"key1": synth(extra, resolver), "key2": synth(extra, resolver, i=1)}
        return {}
    return synth(schema, resolver, "value")


def seed_rows(resources: dict[str, dict], resolver: Resolver, rows: int) -> dict[str, list[dict]]:
    schemas = (resolver.spec.get("components") or {}).get("schemas") or {}
    out: dict[str, list[dict]] = {}
    keys: dict[str, list] = {}
    # tables referenced by others (Order.petId -> pet) first, so foreign keys point at real rows
    order = sorted(resources, key=lambda name: sum(
        1 for p in resources[name]["props"] if p.lower().endswith("id") and p.lower() != "id"))
    for name in order:
        res = resources[name]
        table = []
        for i in range(rows):
            row = synth(schemas[name], resolver, "row", i, 0, keys)
            if not isinstance(row, dict):
                row = {}
            if not isinstance(row.get(res["key"]), (str, int)) or isinstance(row.get(res["key"]), bool):
                row[res["key"]] = f"{res['table']}-{i + 1}"
            table.append(row)
        seen: set = set()
        for i, row in enumerate(table):  # keys must be unique, and of one type
            key = row[res["key"]]
            if key in seen:
                key = max((k for k in seen if isinstance(k, int)), default=0) + 1 if isinstance(key, int) \
                    else f"{key}-{i + 1}"
                row[res["key"]] = key
            seen.add(key)
        out[res["table"]] = table
        keys[res["table"]] = [r[res["key"]] for r in table]
    return out


# ----- writing the pack ------------------------------------------------------------------------


@dataclass
class GeneratedPack:
    pack_dir: Path
    session: Path
    title: str
    tools: list[str]
    behaviour: dict[str, str]
    tables: dict[str, int]
    template: str | None


def _docstring(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').strip()
    if text.endswith('"'):
        text += " "
    return f'"""{text}"""'


def _literal(value: Any, indent: int, width: int = 110) -> str:
    """A Python literal of JSON data, one item per line where a line would get too long."""
    one = repr(value)
    if len(one) + indent <= width or not isinstance(value, (dict, list)) or not value:
        return one
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        items = [f"{pad}{k!r}: {_literal(v, indent + 4, width)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + ",\n" + " " * indent + "}"
    items = [f"{pad}{_literal(v, indent + 4, width)}" for v in value]
    return "[\n" + ",\n".join(items) + ",\n" + " " * indent + "]"


def _body_code(op: Operation, keys: dict[str, str]) -> str:
    if op.table is None:
        return f"return api.example(EXAMPLES, {op.name!r})"
    key = keys[op.table]
    missing = op.missing or f"No {op.table} with that " + " and ".join(op.match)
    match = "{" + ", ".join(f"{f!r}: args.get({a!r})" for f, a in op.match.items()) + "}"
    if op.behaviour == "get":
        return f"return api.get_row(sb, {op.table!r}, {match}, missing={missing!r})"
    if op.behaviour == "find":
        filters = "{" + ", ".join(
            f"{f!r}: args.get({a!r}, {op.defaults[a]!r})" if a in op.defaults else f"{f!r}: args.get({a!r})"
            for f, a in op.filters.items()) + "}"
        return f"return api.find_rows(sb, {op.table!r}, {filters})"
    if op.behaviour == "create":
        row = "args['body']" if op.body_arg else f"api.pick(args, {op.body_fields!r})"
        return f"return api.create_row(sb, {op.table!r}, {key!r}, {row})"
    if op.behaviour == "create_many":
        return f"return api.create_rows(sb, {op.table!r}, {key!r}, args.get('body') or [])"
    if op.behaviour == "update":
        changes = "args.get('body') or {}" if op.body_arg and not op.changes else f"api.pick(args, {op.changes!r})"
        return f"return api.update_row(sb, {op.table!r}, {key!r}, {match}, {changes}, missing={missing!r})"
    return f"return api.delete_row(sb, {op.table!r}, {key!r}, {match}, missing={missing!r})"


def render_tools(operations: list[Operation], keys: dict[str, str], title: str, spec_file: str, name: str) -> str:
    lines = [
        f'"""Tools of the {name} pack, generated by `lamsim pack from-openapi` from {spec_file}',
        f"({title}).",
        "",
        "Each tool is one operation of the API; its argument schema was made from the operation's",
        "parameters and JSON request body. Tools that read or write a resource are served from the",
        "in-memory store in data/ (edit the rows freely); the others answer with the spec's example",
        "response (examples.json). This file is yours now: rewrite any tool by hand (docs/tool-packs.md).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import json",
        "from pathlib import Path",
        "",
        "from lamsim_tui.packs.openapi import runtime as api",
        "from lamsim_tui.packs import Sandbox, tool",
        "",
        'EXAMPLES = json.loads(Path(__file__).with_name("examples.json").read_text(encoding="utf-8"))',
    ]
    for op in operations:
        lines += ["", ""]
        lines.append(f"# {op.method.upper()} {op.path}: {op.behaviour}" + (f" ({op.table})" if op.table else ""))
        state = ", changes_state=True" if op.behaviour in WRITES else ""
        lines.append(f"@tool(name={op.name!r}{state}, schema=" + _literal(op.schema, 0) + ")")
        lines.append(f"def {op.func}(sb: Sandbox, **args):")
        lines.append("    " + _docstring(op.description))
        lines.append("    " + _body_code(op, keys))
    return "\n".join(lines) + "\n"


def _answer_field(props: dict, skip: str) -> tuple[str, str] | None:
    """The field the example template asks about: a name-like scalar if there is one."""
    kinds = {"string": "text", "integer": "number", "number": "number", "boolean": "bool"}
    def kind_of(schema: dict) -> str | None:
        kind = schema.get("type")
        kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
        return kind if kind in kinds else None

    scalars = {p: s for p, s in props.items() if p != skip and kind_of(s)}
    if not scalars:
        return None
    preferred = [p for p in ("name", "title", "status", "email") if p in scalars]
    strings = [p for p, s in scalars.items() if kind_of(s) == "string"]
    chosen = (preferred or strings or list(scalars))[0]
    schema = scalars[chosen]
    return chosen, "date" if schema.get("format") == "date" else kinds[kind_of(schema)]


def render_templates(operations: list[Operation], resources: dict[str, dict], name: str) -> tuple[str, str | None]:
    head = [
        f'"""Task templates of the {name} pack.',
        "",
        "`lamsim pack from-openapi` wrote one example; the tasks your users actually ask are yours to",
        'write (docs/tool-packs.md, "Writing templates"). Check them with `lamsim check`.',
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from lamsim_tui.packs import template",
    ]
    by_table = {res["table"]: res for res in resources.values()}
    for op in operations:
        if op.behaviour != "get" or len(op.match) != 1:
            continue
        field_name, arg = next(iter(op.match.items()))
        res = by_table[op.table]
        answer = _answer_field(res["props"], field_name)
        if answer is None:
            continue
        target, kind = answer
        tid = f"{op.table}_{_snake(target)}"
        noun = op.table.replace("_", " ")
        query = f"What is the {target} of the {noun} whose {field_name} is {{{arg}}}?"
        body = [
            "",
            "",
            f"@template(query={query!r}, answer={kind!r})",
            f"def {tid}(data, rng):",
            f'    """Example: look up one {noun} by {field_name} (replace with the tasks your users ask)."""',
            f"    return {{{arg!r}: rng.choice(data.rows({op.table!r}))[{field_name!r}]}}",
            "",
            "",
            f"@{tid}.gold",
            "def _(slots, call):",
            f"    return call({op.name!r}, {arg}=slots[{arg!r}])[{target!r}]" if arg.isidentifier()
            and not keyword.iskeyword(arg) else f"    return call({op.name!r}, **{{{arg!r}: slots[{arg!r}]}})[{target!r}]",
        ]
        return "\n".join(head + body) + "\n", tid
    # No resource is fetched by id: call the first read-only operation that needs no arguments.
    for op in operations:
        if op.method == "get" and not op.schema["required"]:
            tid = f"{_snake(op.name)}_result"
            body = [
                "",
                "",
                f"@template(query={('What does the API return for: ' + op.description.rstrip('.') + '?')!r}, "
                "answer='json')",
                f"def {tid}(data, rng):",
                '    """Example: one call, the whole result is the answer (a single task: replace it)."""',
                "    return {}",
                "",
                "",
                f"@{tid}.gold",
                "def _(slots, call):",
                f"    return call({op.name!r})",
            ]
            return "\n".join(head + body) + "\n", tid
    return "\n".join(head) + "\n", None


def pack_from_openapi(spec_path: str | Path, name: str, tools_dir: str | Path = "tools", *, rows: int = 12,
                      sessions_dir: str | Path | None = None) -> GeneratedPack:
    from lamsim_tui.packs.scaffold import plan_paths, write_session

    spec_path = Path(spec_path)
    spec = load_spec(spec_path)
    pack_dir, session = plan_paths(name, tools_dir, sessions_dir)
    operations, resolver = read_operations(spec, str(spec_path))
    resources = plan_resources(operations, resolver)
    classify(operations, resources)
    used = {op.table for op in operations if op.table}
    resources = {k: v for k, v in resources.items() if v["table"] in used}
    tables = seed_rows(resources, resolver, rows)

    op_specs = {}
    for path, item in spec["paths"].items():
        item = resolver.deref(item)
        for method in METHODS:
            if isinstance(item, dict) and isinstance(item.get(method), dict):
                op_specs[(method, path)] = item[method]
    examples = {op.name: example_response(op_specs[(op.method, op.path)], resolver) for op in operations
                if op.behaviour == "example"}

    info = spec.get("info") or {}
    title = " ".join(str(x) for x in (info.get("title", spec_path.name), info.get("version", "")) if x)
    spec_file = "openapi" + (spec_path.suffix if spec_path.suffix in (".yaml", ".yml", ".json") else ".yaml")
    templates_text, template_id = render_templates(operations, resources, name)

    pack_dir.mkdir(parents=True)
    try:
        shutil.copyfile(spec_path, pack_dir / spec_file)
        (pack_dir / "tools.py").write_text(render_tools(operations, {r["table"]: r["key"] for r in resources.values()}, title, spec_file, name), encoding="utf-8")
        (pack_dir / "templates.py").write_text(templates_text, encoding="utf-8")
        (pack_dir / "examples.json").write_text(json.dumps(examples, indent=2, ensure_ascii=False) + "\n",
                                                encoding="utf-8")
        (pack_dir / "data").mkdir()
        for table, table_rows in tables.items():
            text = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in table_rows) + "\n]\n"
            (pack_dir / "data" / f"{table}.json").write_text(text, encoding="utf-8")
        description = _first_sentence(info.get("description", "") or info.get("title", ""), 200)
        manifest = [f"# Generated by `lamsim pack from-openapi` from {spec_path.name}. Keys: docs/tool-packs.md",
                    f"name: {name}", f"description: {json.dumps(description or title)}",
                    'now: "2026-01-01T09:00:00"']
        if tables:
            manifest.append("tables:")
            for res in resources.values():
                manifest.append(f"  {res['table']}: {{file: data/{res['table']}.json, key: {res['key']}}}")
        manifest += ["tools: tools.py", "templates: templates.py"]
        (pack_dir / "pack.yaml").write_text("\n".join(manifest) + "\n", encoding="utf-8")
        write_session(name, pack_dir, session, command="from-openapi",
                      description=json.dumps(f"Scripted pilot of the {name} pack ({title})."))
    except Exception:
        shutil.rmtree(pack_dir, ignore_errors=True)
        raise
    return GeneratedPack(pack_dir=pack_dir, session=session, title=title, tools=[op.name for op in operations],
                         behaviour={op.name: op.behaviour for op in operations},
                         tables={t: len(r) for t, r in tables.items()}, template=template_id)
