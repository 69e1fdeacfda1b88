"""The one execution path for tool calls: the agent's and the gold programs' calls both go here.

Pre-execution checks (tool name, arguments) -> execution in a worker thread with a time limit ->
domain error / crash / time-out findings -> the observation text the agent is shown.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import threading
import traceback
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from lamsim_tui.names import nearest_names
from lamsim_tui.packs import Pack
from lamsim_tui.packs.sandbox import Sandbox, ToolError
from lamsim_tui.simulator.actions import ToolCall
from lamsim_tui.simulator.arguments import check_object
from lamsim_tui.simulator.feedback import Finding, enabled, finding


class _ToolTimeout(BaseException):
    """Raised inside a runaway tool's thread to stop it (BaseException: `except Exception` can't eat it)."""


_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lamsim-tool")
        return _executor


class _Job:
    __slots__ = ("thread_id", "done", "lock")

    def __init__(self) -> None:
        self.thread_id: int | None = None
        self.done = False
        self.lock = threading.Lock()

    def stop(self) -> None:
        """Interrupt the tool if it is still running (works for Python code, not blocking C calls)."""
        with self.lock:
            if not self.done and self.thread_id is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread_id),
                                                           ctypes.py_object(_ToolTimeout))


def _invoke(job: _Job, func, sb: Sandbox, args: dict) -> tuple[str, Any]:
    job.thread_id = threading.get_ident()
    try:
        return "ok", func(sb, **args)
    except ToolError as exc:
        return "error", str(exc) or type(exc).__name__
    except _ToolTimeout:
        return "timeout", None
    except Exception as exc:  # any other exception is a bug in the pack's tool
        return "crash", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    finally:
        with job.lock:
            job.done = True


@dataclass
class CallOutcome:
    findings: list[Finding] = field(default_factory=list)
    executed: bool = False
    ok: bool = False
    result: Any = None
    crash: str | None = None  # traceback for the operator when the tool itself failed


def render_result(result: Any, limit: int) -> str:
    if isinstance(result, str):
        text = result
    else:
        try:
            text = json.dumps(result, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(result)
    if len(text) > limit:
        text = text[:limit] + f" ... [truncated: {len(text) - limit} more characters]"
    return text


def render_findings(findings: Iterable[Finding]) -> str:
    return "\n".join(f"{'Error' if f.severity == 'error' else 'Note'}: {f.message}" for f in findings)


class ToolRunner:
    def __init__(self, pack: Pack, *, timeout: float = 5.0, disabled: Iterable[str] = (),
                 observation_chars: int = 4000):
        self.pack = pack
        self.timeout = timeout
        self.disabled = tuple(disabled)
        self.observation_chars = observation_chars

    def precheck(self, call: ToolCall) -> list[Finding]:
        spec = self.pack.tools.get(call.tool)
        if spec is None:
            close = nearest_names(call.tool, self.pack.tools)
            suggestion = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            return [finding("tool.unknown", tool=call.tool, suggestion=suggestion,
                            available=", ".join(self.pack.tools))]
        problem = check_object(spec.name, spec.parameters, call.arguments)
        if problem is not None and enabled(problem.code, self.disabled):
            return [problem]
        return []

    def _outcome(self, call: ToolCall, status: str, value: Any) -> CallOutcome:
        if status == "ok":
            return CallOutcome(executed=True, ok=True, result=value)
        if status == "error":
            return CallOutcome(executed=True, findings=[finding("exec.error", tool=call.tool, detail=value)])
        if status == "timeout":
            return CallOutcome(executed=True, findings=[finding("exec.timeout", tool=call.tool, seconds=self.timeout)])
        return CallOutcome(executed=True, crash=value, findings=[finding("exec.crash", tool=call.tool)])

    def execute_sync(self, sb: Sandbox, call: ToolCall) -> CallOutcome:
        """Check and run one call, blocking (task generation, replay, `lamsim check`)."""
        pre = self.precheck(call)
        if pre:
            return CallOutcome(findings=pre)
        job = _Job()
        future = _pool().submit(_invoke, job, self.pack.tools[call.tool].func, sb, call.arguments)
        try:
            status, value = future.result(timeout=self.timeout)
        except FutureTimeout:
            job.stop()
            status, value = "timeout", None
        return self._outcome(call, status, value)

    async def execute(self, sb: Sandbox, call: ToolCall, *, prechecked: bool = False) -> CallOutcome:
        """Run one call from the engine's event loop without blocking it."""
        if not prechecked:
            pre = self.precheck(call)
            if pre:
                return CallOutcome(findings=pre)
        job = _Job()
        future = _pool().submit(_invoke, job, self.pack.tools[call.tool].func, sb, call.arguments)
        try:
            status, value = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            job.stop()
            status, value = "timeout", None
        return self._outcome(call, status, value)

    def observation(self, outcome: CallOutcome, extra: Iterable[Finding] = ()) -> str:
        parts = []
        if outcome.ok:
            parts.append(render_result(outcome.result, self.observation_chars))
        shown = [*outcome.findings, *extra]
        if shown:
            parts.append(render_findings(shown))
        return "\n".join(parts)
