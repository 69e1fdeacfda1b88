"""`lamsim pack ...`: create and inspect tool packs.

    lamsim pack new NAME [--dir tools]              scaffold a working pack and a session for it
    lamsim pack show PACK [--seed S] [--json]       tools as the agent sees them, one task per template
    lamsim pack show PACK --prompt [--session S]    the exact system prompt of each agent format
    lamsim pack from-openapi SPEC NAME [--dir tools] [--rows N]
                                                    a pack whose tools are the operations of an API
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

from lamsim_tui.errors import PackError
from lamsim_tui.text import shorten, visible


def add_commands(subparsers: Any) -> None:
    pack = subparsers.add_parser("pack", help="create and inspect tool packs",
                                 description="Create and inspect tool packs (see docs/tool-packs.md).")
    sub = pack.add_subparsers(dest="pack_command", metavar="ACTION")
    pack.set_defaults(handler=lambda args: _usage(pack))

    new = sub.add_parser("new", help="scaffold a working pack (one tool, one template, seed data) and a session")
    new.add_argument("name", help="pack name (a folder of that name is created)")
    new.add_argument("--dir", default="tools", help="folder holding the packs (default: tools)")
    new.set_defaults(handler=cmd_new)

    show = sub.add_parser("show", help="print the tools as the agent sees them and one sampled task per template")
    show.add_argument("pack", help="pack name under tools/, or a path to a pack folder")
    show.add_argument("--seed", type=int, default=0, help="seed of the sampled tasks")
    show.add_argument("--json", action="store_true", help="print JSON (tool schemas and sampled tasks)")
    show.add_argument("--prompt", action="store_true",
                      help="print the exact system prompt each agent format receives (with the policy)")
    show.add_argument("--session", help="with --prompt: apply this session's system_prompt and policy")
    show.set_defaults(handler=cmd_show)

    api = sub.add_parser("from-openapi", help="create a pack whose tools are the operations of an OpenAPI spec")
    api.add_argument("spec", help="OpenAPI 3 document (YAML or JSON)")
    api.add_argument("name", help="pack name")
    api.add_argument("--dir", default="tools", help="folder holding the packs (default: tools)")
    api.add_argument("--rows", type=int, default=12, help="rows per generated seed table (default: 12)")
    api.set_defaults(handler=cmd_from_openapi)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _shown(path: Path) -> str:
    try:
        return str(Path(path).absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ----- new -------------------------------------------------------------------------------------


def cmd_new(args: argparse.Namespace) -> int:
    from lamsim_tui.packs.scaffold import new_pack

    written = new_pack(args.name, args.dir)
    session = written.pop("session")
    pack_dir = written["pack.yaml"].parent
    print(f"created {_shown(pack_dir)}/")
    for rel in written:
        print(f"  {rel}")
    print(f"created {_shown(session)}")
    print()
    print("next:")
    print(f"  lamsim check {_shown(session)}")
    print(f"  lamsim pack show {_shown(pack_dir)}")
    print("  then add tools and templates: docs/tool-packs.md")
    return 0


# ----- show ------------------------------------------------------------------------------------


def resolve_pack_dir(ref: str) -> Path:
    """A pack reference on the command line: a folder, or a name under ./tools."""
    path = Path(ref).expanduser()
    if path.is_dir() or "/" in ref or ref.startswith("."):
        return path
    return Path("tools") / ref


def _signature(spec) -> str:
    try:
        from lamsim_tui.agents.prompts import describe_tool
    except ImportError:  # the prompt module is optional here; fall back to a plain line
        return f"- {spec.name}: {spec.description}"
    return describe_tool(spec)


def sample_tasks(pack, seed: int = 0) -> list[dict]:
    """One task per template (or the reason it cannot be made), for `pack show`."""
    from lamsim_tui.simulator.runner import ToolRunner
    from lamsim_tui.simulator.tasks import GoldFailure, make_task, sample_slots

    runner = ToolRunner(pack)
    out = []
    for tid, spec in pack.templates.items():
        entry: dict = {"template": tid, "answer_type": spec.answer, "state": spec.state,
                       "description": spec.description}
        if spec.fixed:
            entry["fixed"] = True
        try:
            slots = sample_slots(pack, spec, random.Random(f"{seed}:{tid}"), runner)
            task = make_task(pack, spec, slots, runner)
        except GoldFailure as failure:
            entry["error"] = f"{failure.where}: {failure.reason}"
        else:
            from lamsim_tui.simulator.judge import project_state

            judged = project_state(task.gold_state, spec.state_fields) if spec.state else None
            entry.update(query=task.query, slots=task.slots, gold_calls=[c.to_dict() for c in task.gold_calls],
                         gold_answer=task.gold_answer, gold_state=judged, judge_state=task.judge_state,
                         ends_with=task.ends_with, fixed=spec.fixed)
        out.append(entry)
    return out


def _short(value: Any, limit: int = 160) -> str:
    return shorten(json.dumps(value, ensure_ascii=False, default=str), limit, "...")


def _result(value: Any, limit: int) -> str:
    """A gold call's result, with the row count of a list (`[4 rows] [...]`): a cut list still says how long it is."""
    rows = None
    if isinstance(value, list):
        rows = f"[{len(value)} row{'s' if len(value) != 1 else ''}] "
    elif isinstance(value, dict) and len(value) <= 4:  # a wrapper such as {"matched": 12, "cases": [...]}
        lists = [(k, v) for k, v in value.items() if isinstance(v, list)]
        if len(lists) == 1:
            key, items = lists[0]
            rows = f"[{len(items)} row{'s' if len(items) != 1 else ''} in {key}] "
    return (rows or "") + _short(value, limit)


def show_prompts(pack, session=None) -> str:
    """The system prompt of each agent format, exactly as the agent receives it."""
    from lamsim_tui.agents import prompts

    parts = []
    for fmt, what in (("json", "JSON actions in the reply text (agent.format: json; the scripted agent records "
                               "this one)"), ("native", "native tool calls (agent.format: native)")):
        parts.append(f"===== system prompt, {what} =====")
        parts.append(prompts.agent_system_prompt(pack, session, fmt))
        if fmt == "native":
            parts.append("===== tools sent with each request (native format) =====")
            parts.append(json.dumps(prompts.native_tools(list(pack.tools.values())), indent=2, ensure_ascii=False))
    return "\n".join(parts)


def cmd_show(args: argparse.Namespace) -> int:
    from lamsim_tui.packs import load_pack

    if args.prompt:
        session = None
        if args.session:
            from lamsim_tui.session.config import load_session

            session = load_session(args.session)
        pack = load_pack(resolve_pack_dir(args.pack) if args.pack else session.pack_dir())
        print(visible(show_prompts(pack, session)))
        return 0
    if args.session:
        raise PackError("--session goes with --prompt", hint="lamsim pack show PACK --prompt --session FILE")
    pack = load_pack(resolve_pack_dir(args.pack))
    tasks = sample_tasks(pack, args.seed)
    failed = sum(1 for t in tasks if "error" in t)
    if args.json:
        print(json.dumps({"pack": pack.name, "version": pack.version, "path": str(pack.path),
                          "tools": pack.tool_schemas(), "tasks": tasks}, indent=2, ensure_ascii=False, default=str))
        return 1 if failed else 0
    tables = ", ".join(f"{t} {len(rows)}" for t, rows in pack.seed.tables.items()) or "none"
    print(f"pack {pack.name} ({_shown(pack.path)}) version {pack.version}")
    if pack.description:
        print(visible(f"  {pack.description}"))
    print(f"  clock {pack.seed.now.isoformat()}; tables: {tables}")
    if pack.policy:
        print(f"  policy {_shown(pack.policy_path)} ({len(pack.policy)} characters; `--prompt` shows it in the prompts)")
    print()
    print(f"tools ({len(pack.tools)}): the line a JSON-action agent reads, and the argument schema a native "
          "tool-calling agent gets")
    for spec in pack.tools.values():
        mark = "  [changes state]" if spec.changes_state else ""
        print(visible(f"{_signature(spec)}{mark}"))
        print("    schema: " + json.dumps(spec.parameters, ensure_ascii=False))
    print()
    print(f"templates ({len(pack.templates)}), one sampled task each (seed {args.seed})")
    for task in tasks:
        kind = "no answer (action only)" if task["answer_type"] == "none" else task["answer_type"]
        if task.get("judge_state", task["state"] is not False):
            kind += ", judged on final state" + (" (nothing may change)" if task["state"] == "unchanged" else "")
        if task.get("ends_with"):
            kind += f", ends with {task['ends_with']}"
        if task.get("fixed"):
            kind += ", fixed task"
        print(visible(f"{task['template']}  [{kind}]"))
        if "error" in task:
            lines = task["error"].strip().splitlines()
            print(visible(f"    FAIL {lines[0]}"))
            for line in lines[1:4]:  # a crash: the exception, then the pack's line that raised it
                print(visible(f"         {line.strip()}"))
            continue
        print(visible(f"    query:  {task['query']}"))
        for call in task["gold_calls"]:
            args_text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in call["arguments"].items())
            if "error" in call:
                print(visible(f"    gold:   {call['tool']}({args_text}) -> fails on purpose: {shorten(call['error'], 100)}"))
            else:
                print(visible(f"    gold:   {call['tool']}({args_text}) -> {_result(call['result'], 110)}"))
        if task["answer_type"] != "none":
            print(visible(f"    answer: {_short(task['gold_answer'])}"))
        elif task["gold_answer"]:
            print(visible(f"    confirmation: {_short(task['gold_answer'])}  (what the scripted agent says; not judged)"))
        if task.get("judge_state"):
            print(visible(f"    state:  {_short(task['gold_state'])}  (the changes the judge compares)"))
    if failed:
        print()
        print(f"{failed} template(s) failed; `lamsim check` on a session shows more")
        return 1
    return 0


# ----- from-openapi ----------------------------------------------------------------------------


def cmd_from_openapi(args: argparse.Namespace) -> int:
    from lamsim_tui.packs.openapi.generate import pack_from_openapi

    if args.rows < 1:
        raise PackError("--rows must be at least 1")
    result = pack_from_openapi(args.spec, args.name, args.dir, rows=args.rows)
    print(f"created {_shown(result.pack_dir)}/ from {result.title}")
    print(f"  {len(result.tools)} tools: " + ", ".join(result.tools))
    for table, count in result.tables.items():
        print(f"  data/{table}.json: {count} rows (an in-memory store: edit or extend them)")
    served = [name for name, how in result.behaviour.items() if how == "example"]
    if served:
        print(f"  {len(served)} tools answer with the spec's example response: " + ", ".join(served))
    print(f"  1 example template: {result.template}" if result.template else "  no example template")
    print(f"created {_shown(result.session)}")
    print()
    print("next:")
    print(f"  lamsim check {_shown(result.session)}")
    print(f"  lamsim pack show {_shown(result.pack_dir)}")
    print(f"  then write templates in {_shown(result.pack_dir / 'templates.py')}: docs/tool-packs.md")
    return 0
