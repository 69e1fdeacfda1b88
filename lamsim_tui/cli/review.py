"""`lamsim review`: list, show, accept, discard, edit trajectories from the command line; undo.

`add_commands(subparsers)` registers the command; each handler returns an exit code and
raises `LamsimError` for a user's mistake (the main CLI prints it as one message). Reading
commands open the store read-only, so they work while a run writes to it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from lamsim_tui.errors import LamsimError
from lamsim_tui.record import Finish, Listing, ToolCall, Trajectory
from lamsim_tui.text import plain


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


def _matches(item: Listing, templates: list[str] | None, codes: list[str] | None) -> bool:
    if templates and item.template not in templates:
        return False
    if codes and not any(item.has_code(want) for want in codes):
        return False
    return True


def list_row(record: Trajectory) -> dict:
    """What `review list --json` prints for one trajectory."""
    verdict = record.verdict
    return {
        "id": record.id,
        "status": record.status,
        "template": record.task.template,
        "task_id": record.task.id,
        "query": record.task.query,
        "verdict": {
            "success": verdict.success,
            "answer_correct": verdict.answer_correct,
            "state_correct": verdict.state_correct,
            "passed": verdict.passed,
            "filters_failed": list(verdict.filters_failed),
            "reasons": list(verdict.reasons),
        },
        "final_answer": record.final_answer,
        "end_reason": record.end_reason,
        "created_at": record.created_at,
        "steps": [
            {
                "index": s.index,
                "thought": s.thought,
                "action": None if s.action is None else s.action.to_dict(),
                "observation": s.observation,
                "executed": s.executed,
                "feedback": s.codes,
            }
            for s in record.steps
        ],
    }


def summary_line(item: Listing) -> str:
    """One line of `review list`: id, status, verdict, steps, template, query, feedback codes."""
    codes = sorted(set(item.codes))
    mark = "ok " if item.success else "bad"
    return (
        f"{item.short_id}  {item.status:9}  {mark}  {item.steps:>2} steps  "
        f"{plain(item.template, 24):24}  {plain(item.query, 60)}"
        + (f"  [{', '.join(codes)}]" if codes else "")
    )


def list_rows(store, *, status=None, template=None, code=None) -> list[Listing]:
    return [item for item in store.listings(status) if _matches(item, template, code)]


def cmd_list(args: argparse.Namespace) -> int:
    with _open(args, write=False) as store:
        items = list_rows(store, status=_statuses(args.status), template=args.template, code=args.code)
        if args.limit is not None:
            items = items[: args.limit]
        out = sys.stdout
        if args.json:
            for item in items:
                out.write(json.dumps(list_row(store.get(item.id)), ensure_ascii=False) + "\n")
            return 0
        for start in range(0, len(items), 1000):  # a thousand lines per write: 50,000 of them are many calls
            out.write("".join(summary_line(item) + "\n" for item in items[start:start + 1000]))
        print(f"{len(items)} trajectories", file=sys.stderr)
    return 0


def format_record(record: Trajectory) -> str:
    task, verdict = record.task, record.verdict
    lines = [
        f"trajectory {record.id}   status {record.status}",
        f"template   {plain(task.template)}   task {plain(task.id)}",
        f"query      {plain(task.query)}",
        f"gold       {plain(task.gold_answer)}",
        f"answer     {plain(record.final_answer)}   ({record.end_reason})",
        f"verdict    success={verdict.success} answer={verdict.answer_correct} "
        f"state={verdict.state_correct} passed={verdict.passed}"
        + (f" failed={','.join(verdict.filters_failed)}" if verdict.filters_failed else ""),
    ]
    for reason in verdict.reasons:
        lines.append(f"           - {plain(reason)}")
    if record.demonstrations is not None and record.demonstrations.items:
        lines.append(f"shown      {plain(record.demonstrations.summary())}")
    for step in record.steps:
        action = step.action
        lines.append("")
        state = (
            "final answer"
            if isinstance(action, Finish)
            else ("executed" if step.executed else "not executed")
        )
        lines.append(f"step {step.index + 1}  {state}")
        if step.thought:
            lines.append(f"  thought      {plain(step.thought, 400)}")
        if isinstance(action, ToolCall):
            lines.append(f"  call         {plain(action.tool)} {plain(action.arguments)}")
        elif isinstance(action, Finish):
            lines.append(f"  finish       {plain(action.answer)}")
        else:
            lines.append(f"  output       {plain(step.raw, 400)}")
        if step.observation:
            lines.append(f"  observation  {plain(step.observation, 600)}")
        for fb in step.feedback:
            lines.append(f"  feedback     {fb.code} ({fb.severity}): {plain(fb.message, 300)}")
    if record.history:
        lines.append("")
        lines.append("review")
        for e in record.history:
            extra = []
            if e.note:
                extra.append(f"note: {plain(e.note)}")
            if e.tags:
                extra.append("tags: " + ", ".join(plain(t) for t in e.tags))
            if e.forced:
                extra.append("FORCED")
            if e.undone_by:
                extra.append(f"undone by #{e.undone_by}")
            lines.append(
                f"  #{e.seq} {e.at} {plain(e.user)}: {e.action} "
                f"{e.from_status} -> {e.to_status}" + (f"  ({'; '.join(extra)})" if extra else "")
            )
    return "\n".join(lines)


def cmd_show(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.review import editable_text

    with _open(args, write=False) as store:
        record = store.get(args.id)
    if args.json:
        print(json.dumps(record.to_dict(), indent=2, ensure_ascii=False))
    elif args.editable:
        sys.stdout.write(editable_text(record))
    else:
        print(format_record(record))
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.review import accept

    with _open(args, write=True) as store:
        record = accept(store, args.id, note=args.note, tags=args.tag)
    print(f"accepted {record.id}")
    return 0


def cmd_discard(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.review import discard

    with _open(args, write=True) as store:
        record = discard(store, args.id, reason=args.reason, note=args.note)
    print(f"discarded {record.id}")
    return 0


def cmd_undo(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.review import undo

    with _open(args, write=True) as store:
        record, entry = undo(store)
    print(f"undid #{entry.seq} ({entry.action} of {record.id}): status is {record.status} again")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.review import history

    with _open(args, write=False) as store:
        entries = history(store)
    for record_id, e in entries:
        if args.json:
            shown = {k: v for k, v in e.to_dict().items() if k not in ("prior", "prior_review")}
            print(json.dumps({"id": record_id, **shown}, ensure_ascii=False))
        else:
            print(
                f"#{e.seq} {e.at} {plain(e.user)} {e.action} {record_id[:10]} {e.from_status} -> {e.to_status}"
                + (" FORCED" if e.forced else "")
                + (f" (undone by #{e.undone_by})" if e.undone_by else "")
                + (f"  {plain(e.note)}" if e.note else "")
            )
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    from lamsim_tui.curation.editor import run_editor
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
            fd, name = tempfile.mkstemp(prefix=f"lamsim-edit-{record.id[:8]}-", suffix=".json")
            path = Path(name)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(original)
            run_editor(path, fallback="vi" if sys.stdin.isatty() else None)
            text = path.read_text(encoding="utf-8")
            if text == original:
                path.unlink()
                print("no change; nothing was done", file=sys.stderr)
                return 0
        edited = parse_editable(text, where=str(path))
        try:
            updated = edit_record(store, record.id, edited, force=args.force, note=args.note, tags=args.tag)
        except EditRefused as exc:
            exc.hint = (
                f"fix {path} and run `lamsim review --store {args.store} edit {record.id[:10]} "
                f"--file {path}`, or add --force --note 'why'"
            )
            raise
    if not args.file:
        path.unlink(missing_ok=True)
    last = updated.review.last() if updated.review else None
    print(f"edited and accepted {updated.id}" + (" (FORCED)" if last and last.forced else ""))
    diff = updated.review.diff if updated.review else None
    if diff:
        lines = diff.splitlines()
        shown = lines[:80] + (
            [f"... ({len(lines) - 80} more lines: `review show {updated.id[:10]} --json`)"]
            if len(lines) > 80
            else []
        )
        print("\n".join(plain(line) for line in shown))
    return 0
