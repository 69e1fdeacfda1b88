"""Export trajectories as training data: `chat`, `sharegpt` and `xlam` JSONL.

- `chat`: `{"messages": [...], "tools": [...]}`: system, user, assistant turns with `tool_calls`
  (ids, `function.name`, `function.arguments` as an object, or a JSON string with
  `string_arguments`), `tool` turns linked by `tool_call_id`, then the final assistant answer.
  The layout of TRL conversational datasets and Hugging Face chat templates (and, with string
  arguments, of OpenAI-style fine-tuning files).
- `sharegpt`: `{"conversations": [{"from": "human"|"function_call"|"observation"|"gpt", "value"}],
  "system", "tools"}` with `tools` a JSON string of function schemas: LLaMA-Factory's tool-use layout.
  Function calls carry no thought (the layout has no place for one).
- `xlam`: `{"unique_trajectory_id", "task_instruction", "tools", "conversation"}`: the unified
  trajectory layout of Salesforce xLAM / ActionStudio.

By default every step stays, including those feedback rejected and the feedback they got: they
teach recovery. `clean` leaves out rejected steps (calls not executed because of feedback, output
that was not an action, final answers the judge refused) and the feedback turns they caused.
Order is deterministic (template, task, attempt, id). A sidecar `<out>.meta.json` says what is in
the file. An optional train/eval split keeps whole templates (or tasks) on one side.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lamsim_tui.errors import LamsimError
from lamsim_tui.record import Finish, Step, Trajectory
from lamsim_tui.store import Store
from lamsim_tui.store.redact import environment_secrets, redact

FORMATS = ("chat", "sharegpt", "xlam")
SPLIT_BY = ("template", "task")
DEFAULT_INSTRUCTION = "You are an assistant that solves the user's task by calling the tools provided."


class ExportError(LamsimError):
    """Export options that cannot work (unknown format, bad split, unwritable file)."""


# ----- the neutral conversation -------------------------------------------------------------------


@dataclass
class Turn:
    kind: str  # "call" | "result" | "text" (assistant text) | "feedback" (to the agent) | "answer"
    content: str = ""
    tool: str = ""
    arguments: dict | None = None
    call_id: str = ""


def answer_text(answer: Any) -> str:
    if isinstance(answer, str):
        return answer
    return json.dumps(answer, ensure_ascii=False)


def is_rejected(step: Step) -> bool:
    """A step feedback refused: no action, a call not executed because of a finding, a refused answer."""
    if step.action is None:
        return True
    if isinstance(step.action, Finish):
        return step.has_error
    return not step.executed and bool(step.feedback)


def turns(record: Trajectory, *, clean: bool = False) -> tuple[list[Turn], int]:
    """The trajectory as a list of turns; returns (turns, steps left out)."""
    out: list[Turn] = []
    dropped = 0
    seen_ids: set[str] = set()
    steps = record.steps
    for position, step in enumerate(steps):
        if clean and is_rejected(step):
            dropped += 1
            continue
        action = step.action
        observation = step.observation
        if action is None:
            out.append(Turn("text", step.raw or step.thought))
            out.append(Turn("feedback", observation))
        elif isinstance(action, Finish):
            text = answer_text(action.answer)
            if position == len(steps) - 1:
                out.append(Turn("answer", text))
            else:
                out.append(Turn("text", text))
                out.append(Turn("feedback", observation))
        else:
            call_id = action.call_id or f"call_{step.index}"
            if call_id in seen_ids:  # some servers number calls per response: keep ids unique
                call_id = f"call_{step.index}"
            seen_ids.add(call_id)
            out.append(Turn("call", step.thought, action.tool, action.arguments or {}, call_id))
            out.append(Turn("result", observation, action.tool, None, call_id))
    return out, dropped


# ----- the three layouts --------------------------------------------------------------------------


def to_chat(record: Trajectory, *, clean: bool = False, string_arguments: bool = False) -> tuple[dict, int]:
    messages: list[dict] = []
    if record.system_prompt:
        messages.append({"role": "system", "content": record.system_prompt})
    messages.append({"role": "user", "content": record.task.query})
    items, dropped = turns(record, clean=clean)
    for turn in items:
        if turn.kind == "call":
            arguments: Any = turn.arguments
            if string_arguments:
                arguments = json.dumps(turn.arguments, ensure_ascii=False)
            messages.append(
                {
                    "role": "assistant",
                    "content": turn.content,
                    "tool_calls": [
                        {
                            "id": turn.call_id,
                            "type": "function",
                            "function": {"name": turn.tool, "arguments": arguments},
                        }
                    ],
                }
            )
        elif turn.kind == "result":
            messages.append({"role": "tool", "tool_call_id": turn.call_id, "name": turn.tool, "content": turn.content})
        elif turn.kind in ("text", "answer"):
            messages.append({"role": "assistant", "content": turn.content})
        else:
            messages.append({"role": "user", "content": turn.content})
    return {"messages": messages, "tools": record.tools}, dropped


def to_sharegpt(record: Trajectory, *, clean: bool = False) -> tuple[dict, int]:
    conversations: list[dict] = [{"from": "human", "value": record.task.query}]
    items, dropped = turns(record, clean=clean)
    for turn in items:
        if turn.kind == "call":
            entry = {
                "from": "function_call",
                "value": json.dumps({"name": turn.tool, "arguments": turn.arguments}, ensure_ascii=False),
            }
        elif turn.kind == "result":
            entry = {"from": "observation", "value": turn.content}
        elif turn.kind in ("text", "answer"):
            entry = {"from": "gpt", "value": turn.content}
        else:
            entry = {"from": "human", "value": turn.content}
        last = conversations[-1]
        if last["from"] == entry["from"]:  # keep the strict human/assistant alternation LLaMA-Factory checks
            last["value"] = f"{last['value']}\n{entry['value']}".strip()
        else:
            conversations.append(entry)
    functions = [t.get("function", t) for t in record.tools]
    return {
        "conversations": conversations,
        "system": record.system_prompt or "",
        "tools": json.dumps(functions, ensure_ascii=False),
    }, dropped


def to_xlam(record: Trajectory, *, clean: bool = False) -> tuple[dict, int]:
    conversation: list[dict] = [{"role": "user", "content": record.task.query}]
    items, dropped = turns(record, clean=clean)
    for turn in items:
        if turn.kind == "call":
            conversation.append(
                {
                    "role": "assistant",
                    "content": turn.content,
                    "tool_calls": [
                        {
                            "id": turn.call_id,
                            "type": "function",
                            "function": {"name": turn.tool, "arguments": turn.arguments},
                        }
                    ],
                }
            )
        elif turn.kind == "result":
            conversation.append(
                {"role": "tool", "tool_call_id": turn.call_id, "name": turn.tool, "content": turn.content}
            )
        elif turn.kind in ("text", "answer"):
            conversation.append({"role": "assistant", "content": turn.content})
        else:
            conversation.append({"role": "user", "content": turn.content})
    return {
        "unique_trajectory_id": record.id,
        "task_instruction": record.system_prompt or DEFAULT_INSTRUCTION,
        "tools": record.tools,
        "conversation": conversation,
    }, dropped


def convert(record: Trajectory, fmt: str, *, clean: bool = False, string_arguments: bool = False) -> tuple[dict, int]:
    if fmt == "chat":
        return to_chat(record, clean=clean, string_arguments=string_arguments)
    if fmt == "sharegpt":
        return to_sharegpt(record, clean=clean)
    if fmt == "xlam":
        return to_xlam(record, clean=clean)
    raise ExportError(f"unknown export format {fmt!r}", where="--format", hint="formats: " + ", ".join(FORMATS))


# ----- choosing, ordering, splitting ----------------------------------------------------------------


def order_key(record: Trajectory) -> tuple:
    return (record.task.template, record.task.id, record.episode.attempt, record.id)


def parse_split(text: str | None) -> float | None:
    """`eval=0.1` (or `0.1`) -> 0.1."""
    if text is None:
        return None
    value = text.split("=", 1)[1] if "=" in text else text
    if "=" in text and text.split("=", 1)[0].strip() != "eval":
        raise ExportError(f"cannot read split {text!r}", where="--split", hint="write it as eval=0.1")
    try:
        fraction = float(value)
    except ValueError:
        raise ExportError(f"cannot read split {text!r}", where="--split", hint="write it as eval=0.1") from None
    if not 0 < fraction < 1:
        raise ExportError(f"the eval fraction must be between 0 and 1, not {fraction}", where="--split")
    return fraction


def split_groups(keys: Iterable[str], fraction: float, seed: int) -> set[str]:
    """Which groups go to eval: a seeded shuffle of the sorted group keys, round(fraction * n) of them (>= 1)."""
    groups = sorted(set(keys))
    if len(groups) < 2:
        raise ExportError(
            f"cannot split {len(groups)} group(s) into train and eval",
            where="--by",
            hint="split by task, or export more templates",
        )
    random.Random(seed).shuffle(groups)
    n_eval = min(len(groups) - 1, max(1, round(fraction * len(groups))))
    return set(groups[:n_eval])


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _line(obj: dict) -> str:
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False)


def _write_atomic(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line)
                f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def output_paths(out: Path, split: bool) -> dict[str, Path]:
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    if not split:
        return {"all": out}
    return {"train": out.with_name(f"{stem}.train.jsonl"), "eval": out.with_name(f"{stem}.eval.jsonl")}


def meta_path(out: Path) -> Path:
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(f"{stem}.meta.json")


def export(
    store: Store,
    out: str | Path,
    *,
    fmt: str = "chat",
    status: str | Iterable[str] = ("accepted",),
    clean: bool = False,
    eval_fraction: float | None = None,
    split_by: str = "template",
    seed: int = 0,
    include_unfinished: bool = False,
    string_arguments: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write the export and its sidecar; returns the metadata (also written to `<out>.meta.json`).

    ``progress(done, total)`` is called as records are converted (every 50 and at the end).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}", where="--format", hint="formats: " + ", ".join(FORMATS))
    if split_by not in SPLIT_BY:
        raise ExportError(f"cannot split by {split_by!r}", where="--by", hint="split by template or task")
    out = Path(out)
    if out.is_dir():
        raise ExportError("--out must be a file, not a folder", where=str(out))
    statuses = [status] if isinstance(status, str) else list(status)
    records = sorted(store.records(status=statuses), key=order_key)
    skipped = [r for r in records if not include_unfinished and r.end_reason != "finished"]
    records = [r for r in records if include_unfinished or r.end_reason == "finished"]

    eval_groups: set[str] = set()
    if eval_fraction is not None:
        group_of = (lambda r: r.task.template) if split_by == "template" else (lambda r: r.task.id)
        eval_groups = split_groups((group_of(r) for r in records), eval_fraction, seed)
    paths = output_paths(out, eval_fraction is not None)
    lines: dict[str, list[str]] = {name: [] for name in paths}
    ids: dict[str, list[str]] = {name: [] for name in paths}
    env = environment_secrets()
    dropped_steps = 0
    for done, record in enumerate(records, 1):
        if progress is not None and (done % 50 == 0 or done == len(records)):
            progress(done, len(records))
        converted, dropped = convert(record, fmt, clean=clean, string_arguments=string_arguments)
        dropped_steps += dropped
        if eval_fraction is None:
            side = "all"
        else:
            key = record.task.template if split_by == "template" else record.task.id
            side = "eval" if key in eval_groups else "train"
        lines[side].append(_line(redact(converted, env)))
        ids[side].append(record.id)
    for name, path in paths.items():
        _write_atomic(path, lines[name])

    def _distinct(values: Iterable[Any]) -> list:
        seen: list = []
        for v in values:
            if v not in seen:
                seen.append(v)
        return seen

    meta = {
        "lamsim_export": 1,
        "format": fmt,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "store": str(store.path),
        "statuses": statuses,
        "clean": clean,
        "string_arguments": string_arguments if fmt == "chat" else None,
        "counts": {
            "trajectories": len(records),
            "by_template": dict(sorted(Counter(r.task.template for r in records).items())),
            "by_status": dict(sorted(Counter(r.status for r in records).items())),
            "skipped_unfinished": len(skipped),
            "steps_left_out_by_clean": dropped_steps,
            **({name: len(v) for name, v in lines.items()} if eval_fraction is not None else {}),
        },
        "sessions": _distinct(redact({"name": r.session.name, "path": r.session.path}, env) for r in records),
        "packs": _distinct(r.pack.to_dict() for r in records),
        "models": _distinct(redact(r.agent, env) for r in records),
        "filters": _distinct(redact(r.session.settings.get("filters"), env) for r in records),
        "split": None
        if eval_fraction is None
        else {"eval": eval_fraction, "by": split_by, "seed": seed, "eval_groups": sorted(eval_groups)},
        "files": {name: str(path) for name, path in paths.items()},
        "ids": ids,
    }
    meta_path(out).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return meta
