"""The review lifecycle: accept, discard, edit (checked by replay), undo.

Statuses: `pending` (passed the filters), `filtered` (failed them; kept to rescue or discard),
`accepted`, `discarded`. Every decision appends an audit entry to the record's `review.history`:
what, when, who (OS user), note, reason tags, and the fields it replaced, so `undo` can put them
back. Decisions are numbered across the store; `undo` reverts the latest one not yet undone and
can be repeated. One decision is one durable write of one record.

An edit is never trusted as typed: the edited actions are replayed in a fresh sandbox
(`engine.replay`), so observations come from the tools, feedback is re-run and the judge scores
the result. An edit whose replay has error feedback or a wrong answer is refused with the reasons,
unless forced with a note (the audit entry says `forced`). An accepted edit keeps the original
trajectory beside it (`review.original`) and a diff of the editable JSON (`review.diff`).
"""

from __future__ import annotations

import difflib
import getpass
import json
import os
import weakref
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from lamsim_tui.errors import LamsimError
from lamsim_tui.store import Store

# Fields an edit replaces (and undo restores).
EDITED_FIELDS = ("steps", "final_answer", "end_reason", "final_state", "verdict", "timing", "pack")
_READ_ONLY_STEP_KEYS = ("observation", "feedback")


class ReviewError(LamsimError):
    """A review action that cannot be done (wrong status, nothing to undo, bad edit file)."""


class EditRefused(ReviewError):
    """The replayed edit has error feedback or a wrong answer; `problems` says which."""

    def __init__(self, message: str, *, problems: list[str], codes: list[str], replayed: dict, **kw: Any):
        super().__init__(message, **kw)
        self.problems = problems
        self.codes = codes
        self.replayed = replayed


def operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return os.environ.get("USER") or os.environ.get("USERNAME") or f"uid {os.getuid()}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _tags(tags: str | Iterable[str] | None) -> list[str]:
    if tags is None:
        return []
    items = [tags] if isinstance(tags, str) else list(tags)
    out: list[str] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


# ----- the store-wide ledger of decisions ----------------------------------------------------------


class _Ledger:
    """Decision numbers and the undo stack, built once per store from the records' histories."""

    def __init__(self, store: Store):
        self.seq = 0
        self.undoable: list[tuple[int, str]] = []
        for doc in store.peek():
            for entry in (doc.get("review") or {}).get("history", []):
                self.seq = max(self.seq, entry.get("seq", 0))
                if entry.get("action") != "undo" and not entry.get("undone_by"):
                    self.undoable.append((entry["seq"], doc["id"]))
        self.undoable.sort()


_ledgers: weakref.WeakKeyDictionary[Store, _Ledger] = weakref.WeakKeyDictionary()


def _ledger(store: Store) -> _Ledger:
    ledger = _ledgers.get(store)
    if ledger is None:
        ledger = _ledgers[store] = _Ledger(store)
    return ledger


def _writable(store: Store) -> None:
    if store.readonly:
        raise ReviewError("the store is open read-only", where=str(store.path))


def _review(record: dict) -> dict:
    review = dict(record.get("review") or {})
    review["history"] = list(review.get("history", []))
    return review


def _decide(
    store: Store,
    record: dict,
    action: str,
    to_status: str,
    *,
    note: str | None,
    tags: list[str],
    user: str | None,
    fields: dict | None = None,
    review_changes: dict | None = None,
    forced: bool = False,
    extra: dict | None = None,
) -> dict:
    ledger = _ledger(store)
    seq = ledger.seq + 1
    fields = dict(fields or {})
    fields["status"] = to_status
    prior = {name: record.get(name) for name in fields}
    review = _review(record)
    entry = {
        "seq": seq,
        "action": action,
        "at": _now(),
        "user": user or operator(),
        "note": note or None,
        "tags": tags,
        "from": record.get("status"),
        "to": to_status,
        "forced": forced,
        "prior": prior,
    }
    if review_changes:
        entry["prior_review"] = {name: review.get(name) for name in review_changes}
        review.update(review_changes)
    if extra:
        entry.update(extra)
    review["history"].append(entry)
    fields["review"] = review
    updated = store.update(record["id"], fields)
    ledger.seq = seq
    ledger.undoable.append((seq, record["id"]))
    return updated


def accept(
    store: Store,
    record_id: str,
    *,
    note: str | None = None,
    tags: str | Iterable[str] | None = None,
    user: str | None = None,
) -> dict:
    """Mark a trajectory accepted (from pending, filtered or discarded)."""
    _writable(store)
    record = store.get(record_id)
    if record["status"] == "accepted":
        raise ReviewError(
            f"trajectory {record['id'][:12]} is already accepted", hint="`lamsim review undo` reverts the last decision"
        )
    return _decide(store, record, "accept", "accepted", note=note, tags=_tags(tags), user=user)


def discard(
    store: Store,
    record_id: str,
    *,
    reason: str | Iterable[str] | None = None,
    note: str | None = None,
    user: str | None = None,
) -> dict:
    """Mark a trajectory discarded; `reason` is one or more tags (comma-separated or a list)."""
    _writable(store)
    record = store.get(record_id)
    if record["status"] == "discarded":
        raise ReviewError(
            f"trajectory {record['id'][:12]} is already discarded",
            hint="`lamsim review undo` reverts the last decision",
        )
    return _decide(store, record, "discard", "discarded", note=note, tags=_tags(reason), user=user)


def undo(store: Store, *, user: str | None = None) -> tuple[dict, dict]:
    """Revert the latest decision not yet undone. Returns (record after, the decision undone)."""
    _writable(store)
    with store.lock:
        return _undo(store, user)


def _undo(store: Store, user: str | None) -> tuple[dict, dict]:
    ledger = _ledger(store)
    if not ledger.undoable:
        raise ReviewError("nothing to undo: no review decision in this store")
    seq, record_id = ledger.undoable[-1]
    record = store.get(record_id)
    review = _review(record)
    index = next(i for i, e in enumerate(review["history"]) if e.get("seq") == seq)
    undone = dict(review["history"][index])
    new_seq = ledger.seq + 1
    review["history"][index] = {**undone, "undone_by": new_seq}
    for name, value in (undone.get("prior_review") or {}).items():
        if value is None:
            review.pop(name, None)
        else:
            review[name] = value
    review["history"].append(
        {
            "seq": new_seq,
            "action": "undo",
            "at": _now(),
            "user": user or operator(),
            "note": None,
            "tags": [],
            "from": record.get("status"),
            "to": undone["prior"].get("status"),
            "forced": False,
            "undoes": seq,
        }
    )
    fields = dict(undone["prior"])
    fields["review"] = review
    updated = store.update(record_id, fields)
    ledger.seq = new_seq
    ledger.undoable.pop()
    return updated, undone


def history(store: Store) -> list[dict]:
    """Every audit entry in the store, oldest first, each with the trajectory id."""
    entries = []
    for doc in store.peek():
        for entry in (doc.get("review") or {}).get("history", []):
            entries.append({"id": doc["id"], **{k: v for k, v in entry.items() if k not in ("prior", "prior_review")}})
    entries.sort(key=lambda e: e.get("seq", 0))
    return entries


# ----- edits ---------------------------------------------------------------------------------------


def editable(record: dict, *, observations: bool = True) -> dict:
    """What the operator edits: thoughts, tools and arguments of the calls, and the final answer.

    Observations (and feedback) are shown for orientation only: they are recomputed by replay.
    """
    steps = []
    final_answer = record.get("final_answer")
    final_thought = ""
    action_steps = [s for s in record.get("steps", []) if s.get("action")]
    last_finish = max((i for i, s in enumerate(action_steps) if s["action"].get("type") == "finish"), default=None)
    for i, step in enumerate(action_steps):
        action = step["action"]
        if action.get("type") == "finish":
            if i == last_finish:
                final_thought = step.get("thought") or ""
                final_answer = action.get("answer", final_answer)
                continue
            item = {
                "thought": step.get("thought") or "",
                "tool": "finish",
                "arguments": {"answer": action.get("answer")},
            }
        else:
            item = {
                "thought": step.get("thought") or "",
                "tool": action.get("tool"),
                "arguments": action.get("arguments") or {},
            }
        if observations:
            item["observation"] = step.get("observation", "")
            codes = [f["code"] for f in step.get("feedback", [])]
            if codes:
                item["feedback"] = codes
        steps.append(item)
    out: dict[str, Any] = {"steps": steps, "final_answer": final_answer}
    if final_thought:
        out["final_thought"] = final_thought
    return out


def editable_text(record: dict) -> str:
    header = {
        "_help": "Edit thoughts, tools, arguments and final_answer; delete, insert or reorder steps. "
        "Observations and feedback are recomputed by replaying the tools: edits to them are ignored. "
        "Set final_answer to null to end without an answer."
    }
    return json.dumps({**header, **editable(record)}, indent=2, ensure_ascii=False) + "\n"


def parse_editable(text: str, *, where: str) -> dict:
    """Parse the operator's edited JSON; errors name the file and line."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReviewError(
            f"the edited trajectory is not valid JSON: {exc.msg}",
            where=f"{where}:{exc.lineno}:{exc.colno}",
            hint="fix it and apply it with `lamsim review edit ID --file FILE`",
        ) from None
    actions_from_editable(data, where=where)  # validates
    return data


def actions_from_editable(edited: dict, *, where: str = "edit") -> list[dict]:
    """The action list replay runs: calls in order, then `finish` with the final answer (if any)."""
    if not isinstance(edited, dict) or not isinstance(edited.get("steps", []), list):
        raise ReviewError("the edited trajectory must be an object with a list of `steps`", where=where)
    unknown = set(edited) - {"steps", "final_answer", "final_thought", "_help"}
    if unknown:
        raise ReviewError(
            f"unknown key(s) {', '.join(sorted(unknown))}",
            where=where,
            hint="keys are: steps, final_answer, final_thought",
        )
    actions = []
    for i, step in enumerate(edited.get("steps", [])):
        here = f"{where}: steps[{i}]"
        if not isinstance(step, dict):
            raise ReviewError("a step must be an object with tool, arguments and thought", where=here)
        unknown = set(step) - {"thought", "tool", "arguments", *_READ_ONLY_STEP_KEYS}
        if unknown:
            raise ReviewError(
                f"unknown key(s) {', '.join(sorted(unknown))}", where=here, hint="a step has: thought, tool, arguments"
            )
        tool = step.get("tool")
        if not isinstance(tool, str) or not tool.strip():
            raise ReviewError("`tool` must be a tool name", where=here)
        arguments = step.get("arguments", {})
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ReviewError("`arguments` must be an object", where=here)
        thought = step.get("thought") or ""
        if not isinstance(thought, str):
            raise ReviewError("`thought` must be text", where=here)
        if tool == "finish":
            actions.append({"type": "finish", "answer": arguments.get("answer"), "thought": thought})
        else:
            actions.append({"type": "call", "tool": tool, "arguments": arguments, "thought": thought})
    if edited.get("final_answer") is not None:
        thought = edited.get("final_thought") or ""
        actions.append({"type": "finish", "answer": edited["final_answer"], "thought": thought})
    return actions


def replay_problems(replayed: dict) -> tuple[list[str], list[str]]:
    """Why a replayed trajectory cannot be trusted: error feedback, a wrong answer, no proper end."""
    problems: list[str] = []
    codes: list[str] = []
    for step in replayed.get("steps", []):
        for fb in step.get("feedback", []):
            if fb.get("severity") == "error":
                codes.append(fb["code"])
                problems.append(f"step {step.get('index', '?')}: {fb['code']}: {fb.get('message', '')}")
    verdict = replayed.get("verdict") or {}
    if not verdict.get("success"):
        reasons = verdict.get("reasons") or ["the judge did not accept the result"]
        problems.extend(f"judge: {r}" for r in reasons)
        if not verdict.get("answer_correct") and "answer.wrong" not in codes:
            codes.append("answer.wrong")
    if replayed.get("end_reason") != "finished":
        problems.append(f"the replay ended with {replayed.get('end_reason')}, not a final answer")
    return problems, codes


def _diff(before: dict, after: dict) -> str:
    a = json.dumps(before, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
    b = json.dumps(after, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(a, b, "original", "edited", lineterm=""))


def edit(
    store: Store,
    record_id: str,
    edited: dict,
    *,
    force: bool = False,
    note: str | None = None,
    tags: str | Iterable[str] | None = None,
    user: str | None = None,
    pack: Any = None,
    replay: Callable[..., dict] | None = None,
) -> dict:
    """Replay the edited trajectory; if it holds up (or `force` with a note), store it as accepted.

    Raises EditRefused (with the feedback codes and reasons) when the replay has error feedback or
    a wrong answer and `force` is not set.
    """
    _writable(store)
    record = store.get(record_id)
    actions = actions_from_editable(edited)
    if force and not (note and note.strip()):
        raise ReviewError("a forced edit needs a note saying why", where="--note")
    if replay is None:
        from lamsim_tui.simulator.engine import replay
    replayed = replay(record, actions, pack=pack)
    problems, codes = replay_problems(replayed)
    if problems and not force:
        raise EditRefused(
            "the edit does not hold up when replayed:\n  " + "\n  ".join(problems),
            problems=problems,
            codes=codes,
            replayed=replayed,
            hint="fix the edit, or keep it anyway with --force --note 'why'",
        )
    fields = {name: replayed.get(name) for name in EDITED_FIELDS if name in replayed}
    review = record.get("review") or {}
    original = review.get("original") or {name: record.get(name) for name in EDITED_FIELDS}
    before = editable(record, observations=False)
    after = editable(replayed, observations=False)
    review_changes = {"original": original, "diff": _diff(before, after), "edits": review.get("edits", 0) + 1}
    if force and problems:
        review_changes["forced"] = True
    with store.lock:
        if store.get(record["id"]) != record:
            raise ReviewError(
                f"trajectory {record['id'][:12]} changed while the edit was replayed",
                hint="look at it again and redo the edit",
            )
        return _decide(
            store,
            record,
            "edit",
            "accepted",
            note=note,
            tags=_tags(tags),
            user=user,
            fields=fields,
            review_changes=review_changes,
            forced=bool(problems) and force,
            extra={"replay_problems": problems} if problems else None,
        )
