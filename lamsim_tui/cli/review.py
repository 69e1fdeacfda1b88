"""`lamsim review`: list, show, accept, discard, edit trajectories from the command line; undo.

`add_commands(subparsers)` registers the command; each handler returns an exit code and
raises `LamsimError` for a user's mistake (the main CLI prints it as one message). Reading
commands open the store read-only, so they work while a run writes to it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lamsim_tui.errors import LamsimError

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(text: Any, limit: int | None = None) -> str:
    """Untrusted text made safe for a terminal: control characters (ANSI escapes) become '?'."""
    s = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
    s = _CONTROL.sub("?", s)
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def add_commands(subparsers: Any) -> None:
    review = subparsers.add_parser(
        "review",
        help="list, show, accept, discard, edit trajectories; undo",
        description="Review the trajectories in a store.",
    )
    review.add_argument("--store", required=True, metavar="DIR", help="store directory")
    actions = review.add_subparsers(dest="review_command", metavar="ACTION", required=True)

    p = actions.add_parser("list", help="list trajectories")
    p.add_argument(
        "--status",
        action="append",
        metavar="S",
        help="pending, filtered, accepted, discarded (repeat or comma-separate; default all)",
    )
    p.add_argument("--template", action="append", metavar="T", help="only this template (repeatable)")
    p.add_argument(
        "--code",
        action="append",
        metavar="C",
        help="only trajectories with this feedback code, or family such as `args` (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line, with steps")
    p.add_argument("--limit", type=int, metavar="N", help="at most N lines")
    p.set_defaults(handler=cmd_list)

    p = actions.add_parser("show", help="show one trajectory")
    p.add_argument("id", help="trajectory id (a unique prefix is enough)")
    p.add_argument("--json", action="store_true", help="the whole record as JSON")
    p.add_argument("--editable", action="store_true", help="the JSON `edit` opens (for `edit --file`)")
    p.set_defaults(handler=cmd_show)

    p = actions.add_parser("accept", help="accept a trajectory")
    p.add_argument("id")
    p.add_argument("--note", help="why (kept in the audit trail)")
    p.add_argument("--tag", action="append", help="tag(s) for the audit trail (repeat or comma-separate)")
    p.set_defaults(handler=cmd_accept)

    p = actions.add_parser("discard", help="discard a trajectory")
    p.add_argument("id")
    p.add_argument("--reason", action="append", help="reason tag(s) (repeat or comma-separate)")
    p.add_argument("--note", help="free text for the audit trail")
    p.set_defaults(handler=cmd_discard)

    p = actions.add_parser("edit", help="edit a trajectory in $EDITOR, replay it, accept it if it holds up")
    p.add_argument("id")
    p.add_argument("--file", help="apply this edited JSON instead of opening an editor")
    p.add_argument("--force", action="store_true", help="keep the edit even if the replay finds problems")
    p.add_argument("--note", help="why (required with --force)")
    p.add_argument("--tag", action="append", help="tag(s) for the audit trail")
    p.set_defaults(handler=cmd_edit)

    p = actions.add_parser("undo", help="revert the last review decision (repeatable)")
    p.set_defaults(handler=cmd_undo)

    p = actions.add_parser("history", help="the audit trail: every decision, oldest first")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_history)





def _statuses(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [s.strip() for v in values for s in v.split(",") if s.strip()]
    return None if "all" in out else out


def _open(args: argparse.Namespace, *, write: bool):
    from lamsim_tui.store import open_store

    store = open_store(args.store, readonly=not write)
    for notice in store.notices:
        print(f"lamsim: {notice}", file=sys.stderr)
    return store


# ----- review ---------------------------------------------------------------------------------------


def _codes(doc: dict) -> list[str]:
    return [f["code"] for s in doc.get("steps") or [] for f in s.get("feedback") or []]


def _matches(doc: dict, templates: list[str] | None, codes: list[str] | None) -> bool:
    if templates and (doc.get("task") or {}).get("template") not in templates:
        return False
    if codes:
        found = _codes(doc)
        if not any(c == want or c.startswith(want + ".") for c in found for want in codes):
            return False
    return True


def list_row(doc: dict) -> dict:
    """What `review list --json` prints for one trajectory."""
    task = doc.get("task") or {}
    verdict = doc.get("verdict") or {}
    return {
        "id": doc["id"],
        "status": doc.get("status"),
        "template": task.get("template"),
        "task_id": task.get("id"),
        "query": task.get("query"),
        "verdict": {
            k: verdict.get(k)
            for k in ("success", "answer_correct", "state_correct", "passed", "filters_failed", "reasons")
        },
        "final_answer": doc.get("final_answer"),
        "end_reason": doc.get("end_reason"),
        "created_at": doc.get("created_at"),
        "steps": [
            {
                "index": s.get("index"),
                "thought": s.get("thought"),
                "action": s.get("action"),
                "observation": s.get("observation"),
                "executed": s.get("executed"),
                "feedback": [f["code"] for f in s.get("feedback") or []],
            }
            for s in doc.get("steps") or []
        ],
    }


def summary_line(doc: dict) -> str:
    """One line of `review list`: id, status, verdict, steps, template, query, feedback codes."""
    verdict = doc.get("verdict") or {}
    task = doc.get("task") or {}
    codes = sorted(set(_codes(doc)))
    mark = "ok " if verdict.get("success") else "bad"
    return (
        f"{doc['id'][:10]}  {doc.get('status', '?'):9}  {mark}  {len(doc.get('steps') or []):>2} steps  "
        f"{plain(task.get('template', '?'), 24):24}  {plain(task.get('query', ''), 60)}"
        + (f"  [{', '.join(codes)}]" if codes else "")
    )


def list_rows(store, *, status=None, template=None, code=None) -> list[dict]:
    return [doc for doc in store.peek(status) if _matches(doc, template, code)]


def cmd_list(args: argparse.Namespace) -> int:
    with _open(args, write=False) as store:
        docs = list_rows(store, status=_statuses(args.status), template=args.template, code=args.code)
        if args.limit is not None:
            docs = docs[: args.limit]
        out = sys.stdout
        if args.json:
            for doc in docs:
                out.write(json.dumps(list_row(doc), ensure_ascii=False) + "\n")
            return 0
        for doc in docs:
            out.write(summary_line(doc) + "\n")
        print(f"{len(docs)} trajectories", file=sys.stderr)
    return 0


def format_record(record: dict) -> str:
    task = record.get("task") or {}
    verdict = record.get("verdict") or {}
    lines = [
        f"trajectory {record['id']}   status {record.get('status')}",
        f"template   {plain(task.get('template'))}   task {plain(task.get('id'))}",
        f"query      {plain(task.get('query'))}",
        f"gold       {plain(task.get('gold_answer'))}",
        f"answer     {plain(record.get('final_answer'))}   ({record.get('end_reason')})",
        f"verdict    success={verdict.get('success')} answer={verdict.get('answer_correct')} "
        f"state={verdict.get('state_correct')} passed={verdict.get('passed')}"
        + (f" failed={','.join(verdict.get('filters_failed') or [])}" if verdict.get("filters_failed") else ""),
    ]
    for reason in verdict.get("reasons") or []:
        lines.append(f"           - {plain(reason)}")
    for step in record.get("steps") or []:
        action = step.get("action") or {}
        lines.append("")
        state = (
            "final answer"
            if action.get("type") == "finish"
            else ("executed" if step.get("executed") else "not executed")
        )
        lines.append(f"step {step.get('index')}  {state}")
        if step.get("thought"):
            lines.append(f"  thought      {plain(step['thought'], 400)}")
        if action.get("type") == "call":
            lines.append(f"  call         {plain(action.get('tool'))} {plain(action.get('arguments'))}")
        elif action.get("type") == "finish":
            lines.append(f"  finish       {plain(action.get('answer'))}")
        else:
            lines.append(f"  output       {plain(step.get('raw'), 400)}")
        if step.get("observation"):
            lines.append(f"  observation  {plain(step['observation'], 600)}")
        for fb in step.get("feedback") or []:
            lines.append(f"  feedback     {fb['code']} ({fb.get('severity')}): {plain(fb.get('message'), 300)}")
    history = (record.get("review") or {}).get("history") or []
    if history:
        lines.append("")
        lines.append("review")
        for e in history:
            extra = []
            if e.get("note"):
                extra.append(f"note: {plain(e['note'])}")
            if e.get("tags"):
                extra.append("tags: " + ", ".join(plain(t) for t in e["tags"]))
            if e.get("forced"):
                extra.append("FORCED")
            if e.get("undone_by"):
                extra.append(f"undone by #{e['undone_by']}")
            lines.append(
                f"  #{e.get('seq')} {e.get('at')} {plain(e.get('user'))}: {e.get('action')} "
                f"{e.get('from')} -> {e.get('to')}" + (f"  ({'; '.join(extra)})" if extra else "")
            )
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.review import editable_text

    with _open(args, write=False) as store:
        record = store.get(args.id)
    if args.json:
        print(json.dumps(record, indent=2, ensure_ascii=False))
    elif args.editable:
        sys.stdout.write(editable_text(record))
    else:
        print(format_record(record))
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.review import accept

    with _open(args, write=True) as store:
        record = accept(store, args.id, note=args.note, tags=args.tag)
    print(f"accepted {record['id']}")
    return 0


def cmd_discard(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.review import discard

    with _open(args, write=True) as store:
        record = discard(store, args.id, reason=args.reason, note=args.note)
    print(f"discarded {record['id']}")
    return 0


def cmd_undo(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.review import undo

    with _open(args, write=True) as store:
        record, entry = undo(store)
    print(f"undid #{entry['seq']} ({entry['action']} of {record['id']}): status is {record['status']} again")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.review import history

    with _open(args, write=False) as store:
        entries = history(store)
    for e in entries:
        if args.json:
            print(json.dumps(e, ensure_ascii=False))
        else:
            print(
                f"#{e.get('seq')} {e.get('at')} {plain(e.get('user'))} {e.get('action')} {e['id'][:10]} "
                f"{e.get('from')} -> {e.get('to')}"
                + (" FORCED" if e.get("forced") else "")
                + (f" (undone by #{e['undone_by']})" if e.get("undone_by") else "")
                + (f"  {plain(e['note'])}" if e.get("note") else "")
            )
    return 0


def _run_editor(path: Path) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        if not sys.stdin.isatty():
            raise LamsimError(
                "no editor: set $EDITOR, or edit the JSON yourself and apply it with --file",
                where="$EDITOR",
                hint=f"the trajectory's editable JSON is in {path}",
            )
        editor = "vi"
    try:
        result = subprocess.run([*shlex.split(editor), str(path)])
    except FileNotFoundError:
        raise LamsimError(
            f"the editor {editor!r} was not found", where="$EDITOR", hint=f"set $EDITOR, or apply {path} with --file"
        ) from None
    if result.returncode != 0:
        raise LamsimError(
            f"the editor exited with status {result.returncode}; nothing was changed",
            where="$EDITOR",
            hint=f"your edit is kept in {path}; apply it with --file",
        )


def cmd_edit(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.review import EditRefused, editable_text, parse_editable
    from lamsim_tui.curation.review import edit as edit_record

    with _open(args, write=True) as store:
        record = store.get(args.id)
        if args.file:
            path = Path(args.file)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise LamsimError(f"cannot read the edit: {exc.strerror}", where=str(path)) from None
        else:
            original = editable_text(record)
            fd, name = tempfile.mkstemp(prefix=f"lamsim-edit-{record['id'][:8]}-", suffix=".json")
            path = Path(name)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(original)
            _run_editor(path)
            text = path.read_text(encoding="utf-8")
            if text == original:
                path.unlink()
                print("no change; nothing was done", file=sys.stderr)
                return 0
        edited = parse_editable(text, where=str(path))
        try:
            updated = edit_record(store, record["id"], edited, force=args.force, note=args.note, tags=args.tag)
        except EditRefused as exc:
            exc.hint = (
                f"fix {path} and run `lamsim review --store {args.store} edit {record['id'][:10]} "
                f"--file {path}`, or add --force --note 'why'"
            )
            raise
    if not args.file:
        path.unlink(missing_ok=True)
    forced = (updated["review"]["history"][-1] or {}).get("forced")
    print(f"edited and accepted {updated['id']}" + (" (FORCED)" if forced else ""))
    diff = updated["review"].get("diff")
    if diff:
        lines = diff.splitlines()
        shown = lines[:80] + (
            [f"... ({len(lines) - 80} more lines: `review show {updated['id'][:10]} --json`)"]
            if len(lines) > 80
            else []
        )
        print("\n".join(plain(line) for line in shown))
    return 0
