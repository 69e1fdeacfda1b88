"""The review lifecycle: accept, discard, edit (checked by replay), undo.

Statuses: `pending` (passed the filters), `filtered` (failed them; kept to rescue or discard),
`accepted`, `discarded`. Every decision appends an audit entry to the record's `review.history`:
what, when, who (OS user), note, reason tags, and the fields it replaced, so `undo` can put them
back. Decisions are numbered across the store; `undo` reverts the latest one not yet undone and
can be repeated. One decision is one durable write: of one record, or of all the records of a
bulk decision (`accept_many`, `discard_many`), which share one number and are undone together.

An edit is never trusted as typed: the edited actions are replayed in a fresh sandbox
(`simulator.replay`), so observations come from the tools, feedback is re-run and the judge scores
the result. An edit whose replay has error feedback or a wrong answer is refused with the reasons,
unless forced with a note (the audit entry says `forced`). An accepted edit keeps the original
trajectory beside it (`review.original`) and a diff of the editable JSON (`review.diff`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from lamsim_tui.errors import LamsimError
from lamsim_tui.record import Finish, Review, ReviewEntry, Trajectory, current_user, utc_now
from lamsim_tui.store import Store

# Fields an edit replaces (and undo restores).
EDITED_FIELDS = ("steps", "final_answer", "end_reason", "final_state", "verdict", "timing", "pack")
_READ_ONLY_STEP_KEYS = ("observation", "feedback")


class ReviewError(LamsimError):
    """A review action that cannot be done (wrong status, nothing to undo, bad edit file)."""


class EditRefused(ReviewError):
    """The replayed edit has error feedback or a wrong answer; `problems` says which."""

    def __init__(self, message: str, *, problems: list[str], codes: list[str], replayed: Trajectory, **kw: Any):
        super().__init__(message, **kw)
        self.problems = problems
        self.codes = codes
        self.replayed = replayed


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
        self.seq, self.undoable = store.decisions()  # from the store's index
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


def _decide(
    store: Store,
    record: Trajectory,
    action: str,
    to_status: str,
    *,
    note: str | None,
    tags: list[str],
    user: str | None,
    fields: dict | None = None,
    review_changes: dict | None = None,
    forced: bool = False,
    replay_problems: list[str] | None = None,
    seq: int | None = None,
) -> Trajectory:
    """One decision: the changed fields and the audit entry saying what they were, in one durable write.

    ``seq`` is given for each record of a bulk decision (they share one number); by default, the next.
    """
    ledger = _ledger(store)
    seq = ledger.seq + 1 if seq is None else seq
    fields = dict(fields or {})
    fields["status"] = to_status
    stored = record.to_dict()
    prior = {name: stored.get(name) for name in fields}
    review = record.review or Review()
    prior_review = None
    if review_changes:
        stored_review = review.to_dict()
        prior_review = {name: stored_review.get(name) for name in review_changes}
    entry = ReviewEntry(seq=seq, action=action, at=utc_now("seconds"), user=user or current_user(), note=note or None,
                        tags=tuple(tags), from_status=record.status, to_status=to_status, forced=forced, prior=prior,
                        prior_review=prior_review,
                        replay_problems=tuple(replay_problems) if replay_problems else None)
    review = dataclasses.replace(review, **(review_changes or {}), history=(*review.history, entry))
    fields["review"] = review
    updated = store.update(record.id, fields)
    ledger.seq = seq
    ledger.undoable.append((seq, record.id))
    return updated


def accept(
    store: Store,
    record_id: str,
    *,
    note: str | None = None,
    tags: str | Iterable[str] | None = None,
    user: str | None = None,
) -> Trajectory:
    """Mark a trajectory accepted (from pending, filtered or discarded)."""
    _writable(store)
    record = store.get(record_id)
    if record.status == "accepted":
        raise ReviewError(
            f"trajectory {record.id[:12]} is already accepted", hint="`lamsim review undo` reverts the last decision"
        )
    return _decide(store, record, "accept", "accepted", note=note, tags=_tags(tags), user=user)


def discard(
    store: Store,
    record_id: str,
    *,
    reason: str | Iterable[str] | None = None,
    note: str | None = None,
    user: str | None = None,
) -> Trajectory:
    """Mark a trajectory discarded; `reason` is one or more tags (comma-separated or a list)."""
    _writable(store)
    record = store.get(record_id)
    if record.status == "discarded":
        raise ReviewError(
            f"trajectory {record.id[:12]} is already discarded",
            hint="`lamsim review undo` reverts the last decision",
        )
    return _decide(store, record, "discard", "discarded", note=note, tags=_tags(reason), user=user)


def undo(store: Store, *, user: str | None = None) -> tuple[Trajectory, ReviewEntry]:
    """Revert the latest decision not yet undone. Returns (record after, the decision undone).

    A bulk decision (`accept_many`, `discard_many`) is one decision: undo reverts all of it.
    """
    records, undone = undo_last(store, user=user)
    return records[0], undone


def undo_last(store: Store, *, user: str | None = None) -> tuple[list[Trajectory], ReviewEntry]:
    """As `undo`, with every record the decision changed (several after a bulk decision)."""
    _writable(store)
    with store.lock:
        return _undo(store, user)


def _undo(store: Store, user: str | None) -> tuple[list[Trajectory], ReviewEntry]:
    ledger = _ledger(store)
    if not ledger.undoable:
        raise ReviewError("nothing to undo: no review decision in this store")
    seq = ledger.undoable[-1][0]
    record_ids = [record_id for s, record_id in ledger.undoable if s == seq]
    new_seq = ledger.seq + 1
    updated: list[Trajectory] = []
    first: ReviewEntry | None = None
    with store.batch():  # one durable write, however many records the decision changed
        for record_id in record_ids:
            record = store.get(record_id)
            review = record.review or Review()
            index = next(i for i, e in enumerate(review.history) if e.seq == seq)
            undone = review.history[index]
            first = first or undone
            history = list(review.history)
            history[index] = dataclasses.replace(undone, undone_by=new_seq)
            restored = dict(undone.prior_review or {})  # review fields as they were (None: absent)
            prior = dict(undone.prior or {})
            history.append(ReviewEntry(seq=new_seq, action="undo", at=utc_now("seconds"),
                                       user=user or current_user(), note=None, tags=(), from_status=record.status,
                                       to_status=prior.get("status"), undoes=seq))
            fields = dict(prior)
            fields["review"] = dataclasses.replace(review, **restored, history=tuple(history))
            updated.append(store.update(record_id, fields))
    ledger.seq = new_seq
    ledger.undoable = [item for item in ledger.undoable if item[0] != seq]
    return updated, first


# ----- bulk decisions --------------------------------------------------------------------------------


def accept_many(
    store: Store,
    record_ids: Iterable[str],
    *,
    note: str | None = None,
    tags: str | Iterable[str] | None = None,
    user: str | None = None,
) -> list[Trajectory]:
    """Accept several trajectories as ONE decision: one number, one durable write, one undo.

    Those already accepted are left as they are (not counted). Returns the records accepted.
    """
    return _decide_many(store, record_ids, "accept", "accepted", note=note, tags=_tags(tags), user=user)


def discard_many(
    store: Store,
    record_ids: Iterable[str],
    *,
    reason: str | Iterable[str] | None = None,
    note: str | None = None,
    user: str | None = None,
) -> list[Trajectory]:
    """Discard several trajectories as ONE decision (see `accept_many`)."""
    return _decide_many(store, record_ids, "discard", "discarded", note=note, tags=_tags(reason), user=user)


def _decide_many(store: Store, record_ids: Iterable[str], action: str, to_status: str, *, note: str | None,
                 tags: list[str], user: str | None) -> list[Trajectory]:
    _writable(store)
    wanted = list(dict.fromkeys(record_ids))
    updated: list[Trajectory] = []
    with store.lock:
        ledger = _ledger(store)
        seq = ledger.seq + 1
        try:
            with store.batch():
                for record_id in wanted:
                    record = store.get(record_id)
                    if record.status == to_status:
                        continue
                    updated.append(_decide(store, record, action, to_status, note=note, tags=tags, user=user,
                                           seq=seq))
        except BaseException:
            # Nothing was written: the ledger forgets the decision it was building.
            ledger.undoable = [item for item in ledger.undoable if item[0] != seq]
            ledger.seq = seq - 1
            raise
    return updated


def history(store: Store) -> list[tuple[str, ReviewEntry]]:
    """Every audit entry in the store with its trajectory's id, oldest first."""
    reviewed = [item.number for item in store.listings() if item.last_seq]  # read only the bodies with decisions
    entries = [(record.id, entry) for record in store.records(keys=reviewed) for entry in record.history]
    entries.sort(key=lambda item: item[1].seq)
    return entries


# ----- edits ---------------------------------------------------------------------------------------


def editable(record: Trajectory, *, observations: bool = True) -> dict:
    """What the operator edits: thoughts, tools and arguments of the calls, and the final answer.

    Observations (and feedback) are shown for orientation only: they are recomputed by replay.
    """
    steps = []
    final_answer = record.final_answer
    final_thought = ""
    action_steps = [s for s in record.steps if s.action is not None]
    last_finish = max((i for i, s in enumerate(action_steps) if isinstance(s.action, Finish)), default=None)
    for i, step in enumerate(action_steps):
        action = step.action
        if isinstance(action, Finish):
            if i == last_finish:
                final_thought = step.thought
                final_answer = action.answer
                continue
            item = {"thought": step.thought, "tool": "finish", "arguments": {"answer": action.answer}}
        else:
            item = {"thought": step.thought, "tool": action.tool, "arguments": action.arguments or {}}
        if observations:
            item["observation"] = step.observation
            if step.feedback:
                item["feedback"] = step.codes
        steps.append(item)
    out: dict[str, Any] = {"steps": steps, "final_answer": final_answer}
    if final_thought:
        out["final_thought"] = final_thought
    return out


def editable_text(record: Trajectory) -> str:
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


def replay_problems(replayed: Trajectory) -> tuple[list[str], list[str]]:
    """Why a replayed trajectory cannot be trusted: error feedback, a wrong answer, no proper end."""
    problems: list[str] = []
    codes: list[str] = []
    for step in replayed.steps:
        for fb in step.feedback:
            if fb.severity == "error":
                codes.append(fb.code)
                problems.append(f"step {step.index + 1}: {fb.code}: {fb.message}")  # 1-based, as people read steps
    verdict = replayed.verdict
    if not verdict.success:
        reasons = verdict.reasons or ("the judge did not accept the result",)
        problems.extend(f"judge: {r}" for r in reasons)
        if not verdict.answer_correct and "answer.wrong" not in codes:
            codes.append("answer.wrong")
    if not replayed.ended_properly:
        problems.append(f"the replay ended with {replayed.end_reason}, not a final answer")
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
    replay: Callable[..., Trajectory] | None = None,
) -> Trajectory:
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
        from lamsim_tui.simulator.replay import replay
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
    fields = {name: getattr(replayed, name) for name in EDITED_FIELDS}
    review = record.review or Review()
    stored = record.to_dict()
    original = review.original or {name: stored.get(name) for name in EDITED_FIELDS}
    before = editable(record, observations=False)
    after = editable(replayed, observations=False)
    review_changes = {"original": original, "diff": _diff(before, after), "edits": (review.edits or 0) + 1}
    if force and problems:
        review_changes["forced"] = True
    with store.lock:
        if store.get(record.id) != record:
            raise ReviewError(
                f"trajectory {record.id[:12]} changed while the edit was replayed",
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
            replay_problems=problems or None,
        )
