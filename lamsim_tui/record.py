"""The trajectory record: one typed definition of what an episode leaves behind.

Every stage speaks it: the engine builds a `Trajectory`, the store keeps its `to_dict()` (plain
JSON) and gives it back through `Trajectory.from_dict`, review decisions replace fields of it,
export, statistics, the CLI and the app read it. `docs/record.md` is generated from the field
documentation below (`scripts/gen-docs`), and a test keeps it current.

Stored records carry `schema_version`. `from_dict` reads the current version only; older
records go through `migrate` (one function per upgrade in `MIGRATIONS`), newer ones are refused.

Adding a field does not need a new version when it is optional: give it a default, leave it out
of `to_dict` while it has that default, and document it (`metadata` doc). An older lamsim keeps
the unknown key in `Trajectory.extras` and writes it back unchanged; a newer one reads a record
without it as the default. Renaming a field or changing what it means needs a new version and a
migration.

Values that are whatever a tool, a model or a session made them (arguments, results, answers,
slots, sandbox rows, usage figures, settings) stay plain JSON: `Any` / `dict` below.
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

SCHEMA_VERSION = 1
STATUSES = ("pending", "filtered", "accepted", "discarded")
Severity = Literal["error", "warning", "info"]


class RecordError(ValueError):
    """A stored record cannot be read as a trajectory (damaged, or from another lamsim)."""


def _doc(text: str) -> dict:
    return {"doc": text}


def json_value(value: Any) -> Any:
    """Plain JSON data (what records hold); dates and other objects become strings."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def utc_now(timespec: str = "milliseconds") -> str:
    return datetime.now(UTC).isoformat(timespec=timespec)


def current_user() -> str:
    """The operator's name for audit entries; works in containers without a passwd entry."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or os.environ.get("USERNAME") or f"uid {os.getuid()}"


# ----- the parts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """A check's finding on one action (see docs/feedback.md for the codes)."""

    code: str = field(metadata=_doc("stable identifier such as `args.missing`"))
    severity: Severity = field(metadata=_doc("`error`, `warning` or `info`"))
    message: str = field(metadata=_doc("what the agent was told"))

    def to_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        return cls(data["code"], data["severity"], data.get("message", ""))


@dataclass(frozen=True, slots=True)
class ToolCall:
    """An action that calls a tool."""

    tool: str
    arguments: dict
    call_id: str = ""

    def to_dict(self) -> dict:
        return {"type": "call", "tool": self.tool, "arguments": self.arguments, "call_id": self.call_id}

    def signature(self) -> str:
        return self.tool + json.dumps(self.arguments, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class Finish:
    """The final answer (the reserved `finish` action). `has_answer` is False for `finish` with no answer."""

    answer: Any
    call_id: str = ""
    has_answer: bool = field(default=True, compare=False)  # what the parser saw; stored records keep `answer`

    def to_dict(self) -> dict:
        return {"type": "finish", "answer": self.answer, "call_id": self.call_id}


Action = ToolCall | Finish


def action_from_dict(data: dict) -> Action:
    if data.get("type") == "finish":
        return Finish(answer=data.get("answer"), call_id=data.get("call_id", ""), has_answer="answer" in data)
    return ToolCall(tool=data["tool"], arguments=data.get("arguments") or {}, call_id=data.get("call_id", ""))


@dataclass(frozen=True, slots=True)
class GoldCall:
    """One call of a template's gold program, with the result it got (or, for a call made to fail
    on purpose with `call.expect_error`, the domain error it got: `error`, and no result)."""

    tool: str
    arguments: dict
    result: Any
    error: str | None = None

    def to_dict(self) -> dict:
        out = {"tool": self.tool, "arguments": self.arguments, "result": self.result}
        if self.error is not None:
            out["error"] = self.error
        return out

    @classmethod
    def from_dict(cls, data: dict) -> GoldCall:
        return cls(data["tool"], data.get("arguments") or {}, data.get("result"), data.get("error"))


@dataclass(frozen=True)
class Task:
    """One instance of a template: what the agent is asked and the ground truth computed for it."""

    id: str = field(metadata=_doc("hash of pack, template and slots: stable across runs"))
    template: str = field(metadata=_doc("the template's id"))
    query: str = field(metadata=_doc("what the agent is asked (the paraphrase, when there is one)"))
    slots: dict = field(metadata=_doc("the sampled slot values"))
    gold_calls: tuple[GoldCall, ...] = field(metadata=_doc(
        "the gold program's calls: `[{tool, arguments, result}]`; a call made to fail on purpose has `error` "
        "(the domain error's message) instead of a result"))
    gold_answer: Any = field(metadata=_doc("the gold program's answer (`null` for an action-only task)"))
    answer_type: str = field(metadata=_doc(
        "`number`, `text`, `list`, `set`, `bool`, `date`, `json`, or `none` (an action-only task: the agent "
        "finishes with a confirmation, and the task is judged on its final state alone)"))
    tolerance: float = field(metadata=_doc("allowed difference for numbers"))
    judge_state: bool = field(metadata=_doc("whether the final state is judged"))
    state_fields: dict | None = field(metadata=_doc("`{table: [fields]}` the state judge compares (`null`: all)"))
    gold_state: dict = field(metadata=_doc("the rows the gold program changed: `{table: {key: row or null}}`"))
    original_query: str | None = field(default=None, metadata=_doc("the template's wording, when paraphrased"))
    ends_with: str | None = field(default=None, metadata=_doc(
        "the tool the task must end with (a hand-off, declared by the template): the judge fails an episode "
        "that ends otherwise; absent when none"))

    @property
    def judges_answer(self) -> bool:
        """Whether the final answer is compared with the gold answer (not for action-only or hand-off tasks)."""
        return self.answer_type != "none" and self.ends_with is None

    def to_dict(self) -> dict:
        out = {
            "id": self.id,
            "template": self.template,
            "query": self.query,
            "slots": self.slots,
            "gold_calls": [c.to_dict() for c in self.gold_calls],
            "gold_answer": self.gold_answer,
            "answer_type": self.answer_type,
            "tolerance": self.tolerance,
            "judge_state": self.judge_state,
            "state_fields": self.state_fields,
            "gold_state": self.gold_state,
            "original_query": self.original_query,
        }
        if self.ends_with is not None:
            out["ends_with"] = self.ends_with
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Task:
        return cls(
            id=data["id"],
            template=data["template"],
            query=data["query"],
            slots=data.get("slots") or {},
            gold_calls=tuple(GoldCall.from_dict(c) for c in data.get("gold_calls") or ()),
            gold_answer=data.get("gold_answer"),
            answer_type=data.get("answer_type", "text"),
            tolerance=data.get("tolerance", 1e-6),
            judge_state=bool(data.get("judge_state", False)),
            state_fields=data.get("state_fields"),
            gold_state=data.get("gold_state") or {},
            original_query=data.get("original_query"),
            ends_with=data.get("ends_with"),
        )


@dataclass(frozen=True, slots=True)
class ModelError:
    """Why the model could not produce a step."""

    code: str
    message: str

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Step:
    """One model turn: what it wrote, the action made of it, what it was shown, the findings."""

    index: int = field(metadata=_doc("0-based position in the episode (shown 1-based to people)"))
    raw: str = field(metadata=_doc("the model's output exactly as produced (for native tool calls: their JSON)"))
    thought: str = field(metadata=_doc("the reasoning part of the action, if any"))
    action: Action | None = field(metadata=_doc(
        '`{"type": "call", "tool", "arguments", "call_id"}`, `{"type": "finish", "answer", "call_id"}`, '
        "or `null` when the output could not be parsed"))
    observation: str = field(metadata=_doc(
        "exactly what the agent was shown next: the tool result (JSON, cut at `budget.observation_chars`) "
        "and/or feedback messages"))
    result: Any = field(metadata=_doc(
        "the tool's return value when it ran successfully, else `null` (a value whose JSON passes 100,000 "
        "characters is kept as that JSON text, cut there)"))
    executed: bool = field(metadata=_doc("whether the tool ran (a failed pre-execution check means it did not)"))
    feedback: tuple[Finding, ...] = field(metadata=_doc(
        '`[{"code", "severity", "message"}]`, codes from [feedback.md](feedback.md)'))
    usage: dict = field(metadata=_doc(
        "`prompt_tokens`, `cached_tokens`, `completion_tokens`, `latency_s`, `ttft_s`, `cost_usd` where known"))
    engine_s: float = field(metadata=_doc("lamsim's own time for the step"))
    parse_notes: tuple[str, ...] = field(default=(), metadata=_doc(
        "repairs the parser applied (`code-fence`, `python-literal`, `text-around-object`); left out when none"))
    crash: str | None = field(default=None, metadata=_doc(
        "for `exec.crash`: the traceback, for the operator (never shown to the agent)"))
    error: ModelError | None = field(default=None, metadata=_doc(
        "for a step that ended the episode on a model failure: `{code, message}`"))
    changed_state: bool = field(default=False, metadata=_doc(
        "the call wrote to the sandbox (`true`); left out when it did not"))

    @property
    def codes(self) -> list[str]:
        return [f.code for f in self.feedback]

    @property
    def has_error(self) -> bool:
        return any(f.severity == "error" for f in self.feedback)

    def to_dict(self) -> dict:
        out = {
            "index": self.index,
            "raw": self.raw,
            "thought": self.thought,
            "action": None if self.action is None else self.action.to_dict(),
            "observation": self.observation,
            "result": self.result,
            "executed": self.executed,
            "feedback": [f.to_dict() for f in self.feedback],
            "usage": self.usage,
            "engine_s": self.engine_s,
        }
        if self.parse_notes:
            out["parse_notes"] = list(self.parse_notes)
        if self.crash:
            out["crash"] = self.crash
        if self.error is not None:
            out["error"] = self.error.to_dict()
        if self.changed_state:
            out["changed_state"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict, position: int = 0) -> Step:
        action = data.get("action")
        error = data.get("error")
        return cls(
            index=data.get("index", position),
            raw=data.get("raw") or "",
            thought=data.get("thought") or "",
            action=action_from_dict(action) if action else None,
            observation=data.get("observation") or "",
            result=data.get("result"),
            executed=bool(data.get("executed", False)),
            feedback=tuple(Finding.from_dict(f) for f in data.get("feedback") or ()),
            usage=data.get("usage") or {},
            engine_s=data.get("engine_s", 0.0),
            parse_notes=tuple(data.get("parse_notes") or ()),
            crash=data.get("crash"),
            error=ModelError(error.get("code", "?"), error.get("message", "")) if isinstance(error, dict) else None,
            changed_state=bool(data.get("changed_state", False)),
        )


def new_step(index: int, *, raw: str = "", thought: str = "", action: Action | None = None, observation: str = "",
             result: Any = None, executed: bool = False, feedback: tuple[Finding, ...] | list[Finding] = (),
             usage: dict | None = None, engine_s: float = 0.0, parse_notes: tuple[str, ...] = (),
             crash: str | None = None, error: ModelError | None = None, changed_state: bool = False) -> Step:
    """The one constructor of a step record (a model turn, a model failure, a late budget finding)."""
    return Step(index=index, raw=raw, thought=thought, action=action, observation=observation, result=result,
                executed=executed, feedback=tuple(feedback), usage=dict(usage or {}), engine_s=engine_s,
                parse_notes=tuple(parse_notes), crash=crash, error=error, changed_state=changed_state)


@dataclass(frozen=True)
class Verdict:
    """The judge's result, and which filters the trajectory passed."""

    success: bool = field(metadata=_doc("right answer (and right state, where judged) and a proper finish"))
    answer_correct: bool = field(metadata=_doc("the final answer matches the gold answer"))
    state_correct: bool | None = field(metadata=_doc("the final state matches the gold state; `null` when not judged"))
    reasons: tuple[str, ...] = field(metadata=_doc("why it is not a success, readable"))
    error_counts: dict = field(metadata=_doc("error-severity findings by code"))
    findings: dict = field(metadata=_doc("all findings by code"))
    steps_used: int = field(metadata=_doc("number of steps"))
    filters_failed: tuple[str, ...] = field(default=(), metadata=_doc("names of the filters it failed"))
    passed: bool = field(default=False, metadata=_doc("it passed every filter (its status was `pending`)"))

    def to_dict(self) -> dict:
        return {
            "success": self.success,
            "answer_correct": self.answer_correct,
            "state_correct": self.state_correct,
            "reasons": list(self.reasons),
            "error_counts": self.error_counts,
            "findings": self.findings,
            "steps_used": self.steps_used,
            "filters_failed": list(self.filters_failed),
            "passed": self.passed,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Verdict:
        return cls(
            success=bool(data.get("success")),
            answer_correct=bool(data.get("answer_correct")),
            state_correct=data.get("state_correct"),
            reasons=tuple(data.get("reasons") or ()),
            error_counts=data.get("error_counts") or {},
            findings=data.get("findings") or {},
            steps_used=data.get("steps_used", 0),
            filters_failed=tuple(data.get("filters_failed") or ()),
            passed=bool(data.get("passed")),
        )


@dataclass(frozen=True, slots=True)
class Timing:
    wall_s: float = 0.0
    model_s: float = 0.0
    engine_s: float = 0.0

    def to_dict(self) -> dict:
        return {"wall_s": self.wall_s, "model_s": self.model_s, "engine_s": self.engine_s}

    @classmethod
    def from_dict(cls, data: dict) -> Timing:
        return cls(data.get("wall_s", 0.0), data.get("model_s", 0.0), data.get("engine_s", 0.0))


@dataclass(frozen=True, slots=True)
class SessionInfo:
    name: str | None
    path: str | None
    seed: int | None
    settings: dict

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "seed": self.seed, "settings": self.settings}

    @classmethod
    def from_dict(cls, data: dict) -> SessionInfo:
        return cls(data.get("name"), data.get("path"), data.get("seed"), data.get("settings") or {})


@dataclass(frozen=True, slots=True)
class PackInfo:
    name: str
    version: str
    path: str | None = None

    def to_dict(self) -> dict:
        out = {"name": self.name, "version": self.version}
        if self.path is not None:
            out["path"] = self.path
        return out

    @classmethod
    def from_dict(cls, data: dict) -> PackInfo:
        return cls(data.get("name", "?"), data.get("version", "?"), data.get("path"))


@dataclass(frozen=True, slots=True)
class EpisodeInfo:
    seed: int
    attempt: int

    def to_dict(self) -> dict:
        return {"seed": self.seed, "attempt": self.attempt}

    @classmethod
    def from_dict(cls, data: dict) -> EpisodeInfo:
        return cls(data.get("seed", 0), data.get("attempt", 0))


# ----- the review ---------------------------------------------------------------------------------

_ENTRY_KEYS = ("seq", "action", "at", "user", "note", "tags", "from", "to", "forced")


@dataclass(frozen=True)
class ReviewEntry:
    """One decision in a trajectory's audit trail."""

    seq: int = field(metadata=_doc("decision number, across the store"))
    action: str = field(metadata=_doc("`accept`, `discard`, `edit` or `undo`"))
    at: str = field(metadata=_doc("UTC time"))
    user: str = field(metadata=_doc("OS user"))
    note: str | None = field(metadata=_doc("free text"))
    tags: tuple[str, ...] = field(metadata=_doc("reason tags"))
    from_status: str | None = field(metadata=_doc("status before (`from`)"))
    to_status: str | None = field(metadata=_doc("status after (`to`)"))
    forced: bool = field(default=False, metadata=_doc("an edit kept although its replay found problems"))
    prior: dict | None = field(default=None, metadata=_doc("the record fields the decision replaced (for undo)"))
    prior_review: dict | None = field(default=None, metadata=_doc("the review fields the decision replaced"))
    undone_by: int | None = field(default=None, metadata=_doc("the `seq` of the undo that reverted it"))
    undoes: int | None = field(default=None, metadata=_doc("for an undo: the `seq` it reverted"))
    replay_problems: tuple[str, ...] | None = field(default=None, metadata=_doc(
        "for a forced edit: what the replay found"))

    def to_dict(self) -> dict:
        out = {"seq": self.seq, "action": self.action, "at": self.at, "user": self.user, "note": self.note,
               "tags": list(self.tags), "from": self.from_status, "to": self.to_status, "forced": self.forced}
        if self.prior is not None:
            out["prior"] = self.prior
        if self.prior_review is not None:
            out["prior_review"] = self.prior_review
        if self.replay_problems is not None:
            out["replay_problems"] = list(self.replay_problems)
        if self.undoes is not None:
            out["undoes"] = self.undoes
        if self.undone_by is not None:
            out["undone_by"] = self.undone_by
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ReviewEntry:
        problems = data.get("replay_problems")
        return cls(
            seq=data.get("seq", 0),
            action=data.get("action", "?"),
            at=data.get("at", ""),
            user=data.get("user", ""),
            note=data.get("note"),
            tags=tuple(data.get("tags") or ()),
            from_status=data.get("from"),
            to_status=data.get("to"),
            forced=bool(data.get("forced", False)),
            prior=data.get("prior"),
            prior_review=data.get("prior_review"),
            undone_by=data.get("undone_by"),
            undoes=data.get("undoes"),
            replay_problems=None if problems is None else tuple(problems),
        )

    @property
    def live(self) -> bool:
        """A decision that stands: not an undo, and not undone."""
        return self.action != "undo" and self.undone_by is None


@dataclass(frozen=True)
class Review:
    """The operator's decisions on a trajectory (absent until the first one)."""

    history: tuple[ReviewEntry, ...] = field(default=(), metadata=_doc("every decision, oldest first"))
    original: dict | None = field(default=None, metadata=_doc(
        "after an accepted edit: the fields of the trajectory as the agent made it"))
    diff: str | None = field(default=None, metadata=_doc("after an edit: a unified diff of the editable JSON"))
    edits: int | None = field(default=None, metadata=_doc("how many edits were accepted"))
    forced: bool | None = field(default=None, metadata=_doc("the latest edit was forced"))

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"history": [e.to_dict() for e in self.history]}
        for name in ("original", "diff", "edits", "forced"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Review:
        return cls(
            history=tuple(ReviewEntry.from_dict(e) for e in data.get("history") or ()),
            original=data.get("original"),
            diff=data.get("diff"),
            edits=data.get("edits"),
            forced=data.get("forced"),
        )

    @property
    def edited(self) -> bool:
        """An edit that stands (not undone)."""
        return any(e.action == "edit" and e.undone_by is None for e in self.history)

    @property
    def forced_edits(self) -> int:
        return sum(1 for e in self.history if e.action == "edit" and e.undone_by is None and e.forced)

    def last(self) -> ReviewEntry | None:
        return self.history[-1] if self.history else None


# ----- demonstrations -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DemonstrationRef:
    """One demonstration an episode was shown."""

    id: str = field(metadata=_doc("the trajectory's id in the source store, or `gold:<task id>` for a gold replay"))
    template: str = field(metadata=_doc("its template"))
    task_id: str = field(metadata=_doc("its task (never the episode's own)"))
    origin: str = field(metadata=_doc(
        "`store` (a trajectory that was accepted, or pending and successful) or `gold` (a clean replay of "
        "another task's gold program: the cold start)"))

    def to_dict(self) -> dict:
        return {"id": self.id, "template": self.template, "task_id": self.task_id, "origin": self.origin}

    @classmethod
    def from_dict(cls, data: dict) -> DemonstrationRef:
        return cls(str(data.get("id", "")), str(data.get("template", "?")), str(data.get("task_id", "")),
                   str(data.get("origin", "store")))


@dataclass(frozen=True)
class Demonstrations:
    """What an episode was shown as examples, so that its prompt can be rebuilt exactly."""

    source: str = field(metadata=_doc(
        "the store directory they came from, or `gold` (replays of gold programs, when no trajectory counted yet)"))
    placement: str = field(metadata=_doc(
        "`system` (after the system prompt, inside the system message) or `episode` (turns between the system "
        "message and the task)"))
    items: tuple[DemonstrationRef, ...] = field(metadata=_doc(
        "`[{id, template, task_id, origin}]` in the order shown"))
    prompt: str | None = field(default=None, metadata=_doc(
        "placement `system`: the text the system message had after `system_prompt` and a blank line"))
    messages: tuple[dict, ...] = field(default=(), metadata=_doc(
        "placement `episode`: the chat messages between the system message and the task"))

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"source": self.source, "placement": self.placement,
                               "items": [item.to_dict() for item in self.items]}
        if self.prompt is not None:
            out["prompt"] = self.prompt
        if self.messages:
            out["messages"] = list(self.messages)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Demonstrations:
        return cls(source=str(data.get("source", "?")), placement=str(data.get("placement", "system")),
                   items=tuple(DemonstrationRef.from_dict(i) for i in data.get("items") or () if isinstance(i, dict)),
                   prompt=data.get("prompt"), messages=tuple(data.get("messages") or ()))

    def summary(self) -> str:
        return demonstrations_line(self.items)


def demonstrations_line(items: tuple[DemonstrationRef, ...] | list[DemonstrationRef]) -> str:
    """One line for people: `2 demonstrations: case_status (a1b2c3d4e5), contact_email (gold replay)`
    (the Task pane: from `Trajectory.demonstrations.items`, or live from `EpisodeStarted.demonstrations`)."""
    shown = ", ".join(f"{i.template} ({'gold replay' if i.origin == 'gold' else i.id[:10]})" for i in items)
    noun = "demonstration" if len(items) == 1 else "demonstrations"
    return f"{len(items)} {noun}: {shown}" if items else "no demonstrations"


# ----- the trajectory -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Trajectory:
    """One episode's record: everything needed to read it, judge it again and re-run it."""

    id: str = field(metadata=_doc("32 hex characters, unique; abbreviate like a git hash in the CLI"))
    status: str | None = field(metadata=_doc(
        "`pending` (passed the filters), `filtered` (failed some), then `accepted` / `discarded` after review"))
    created_at: str = field(metadata=_doc("UTC ISO-8601 time the episode started"))
    finished_at: str = field(metadata=_doc("UTC ISO-8601 time it ended (or was last replayed)"))
    session: SessionInfo = field(metadata=_doc(
        "`name`, `path`, `seed`, `settings` (the session's public settings: never secrets, only env-var *names*)"))
    pack: PackInfo = field(metadata=_doc("`name`, `version` (content hash of the pack's files), `path`"))
    agent: dict = field(metadata=_doc(
        "`kind` (`scripted`, `model`, `embedded`) and its public settings (model string, `api_base`, sampling)"))
    episode: EpisodeInfo = field(metadata=_doc("`seed` (derived from session seed, task id and attempt), `attempt`"))
    task: Task = field(metadata=_doc("the task and its ground truth, see below"))
    tools: list = field(metadata=_doc("the tool schemas the agent saw (OpenAI `{\"type\": \"function\", ...}`)"))
    system_prompt: str | None = field(metadata=_doc("the system prompt the agent used"))
    steps: tuple[Step, ...] = field(metadata=_doc("one per model turn, see below"))
    final_answer: Any = field(metadata=_doc("the accepted final answer, or `null`"))
    end_reason: str = field(metadata=_doc(
        "`finished`, `ended.<tool>` (a tool that ends the episode ran, such as a hand-off), `budget.exhausted`, "
        "`budget.time`, `model.<reason>`, `cancelled`"))
    final_state: dict = field(metadata=_doc("rows the episode changed: `{table: {key: row, or null when deleted}}`"))
    verdict: Verdict = field(metadata=_doc("the judge's result and the filters, see below"))
    timing: Timing = field(metadata=_doc("`wall_s`, `model_s` (time in the agent), `engine_s` (time in lamsim)"))
    review: Review | None = field(default=None, metadata=_doc("the operator's decisions, see below; absent before"))
    replayed_by: str | None = field(default=None, metadata=_doc("after an edit: who replayed it"))
    policy: str | None = field(default=None, metadata=_doc(
        "the policy document the agent was given with the tools (the pack's or the session's; it is also part "
        "of `system_prompt`); absent when there was none"))
    demonstrations: Demonstrations | None = field(default=None, metadata=_doc(
        "the solved tasks the agent was shown as examples, see below; absent when none (they are not steps, "
        "and exports leave them out)"))
    schema_version: int = field(default=SCHEMA_VERSION, metadata=_doc(
        f"`{SCHEMA_VERSION}`. A store refuses records from a newer lamsim and migrates older ones"))
    extras: dict = field(default_factory=dict, repr=False, metadata={"internal": True})

    # -- reading -----------------------------------------------------------------------------------
    @property
    def short_id(self) -> str:
        return self.id[:10]

    @property
    def template(self) -> str:
        return self.task.template

    @property
    def codes(self) -> list[str]:
        return [f.code for s in self.steps for f in s.feedback]

    @property
    def history(self) -> tuple[ReviewEntry, ...]:
        return self.review.history if self.review is not None else ()

    @property
    def edited(self) -> bool:
        return self.review is not None and self.review.edited

    @property
    def ended_properly(self) -> bool:
        """It ended as the agent chose: a final answer, or a tool that ends the episode (a hand-off)."""
        return self.end_reason == "finished" or self.end_reason.startswith("ended.")

    # -- conversion --------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {
            "schema_version": self.schema_version,
            "id": self.id,
            "status": self.status,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "session": self.session.to_dict(),
            "pack": self.pack.to_dict(),
            "agent": self.agent,
            "episode": self.episode.to_dict(),
            "task": self.task.to_dict(),
            "tools": self.tools,
            "system_prompt": self.system_prompt,
            "steps": [s.to_dict() for s in self.steps],
            "final_answer": self.final_answer,
            "end_reason": self.end_reason,
            "final_state": self.final_state,
            "verdict": self.verdict.to_dict(),
            "timing": self.timing.to_dict(),
        }
        if self.review is not None:
            out["review"] = self.review.to_dict()
        if self.replayed_by is not None:
            out["replayed_by"] = self.replayed_by
        if self.policy is not None:
            out["policy"] = self.policy
        if self.demonstrations is not None:
            out["demonstrations"] = self.demonstrations.to_dict()
        out.update(self.extras)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Trajectory:
        """Read a stored record of the current schema version (use `migrate` first for older ones)."""
        if not isinstance(data, dict):
            raise RecordError(f"a trajectory record is a JSON object, not {type(data).__name__}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION or isinstance(version, bool):
            raise RecordError(f"record {data.get('id')} has schema_version {version!r}; this lamsim reads "
                              f"{SCHEMA_VERSION} (migrate it first)")
        try:
            review = data.get("review")
            demonstrations = data.get("demonstrations")
            return cls(
                schema_version=version,
                id=data["id"],
                status=data.get("status"),
                created_at=data.get("created_at", ""),
                finished_at=data.get("finished_at", ""),
                session=SessionInfo.from_dict(data.get("session") or {}),
                pack=PackInfo.from_dict(data.get("pack") or {}),
                agent=data.get("agent") or {},
                episode=EpisodeInfo.from_dict(data.get("episode") or {}),
                task=Task.from_dict(data["task"]),
                tools=data.get("tools") or [],
                system_prompt=data.get("system_prompt"),
                steps=tuple(Step.from_dict(s, i) for i, s in enumerate(data.get("steps") or ())),
                final_answer=data.get("final_answer"),
                end_reason=data.get("end_reason", "?"),
                final_state=data.get("final_state") or {},
                verdict=Verdict.from_dict(data.get("verdict") or {}),
                timing=Timing.from_dict(data.get("timing") or {}),
                review=Review.from_dict(review) if isinstance(review, dict) else None,
                replayed_by=data.get("replayed_by"),
                policy=data.get("policy"),
                demonstrations=Demonstrations.from_dict(demonstrations) if isinstance(demonstrations, dict) else None,
                extras={k: v for k, v in data.items() if k not in _KNOWN},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise RecordError(f"record {data.get('id')} is not a trajectory record ({type(exc).__name__}: {exc})") \
                from None

    def replace(self, **changes: Any) -> Trajectory:
        return dataclasses.replace(self, **changes)

    def action_signature(self) -> str:
        return action_signature([s.to_dict() for s in self.steps])

    def listing(self, number: int = 0) -> Listing:
        return Listing.of(self.to_dict(), number)


_KNOWN = frozenset(f.name for f in dataclasses.fields(Trajectory) if not f.metadata.get("internal"))


# ----- the listing: what lists, filters and statistics read -----------------------------------------


def action_signature(steps: list[dict]) -> str:
    """The executed actions of a trajectory (stored step dicts), for spotting duplicates of one task: a
    digest of them (two trajectories with the same actions have the same one; it is kept in the store's
    index, so it is short)."""
    actions = [s["action"] for s in steps if s.get("action") and (s.get("executed") or s["action"]["type"] == "finish")]
    slim = [[a["type"], a.get("tool"), a.get("arguments"), a.get("answer")] for a in actions]
    text = json.dumps(slim, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


_INVALID_PREFIXES = ("format.", "tool.", "args.")  # findings that mean the output was not a valid action
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "cached_tokens")


def _usage(steps: list[dict]) -> tuple[int, dict]:
    """(total tokens, {prompt/completion/cached tokens}) of a record's steps."""
    total = 0
    by_kind: dict[str, float] = {}
    for step in steps:
        usage = step.get("usage") or {}
        value = usage.get("total_tokens")
        if not isinstance(value, (int, float)):
            value = sum(v for k, v in usage.items()
                        if k in ("prompt_tokens", "completion_tokens") and isinstance(v, (int, float)))
        total += int(value)
        for key in _USAGE_KEYS:
            count = usage.get(key)
            if isinstance(count, (int, float)):
                by_kind[key] = by_kind.get(key, 0) + count
    return total, by_kind


def _demonstration_count(value: Any) -> int:
    items = value.get("items") if isinstance(value, dict) else None
    return len(items) if isinstance(items, list) else 0


def _valid_steps(steps: list[dict]) -> int:
    return sum(1 for s in steps if s.get("action") is not None
               and not any(f["code"].startswith(_INVALID_PREFIXES) for f in s.get("feedback") or ()))


@dataclass(frozen=True, slots=True)
class Listing:
    """The fields of a trajectory that lists, filters and statistics need, without its body.

    Built from a stored record by `Listing.of` (a few dictionary reads, no copy of the steps).
    """

    id: str
    number: int  # the trajectory's place in its store (1, 2, ...): stable, shown beside the short id
    status: str
    template: str
    task_id: str
    query: str
    attempt: int
    created_at: str
    end_reason: str
    success: bool
    passed: bool
    filters_failed: tuple[str, ...]
    findings: dict  # code -> count, every finding
    error_counts: dict  # code -> count, error findings
    steps: int
    codes: tuple[str, ...]  # every finding's code, in step order
    final_answer: Any
    tokens: int  # all tokens of its steps
    usage: dict  # prompt_tokens, completion_tokens, cached_tokens where known
    valid_steps: int  # steps with an action no format/tool/argument check refused
    wall_s: float
    model_s: float
    engine_s: float
    edited: bool
    forced_edits: int
    last_seq: int  # the highest decision number in its history (0: never reviewed)
    live_seqs: tuple[int, ...]  # decisions that stand (can be undone)
    signature: str  # action_signature of its steps (a digest)
    demonstrations: int = 0  # how many demonstrations its agent was shown
    decision_tags: tuple[str, ...] = ()  # reason tags of the decision that stands (the latest not undone)
    decision_note: str | None = None  # its note

    @classmethod
    def of(cls, doc: dict, number: int = 0) -> Listing:
        task = doc.get("task") or {}
        verdict = doc.get("verdict") or {}
        steps = doc.get("steps") or []
        history = (doc.get("review") or {}).get("history") or []
        codes = tuple(f["code"] for s in steps for f in s.get("feedback") or ())
        findings = verdict.get("findings")
        if not isinstance(findings, dict):
            findings = {}
            for code in codes:
                findings[code] = findings.get(code, 0) + 1
        live_edits = [e for e in history if e.get("action") == "edit" and not e.get("undone_by")]
        standing = [e for e in history if e.get("action") != "undo" and not e.get("undone_by")]
        decision = standing[-1] if standing else {}
        tokens, usage = _usage(steps)
        timing = doc.get("timing") or {}
        return cls(
            id=doc["id"],
            number=number,
            status=doc.get("status") or "?",
            template=str(task.get("template") or "?"),
            task_id=str(task.get("id") or ""),
            query=str(task.get("query") or ""),
            attempt=(doc.get("episode") or {}).get("attempt", 0),
            created_at=doc.get("created_at") or "",
            end_reason=doc.get("end_reason") or "?",
            success=bool(verdict.get("success")),
            passed=bool(verdict.get("passed")),
            filters_failed=tuple(verdict.get("filters_failed") or ()),
            findings=findings,
            error_counts=verdict.get("error_counts") or {},
            steps=verdict.get("steps_used") or len(steps),
            codes=codes,
            final_answer=doc.get("final_answer"),
            tokens=tokens,
            usage=usage,
            valid_steps=_valid_steps(steps),
            wall_s=float(timing.get("wall_s") or 0.0),
            model_s=float(timing.get("model_s") or 0.0),
            engine_s=float(timing.get("engine_s") or 0.0),
            edited=bool(live_edits),
            forced_edits=sum(1 for e in live_edits if e.get("forced")),
            last_seq=max((e.get("seq", 0) for e in history), default=0),
            live_seqs=tuple(e["seq"] for e in history if e.get("action") != "undo" and not e.get("undone_by")),
            signature=action_signature(steps),
            demonstrations=_demonstration_count(doc.get("demonstrations")),
            decision_tags=tuple(decision.get("tags") or ()),
            decision_note=decision.get("note"),
        )

    @property
    def short_id(self) -> str:
        return self.id[:10]

    def has_code(self, wanted: str) -> bool:
        """A finding with this code, or in this family (`args` matches `args.missing`)."""
        return any(c == wanted or c.startswith(wanted + ".") for c in self.codes)


# ----- versions -----------------------------------------------------------------------------------

# Upgrades of stored records, by the version they upgrade *from*; each returns the record (a dict)
# at version + 1. Add one here with every change of the record's shape, and bump SCHEMA_VERSION.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


def migrate(data: dict) -> dict:
    """The stored dict at the current schema version. Raises RecordError for what cannot be read."""
    version = data.get("schema_version")
    if version == SCHEMA_VERSION and not isinstance(version, bool):
        return data
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordError(f"record {data.get('id')} has no schema_version")
    if version > SCHEMA_VERSION:
        raise RecordError(f"record {data.get('id')} has schema_version {version}, newer than this lamsim "
                          f"reads ({SCHEMA_VERSION})")
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise RecordError(f"record {data.get('id')} has schema_version {version}, which cannot be migrated "
                              f"to {SCHEMA_VERSION}")
        data = step(data)
        version = data["schema_version"]
    return data


# ----- documentation ------------------------------------------------------------------------------

_DOCUMENTED = (("The record", Trajectory), ("`task`", Task), ("A step (`steps[]`)", Step),
               ("`verdict`", Verdict), ("`review`", Review), ("An audit entry (`review.history[]`)", ReviewEntry),
               ("`demonstrations`", Demonstrations), ("A demonstration (`demonstrations.items[]`)", DemonstrationRef))
_STORED_NAMES = {"from_status": "from", "to_status": "to"}


def record_markdown() -> str:
    """The tables of docs/record.md, from the field documentation above."""
    parts = []
    for title, cls in _DOCUMENTED:
        parts.append(f"**{title}**\n\n| field | meaning |\n| --- | --- |")
        for f in dataclasses.fields(cls):
            if f.metadata.get("internal"):
                continue
            parts.append(f"| `{_STORED_NAMES.get(f.name, f.name)}` | {f.metadata.get('doc', '')} |")
        parts.append("")
    return "\n".join(parts).rstrip()
