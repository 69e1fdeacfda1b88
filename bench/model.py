"""Benchmark the embedded model on the default session (CRM pack): speed, cache, validity, success.

    .venv/bin/python bench/model.py [-n 6] [--model qwen2.5-coder-1.5b] [--session sessions/pilot.yaml]
                                    [--steps 8] [--seed S] [--json OUT.json] [--speculative]
    .venv/bin/python bench/model.py --compare-speculative -n 3 [--context 4096]

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

`--compare-speculative` runs the same tasks twice side by side — without and with prompt-lookup
speculative decoding, one server each, alternating which goes first
per task — and prints both sets of figures, the ratio of seconds per episode, and whether the two
produced the same output at every step (temperature 0).
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


def bench_session(args):
    from lamsim_tui.session.config import load_session

    session = load_session(args.session)
    agent = dataclasses.replace(session.agent, kind="embedded", embedded_model=args.model or session.agent.embedded_model)
    if args.format:
        agent = dataclasses.replace(agent, format=args.format)
    if args.unconstrained:
        agent = dataclasses.replace(agent, constrained=False)
    if args.context:
        agent = dataclasses.replace(agent, embedded_context=args.context)
    agent = dataclasses.replace(agent, embedded_temperature=0.0)
    budget = dataclasses.replace(session.budget, steps=args.steps, seconds=args.episode_seconds)
    return dataclasses.replace(session, agent=agent, concurrency=1, budget=budget)


async def bench(args) -> dict:
    from lamsim_tui.agents.model import ModelAgentFactory
    from lamsim_tui.events import EpisodeFinished
    from lamsim_tui.packs import load_pack
    from lamsim_tui.simulator.engine import Engine

    session = bench_session(args)
    pack = load_pack(session.pack_dir())
    factory = ModelAgentFactory(session, pack, embedded=True, speculative=args.speculative)
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


async def compare_speculative(args) -> dict:
    """The same tasks without and with speculative decoding, one server each, alternating per task."""
    from lamsim_tui.agents.model import ModelAgentFactory
    from lamsim_tui.packs import load_pack
    from lamsim_tui.simulator.runner import ToolRunner
    from lamsim_tui.simulator.tasks import TaskGenerator, template_weights
    from lamsim_tui.testing.episodes import run_tasks

    sessions = {"baseline": bench_session(args), "speculative": bench_session(args)}
    pack = load_pack(sessions["baseline"].pack_dir())
    seed = sessions["baseline"].seed if args.seed is None else args.seed
    tasks = TaskGenerator(pack, template_weights(pack, sessions["baseline"].templates),
                          ToolRunner(pack)).generate(args.n, seed).tasks
    factories = {name: ModelAgentFactory(s, pack, embedded=True, speculative=name == "speculative")
                 for name, s in sessions.items()}
    startup = {}
    records: dict[str, list] = {name: [] for name in sessions}
    try:
        for name, factory in factories.items():
            t0 = time.perf_counter()
            await factory.start()
            startup[name] = time.perf_counter() - t0
        for i, task in enumerate(tasks):
            order = list(sessions) if i % 2 == 0 else list(reversed(sessions))
            for name in order:
                (record,) = await run_tasks(sessions[name], pack, factories[name], [task], seed=seed)
                records[name].append(record)
                print(f"  task {i + 1}/{len(tasks)} {name:11}: {record.end_reason:16} success="
                      f"{record.verdict.success!s:5} steps={len(record.steps)} {record.timing.wall_s:.1f} s",
                      file=sys.stderr, flush=True)
            if args.json:  # what is done so far survives an interrupted run
                _write(args.json, _compared(records, startup, factories))
    finally:
        for factory in factories.values():
            await factory.aclose()
    return _compared(records, startup, factories)


def _write(path: str, compared: dict) -> None:
    Path(path).write_text(json.dumps(compared, indent=1, default=str))


def _compared(records: dict, startup: dict, factories: dict) -> dict:
    from lamsim_tui.simulator.tally import RunSummary

    figures = {}
    for name, done in records.items():
        summary = RunSummary()
        for record in done:
            summary.add(record.listing())
        figures[name] = report({"startup_s": startup.get(name, 0.0), "summary": summary.to_dict(), "records": done,
                                "model": factories[name].embedded_info})
    same = []
    for a, b in zip(records["baseline"], records["speculative"], strict=False):
        raws_a, raws_b = [s.raw for s in a.steps], [s.raw for s in b.steps]
        first = next((k for k, (x, y) in enumerate(zip(raws_a, raws_b, strict=False)) if x != y), None)
        if first is None and len(raws_a) != len(raws_b):
            first = min(len(raws_a), len(raws_b))
        same.append({"task": a.task.id, "template": a.template, "same_outputs": first is None,
                     "first_different_step": first, "steps": [len(raws_a), len(raws_b)],
                     "same_actions": a.action_signature() == b.action_signature()})
    base = figures["baseline"]["s_per_episode_mean"] if records["baseline"] else None
    spec = figures["speculative"]["s_per_episode_mean"] if records["speculative"] else None
    return {"figures": figures, "episodes": same,
            "speculative_over_baseline_s_per_episode": round(spec / base, 3) if base and spec else None,
            "identical_episodes": sum(e["same_outputs"] for e in same), "tasks": len(same),
            "records": {name: [r.to_dict() for r in rs] for name, rs in records.items()}}


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
    parser.add_argument("--context", type=int, help="context window in tokens (default: the session's)")
    parser.add_argument("--speculative", action="store_true", help="prompt-lookup speculative decoding on")
    parser.add_argument("--compare-speculative", action="store_true",
                        help="the same tasks without and with speculative decoding, side by side")
    parser.add_argument("--json", help="also write the figures (and trajectories) to this file")
    args = parser.parse_args()
    if args.compare_speculative:
        compared = asyncio.run(compare_speculative(args))
        if args.json:
            _write(args.json, compared)
        compared.pop("records")
        print(json.dumps(compared, indent=2))
        return 0
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
