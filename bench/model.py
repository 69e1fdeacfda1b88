"""Benchmark the embedded model on the default session (CRM pack): speed, cache, validity, success.

    .venv/bin/python bench/model.py [-n 6] [--model qwen2.5-coder-1.5b] [--session sessions/pilot.yaml]
                                    [--steps 8] [--seed S] [--json OUT.json]

Runs N episodes one at a time (the embedded server computes one reply at a time) through the real
engine, agent, litellm and llama.cpp server, and prints:

- seconds per episode (and the server's start-up, outside of it);
- per step: prompt tokens the server processed vs served from its prefix cache (first step of the
  session, first step of later episodes, later steps);
- generated tokens per second (server side) and prompt tokens processed per second;
- share of wall time spent outside the model: engine + client (litellm, HTTP, parsing, and the
  server's Python before it starts computing), i.e. the episode wall time minus the server's own
  time per request (prompt, generation and sampling, where constrained decoding's grammar runs);
- valid-action rate (steps whose action parsed and passed the format/tool/argument checks) and
  success rate (the judge's verdict).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INVALID = ("format.", "tool.", "args.")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def bench(args) -> dict:
    from lamsim_tui.agents.model import ModelAgentFactory
    from lamsim_tui.events import EpisodeFinished
    from lamsim_tui.packs import load_pack
    from lamsim_tui.session.config import load_session
    from lamsim_tui.simulator.engine import Engine

    session = load_session(args.session)
    agent = dataclasses.replace(session.agent, kind="embedded", embedded_model=args.model or session.agent.embedded_model)
    if args.format:
        agent = dataclasses.replace(agent, format=args.format)
    if args.unconstrained:
        agent = dataclasses.replace(agent, constrained=False)
    budget = dataclasses.replace(session.budget, steps=args.steps, seconds=args.episode_seconds)
    session = dataclasses.replace(session, agent=agent, concurrency=1, budget=budget)
    pack = load_pack(session.pack_dir())
    factory = ModelAgentFactory(session, pack, embedded=True)
    records: list = []  # Trajectory

    def on_event(event) -> None:
        if isinstance(event, EpisodeFinished):
            records.append(event.trajectory)
            t = event.trajectory
            print(f"  episode {len(records)}/{args.n}: {t.end_reason:18} success={t.verdict.success!s:5} "
                  f"steps={len(t.steps)} {t.timing.wall_s:.1f} s", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    await factory.start()  # the engine's own start() is then a no-op: we time start-up apart
    startup_s = time.perf_counter() - t0
    engine = Engine(session, pack, factory, store=None, on_event=on_event, tasks=args.n, seed=args.seed)
    summary = (await engine.run()).to_dict()
    return {"startup_s": startup_s, "summary": summary, "records": records, "model": factory.embedded_info}


def report(result: dict) -> dict:
    records = result["records"]
    steps = [s for r in records for s in r.steps]
    walls = [r.timing.wall_s for r in records]
    model_s = sum(r.timing.model_s for r in records)
    engine_s = sum(r.timing.engine_s for r in records)

    def usage(step) -> dict:
        return step.usage

    compute_s = sum(usage(s).get("server_prompt_s", 0) + usage(s).get("server_generation_s", 0) for s in steps)
    # The server's own wall time per request: prompt, generation and sampling (the grammar of
    # constrained decoding is applied while sampling).
    server_s = sum(usage(s).get("server_total_s", 0) or
                   (usage(s).get("server_prompt_s", 0) + usage(s).get("server_generation_s", 0)) for s in steps)
    wall = sum(walls)
    groups: dict[str, list[dict]] = {"session's first step": [], "episodes' first steps": [], "later steps": []}
    for i, r in enumerate(records):
        for s in r.steps:
            u = usage(s)
            if "processed_tokens" not in u:
                continue
            key = "later steps" if s.index > 0 else ("session's first step" if i == 0 else "episodes' first steps")
            groups[key].append(u)
    generated = sum(usage(s).get("completion_tokens", 0) or 0 for s in steps)
    gen_s = sum(usage(s).get("server_generation_s", 0) for s in steps)
    processed = sum(usage(s).get("processed_tokens", 0) for s in steps)
    cached = sum(usage(s).get("cached_tokens", 0) for s in steps)
    prompt_s = sum(usage(s).get("server_prompt_s", 0) for s in steps)
    valid = sum(1 for s in steps if s.action is not None and not any(c.startswith(INVALID) for c in s.codes))
    latencies = [usage(s).get("latency_s") for s in steps if usage(s).get("latency_s")]
    figures = {
        "model": result["model"],
        "episodes": len(records),
        "steps": len(steps),
        "server_startup_s": round(result["startup_s"], 2),
        "s_per_episode_mean": round(statistics.mean(walls), 2) if walls else None,
        "s_per_episode_median": round(statistics.median(walls), 2) if walls else None,
        "s_per_step_median": round(statistics.median(latencies), 2) if latencies else None,
        "s_per_step_p90": round(_pct(latencies, 0.9), 2),
        "prompt_tokens_per_step": {
            name: {"steps": len(us),
                   "processed_mean": round(statistics.mean(u["processed_tokens"] for u in us), 1) if us else None,
                   "cached_mean": round(statistics.mean(u["cached_tokens"] for u in us), 1) if us else None}
            for name, us in groups.items()},
        "cached_share_of_prompt_tokens": round(cached / max(cached + processed, 1), 4),
        "generated_tok_per_s": round(generated / gen_s, 2) if gen_s else None,
        "prompt_tok_per_s": round(processed / prompt_s, 2) if prompt_s else None,
        "share_outside_model": round(1 - server_s / wall, 4) if wall else None,
        "share_engine": round(engine_s / wall, 5) if wall else None,
        "share_client": round((model_s - server_s) / wall, 4) if wall else None,
        "share_sampling_in_server": round((server_s - compute_s) / wall, 4) if wall else None,
        "valid_action_rate": round(valid / max(len(steps), 1), 4),
        "success_rate": result["summary"]["success_rate"],
        "end_reasons": result["summary"]["end_reasons"],
        "findings": result["summary"]["findings"],
    }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=6, help="episodes (tasks)")
    parser.add_argument("--model", help="embedded model name or GGUF path (default: the session's)")
    parser.add_argument("--session", default=str(ROOT / "sessions" / "pilot.yaml"))
    parser.add_argument("--steps", type=int, default=8, help="step budget per episode")
    parser.add_argument("--episode-seconds", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--format", choices=("json", "native"))
    parser.add_argument("--unconstrained", action="store_true", help="turn constrained decoding off")
    parser.add_argument("--json", help="also write the figures (and trajectories) to this file")
    args = parser.parse_args()
    result = asyncio.run(bench(args))
    figures = report(result)
    print(json.dumps(figures, indent=2))
    if args.json:
        trajectories = [r.to_dict() for r in result["records"]]
        Path(args.json).write_text(json.dumps({"figures": figures, "records": trajectories}, indent=1,
                                              default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
