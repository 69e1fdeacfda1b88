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
from lamsim_tui.packs.sandbox import RowChangedInPlace, Sandbox, ToolError
from lamsim_tui.simulator.actions import ToolCall
from lamsim_tui.simulator.arguments import ArgumentCheck, argument_check
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
    except RowChangedInPlace as exc:
        return "in-place", in_place_report(exc)
    except Exception as exc:  # any other exception is a bug in the pack's tool
        return "crash", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    finally:
        with job.lock:
            job.done = True


def in_place_report(exc: RowChangedInPlace) -> tuple[str, str]:
    """(where: the tool's file:line that changed a row in place, the traceback) for the operator."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if not f.filename.endswith(("sandbox.py", "runner.py"))]
    frame = own[-1] if own else (frames[-1] if frames else None)
    where = f"{frame.filename}:{frame.lineno}" if frame else "?"
    code = f" ({frame.line.strip()})" if frame is not None and frame.line else ""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    return f"{where}{code}", text


@dataclass
class CallOutcome:
    findings: list[Finding] = field(default_factory=list)
    executed: bool = False
    ok: bool = False
    result: Any = None
    crash: str | None = None  # traceback for the operator when the tool itself failed
    error_detail: str | None = None  # a domain error's own message (ToolError text)
    wrote: bool = False  # the call wrote to the sandbox


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


def domain_error(tool: str, detail: str, style: str) -> Finding:
    """The `exec.error` finding of a tool's domain error, worded as the pack chose (`error_style`)."""
    if style == "plain":
        return Finding("exec.error", "warning", detail)
    return finding("exec.error", tool=tool, detail=detail)


class ToolRunner:
    def __init__(self, pack: Pack, *, timeout: float = 5.0, disabled: Iterable[str] = (),
                 observation_chars: int = 4000):
        self.pack = pack
        self.timeout = timeout
        self.disabled = tuple(disabled)
        self.observation_chars = observation_chars
        self.error_style = getattr(pack, "error_style", "tool")
        self._checks: dict[str, ArgumentCheck] = {}  # compiled once per tool

    def precheck(self, call: ToolCall) -> list[Finding]:
        spec = self.pack.tools.get(call.tool)
        if spec is None:
            close = nearest_names(call.tool, self.pack.tools)
            suggestion = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            return [finding("tool.unknown", tool=call.tool, suggestion=suggestion,
                            available=", ".join(self.pack.tools))]
        check = self._checks.get(spec.name)
        if check is None or check.schema is not spec.parameters:
            check = self._checks[spec.name] = argument_check(spec.name, spec.parameters)
        problem = check.check(call.arguments)
        if problem is not None and enabled(problem.code, self.disabled):
            return [problem]
        return []

    def _outcome(self, call: ToolCall, status: str, value: Any) -> CallOutcome:
        if status == "ok":
            return CallOutcome(executed=True, ok=True, result=value)
        if status == "error":
            return CallOutcome(executed=True, error_detail=value,
                               findings=[domain_error(call.tool, value, self.error_style)])
        if status == "timeout":
            return CallOutcome(executed=True, findings=[finding("exec.timeout", tool=call.tool, seconds=self.timeout)])
        if status == "in-place":
            where, text = value
            value = (f"tool {call.tool!r} changed a sandbox row in place at {where}: a bug in the pack; the seed "
                     f"is unharmed and the call failed.\n{text}")
        return CallOutcome(executed=True, crash=value, findings=[finding("exec.crash", tool=call.tool)])

    def render(self, findings: Iterable[Finding]) -> str:
        """Findings as the agent reads them (a pack with `error_style: plain` shows domain errors as `Error: ...`)."""
        if self.error_style != "plain":
            return render_findings(findings)
        return "\n".join(f"Error: {f.message}" if f.code == "exec.error" else render_findings((f,)) for f in findings)

    def execute_sync(self, sb: Sandbox, call: ToolCall) -> CallOutcome:
        """Check and run one call, blocking (task generation, replay, `lamsim check`)."""
        pre = self.precheck(call)
        if pre:
            return CallOutcome(findings=pre)
        writes = sb.writes
        job = _Job()
        future = _pool().submit(_invoke, job, self.pack.tools[call.tool].func, sb, call.arguments)
        try:
            status, value = future.result(timeout=self.timeout)
        except FutureTimeout:
            job.stop()
            status, value = "timeout", None
        outcome = self._outcome(call, status, value)
        outcome.wrote = sb.writes != writes
        return outcome

    async def execute(self, sb: Sandbox, call: ToolCall, *, prechecked: bool = False) -> CallOutcome:
        """Run one call from the engine's event loop without blocking it."""
        if not prechecked:
            pre = self.precheck(call)
            if pre:
                return CallOutcome(findings=pre)
        writes = sb.writes
        job = _Job()
        future = _pool().submit(_invoke, job, self.pack.tools[call.tool].func, sb, call.arguments)
        try:
            status, value = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            job.stop()
            status, value = "timeout", None
        outcome = self._outcome(call, status, value)
        outcome.wrote = sb.writes != writes
        return outcome

    def observation(self, outcome: CallOutcome, extra: Iterable[Finding] = ()) -> str:
        parts = []
        if outcome.ok:
            parts.append(render_result(outcome.result, self.observation_chars))
        shown = [*outcome.findings, *extra]
        if shown:
            parts.append(self.render(shown))
        return "\n".join(parts)
