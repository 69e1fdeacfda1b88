"""lamsim stays on this machine: every socket connection of a whole headless session is recorded
(an audit hook on `socket.connect` and `socket.getaddrinfo`, installed before anything else is
imported, litellm included) and any address outside loopback fails the test.

The session runs in a fresh interpreter so that litellm's import — where it would fetch its price
list from the internet — happens under the hook.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from packkit import ROOT, write_pack, write_session

PROBE = textwrap.dedent(r"""
    import ipaddress, json, socket, sys
    events = []

    def loopback(host):
        if host in (None, "", "localhost", "localhost.localdomain", "ip6-localhost"):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def hook(event, args):
        if event == "socket.connect":
            sock, address = args[0], args[1]
            if isinstance(address, tuple):
                events.append({"event": event, "host": str(address[0]), "ok": loopback(address[0])})
            else:
                events.append({"event": event, "host": repr(address), "ok": True})  # a Unix socket
        elif event == "socket.getaddrinfo":
            events.append({"event": event, "host": str(args[0]), "ok": loopback(args[0])})

    sys.addaudithook(hook)
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, sys.argv[1] + "/tests")
    from openai_server import OpenAIServer
    from lamsim_tui.cli import main

    session, store, server_needed = sys.argv[2], sys.argv[3], sys.argv[4] == "1"
    server = OpenAIServer().start() if server_needed else None
    if server is not None:
        text = open(session).read().replace("API_BASE", server.api_base)
        open(session, "w").write(text)
    try:
        code = main(["run", session, "--headless", "-n", sys.argv[5], "--store", store, "--json"])
    finally:
        if server is not None:
            server.stop()
    print("@@EVENTS@@" + json.dumps({"code": code, "events": events}))
""")


def run_probe(tmp_path, session_text: str, server: bool, tasks: int = 2, timeout: float = 300):
    write_pack(tmp_path)
    session = write_session(tmp_path, session_text)
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    proc = subprocess.run([sys.executable, str(probe), str(ROOT), str(session), str(tmp_path / "store"),
                           "1" if server else "0", str(tasks)],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path)
    marker = [line for line in proc.stdout.splitlines() if line.startswith("@@EVENTS@@")]
    assert marker, f"the session did not finish:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(marker[-1].removeprefix("@@EVENTS@@"))
    summary = json.loads(proc.stdout.split("@@EVENTS@@")[0])
    return result, summary


def test_a_session_on_a_local_server_connects_only_to_loopback(tmp_path):
    result, summary = run_probe(tmp_path, """\
        pack: mini
        concurrency: 2
        agent:
          kind: model
          models:
            - {model: openai/test-model, api_base: "API_BASE", timeout: 10}
        """, server=True)
    assert result["code"] == 0
    assert summary["episodes"] == 2 and summary["end_reasons"] == {"finished": 2}
    connects = [e for e in result["events"] if e["event"] == "socket.connect"]
    assert connects, "the probe saw the model requests"
    outside = [e for e in result["events"] if not e["ok"]]
    assert outside == [], f"connections beyond this machine: {outside}"


@pytest.mark.model
def test_a_session_on_the_embedded_model_connects_only_to_loopback(tmp_path):
    from test_model_embedded import installed_model

    name = installed_model()
    result, summary = run_probe(tmp_path, f"""\
        pack: mini
        agent:
          kind: embedded
          embedded_model: {name}
          embedded_max_tokens: 48
        budget:
          steps: 2
        """, server=False, tasks=1, timeout=900)
    assert result["code"] == 0
    assert summary["episodes"] == 1 and not any(r.startswith("model.") for r in summary["end_reasons"])
    assert summary["tokens"].get("prompt_tokens", 0) > 0, "the model really answered"
    outside = [e for e in result["events"] if not e["ok"]]
    assert outside == [], f"connections beyond this machine: {outside}"
