"""Post-hoc filters: which judged trajectories are kept for review (`pending`) and which are
`filtered` (kept for the operator to rescue or discard, with the names of the filters they failed).
"""

from __future__ import annotations

from lamsim_tui.record import Verdict
from lamsim_tui.session.config import FilterSettings


def failed_filters(verdict: Verdict, task_id: str, signature: str, settings: FilterSettings,
                   kept_signatures: set[tuple[str, str]]) -> list[str]:
    """Names of the filters a judged trajectory fails (empty: it is kept for review as `pending`).

    ``signature`` is its `record.action_signature`; ``kept_signatures`` the (task id, signature)
    pairs already kept, for `dedupe`.
    """
    failed = []
    if settings.require_success and not verdict.success:
        failed.append("success")
    errors = sum(verdict.error_counts.values())
    if settings.max_errors is not None and errors > settings.max_errors:
        failed.append("max_errors")
    if settings.max_steps is not None and verdict.steps_used > settings.max_steps:
        failed.append("max_steps")
    if settings.no_loops and verdict.findings.get("loop.repeat", 0):
        failed.append("no_loops")
    if settings.error_free and errors:
        failed.append("error_free")
    if settings.dedupe and (task_id, signature) in kept_signatures:
        failed.append("dedupe")
    return failed
