"""Engine throughput: a session (the default one unless `--session`) with the scripted agent, end to
end including store writes.

    python bench/engine.py [--session sessions/pilot.yaml] [--episodes 500] [--repeats 5] [--concurrency 4]
                           [--no-store]

Any session works: its pack, templates, budgets, feedback and filters are used as they are; only
the agent becomes the scripted one (and `--concurrency` replaces the session's).

Prints episodes per second and time per step as medians over repeats: "engine time" sums each
step's time inside the engine (feedback, tool execution, judge, filters, record building; no model
time; overlapping concurrent steps make it an over-estimate), "wall" and "CPU" divide the whole
run (scripted agent and durable store writes included) by the number of steps. Run it pinned to one core to
match the goal ("on one core"): `taskset -c 0 python bench/engine.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lamsim_tui.agents.scripted import ScriptedAgentFactory  # noqa: E402
from lamsim_tui.packs import load_pack  # noqa: E402
from lamsim_tui.session.config import load_session  # noqa: E402
from lamsim_tui.simulator.engine import Engine  # noqa: E402


def one_run(session, pack, episodes: int, seed: int, use_store: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = None
        if use_store:
            from lamsim_tui.store import open_store

            store = open_store(Path(tmp) / "store")
        engine = Engine(session, pack, ScriptedAgentFactory(session, pack), store=store, tasks=episodes, seed=seed)
        t0 = time.perf_counter()
        engine.prepare()
        t_prepare = time.perf_counter() - t0
        t1, c1 = time.perf_counter(), time.process_time()
        summary = asyncio.run(engine.run())
        t_run, cpu_run = time.perf_counter() - t1, time.process_time() - c1
        if store is not None:
            assert store.count() == summary.episodes, "every episode must be stored"
            store.close()
    return {
        "episodes": summary.episodes,
        "steps": summary.steps,
        "prepare_s": t_prepare,
        "run_s": t_run,
        "total_s": t_prepare + t_run,
        "engine_s": summary.engine_s,
        "cpu_s": cpu_run,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--session", default=str(ROOT / "sessions" / "pilot.yaml"),
                        help="session YAML file (default: sessions/pilot.yaml)")
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--no-store", action="store_true")
    args = parser.parse_args()

    session = load_session(args.session)
    session_fields = {"concurrency": args.concurrency,
                      "agent": dataclasses.replace(session.agent, kind="scripted")}
    tuned = dataclasses.replace(session, **session_fields)
    pack = load_pack(tuned.pack_dir())

    runs = [one_run(tuned, pack, args.episodes, seed, not args.no_store) for seed in range(args.repeats)]
    eps_total = [r["episodes"] / r["total_s"] for r in runs]
    eps_run = [r["episodes"] / r["run_s"] for r in runs]
    step_ms = [1000 * r["engine_s"] / r["steps"] for r in runs]
    wall_step_ms = [1000 * r["run_s"] / r["steps"] for r in runs]
    cpu_step_ms = [1000 * r["cpu_s"] / r["steps"] for r in runs]
    print(f"session {session.session_name} (pack {pack.name}), scripted agent, {args.episodes} episodes x "
          f"{args.repeats} runs, "
          f"concurrency {args.concurrency}, store {'off' if args.no_store else 'on (durable)'}")
    print(f"episodes/s incl. task generation  median {statistics.median(eps_total):8.1f}  "
          f"(min {min(eps_total):.1f}, max {max(eps_total):.1f})")
    print(f"episodes/s episodes only          median {statistics.median(eps_run):8.1f}")
    print(f"engine time per step (ms)         median {statistics.median(step_ms):8.3f}  "
          f"(min {min(step_ms):.3f}, max {max(step_ms):.3f})")
    print(f"wall time per step (ms)           median {statistics.median(wall_step_ms):8.3f}  "
          "(all work incl. agent and store, divided by steps)")
    print(f"CPU time per step (ms)            median {statistics.median(cpu_step_ms):8.3f}")
    print(f"mean steps per episode            {runs[0]['steps'] / runs[0]['episodes']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
