"""Preference data from re-verified trajectories: step-level pairs and KTO labels.

Two sources of pairs, both checked by lamsim itself rather than by a model:

- **Recovered errors.** A step feedback rejected (a misspelled tool, a missing argument, a premature
  or malformed answer, ...) followed by the step the agent took next, when feedback accepted that
  one without any finding and its arguments come from what the agent had seen. prompt = the
  conversation up to the rejected step (earlier rejected steps left out), rejected = the wrong
  action, chosen = the correction.
- **Operator edits that held up.** An accepted edit keeps the agent's original steps
  (`review.original`); the edited trajectory was replayed in a fresh sandbox and judged. The first
  step where the two differ gives one pair: the original step (rejected) against the edited one
  (chosen). Forced edits (kept although the replay found problems) and undone edits give none.

KTO-style labels: one row per trajectory, desirable when it was not discarded and the judge found
it a success.
"""

from __future__ import annotations

from dataclasses import dataclass

from lamsim_tui.curation.turns import (
    Turn,
    TurnOptions,
    background,
    conversation,
    invented_arguments,
    is_rejected,
    step_turns,
)
from lamsim_tui.record import Finish, Step, ToolCall, Trajectory

_HARMLESS = ("budget.low",)  # findings that do not make an accepted step a doubtful example


@dataclass
class Pair:
    record: Trajectory
    source: str  # "recovery" | "edit"
    step: int  # index of the rejected step (recovery) or of the first differing step (edit)
    prefix: list[Turn]  # the conversation before the step, rejected steps left out
    chosen: Turn
    rejected: Turn
    chosen_step: Step
    rejected_step: Step

    @property
    def id(self) -> str:
        return f"{self.record.id}-{self.source}-{self.step}"

    @property
    def rejected_codes(self) -> list[str]:
        return list(self.rejected_step.codes)


def _trusted(step: Step) -> bool:
    return not is_rejected(step) and all(f.code in _HARMLESS for f in step.feedback)


def _prefix(record: Trajectory, steps: tuple[Step, ...], end: int) -> list[Turn]:
    """Clean turns of steps[:end] (as a trajectory cut there, still running)."""
    cut = record.replace(steps=tuple(steps[:end]), end_reason="cut")
    return conversation(cut, TurnOptions()).turns


def _assistant_turn(step: Step, *, final: bool) -> Turn:
    turn = step_turns(step, final=final, rejected=False, call_id=_call_id(step))[0]
    return turn


def _call_id(step: Step) -> str:
    if isinstance(step.action, ToolCall):
        return step.action.call_id or f"call_{step.index}"
    return ""


def _is_final(record: Trajectory, steps: tuple[Step, ...], index: int) -> bool:
    return (record.end_reason == "finished" and index == len(steps) - 1
            and isinstance(steps[index].action, Finish))


def _copied(record: Trajectory, prefix: list[Turn], step: Step) -> bool:
    """The step's arguments come from the task, the tools, the gold program or the prefix's results."""
    if not isinstance(step.action, ToolCall):
        return True

    known = "\n".join([background(record), *(t.content.lower() for t in prefix if t.kind == "result")])
    return not invented_arguments(step.action.arguments or {}, known)


def recovery_pairs(record: Trajectory) -> list[Pair]:
    steps = record.steps
    pairs = []
    for i, step in enumerate(steps):
        if not is_rejected(step):
            continue
        j = next((k for k in range(i + 1, len(steps)) if not is_rejected(steps[k])), None)
        if j is None or not _trusted(steps[j]):
            continue
        prefix = _prefix(record, steps, i)
        if not _copied(record, prefix, steps[j]):
            continue
        chosen = _assistant_turn(steps[j], final=_is_final(record, steps, j))
        rejected = _assistant_turn(step, final=False)
        pairs.append(Pair(record, "recovery", i, prefix, chosen, rejected, steps[j], step))
    return pairs


def _same(a: Step, b: Step) -> bool:
    def slim(s: Step):
        action = None if s.action is None else {k: v for k, v in s.action.to_dict().items() if k != "call_id"}
        return (s.thought or "").strip(), action
    return slim(a) == slim(b)


def edit_pair(record: Trajectory) -> Pair | None:
    """The pair an accepted edit gives, or None (no edit, undone, forced, or nothing to pair)."""
    review = record.review
    if review is None or not review.edited or review.forced or record.status != "accepted":
        return None
    if any(e.action == "edit" and e.undone_by is None and e.forced for e in review.history):
        return None
    original = (review.original or {}).get("steps")
    if not isinstance(original, list):
        return None
    before = tuple(Step.from_dict(s, n) for n, s in enumerate(original))
    after = record.steps
    k = next((n for n in range(min(len(before), len(after))) if not _same(before[n], after[n])), None)
    if k is None or not _trusted(after[k]):
        return None
    prefix = _prefix(record, after, k)
    chosen = _assistant_turn(after[k], final=_is_final(record, after, k))
    original_record = record.replace(steps=before, end_reason=(review.original or {}).get("end_reason", "?"))
    rejected = _assistant_turn(before[k], final=_is_final(original_record, before, k))
    return Pair(record, "edit", k, prefix, chosen, rejected, after[k], before[k])


def pairs_of(record: Trajectory) -> list[Pair]:
    """Every pair a trajectory gives, in step order; duplicates (same prompt and sides) once."""
    found = recovery_pairs(record)
    edit = edit_pair(record)
    if edit is not None:
        found.append(edit)
    out, seen = [], set()
    for pair in sorted(found, key=lambda p: (p.step, p.source)):
        key = (len(pair.prefix), pair.chosen.kind, pair.chosen.tool, repr(pair.chosen.arguments), pair.chosen.content,
               pair.rejected.kind, pair.rejected.tool, repr(pair.rejected.arguments), pair.rejected.content)
        if key not in seen:
            seen.add(key)
            out.append(pair)
    return out


def desirable(record: Trajectory) -> bool:
    """The KTO label: not discarded by the operator, and a success for the judge."""
    return record.status != "discarded" and record.verdict.success
