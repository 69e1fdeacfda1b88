"""The one execution path for tool calls: the agent's and the gold programs' calls both go here.

Pre-execution checks (tool name, arguments) -> execution in a worker thread with a time limit ->
domain error / crash / time-out findings -> the observation text the agent is shown.

Pack code (tools, samplers, gold programs) is trusted to be the author's, but not to be well
behaved. It runs in this process, in daemon worker threads (a call costs microseconds, not a
process), and is held to these rules (docs/tool-packs.md, "What pack code may not do"):

- a time limit per call: a Python loop is interrupted; a call blocked in C code (`time.sleep`, a
  socket read) is abandoned in its daemon thread, reported as `exec.timeout`, and never keeps
  lamsim from exiting;
- `sys.exit`, `os._exit`, `os.abort`, `KeyboardInterrupt`, `GeneratorExit` from pack code are a
  crash of that call (`exec.crash`), never the end of lamsim;
- no processes and no signals: `os.fork`, `subprocess`, `os.system`, `os.exec*`, `os.kill` raise
  `PackCodeRefused` inside pack code (an audit hook), so no orphan can hold lamsim's pipes;
- what pack code prints is captured per call, never written to lamsim's stdout or stderr;
- a result must be JSON data (no cycles, no NaN, no unconvertible integers); it is stored cut to
  `STORED_RESULT_CHARS` and shown to the agent cut to `observation_chars`, and so are error
  messages.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import queue
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from lamsim_tui.names import nearest_names
from lamsim_tui.packs import Pack
from lamsim_tui.packs.isolation import (
    PACK_MODULE_PREFIX,
    PackCodeRefused,
    Sink,
    call_state,
    describe_exit,
    guard_output,
    install_guards,
)
from lamsim_tui.packs.sandbox import RowChangedInPlace, Sandbox, ToolError
from lamsim_tui.simulator.actions import ToolCall
from lamsim_tui.simulator.arguments import ArgumentCheck, argument_check
from lamsim_tui.simulator.feedback import Finding, enabled, finding
from lamsim_tui.text import shorten

#: A tool result longer than this (as JSON text) is stored as that text, cut here.
STORED_RESULT_CHARS = 100_000
#: A crash's traceback is kept to this many characters.
CRASH_CHARS = 20_000
#: Calls still running past their limit (blocked in C code) before no further call is started.
MAX_OVERDUE = 64


class _ToolTimeout(BaseException):
    """Raised inside a runaway tool's thread to stop it (BaseException: `except Exception` can't eat it)."""


# ----- worker threads ---------------------------------------------------------------------------


class _Job:
    __slots__ = ("fn", "args", "kwargs", "future", "thread_id", "done", "lock", "overdue", "printed")

    def __init__(self, fn: Callable, args: tuple, kwargs: dict) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.future: Future = Future()
        self.thread_id: int | None = None
        self.done = False
        self.lock = threading.Lock()
        self.overdue = False
        self.printed = ""

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():  # the caller gave up before it started
            with self.lock:
                self.done = True
            return
        self.thread_id = threading.get_ident()
        sink = Sink()
        call_state.sink = sink
        try:
            outcome = _attempt(self.fn, self.args, self.kwargs)
        except _ToolTimeout:
            outcome = Ran("timeout")
        except BaseException as exc:  # noqa: BLE001 - nothing pack code raises may end a worker
            outcome = Ran("crash", exc=exc)
        finally:
            call_state.sink = None
            with self.lock:
                self.done = True
            self.printed = sink.text() if sink.size else ""
        if self.overdue:
            _pool.overdue_finished()
        self.future.set_result(outcome)

    def stop(self) -> None:
        """Interrupt the call if it still runs (works for Python code, not for blocking C calls)."""
        with self.lock:
            if not self.done and self.thread_id is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread_id),
                                                           ctypes.py_object(_ToolTimeout))
            if not self.done and not self.overdue:
                self.overdue = True
                _pool.overdue_started()


@dataclass
class Ran:
    """What running pack code gave: `ok` (value), `error` (a ToolError), `crash` (exc), `timeout`."""

    status: str
    value: Any = None
    exc: BaseException | None = None


def _attempt(fn: Callable, args: tuple, kwargs: dict) -> Ran:
    try:
        return Ran("ok", fn(*args, **kwargs))
    except ToolError as exc:
        return Ran("error", str(exc) or type(exc).__name__, exc)


class _Pool:
    """Daemon worker threads, started as needed and reused: a call that never returns costs its
    thread, never a slot that later calls wait for, and never keeps the process from exiting."""

    def __init__(self) -> None:
        self._idle: list[queue.SimpleQueue] = []
        self._lock = threading.Lock()
        self.overdue = 0
        self.started = 0

    def submit(self, job: _Job) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
            if inbox is None:
                self.started += 1
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._work, args=(inbox,), daemon=True,
                             name=f"lamsim-tool-{self.started}").start()
        inbox.put(job)

    def _work(self, inbox: queue.SimpleQueue) -> None:
        while True:
            try:
                job = inbox.get()
                job.run()
                with self._lock:
                    if len(self._idle) >= 32:
                        return
                    self._idle.append(inbox)
            except _ToolTimeout:  # a stop that arrived just as its call ended: nothing left to stop
                continue

    def overdue_started(self) -> None:
        with self._lock:
            self.overdue += 1

    def overdue_finished(self) -> None:
        with self._lock:
            self.overdue -= 1


_pool = _Pool()


def _refusal_if_overloaded() -> Ran | None:
    if _pool.overdue >= MAX_OVERDUE:
        return Ran("crash", exc=PackCodeRefused(
            f"{_pool.overdue} earlier calls of pack code are still running past their time limit (blocked in C "
            "code, such as a sleep or a network read); no further call is started"))
    return None


def run_limited(fn: Callable, args: tuple = (), kwargs: dict | None = None, *, seconds: float) -> tuple[Ran, str]:
    """Run pack code in a worker thread, blocking, for at most ``seconds``. Returns (what it gave, what it printed)."""
    install_guards()
    guard_output()
    refused = _refusal_if_overloaded()
    if refused is not None:
        return refused, ""
    job = _Job(fn, args, kwargs or {})
    _pool.submit(job)
    try:
        return job.future.result(timeout=seconds), job.printed
    except FutureTimeout:
        stuck = where_stuck(job)
        job.stop()
        return Ran("timeout", stuck), ""


async def run_limited_async(fn: Callable, args: tuple = (), kwargs: dict | None = None, *,
                            seconds: float) -> tuple[Ran, str]:
    """`run_limited` for the engine's event loop: the loop never blocks on pack code."""
    install_guards()
    guard_output()
    refused = _refusal_if_overloaded()
    if refused is not None:
        return refused, ""
    job = _Job(fn, args, kwargs or {})
    _pool.submit(job)
    try:
        return await asyncio.wait_for(asyncio.wrap_future(job.future), seconds), job.printed
    except TimeoutError:
        job.stop()
        return Ran("timeout"), ""
    except asyncio.CancelledError:  # the episode was stopped: stop its tool too
        job.stop()
        raise


def where_stuck(job: _Job) -> str | None:
    """`file:line` of the innermost pack code a running call is in (for a time-out message)."""
    frame = sys._current_frames().get(job.thread_id or -1)
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).startswith(PACK_MODULE_PREFIX):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _pack_frames(tb: Any, keep: int = 3) -> list[tuple[Any, int]]:
    """The last ``keep`` frames up to the innermost pack frame (lamsim's guards and the standard
    library that a refused call went through are not the author's concern)."""
    walked = []
    while tb is not None:
        walked.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    pack = [i for i, (frame, _) in enumerate(walked)
            if str(frame.f_globals.get("__name__", "")).startswith(PACK_MODULE_PREFIX)]
    if pack:
        walked = walked[: pack[-1] + 1]
    return walked[-keep:]


def crash_text(exc: BaseException) -> str:
    """The traceback of a crash (the pack's own frames), cut to `CRASH_CHARS`; the exception's own
    message is cut first, so its type and the pack's lines are always there."""
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails
        message = "(its message could not be read)"
    last = f"{type(exc).__name__}: {shorten(message, 2000)}" if message else type(exc).__name__
    frames = "".join(traceback.StackSummary.extract(_pack_frames(exc.__traceback__)).format())
    text = f"Traceback (most recent call last):\n{frames}{last}\n"
    how = describe_exit(exc)
    if how is not None:
        text += f"(pack code called {how}: that ends only this call, never lamsim)\n"
    return shorten(text, CRASH_CHARS, "\n... [traceback cut]")


# ----- tool calls -------------------------------------------------------------------------------


def in_place_report(exc: RowChangedInPlace) -> tuple[str, str]:
    """(where: the tool's file:line that changed a row in place, the traceback) for the operator."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if not f.filename.endswith(("sandbox.py", "runner.py"))]
    frame = own[-1] if own else (frames[-1] if frames else None)
    where = f"{frame.filename}:{frame.lineno}" if frame else "?"
    code = f" ({frame.line.strip()})" if frame is not None and frame.line else ""
    return f"{where}{code}", crash_text(exc)


@dataclass
class CallOutcome:
    findings: list[Finding] = field(default_factory=list)
    executed: bool = False
    ok: bool = False
    result: Any = None  # the tool's value as returned (gold programs compute with it)
    crash: str | None = None  # traceback for the operator when the tool itself failed
    text: str = ""  # the result as the agent reads it (uncut)
    stored: Any = None  # the result as a record keeps it: plain JSON, cut to STORED_RESULT_CHARS
    printed: str = ""  # what the call printed (never shown on lamsim's own output)
    error_detail: str | None = None  # a domain error's own message (ToolError text)
    wrote: bool = False  # the call wrote to the sandbox


class NotJSON(ValueError):
    """A tool returned something that is not JSON data."""


def _plain_result(value: Any) -> tuple[str, Any]:
    """(the text the agent reads, the value a record keeps) for a tool's result."""
    try:
        dumped = json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
    except RecursionError:
        raise NotJSON("it is nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise NotJSON(str(exc)) from None
    text = value if isinstance(value, str) else dumped
    if len(dumped) > STORED_RESULT_CHARS:
        return text, shorten(dumped, STORED_RESULT_CHARS, f"... [cut: {len(dumped)} characters in all]")
    return text, json.loads(dumped)


def _call_tool(func: Callable, sb: Sandbox, arguments: dict) -> tuple[Any, str, Any]:
    """Run the tool and make its result plain data, both inside the call's time limit."""
    value = func(sb, **arguments)
    try:
        text, stored = _plain_result(value)
    except NotJSON as exc:
        raise NotJSON(f"the tool returned a value that is not JSON data: {exc}") from None
    return value, text, stored


def render_result(result: Any, limit: int) -> str:
    if isinstance(result, str):
        text = result
    else:
        try:
            text = json.dumps(result, ensure_ascii=False, default=str)
        except (TypeError, ValueError, RecursionError):
            text = "(a value that is not JSON data)"
    return _cut(text, limit)


def _cut(text: str, limit: int) -> str:
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

    @property
    def code_seconds(self) -> float:
        """Time limit of a slot sampler or a whole gold program (its tool calls have their own)."""
        return max(10.0, 10 * self.timeout)

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

    def _outcome(self, call: ToolCall, ran: Ran, printed: str) -> CallOutcome:
        if ran.status == "ok":
            value, text, stored = ran.value
            return CallOutcome(executed=True, ok=True, result=value, text=text, stored=stored, printed=printed)
        if ran.status == "error":
            detail = _cut(ran.value, self.observation_chars)
            return CallOutcome(executed=True, printed=printed, error_detail=detail,
                               findings=[domain_error(call.tool, detail, self.error_style)])
        if ran.status == "timeout":
            return CallOutcome(executed=True, findings=[finding("exec.timeout", tool=call.tool, seconds=self.timeout)])
        if isinstance(ran.exc, RowChangedInPlace):
            where, text = in_place_report(ran.exc)
            crash = (f"tool {call.tool!r} changed a sandbox row in place at {where}: a bug in the pack; the seed "
                     f"is unharmed and the call failed.\n{text}")
        else:
            crash = crash_text(ran.exc)
        return CallOutcome(executed=True, crash=crash, printed=printed,
                           findings=[finding("exec.crash", tool=call.tool)])

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
        ran, printed = run_limited(_call_tool, (self.pack.tools[call.tool].func, sb, call.arguments),
                                   seconds=self.timeout)
        outcome = self._outcome(call, ran, printed)
        outcome.wrote = sb.writes != writes
        return outcome

    async def execute(self, sb: Sandbox, call: ToolCall, *, prechecked: bool = False) -> CallOutcome:
        """Run one call from the engine's event loop without blocking it."""
        if not prechecked:
            pre = self.precheck(call)
            if pre:
                return CallOutcome(findings=pre)
        writes = sb.writes
        ran, printed = await run_limited_async(_call_tool, (self.pack.tools[call.tool].func, sb, call.arguments),
                                               seconds=self.timeout)
        outcome = self._outcome(call, ran, printed)
        outcome.wrote = sb.writes != writes
        return outcome

    def observation(self, outcome: CallOutcome, extra: Iterable[Finding] = ()) -> str:
        parts = []
        if outcome.ok:
            parts.append(_cut(outcome.text, self.observation_chars) if outcome.text
                         else render_result(outcome.result, self.observation_chars))
        shown = [*outcome.findings, *extra]
        if shown:
            parts.append(self.render(shown))
        return "\n".join(parts)
