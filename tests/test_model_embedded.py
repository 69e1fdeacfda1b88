"""The embedded model: locating and verifying weights, and the llama.cpp server's whole life.

Tests marked `model` need llama-cpp-python[server] and a model's weights (`scripts/install-model`);
they are skipped, saying so, where those are missing. The others run everywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from packkit import ROOT

from lamsim_tui.agents.embedded import catalogue, server, weights
from lamsim_tui.agents.embedded.catalogue import KnownModel, WeightPackage
from lamsim_tui.agents.embedded.server import EmbeddedServer, parse_server_log
from lamsim_tui.agents.embedded.weights import ModelNotInstalled, join_parts, resolve_gguf, verify
from lamsim_tui.errors import ConfigError

PREFERENCE = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")  # fastest first


def installed_model(names=PREFERENCE) -> str:
    """The first installed model among `names`, or skip the test saying what to install."""
    try:
        server.check_runtime()
    except ModelNotInstalled:
        pytest.skip("llama-cpp-python[server] is not installed: run scripts/install-model")
    for name in names:
        try:
            resolve_gguf(name, join=False)
            return name
        except (ModelNotInstalled, ConfigError):
            continue
    pytest.skip(f"no embedded model weights installed ({', '.join(names)}): run scripts/install-model")


# ----- weights (no model needed) ---------------------------------------------------------------


def _fake_model(tmp_path: Path, chunks: list[bytes], sha: str | None = None) -> tuple[KnownModel, list[Path]]:
    parts = []
    for i, chunk in enumerate(chunks, start=1):
        part = tmp_path / f"part{i:02d}.bin"
        part.write_bytes(chunk)
        parts.append(part)
    whole = b"".join(chunks)
    model = KnownModel(name="fake-model", title="Fake", gguf_sha256=sha or hashlib.sha256(whole).hexdigest(),
                       size_bytes=len(whole), licence="none",
                       packages=tuple(WeightPackage(f"lamsim-test-absent-part{i}", "0.0.1", "0" * 64,
                                                    f"absent{i}/data/part{i:02d}.bin")
                                      for i in range(1, len(chunks) + 1)))
    return model, parts


def test_parts_join_into_a_verified_file(tmp_path):
    model, parts = _fake_model(tmp_path, [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5])
    target = tmp_path / "models" / "fake.gguf"
    seen = []
    join_parts(model, parts, target, progress=lambda i, n: seen.append((i, n)))
    assert target.read_bytes() == b"GGUF" + b"a" * 1000 + b"b" * 777 + b"c" * 5
    assert seen[-1] == (3, 3)
    assert weights.is_verified(target, model.gguf_sha256)
    verify(target, model.gguf_sha256)  # from the stamp: no re-hash needed
    target.write_bytes(target.read_bytes()[:-1] + b"X")  # changed after verification
    assert not weights.is_verified(target, model.gguf_sha256)
    with pytest.raises(ModelNotInstalled, match="does not match"):
        verify(target, model.gguf_sha256)


def test_a_wrong_join_leaves_no_file(tmp_path):
    model, parts = _fake_model(tmp_path, [b"GGUF1234", b"5678"], sha="f" * 64)
    target = tmp_path / "models" / "fake.gguf"
    with pytest.raises(ModelNotInstalled, match="do not match"):
        join_parts(model, parts, target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_missing_weights_say_what_to_do(tmp_path, monkeypatch):
    model, _ = _fake_model(tmp_path, [b"GGUF"])
    monkeypatch.setitem(catalogue.MODELS, model.name, model)
    monkeypatch.setenv("LAMSIM_MODELS_DIR", str(tmp_path / "empty"))
    with pytest.raises(ModelNotInstalled) as info:
        resolve_gguf("fake-model")
    text = str(info.value)
    assert "'fake-model' is not installed" in text
    assert "lamsim-test-absent-part1" in text
    assert "scripts/install-model --model fake-model" in text
    assert "GGUF" in text and "kind: model" in text and "--agent scripted" in text
    assert "agent.embedded_model" in text


def test_a_gguf_path_is_accepted_and_checked(tmp_path):
    good = tmp_path / "mine.gguf"
    good.write_bytes(b"GGUF" + b"\0" * 100)
    assert resolve_gguf(str(good)) == (good.resolve(), None)
    bad = tmp_path / "notes.gguf"
    bad.write_text("hello")
    with pytest.raises(ConfigError, match="not a GGUF file"):
        resolve_gguf(str(bad))
    with pytest.raises(ModelNotInstalled, match="no file at") as missing:
        resolve_gguf(str(tmp_path / "absent.gguf"))
    assert "scripts/install-model" not in str(missing.value), "a path of yours is not installable"
    assert "--agent scripted" in str(missing.value)
    with pytest.raises(ConfigError, match="unknown embedded model 'qwen-9000'") as info:
        resolve_gguf("qwen-9000")
    assert "qwen2.5-coder-1.5b" in str(info.value)


def test_missing_runtime_is_a_clear_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("llama_cpp") else real(name, *a))
    with pytest.raises(ModelNotInstalled, match="llama-cpp-python") as info:
        server.check_runtime()
    assert "scripts/install-model" in str(info.value)


def test_server_command_is_loopback_with_the_measured_flags(tmp_path):
    server = EmbeddedServer(model_path=tmp_path / "m.gguf", n_ctx=4096, threads=2, port=5555)
    cmd = server.command()
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--logits_all") + 1] == "False"
    assert cmd[cmd.index("--interrupt_requests") + 1] == "False"
    assert cmd[cmd.index("--n_threads") + 1] == "2" and cmd[cmd.index("--n_ctx") + 1] == "4096"
    assert server.api_base == "http://127.0.0.1:5555/v1"


def test_server_log_figures():
    log = textwrap.dedent("""\
        llama_perf_context_print: prompt eval time =   21105.03 ms /   657 tokens (   32.12 ms per token)
        llama_perf_context_print:        eval time =   48160.84 ms /    84 runs   (  573.34 ms per token)
        INFO:     127.0.0.1:36802 - "POST /v1/chat/completions HTTP/1.1" 200 OK
        Llama.generate: 739 prefix-match hit, remaining 22 prompt tokens to eval
        llama_perf_context_print: prompt eval time =    2135.68 ms /    22 tokens (   97.08 ms per token)
        llama_perf_context_print:        eval time =   10876.05 ms /    33 runs   (  329.58 ms per token)
        llama_perf_context_print:       total time =   13708.20 ms /    55 tokens
        """)
    figures = parse_server_log(log)
    assert figures == {"requests": 2, "cached_tokens": 739, "processed_tokens": 679, "generated_tokens": 117,
                       "prompt_eval_s": pytest.approx(23.24071), "generation_s": pytest.approx(59.03689),
                       "total_s": pytest.approx(13.7082)}
    assert parse_server_log("INFO: started") is None


def test_status_command_lists_models():
    proc = subprocess.run([sys.executable, "-m", "lamsim_tui", "model", "status"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0
    for name in catalogue.MODELS:
        assert name in proc.stdout
    req = subprocess.run([sys.executable, "-m", "lamsim_tui", "model", "requirements", "qwen2.5-coder-1.5b"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert req.count("--hash=sha256:") == 22


# ----- the real server (model needed) ------------------------------------------------------------


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie waiting for its parent counts as gone
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().split(")")[-1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def _closed(port: int, timeout: float = 15.0) -> bool:
    """The port stops listening (a dying process's threads may take a moment to let go of it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _port_open(port):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.model
def test_server_starts_answers_and_stops():
    name = installed_model()
    path, known = resolve_gguf(name)
    server = EmbeddedServer(model_path=path, n_ctx=2048)
    asyncio.run(server.start())
    try:
        assert server.running() and _port_open(server.port)
        pid = server.process.pid
    finally:
        server.stop()
    assert _gone(pid) and _closed(server.port)
    server.stop()  # twice is fine


@pytest.mark.model
def test_no_orphan_server_when_lamsim_is_killed(tmp_path):
    name = installed_model()
    script = tmp_path / "owner.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from lamsim_tui.agents.embedded.server import EmbeddedServer
        from lamsim_tui.agents.embedded.weights import resolve_gguf
        server = EmbeddedServer(model_path=resolve_gguf({name!r})[0], n_ctx=1024)
        asyncio.run(server.start())
        print(server.process.pid, server.port, flush=True)
        time.sleep(600)
        """))
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        line = owner.stdout.readline()
        assert line, "the owner did not start its server"
        pid, port = map(int, line.split())
        assert _port_open(port)
        owner.send_signal(signal.SIGKILL)  # no atexit, no finally: only the watchdog can act
        owner.wait(10)
        assert _gone(pid), "the server outlived the process that started it"
        assert _closed(port), "its port is still open"
    finally:
        if owner.poll() is None:
            owner.kill()


@pytest.mark.model
def test_ctrl_c_on_a_headless_run_stops_the_server(tmp_path):
    name = installed_model()
    session = tmp_path / "s.yaml"
    session.write_text(textwrap.dedent(f"""\
        pack: {ROOT / 'tools' / 'crm'}
        tasks: 5
        concurrency: 1
        agent: {{kind: embedded, embedded_model: {name}}}
        """))
    proc = subprocess.Popen([sys.executable, "-m", "lamsim_tui", "run", str(session), "--headless", "--store",
                             str(tmp_path / "store")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        server_pid = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server_pid is None:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            pids = children.read_text().split() if children.exists() else []
            for pid in pids:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                if b"llama_cpp.server" in cmdline and _port_open(int(cmdline.split(b"--port ")[1].split()[0])):
                    server_pid = int(pid)
            time.sleep(0.2)
        assert server_pid, "the server never came up"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, 130), err[-2000:]  # the finished episodes are stored either way
        assert "Traceback" not in err
        assert _gone(server_pid), "the server outlived Ctrl+C"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.model
def test_constrained_step_on_the_real_model_is_a_valid_action(tmp_path):
    name = installed_model()
    from packkit import write_pack, write_session

    from lamsim_tui.agents.base import EpisodeView
    from lamsim_tui.agents.model import ModelAgentFactory
    from lamsim_tui.events import TextDelta
    from lamsim_tui.packs import load_pack
    from lamsim_tui.session.config import load_session

    write_pack(tmp_path)
    session = load_session(write_session(tmp_path, f"""\
        pack: mini
        agent: {{kind: embedded, embedded_model: {name}, embedded_max_tokens: 120, embedded_context: 2048}}
        """))
    pack = load_pack(session.pack_dir())
    factory = ModelAgentFactory(session, pack, embedded=True)
    events = []

    async def go():
        await factory.start()
        try:
            agent, public = factory.for_episode("ep", seed=1)
            view = EpisodeView(episode_id="ep", query="What colour is item I-04?", tools=list(pack.tools.values()),
                               steps=[], step_budget=5, seed=1)
            return await agent.step(view, events.append), public
        finally:
            await factory.aclose()

    turn, public = asyncio.run(go())
    assert public["model"] == f"embedded:{name}" and public["api_base"].startswith("http://127.0.0.1:")
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == turn.raw
    data = json.loads(turn.raw)  # constrained: the whole reply is one JSON action
    assert data["tool"] in ("get_item", "set_colour", "finish")
    assert turn.parsed.action is not None
    assert turn.usage["prompt_tokens"] > 50 and turn.usage["completion_tokens"] > 5
    assert turn.usage["processed_tokens"] + turn.usage["cached_tokens"] == turn.usage["prompt_tokens"]
    assert factory.server is None, "the server was stopped"


@pytest.mark.model
def test_headless_pilot_stores_three_model_made_trajectories(tmp_path):
    """The issue's end-to-end check, on the default model (several minutes on 2 CPU cores)."""
    installed_model((catalogue.DEFAULT_MODEL,))
    store = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-m", "lamsim_tui", "run", "sessions/pilot.yaml", "--headless", "-n", "3",
                           "--agent", "embedded", "--store", str(store), "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=3000, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode in (0, 3), proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["episodes"] == 3
    assert summary["tokens"]["prompt_tokens"] > 0 and summary["tokens"]["completion_tokens"] > 0
    assert "valid_action_rate" in summary and "success_rate" in summary
    from lamsim_tui.store import open_store

    with open_store(store, readonly=True) as st:
        records = list(st.records())
    assert len(records) == 3
    for record in records:
        assert record.agent["kind"] == "embedded"
        assert record.agent["model"] == f"embedded:{catalogue.DEFAULT_MODEL}"
        model_steps = [s for s in record.steps if s.raw]
        assert model_steps, f"no model-made step in {record.id} ({record.end_reason})"
        assert all(s.usage.get("completion_tokens", 0) > 0 for s in model_steps)
