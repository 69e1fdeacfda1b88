"""Post-hoc filters: which judged trajectories are kept for review (`pending`) and which are
`filtered` (kept for the operator to rescue or discard, with the names of the filters they failed).
"""

from __future__ import annotations

import json

from lamsim_tui.session.config import FilterSettings

FILTER_NAMES = ("success", "max_errors", "max_steps", "no_loops", "dedupe", "error_free")


def action_signature(steps: list[dict]) -> str:
    """The executed actions of a trajectory, for spotting duplicates of the same task."""
    actions = [s["action"] for s in steps if s.get("action") and (s.get("executed") or s["action"]["type"] == "finish")]
    slim = [[a["type"], a.get("tool"), a.get("arguments"), a.get("answer")] for a in actions]
    return json.dumps(slim, sort_keys=True, ensure_ascii=False, default=str)


def failed_filters(record: dict, settings: FilterSettings, kept_signatures: set[tuple[str, str]]) -> list[str]:
    verdict = record["verdict"]
    failed = []
    if settings.require_success and not verdict["success"]:
        failed.append("success")
    errors = sum(n for code, n in verdict["error_counts"].items())
    if settings.max_errors is not None and errors > settings.max_errors:
        failed.append("max_errors")
    if settings.max_steps is not None and verdict["steps_used"] > settings.max_steps:
        failed.append("max_steps")
    if settings.no_loops and verdict["findings"].get("loop.repeat", 0):
        failed.append("no_loops")
    if settings.error_free and errors:
        failed.append("error_free")
    if settings.dedupe and (record["task"]["id"], action_signature(record["steps"])) in kept_signatures:
        failed.append("dedupe")
    return failed
