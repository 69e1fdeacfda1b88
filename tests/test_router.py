"""Several servers of one model behind litellm's Router: a session over two real loopback servers,
one of them killed (SIGKILL) mid-run; every episode finishes on the other, and the operator is told
once which server went down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from packkit import ROOT, write_pack, write_session

from lamsim_tui.store import open_store

REPLIES = [
    '{"thought": "Look the item up.", "tool": "get_item", "arguments": {"item_id": "I-01"}}',
    '{"thought": "And the next one.", "tool": "get_item", "arguments": {"item_id": "I-02"}}',
    '{"thought": "I have it.", "tool": "finish", "arguments": {"answer": "red"}}',
]


class Loopback:
    """`lamsim_tui.testing.loopback` in a process of its own, counting the replies it finished."""

    def __init__(self, tmp: Path, latency: float = 0.15, port: int = 0):
        replies = tmp / "replies.json"
        replies.write_text(json.dumps(REPLIES))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lamsim_tui.testing.loopback", "--latency", str(latency), "--chunks", "6",
             "--replies", str(replies), "--port", str(port)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.port = int(self.proc.stdout.readline().split()[1])
        self.api_base = f"http://127.0.0.1:{self.port}/v1"
        self.served = 0
        self.reached = threading.Event()
        self.kill_after: int | None = None
        threading.Thread(target=self._count, daemon=True).start()

    def _count(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("request"):
                self.served = int(line.split()[1])
                if self.kill_after is not None and self.served >= self.kill_after:
                    self.reached.set()

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def servers(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    started = [Loopback(tmp_path / "a"), Loopback(tmp_path / "b")]
    yield started
    for server in started:
        server.stop()


def session(tmp_path: Path, servers: list[Loopback], tasks: int = 24, concurrency: int = 6) -> Path:
    write_pack(tmp_path)
    entries = "\n".join(f"            - {{model: openai/loopback, api_base: \"{s.api_base}\", retries: 2, timeout: 60}}"
                        for s in servers)
    return write_session(tmp_path, f"""\
        pack: mini
        seed: 5
        tasks: {tasks}
        attempts: 1
        concurrency: {concurrency}
        agent:
          kind: model
          format: json
          models:
{entries}
        budget:
          steps: 6
        filters:
          dedupe: false
        """)


@pytest.mark.parametrize("replies", [[], ["--stream"]], ids=["whole-replies", "streamed"])
def test_a_server_killed_mid_run_is_taken_out_and_every_episode_finishes_on_the_other(tmp_path, servers, replies):
    doomed, survivor = servers
    path = session(tmp_path, servers)
    doomed.kill_after = 12
    store = tmp_path / "store"
    run = subprocess.Popen([sys.executable, "-m", "lamsim_tui", "run", str(path), "--headless", "--store", str(store),
                            "--json", *replies], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert doomed.reached.wait(60), "the run never reached the first server"
    doomed.kill()  # mid-run: it has streams open
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    summary = json.loads(out)
    assert summary["episodes"] == 24 and summary["end_reasons"] == {"finished": 24}
    notices = [line for line in err.splitlines() if "model server down" in line]
    assert len(notices) == 1 and doomed.api_base in notices[0] and "out of rotation" in notices[0]
    assert survivor.api_base not in notices[0]
    with open_store(store, readonly=True) as st:
        records = list(st.records())
    assert len(records) == 24 and all(r.end_reason == "finished" for r in records)
    answered = [s.usage.get("api_base") for r in records for s in r.steps]
    assert set(answered) == {doomed.api_base, survivor.api_base}  # both served before the kill...
    assert answered.count(doomed.api_base) <= doomed.served  # ...and nothing after it: every later step was the other
    assert all(r.agent["servers"] == [doomed.api_base, survivor.api_base] for r in records)


def test_requests_are_shared_between_the_servers_of_a_pool(tmp_path, servers):
    path = session(tmp_path, servers, tasks=12, concurrency=4)
    done = subprocess.run([sys.executable, "-m", "lamsim_tui", "run", str(path), "--headless", "--store",
                           str(tmp_path / "store"), "--json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "model server" not in done.stderr
    a, b = servers
    with open_store(tmp_path / "store", readonly=True) as st:
        answered = [s.usage.get("api_base") for r in st.records() for s in r.steps]
    assert answered.count(a.api_base) > 5 and answered.count(b.api_base) > 5
    assert answered.count(a.api_base) + answered.count(b.api_base) == len(answered)


def test_entries_at_other_temperatures_are_not_a_pool(tmp_path, servers):
    """The same model on one server at two temperatures stays two choices by weight, as before."""
    from lamsim_tui.agents.model import _choices
    from lamsim_tui.session.config import load_session

    write_pack(tmp_path)
    path = write_session(tmp_path, f"""\
        pack: mini
        agent:
          kind: model
          models:
            - {{model: openai/x, api_base: "{servers[0].api_base}", temperature: 0.0, weight: 2}}
            - {{model: openai/x, api_base: "{servers[0].api_base}", temperature: 0.8}}
            - {{model: openai/x, api_base: "{servers[1].api_base}", temperature: 0.8}}
        """)
    chosen = _choices(list(load_session(path).agent.models))
    assert [(m.temperature, w, members) for m, w, members in chosen] == [(0.0, 2.0, [0]), (0.8, 2.0, [1, 2])]


def test_a_server_that_comes_back_is_in_rotation_again(tmp_path, servers, monkeypatch):
    """In-process engine, the servers' cooldown cut to a second: down once, back once, used again."""
    import asyncio

    from lamsim_tui.agents.model import ModelAgentFactory
    from lamsim_tui.events import ServerBack, ServerDown
    from lamsim_tui.packs import load_pack
    from lamsim_tui.session.config import load_session
    from lamsim_tui.simulator.engine import Engine

    monkeypatch.setattr("lamsim_tui.agents.routing.COOLDOWN_S", 1.0)
    doomed, survivor = servers
    path = session(tmp_path, servers, tasks=60, concurrency=4)
    cfg = load_session(path)
    pack = load_pack(cfg.pack_dir())
    events: list = []
    went_down = threading.Event()

    def on_event(event):
        events.append(event)
        if isinstance(event, ServerDown):
            went_down.set()

    back: list[Loopback] = []

    def kill_then_restart():
        doomed.kill_after = 8
        assert doomed.reached.wait(60)
        doomed.kill()
        assert went_down.wait(60)
        back.append(Loopback(tmp_path / "a", port=doomed.port))  # the same address, up again

    helper = threading.Thread(target=kill_then_restart)
    helper.start()
    with open_store(tmp_path / "store") as st:
        factory = ModelAgentFactory(cfg, pack)
        factory.stream = False
        summary = asyncio.run(Engine(cfg, pack, factory, store=st, on_event=on_event).run())
        records = list(st.records())
    helper.join(30)
    try:
        notices = [e for e in events if isinstance(e, (ServerDown, ServerBack))]
        assert [(type(e).__name__, e.api_base) for e in notices] == [("ServerDown", doomed.api_base),
                                                                     ("ServerBack", doomed.api_base)]
        assert summary.episodes > 30 and summary.end_reasons == {"finished": summary.episodes}
        after = events.index(notices[1])
        later = {e.episode_id for e in events[after:] if type(e).__name__ == "EpisodeStarted"}
        answered_later = [s.usage.get("api_base") for r in records if r.id in later for s in r.steps]
        assert doomed.api_base in answered_later  # used again once it is back
    finally:
        for server in back:
            server.stop()


def _healthy_and_faulty(tmp_path: Path, fault, flags: list[str]) -> tuple[subprocess.CompletedProcess, str, str]:
    """A headless run of 6 episodes over a pool of two loopback servers: a healthy one, and one whose
    replies are `fault` (`Reply` fields). The faulty one has the Router's weight, so it surely gets
    the first request (a fair shuffle could miss it in six). Returns the run, the faulty and the
    healthy server's api_base."""
    from openai_server import OpenAIServer, Reply

    finish = REPLIES[2]
    with OpenAIServer(default=Reply(text=finish)) as healthy, \
            OpenAIServer(default=Reply(text=finish, **fault)) as faulty:
        write_pack(tmp_path)
        path = write_session(tmp_path, f"""\
            pack: mini
            seed: 5
            tasks: 6
            attempts: 1
            concurrency: 2
            agent:
              kind: model
              format: json
              models:
                - {{model: openai/loopback, api_base: "{healthy.api_base}", retries: 2, timeout: 3}}
                - {{model: openai/loopback, api_base: "{faulty.api_base}", retries: 2, timeout: 3, weight: 1000}}
            budget:
              steps: 4
            filters:
              dedupe: false
            """)
        run = subprocess.run([sys.executable, "-m", "lamsim_tui", "run", str(path), "--headless", "--store",
                              str(tmp_path / "store"), "--json", *flags], cwd=tmp_path, capture_output=True,
                             text=True, timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT)})
        return run, faulty.api_base, healthy.api_base


def _only_the_faulty_one_went_down(run: subprocess.CompletedProcess, bad: str, fine: str) -> None:
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["episodes"] == 6 and summary["end_reasons"] == {"finished": 6}
    notices = [line for line in run.stderr.splitlines() if "model server down" in line]
    assert len(notices) == 1 and bad in notices[0] and fine not in notices[0], run.stderr


def test_a_server_that_trickles_past_the_deadline_is_the_one_taken_out(tmp_path):
    """The whole-request deadline (issue 15) names the pool's server that was answering, not the
    pool's first: here the second one sends a character every 0.4 s, and only it goes out of rotation."""
    run, slow, fine = _healthy_and_faulty(tmp_path, {"chunk_chars": 1, "chunk_delay": 0.4}, ["--stream"])
    _only_the_faulty_one_went_down(run, slow, fine)
    with open_store(tmp_path / "store", readonly=True) as store:
        answered = {s.usage.get("api_base") for r in store.records() for s in r.steps}
    assert answered == {fine}


@pytest.mark.parametrize("replies", [[], ["--stream"]], ids=["whole-replies", "streamed"])
def test_a_server_that_hangs_is_the_one_taken_out(tmp_path, replies):
    """A wedged server (it takes the request and never answers) is named, whole replies or streamed."""
    run, bad, fine = _healthy_and_faulty(tmp_path, {"hang": 30}, replies)
    _only_the_faulty_one_went_down(run, bad, fine)
