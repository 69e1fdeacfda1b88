"""Many episodes at once against a model server: does the engine keep the server busy?

    .venv/bin/python bench/concurrency.py [--latency 0.2] [--steps 4] [--levels 1,4,16,64,256] [--rounds 3]
                                          [--chunks 8] [--whole] [--repeats 3] [--json]

A loopback OpenAI-protocol server (`lamsim_tui.testing.loopback`, a process of its own) answers every
request after `--latency` seconds, streamed in `--chunks` pieces; its replies make every episode take
exactly `--steps` steps (tool calls, then a right final answer). For each concurrency level the real
engine runs `rounds x level` episodes of a model session (litellm client, feedback, sandbox, judge,
durable store writes) in this process, and the benchmark prints:

- episodes per second, beside what a saturated server gives: `level / (steps x latency)`, and the
  ratio of the two (1.0: the server never waits for the engine);
- CPU per step of this process (engine, litellm client and store writer thread together), and of that
  the part of the model client alone (litellm streaming one reply, measured on its own first);
- the same episodes/s ratio with no engine at all: `level` coroutines each sending `steps` requests
  one after the other through litellm (`client only`). When the two ratios agree, the engine adds
  nothing to the wait: the model client's CPU is the limit.

Figures are medians over `--repeats`. `--whole` asks the server for whole replies instead of streams
(what `lamsim run --headless` does, see docs/scaling.md). The machine's load is printed with them:
on a shared machine they move with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lamsim_tui.agents.llm import Endpoint, load_litellm  # noqa: E402
from lamsim_tui.agents.model import ModelAgentFactory  # noqa: E402
from lamsim_tui.packs import load_pack  # noqa: E402
from lamsim_tui.session.config import load_session  # noqa: E402
from lamsim_tui.simulator.engine import Engine  # noqa: E402
from lamsim_tui.store import open_store  # noqa: E402

TOOLS = '''
from lamsim_tui.packs import Sandbox, ToolError, tool


@tool
def get_item(sb: Sandbox, item_id: str) -> dict:
    """Get one item by id.

    Args:
        item_id: Item id such as "I-01".
    """
    item = sb.get("items", item_id)
    if item is None:
        raise ToolError(f"No item with id {item_id}.")
    return item
'''

TEMPLATES = '''
from lamsim_tui.packs import template


@template(query="Case {case}: what colour is item I-01?", answer="text")
def first_colour(data, rng):
    return {"case": rng.randrange(10**9)}


@first_colour.gold
def _(slots, call):
    return call("get_item", item_id="I-01")["colour"]
'''


def make_project(root: Path, steps: int) -> tuple[Path, Path]:
    pack = root / "tools" / "bench"
    (pack / "data").mkdir(parents=True)
    (pack / "pack.yaml").write_text("name: bench\ndescription: concurrency benchmark\n"
                                    "tables:\n  items: {file: data/items.json, key: id}\n")
    items = [{"id": f"I-{i:02d}", "colour": ["red", "green", "blue"][i % 3]} for i in range(1, 40)]
    (pack / "data" / "items.json").write_text(json.dumps(items))
    (pack / "tools.py").write_text(TOOLS)
    (pack / "templates.py").write_text(TEMPLATES)
    replies = [json.dumps({"thought": f"Look at item {k + 1}.", "tool": "get_item",
                           "arguments": {"item_id": f"I-{k + 1:02d}"}}) for k in range(steps - 1)]
    replies.append(json.dumps({"thought": "I have it.", "tool": "finish", "arguments": {"answer": "green"}}))
    (root / "replies.json").write_text(json.dumps(replies))
    return pack, root / "replies.json"


def session_file(root: Path, api_base: str, steps: int) -> Path:
    path = root / "sessions" / "bench.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(f"""\
        pack: bench
        seed: 1
        tasks: 1
        attempts: 1
        agent:
          kind: model
          format: json
          models:
            - {{model: openai/loopback, api_base: "{api_base}", retries: 1, timeout: 120}}
        budget:
          steps: {steps + 2}
          seconds: 600
        filters:
          dedupe: false
        """))
    return path


def start_server(replies: Path, latency: float, chunks: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "lamsim_tui.testing.loopback", "--latency", str(latency),
                             "--chunks", str(chunks), "--replies", str(replies)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    port = int(proc.stdout.readline().split()[1])
    # Drain its per-request lines so that it never blocks on a full pipe.
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, f"http://127.0.0.1:{port}/v1"


def client_cpu_per_request(api_base: str, whole: bool, n: int = 40) -> float:
    """CPU seconds litellm spends on one reply of the benchmark's server (no engine), one at a time."""
    from lamsim_tui.agents.llm import complete_whole, stream_completion

    load_litellm()
    endpoint = Endpoint("openai/loopback", api_base, None, {"temperature": 0.0, "max_tokens": 256}, 60.0)
    messages = [{"role": "system", "content": "You solve a task by calling tools. " * 20},
                {"role": "user", "content": "Task: what colour is item I-01?"}]
    call = complete_whole if whole else stream_completion

    async def go() -> float:
        for _ in range(5):
            await call(endpoint, messages, on_text=lambda _s: None)
        start = time.process_time()
        for _ in range(n):
            await call(endpoint, messages, on_text=lambda _s: None)
        return (time.process_time() - start) / n

    return asyncio.run(go())


def client_only(api_base: str, level: int, rounds: int, steps: int, whole: bool) -> float:
    """Episodes/s of `rounds x level` bare episodes (`steps` requests each), `level` at once, no engine."""
    from lamsim_tui.agents.llm import complete_whole, stream_completion

    endpoint = Endpoint("openai/loopback", api_base, None, {"temperature": 0.0, "max_tokens": 256}, 600.0)
    messages = [{"role": "system", "content": "You solve a task by calling tools. " * 20},
                {"role": "user", "content": "Task: what colour is item I-01?"}]
    call = complete_whole if whole else stream_completion
    episodes = max(level * rounds, 8)

    async def go() -> float:
        await call(endpoint, messages, on_text=lambda _s: None)
        gate = asyncio.Semaphore(level)

        async def episode() -> None:
            async with gate:
                for _ in range(steps):
                    await call(endpoint, messages, on_text=lambda _s: None)

        start = time.perf_counter()
        await asyncio.gather(*[episode() for _ in range(episodes)])
        return episodes / (time.perf_counter() - start)

    return asyncio.run(go())


def one_level(session_path: Path, level: int, rounds: int, steps: int, whole: bool) -> dict:
    session = load_session(session_path)
    import dataclasses

    session = dataclasses.replace(session, concurrency=level)
    pack = load_pack(session.pack_dir())
    episodes = max(level * rounds, 8)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "store")
        factory = ModelAgentFactory(session, pack)
        factory.stream = not whole
        engine = Engine(session, pack, factory, store=store, tasks=episodes, seed=level)
        engine.prepare()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        summary = asyncio.run(engine.run())
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        stored = store.count()
        store.close()
    done_steps = summary.steps
    return {
        "episodes": summary.episodes,
        "stored": stored,
        "steps": done_steps,
        "finished": summary.end_reasons.get("finished", 0),
        "wall_s": wall,
        "episodes_per_s": summary.episodes / wall,
        "cpu_per_step_ms": 1000 * cpu / max(done_steps, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per reply")
    parser.add_argument("--steps", type=int, default=4, help="steps per episode")
    parser.add_argument("--levels", default="1,4,16,64,256", help="episodes at once")
    parser.add_argument("--rounds", type=int, default=3, help="episodes per level = rounds x level")
    parser.add_argument("--chunks", type=int, default=8, help="streamed pieces per reply")
    parser.add_argument("--whole", action="store_true", help="whole replies, not streams (as headless runs)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _pack, replies = make_project(root, args.steps)
        server, api_base = start_server(replies, args.latency, args.chunks)
        try:
            session_path = session_file(root, api_base, args.steps)
            fast, fast_base = start_server(replies, 0.0, args.chunks)
            try:
                client = client_cpu_per_request(fast_base, args.whole)
            finally:
                fast.kill()
                fast.wait()
            results = {}
            for level in levels:
                runs = [one_level(session_path, level, args.rounds, args.steps, args.whole)
                        for _ in range(args.repeats)]
                med = {key: statistics.median(r[key] for r in runs)
                       for key in ("episodes_per_s", "cpu_per_step_ms", "wall_s")}
                ideal = level / (args.steps * args.latency)
                bare = client_only(api_base, level, args.rounds, args.steps, args.whole)
                results[level] = {**med, "ideal_episodes_per_s": ideal, "ratio": med["episodes_per_s"] / ideal,
                                  "client_only_ratio": bare / ideal,
                                  "episodes": runs[0]["episodes"],
                                  "all_finished": all(r["finished"] == r["episodes"] == r["stored"] for r in runs),
                                  "load": os.getloadavg()[0]}
                r = results[level]
                print(f"  {level:>4} at once: {r['episodes_per_s']:8.2f} episodes/s (saturated: {ideal:8.2f}, "
                      f"ratio {r['ratio']:.2f}, client only {r['client_only_ratio']:.2f}), "
                      f"CPU {r['cpu_per_step_ms']:.2f} ms/step", flush=True)
        finally:
            server.kill()
            server.wait()
    mode = "whole replies" if args.whole else f"streamed in {args.chunks} pieces"
    print()
    print(f"latency {args.latency:g} s per step, {args.steps} steps per episode, replies {mode}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    header = (f"{'at once':>8} {'episodes':>9} {'episodes/s':>11} {'saturated':>10} {'ratio':>6} "
              f"{'client only':>12} {'CPU/step':>10} {'all stored':>11}")
    print(header)
    print("-" * len(header))
    for level, r in results.items():
        print(f"{level:>8} {r['episodes']:>9} {r['episodes_per_s']:>11.2f} {r['ideal_episodes_per_s']:>10.2f} "
              f"{r['ratio']:>6.2f} {r['client_only_ratio']:>12.2f} {r['cpu_per_step_ms']:>8.2f} ms "
              f"{('yes' if r['all_finished'] else 'NO'):>11}")
    print(f"\nof the CPU per step, the litellm client alone (one reply at a time): {1000 * client:.2f} ms; "
          f"one process can drive at most about {1 / max(client, 1e-9):,.0f} steps/s")
    if args.json:
        print(json.dumps({"latency": args.latency, "steps": args.steps, "whole": args.whole,
                          "client_cpu_per_request_ms": 1000 * client,
                          "levels": {str(k): v for k, v in results.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
