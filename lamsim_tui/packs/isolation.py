"""How pack code is held in this process (see docs/tool-packs.md, "What pack code may not do").

Pack code — tools, slot samplers, gold programs, and the pack's modules as they are imported — is
told apart from lamsim's own by a per-thread mark (set while a worker runs a call) or, for code
that runs elsewhere (a module's top level, a thread a tool started), by its module name: modules
loaded from a pack are named `lamsim_pack_...`. Inside pack code:

- starting a process or sending a signal raises `PackCodeRefused` (an audit hook: `os.fork`,
  `subprocess`, `os.system`, `os.exec*`, `os.posix_spawn`, `os.kill`);
- `os._exit` and `os.abort` raise an exception that ends only the call;
- what it writes to `sys.stdout`/`sys.stderr` goes to its call's sink, never to lamsim's output.

Outside pack code all of these behave exactly as usual.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from typing import Any

#: Modules loaded from a pack are named with this prefix (see `packs.loading`).
PACK_MODULE_PREFIX = "lamsim_pack_"
#: What one call may print (kept on its outcome for the operator; never shown on lamsim's own output).
PRINTED_CHARS = 4_000


class PackCodeRefused(PermissionError):
    """Pack code tried something it may not do (start a process, send a signal, exit lamsim)."""


class PackCodeExit(BaseException):
    """`os._exit`/`os.abort` called by pack code: turned into an exception that ends only the call."""


call_state = threading.local()  # .sink: where this worker thread's output goes while it runs a call


def _pack_frame() -> bool:
    """Whether pack code is on the current thread's stack (also in threads a tool started)."""
    frame = sys._getframe(1)
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).startswith(PACK_MODULE_PREFIX):
            return True
        frame = frame.f_back
    return False


def in_pack_code() -> bool:
    return getattr(call_state, "sink", None) is not None or _pack_frame()


_REFUSED_EVENTS = {
    "os.fork": "start processes", "os.forkpty": "start processes", "os.system": "start processes",
    "os.exec": "start processes", "os.posix_spawn": "start processes", "os.spawn": "start processes",
    "subprocess.Popen": "start processes", "pty.spawn": "start processes",
    "os.kill": "send signals", "os.killpg": "send signals",
}


def _audit(event: str, args: tuple) -> None:
    what = _REFUSED_EVENTS.get(event)
    if what is not None and in_pack_code():
        raise PackCodeRefused(f"pack code may not {what} ({event}): a tool only reads and changes its sandbox")


_real_exit = os._exit
_real_abort = os.abort


def _guarded_exit(code: int = 0) -> None:
    if in_pack_code():
        raise PackCodeExit(f"os._exit({code})")
    _real_exit(code)


def _guarded_abort() -> None:
    if in_pack_code():
        raise PackCodeExit("os.abort()")
    _real_abort()


_guards_installed = False
_guards_lock = threading.Lock()


def install_guards() -> None:
    """Once per process: the audit hook (it cannot be removed again) and the exit guards."""
    global _guards_installed
    if _guards_installed:  # every call comes here: no lock once they are in
        return
    with _guards_lock:
        if _guards_installed:
            return
        sys.addaudithook(_audit)
        os._exit = _guarded_exit
        os.abort = _guarded_abort
        _guards_installed = True




class Sink:
    """What one call printed: the first `PRINTED_CHARS`, and how much there was."""

    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        if self.size < PRINTED_CHARS:
            self.parts.append(text[: PRINTED_CHARS - self.size])
        self.size += len(text)

    def text(self) -> str:
        kept = "".join(self.parts)
        return kept + (f"... [{self.size - len(kept)} more characters]" if self.size > len(kept) else "")


_DISCARD = Sink()


def _sink_here() -> Sink | None:
    sink = getattr(call_state, "sink", None)
    if sink is not None:
        return sink
    return _DISCARD if _pack_frame() else None


class _GuardedBinary:
    def __init__(self, target: Any):
        self._target = target

    def write(self, data: bytes) -> int:
        sink = _sink_here()
        if sink is not None:
            sink.write(bytes(data).decode("utf-8", "replace"))
            return len(data)
        return self._target.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class _GuardedOutput:
    """sys.stdout/sys.stderr while pack code may run: pack code's writes go to its call's sink."""

    def __init__(self, target: Any):
        self._target = target

    def write(self, text: str) -> int:
        sink = _sink_here()
        if sink is not None:
            sink.write(str(text))
            return len(text)
        return self._target.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _sink_here() is None:
            self._target.flush()

    @property
    def buffer(self) -> Any:
        return _GuardedBinary(self._target.buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def guard_output() -> None:
    """Wrap whatever sys.stdout/stderr are now (a test's capture, the app's, the terminal)."""
    if not isinstance(sys.stdout, _GuardedOutput) and sys.stdout is not None:
        sys.stdout = _GuardedOutput(sys.stdout)
    if not isinstance(sys.stderr, _GuardedOutput) and sys.stderr is not None:
        sys.stderr = _GuardedOutput(sys.stderr)


def describe_exit(exc: BaseException) -> str | None:
    """How pack code tried to end lamsim, if it did (`sys.exit(1)`, `os._exit(0)`...)."""
    if isinstance(exc, SystemExit):
        return f"sys.exit({exc.code!r})" if exc.code is not None else "sys.exit()"
    if isinstance(exc, PackCodeExit):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "raise KeyboardInterrupt"
    if isinstance(exc, GeneratorExit):
        return "raise GeneratorExit"
    return None
