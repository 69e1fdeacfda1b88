"""The judge: compares a final answer (and final state) with the ground truth, by answer type.

No LLM: the gold answer was computed by code, so comparison is exact up to normalisation.
"""

from __future__ import annotations

import json
import math
import re
import string
import unicodedata
from datetime import date, datetime
from typing import Any

from lamsim_tui.simulator.feedback import Finding, finding
from lamsim_tui.text import shorten

_PUNCT = str.maketrans({c: " " for c in string.punctuation})
_TYPE_WORDS = {"number": "a number", "bool": "true or false", "date": "a date (YYYY-MM-DD)",
               "list": "a list", "set": "a list of items", "json": "a JSON object or value", "text": "text"}


class Malformed(ValueError):
    pass


def normalize_text(value: Any) -> str:
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    text = text.translate(_PUNCT)
    return " ".join(text.split())


def to_number(value: Any) -> float:
    if isinstance(value, bool):
        raise Malformed("a boolean is not a number")
    if isinstance(value, (int, float)):
        if math.isnan(value) or math.isinf(value):
            raise Malformed("not a finite number")
        return float(value)
    if isinstance(value, str):
        cleaned = value.strip().replace(",", "").replace("$", "").replace("€", "").replace("%", "")
        cleaned = cleaned.removesuffix(" minutes").removesuffix(" min").strip()
        try:
            number = float(cleaned)
        except ValueError:
            raise Malformed("not a number") from None
        if math.isnan(number) or math.isinf(number):
            raise Malformed("not a finite number")
        return number
    raise Malformed("not a number")


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = normalize_text(value)
        if word in ("true", "yes", "y", "1"):
            return True
        if word in ("false", "no", "n", "0"):
            return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise Malformed("not true or false")


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d %B %Y", "%B %d %Y", "%B %d, %Y", "%d %b %Y", "%b %d %Y", "%b %d, %Y")


def to_date(value: Any) -> date:
    if isinstance(value, str):
        text = value.strip()
        try:
            return datetime.fromisoformat(text).date()
        except ValueError:
            pass
        for fmt in _DATE_FORMATS:
            try:
                return datetime.strptime(text, fmt).date()
            except ValueError:
                continue
    raise Malformed("not a date")


def to_items(value: Any) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
        parts = [p.strip() for p in re.split(r"[,;\n]", text) if p.strip()]
        if parts:
            return parts
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    raise Malformed("not a list")


def _item_key(item: Any) -> Any:
    if isinstance(item, bool):
        return ("b", item)
    if isinstance(item, (int, float)):
        return ("n", round(float(item), 6))
    if isinstance(item, str):
        try:
            return ("n", round(float(item.replace(",", "")), 6))
        except ValueError:
            return ("t", normalize_text(item))
    return ("j", json.dumps(item, sort_keys=True, default=str))


def coerce(answer_type: str, value: Any) -> Any:
    """Bring an answer into comparable form; raise `Malformed` when it does not fit the type."""
    if answer_type == "number":
        return to_number(value)
    if answer_type == "bool":
        return to_bool(value)
    if answer_type == "date":
        return to_date(value)
    if answer_type == "list":
        return [_item_key(v) for v in to_items(value)]
    if answer_type == "set":
        return sorted({_item_key(v) for v in to_items(value)}, key=repr)
    if answer_type == "json":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise Malformed("not JSON") from None
        return _canonical(value)
    if isinstance(value, (dict, list)):
        return normalize_text(json.dumps(value, default=str))
    return normalize_text(value)


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return round(float(value), 6)
    if isinstance(value, str):
        return normalize_text(value)
    return value


def check_answer_form(answer_type: str, value: Any, has_answer: bool = True) -> Finding | None:
    """`answer.missing` / `answer.malformed`, or None when the answer can be judged.

    For an action-only task (`none`) any confirmation is well formed; only a missing one is not.
    """
    if not has_answer or value is None or (isinstance(value, str) and not value.strip()):
        return finding("answer.missing")
    if answer_type == "none":
        return None
    try:
        coerce(answer_type, value)
    except Malformed:
        shown = json.dumps(value, ensure_ascii=False, default=str)
        shown = shorten(shown, 60, "...")
        return finding("answer.malformed", got=shown, expected=_TYPE_WORDS.get(answer_type, answer_type))
    return None


def answers_match(answer_type: str, given: Any, gold: Any, tolerance: float = 1e-6) -> bool:
    try:
        left = coerce(answer_type, given)
        right = coerce(answer_type, gold)
    except Malformed:
        return False
    if answer_type == "number":
        return abs(left - right) <= max(tolerance, 1e-9 * max(abs(left), abs(right)))
    return left == right


_ABSENT = object()


def field_value(row: dict, path: str) -> Any:
    """A field of a row, or a dotted path into its nested values: `address.city`, `items.0.price`,
    `items.*.status` (every item's). A row with a key spelled like the path wins. Absent: None."""
    if path in row:
        return row[path]
    if "." not in path:
        return None
    value = _walk(row, path.split("."))
    return None if value is _ABSENT else value


def _walk(value: Any, parts: list[str]) -> Any:
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    if head == "*":
        if isinstance(value, list):
            return [_walk(v, rest) for v in value]
        if isinstance(value, dict):
            return {k: _walk(v, rest) for k, v in sorted(value.items())}
        return _ABSENT
    if isinstance(value, dict):
        return _walk(value[head], rest) if head in value else _ABSENT
    if isinstance(value, list) and head.lstrip("-").isdigit():
        index = int(head)
        return _walk(value[index], rest) if -len(value) <= index < len(value) else _ABSENT
    return _ABSENT


def project_state(state: dict, fields: dict | None) -> dict:
    if not fields:
        return state
    out: dict = {}
    for table, rows in state.items():
        if table not in fields:
            continue
        keep = fields[table]
        out[table] = {k: (None if row is None else {f: field_value(row, f) for f in keep}) for k, row in rows.items()}
    return out


def _shown(value: Any, limit: int = 40) -> str:
    return shorten(json.dumps(value, ensure_ascii=False, default=str), limit, "...")


def first_difference(got: Any, want: Any, path: str = "") -> str | None:
    """Where two JSON values first differ, as `path: got vs gold` (None when equal)."""
    if got == want:
        return None
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want), key=str):
            if key not in got:
                return f"{path}.{key}".lstrip(".") + ": missing vs gold " + _shown(want[key])
            if key not in want:
                return f"{path}.{key}".lstrip(".") + f": {_shown(got[key])}, not in the gold state"
            found = first_difference(got[key], want[key], f"{path}.{key}" if path else str(key))
            if found:
                return found
    if isinstance(got, list) and isinstance(want, list):
        for i, (a, b) in enumerate(zip(got, want, strict=False)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        if len(got) != len(want):
            return f"{path}: {len(got)} items vs {len(want)} in the gold state"
    return f"{path or 'value'}: {_shown(got)} vs gold {_shown(want)}"


def states_match(final_state: dict, gold_state: dict, fields: dict | None) -> tuple[bool, list[str]]:
    got, want = project_state(final_state, fields), project_state(gold_state, fields)
    if got == want:
        return True, []
    reasons = []
    for table in sorted(set(got) | set(want)):
        rows_got, rows_want = got.get(table, {}), want.get(table, {})
        for key in sorted(set(rows_got) | set(rows_want)):
            a, b = rows_got.get(key, "unchanged"), rows_want.get(key, "unchanged")
            if a != b:
                if isinstance(a, dict) and isinstance(b, dict):
                    diff = [f for f in sorted(set(a) | set(b)) if a.get(f) != b.get(f)]
                    reason = f"{table} {key}: fields {', '.join(diff)} differ from the gold state"
                    nested = [f for f in diff if isinstance(a.get(f), (dict, list)) or isinstance(b.get(f), (dict, list))]
                    if nested:
                        where = first_difference(a.get(nested[0]), b.get(nested[0]), nested[0])
                        reason += f" (first at {where})"
                    reasons.append(reason)
                elif a == "unchanged":
                    reasons.append(f"{table} {key}: expected a change that was not made")
                elif b == "unchanged":
                    reasons.append(f"{table} {key}: changed, but the task did not require it")
                else:
                    reasons.append(f"{table} {key}: differs from the gold state")
    return False, reasons[:10]


def ended_by(end_reason: str | None) -> str | None:
    """The tool that ended an episode (`ended.<tool>`), or None."""
    if isinstance(end_reason, str) and end_reason.startswith("ended."):
        return end_reason[len("ended."):]
    return None


def judge(task, final_answer: Any, answered: bool, final_state: dict,
          end_reason: str | None = None) -> tuple[bool, bool | None, list[str]]:
    """(answer_correct, state_correct or None when not judged, reasons).

    The answer part depends on the task: compared with the gold answer by type; for an action-only
    task, the episode ended properly (a confirmation, or a tool that ends the episode); for a task
    that must end with a tool (`ends_with`, a hand-off), it ended with that tool. A task with an
    answer that a tool ended before any answer was given fails the answer part.
    """
    reasons: list[str] = []
    handed_off = ended_by(end_reason)
    expected_end = getattr(task, "ends_with", None)
    if expected_end is not None:
        answer_ok = handed_off == expected_end
        if not answer_ok:
            ended = f"ended with {handed_off}" if handed_off else ("ended with a final answer" if answered
                                                                    else "did not end with it")
            reasons.append(f"the task calls for {expected_end} (which ends the episode); the episode {ended}")
    elif handed_off is not None:
        answer_ok = task.answer_type == "none"
        if not answer_ok:
            reasons.append(f"no final answer: the episode was ended with {handed_off} before one was given")
    elif not answered:
        answer_ok = False
        reasons.append("no final answer")
    elif task.answer_type == "none":
        answer_ok = True  # an action-only task: the confirmation is not judged, the state is
    else:
        answer_ok = answers_match(task.answer_type, final_answer, task.gold_answer, task.tolerance)
        if not answer_ok:
            shown = json.dumps(final_answer, ensure_ascii=False, default=str)
            gold = json.dumps(task.gold_answer, ensure_ascii=False, default=str)
            reasons.append(f"answer {shown[:80]} != gold {gold[:80]} ({task.answer_type})")
    state_ok: bool | None = None
    if task.judge_state:
        state_ok, state_reasons = states_match(final_state, task.gold_state, task.state_fields)
        reasons.extend(state_reasons)
    return answer_ok, state_ok, reasons
