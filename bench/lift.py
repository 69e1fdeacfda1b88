"""Does the store teach? The lift of demonstrations from accepted trajectories, measured side by side.

    .venv/bin/python bench/lift.py [-n 30] [--conditions none,k1,k2] [--demos-from model|gold]
        [--session sessions/pilot.yaml ...] [--agent embedded|model|scripted]
        [--model NAME_OR_GGUF] [--model openai/NAME --api-base URL] [--store-tasks 20] [--out DIR]

For each session (default: the CRM pilot and the travel session, on the embedded model):

1. **A demonstration store** (`<out>/store-<session>`): the agent, shown nothing, runs
   `--store-tasks` tasks drawn with `--store-seed`, and every trajectory that succeeded and passed
   the session's filters is accepted (as an operator would); with `--demos-from gold` the store holds
   clean replays of those tasks' gold programs instead. `--reuse-store` keeps a store made before.
2. **Held-out tasks**: `-n` tasks drawn with `--seed`, none of them a task of the store.
3. **Conditions**, on the same tasks with the same episode seeds: `none` (no demonstrations), `kN`
   (N per episode, from that store, placement `system`), `kN@episode` (chosen per episode, as turns
   after the system prompt), `kN+rejected` (steps that feedback rejected stay in).
4. **Interleaved**: task i runs every condition before task i+1, in an order rotated by i, so machine
   noise falls on all alike; each condition has its own agent factory (for the embedded model: its
   own server, whose prefix cache then holds what a real session of that condition would).

Printed and written (`<out>/lift.json`, `<out>/lift.md`, and every held-out record in
`<out>/records-<session>.jsonl`), per condition: success with a 95% Wilson interval, valid-action
rate, mean steps, seconds per episode, prompt tokens processed and served from cache per episode,
demonstrations shown, and accepted trajectories per hour (successful and passing the filters, per
hour of episode wall time). The machine's other load is printed with it: these are wall-clock figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_SESSIONS = (ROOT / "sessions" / "pilot.yaml", ROOT / "sessions" / "travel.yaml")
_CONDITION = re.compile(r"^(?:none|k(?P<k>\d+))(?:@(?P<placement>system|episode))?(?P<rejected>\+rejected)?$")


@dataclass(frozen=True)
class Condition:
    name: str
    count: int
    placement: str = "system"
    keep_rejected: bool = False


def parse_conditions(text: str) -> list[Condition]:
    out = []
    for raw in (part.strip() for part in text.split(",")):
        match = _CONDITION.match(raw)
        if not match:
            raise SystemExit(f"lift: --conditions: {raw!r} is not a condition (none, k2, k2@episode, k2+rejected)")
        count = int(match.group("k") or 0)
        out.append(Condition(raw, count, match.group("placement") or "system", bool(match.group("rejected"))))
    if len({c.name for c in out}) != len(out):
        raise SystemExit("lift: --conditions: a condition is named twice")
    return out


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float | None, float | None]:
    """The 95% Wilson score interval of a success rate."""
    if n == 0:
        return None, None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


# ----- sessions, agents, stores ------------------------------------------------------------------


def configured(args, path: Path):
    """The session with this benchmark's overrides (agent, model, budget), one episode at a time."""
    from lamsim_tui.session.config import ModelSettings, load_session

    session = load_session(path)
    agent = session.agent
    kind = args.agent or ("model" if args.api_base else "embedded")
    if kind == "embedded":
        agent = dataclasses.replace(agent, kind="embedded", embedded_model=args.model or agent.embedded_model)
    elif kind == "model":
        if args.api_base or args.model:
            if not args.model:
                raise SystemExit("lift: --api-base needs --model (a litellm model string such as openai/NAME)")
            model = ModelSettings(model=args.model, api_base=args.api_base, temperature=args.temperature,
                                  api_key_env=args.api_key_env)
            agent = dataclasses.replace(agent, kind="model", models=[model])
        elif not agent.models:
            raise SystemExit(f"lift: {path} names no models: give --model (and --api-base)")
        else:
            agent = dataclasses.replace(agent, kind="model")
    else:
        agent = dataclasses.replace(agent, kind="scripted")
    if args.format:
        agent = dataclasses.replace(agent, format=args.format)
    budget = session.budget
    if args.steps:
        budget = dataclasses.replace(budget, steps=args.steps)
    if args.episode_seconds:
        budget = dataclasses.replace(budget, seconds=args.episode_seconds)
    return dataclasses.replace(session, agent=agent, budget=budget, concurrency=1)


def with_demonstrations(session, condition: Condition, store_dir: Path):
    from lamsim_tui.session.config import DemonstrationSettings

    settings = DemonstrationSettings(count=condition.count, source=str(store_dir), placement=condition.placement,
                                     keep_rejected=condition.keep_rejected, cold_start="none")
    return dataclasses.replace(session, demonstrations=settings)


def draw_tasks(session, pack, n: int, seed: int, avoid: set[str] = frozenset()):
    from lamsim_tui.simulator.runner import ToolRunner
    from lamsim_tui.simulator.tasks import TaskGenerator, template_weights

    generator = TaskGenerator(pack, template_weights(pack, session.templates), ToolRunner(pack))
    tasks = [t for t in generator.generate(n + len(avoid), seed).tasks if t.id not in avoid]
    return tasks[:n]


async def build_store(args, session, pack, store_dir: Path, log: Callable[[str], None]) -> dict:
    """Fill the demonstration store and accept what an operator would accept."""
    from lamsim_tui.agents import make_agent_factory
    from lamsim_tui.agents.replay import GoldReplayFactory
    from lamsim_tui.curation.review import accept
    from lamsim_tui.store import open_store
    from lamsim_tui.testing.episodes import run_tasks

    tasks = draw_tasks(session, pack, args.store_tasks, args.store_seed)
    factory = GoldReplayFactory(session, pack) if args.demos_from == "gold" else make_agent_factory(session, pack)
    started = time.perf_counter()
    with open_store(store_dir) as store:
        try:
            records = await run_tasks(session, pack, factory, tasks, seed=args.store_seed, store=store,
                                      on_event=_progress(log, "store", len(tasks)))
        finally:
            await factory.aclose()
        accepted = 0
        for record in records:
            if record.status == "pending" and record.verdict.success:
                accept(store, record.id, note="bench/lift: succeeded and passed the filters")
                accepted += 1
    return {"tasks": len(tasks), "accepted": accepted,
            "from": "gold replays" if args.demos_from == "gold" else "the agent's own successes",
            "wall_s": round(time.perf_counter() - started, 1)}


def store_summary(store_dir: Path) -> tuple[set[str], int]:
    from lamsim_tui.store import open_store

    with open_store(store_dir, readonly=True) as store:
        listings = store.listings()
        return {item.task_id for item in listings}, sum(item.status == "accepted" for item in listings)


def _progress(log: Callable[[str], None], label: str, total: int) -> Callable:
    from lamsim_tui.events import EpisodeFinished

    done = [0]

    def on_event(event) -> None:
        if isinstance(event, EpisodeFinished):
            done[0] += 1
            t = event.trajectory
            log(f"  {label} {done[0]}/{total}: {t.template:28} success={t.verdict.success!s:5} "
                f"steps={len(t.steps)} {t.timing.wall_s:.1f} s")

    return on_event


# ----- the measurement ---------------------------------------------------------------------------


async def measure_session(args, path: Path, conditions: list[Condition], out: Path,
                          log: Callable[[str], None]) -> dict:
    from lamsim_tui.agents import make_agent_factory
    from lamsim_tui.packs import load_pack
    from lamsim_tui.testing.episodes import run_tasks

    session = configured(args, path)
    pack = load_pack(session.pack_dir())
    name = session.session_name
    store_dir = (out / f"store-{name}").resolve()
    log(f"lift: session {name} (pack {pack.name}), agent {session.agent.kind}")
    if args.reuse_store and store_dir.is_dir():
        built = {"reused": True}
    else:
        if store_dir.exists():
            raise SystemExit(f"lift: {store_dir} exists: remove it, or pass --reuse-store to use it")
        built = await build_store(args, session, pack, store_dir, log)
    store_tasks, accepted = store_summary(store_dir)
    built.update(accepted_in_store=accepted, store=str(store_dir))
    log(f"lift: store {store_dir}: {accepted} accepted trajectories of {len(store_tasks)} tasks")
    if accepted == 0 and any(c.count for c in conditions):
        log("lift: the store holds no accepted trajectory: the demonstration conditions will show none "
            "(try --demos-from gold or more --store-tasks)")
    tasks = draw_tasks(session, pack, args.n, args.seed, avoid=store_tasks)
    if len(tasks) < args.n:
        log(f"lift: only {len(tasks)} held-out tasks could be drawn (the templates' slot space is small)")
    sessions = {c.name: with_demonstrations(session, c, store_dir) for c in conditions}
    factories = {c.name: make_agent_factory(sessions[c.name], pack) for c in conditions}
    rows: list[dict] = []
    records_path = out / f"records-{name}.jsonl"
    started = time.perf_counter()
    try:
        for c in conditions:
            t0 = time.perf_counter()
            await factories[c.name].start()
            log(f"lift: condition {c.name}: agent ready in {time.perf_counter() - t0:.1f} s")
        with open(records_path, "w", encoding="utf-8") as sink:
            for i, task in enumerate(tasks):
                order = conditions[i % len(conditions):] + conditions[:i % len(conditions)]
                for c in order:
                    (record,) = await run_tasks(sessions[c.name], pack, factories[c.name], [task], seed=args.seed)
                    row = episode_row(record, c.name, i)
                    rows.append(row)
                    sink.write(json.dumps({"condition": c.name, "record": record.to_dict()}, ensure_ascii=False,
                                          default=str) + "\n")
                    sink.flush()
                    log(f"  task {i + 1}/{len(tasks)} {c.name:12} {record.template:28} success={row['success']!s:5} "
                        f"steps={row['steps']} {row['wall_s']:.1f} s  demonstrations={row['demonstrations']}")
    finally:
        for factory in factories.values():
            await factory.aclose()
    return {"session": name, "path": str(path), "pack": pack.name, "agent": factories[conditions[0].name].describe(),
            "store": built, "tasks": [t.id for t in tasks], "wall_s": round(time.perf_counter() - started, 1),
            "conditions": {c.name: figures([r for r in rows if r["condition"] == c.name]) for c in conditions},
            "episodes": rows}


def episode_row(record, condition: str, position: int) -> dict:
    listing = record.listing()
    processed = cached = None
    for step in record.steps:
        usage = step.usage or {}
        if "processed_tokens" in usage or "prompt_tokens" in usage:
            hit = usage.get("cached_tokens") or 0
            done = usage.get("processed_tokens", (usage.get("prompt_tokens") or 0) - hit)
            processed = (processed or 0) + done
            cached = (cached or 0) + hit
    shown = record.demonstrations
    return {"condition": condition, "position": position, "task": record.task.id, "template": record.template,
            "seed": record.episode.seed, "success": record.verdict.success,
            "accepted": bool(record.verdict.success and record.verdict.passed), "steps": listing.steps,
            "valid_steps": listing.valid_steps, "wall_s": record.timing.wall_s, "end_reason": record.end_reason,
            "prompt_processed": processed, "prompt_cached": cached,
            "demonstrations": len(shown.items) if shown else 0,
            "demonstration_ids": shown.ids if shown else []}


def figures(rows: list[dict]) -> dict:
    n = len(rows)
    successes = sum(r["success"] for r in rows)
    steps = sum(r["steps"] for r in rows)
    wall = sum(r["wall_s"] for r in rows)
    low, high = wilson(successes, n)
    known = [r for r in rows if r["prompt_processed"] is not None]

    def mean(key: str, items: list[dict]) -> float | None:
        return round(sum(r[key] for r in items) / len(items), 1) if items else None

    return {
        "episodes": n, "successes": successes, "success_rate": round(successes / n, 4) if n else None,
        "success_ci95": [low, high],
        "valid_action_rate": round(sum(r["valid_steps"] for r in rows) / steps, 4) if steps else None,
        "mean_steps": round(steps / n, 2) if n else None,
        "s_per_episode": round(wall / n, 3) if n else None,
        "prompt_tokens_processed_per_episode": mean("prompt_processed", known),
        "prompt_tokens_cached_per_episode": mean("prompt_cached", known),
        "demonstrations_per_episode": round(sum(r["demonstrations"] for r in rows) / n, 2) if n else None,
        "accepted": sum(r["accepted"] for r in rows),
        "accepted_per_hour": round(sum(r["accepted"] for r in rows) / (wall / 3600), 1) if wall else None,
    }


def combined(sessions: list[dict], conditions: list[Condition]) -> dict:
    return {c.name: figures([r for s in sessions for r in s["episodes"] if r["condition"] == c.name])
            for c in conditions}


# ----- the report ----------------------------------------------------------------------------------

HEADER = ("| condition | success | 95% interval | valid actions | mean steps | s / episode | "
          "prompt tokens / episode: processed | from cache | demonstrations | accepted / hour |")


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _num(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(by_condition: dict) -> str:
    lines = [HEADER, "| --- " * 10 + "|"]
    for name, f in by_condition.items():
        low, high = f["success_ci95"]
        lines.append(
            f"| {name} | {f['successes']}/{f['episodes']} ({_pct(f['success_rate'])}) | "
            f"{_pct(low)}–{_pct(high)} | {_pct(f['valid_action_rate'])} | {_num(f['mean_steps'], 2)} | "
            f"{_num(f['s_per_episode'], 2)} | {_num(f['prompt_tokens_processed_per_episode'], 0)} | "
            f"{_num(f['prompt_tokens_cached_per_episode'], 0)} | {_num(f['demonstrations_per_episode'], 1)} | "
            f"{_num(f['accepted_per_hour'])} |")
    return "\n".join(lines)


def ratios(by_condition: dict, baseline: str) -> dict:
    base = by_condition.get(baseline)
    out = {}
    if not base:
        return out
    for name, f in by_condition.items():
        if name == baseline:
            continue
        out[name] = {
            "success_ratio": round(f["success_rate"] / base["success_rate"], 2)
            if base["success_rate"] and f["success_rate"] is not None else None,
            "s_per_episode_ratio": round(f["s_per_episode"] / base["s_per_episode"], 2)
            if base["s_per_episode"] and f["s_per_episode"] is not None else None,
        }
    return out


def markdown(result: dict) -> str:
    parts = [f"# Lift of demonstrations ({result['started']})", "",
             f"`{result['command']}`", "",
             f"{result['machine']}", ""]
    for s in result["sessions"]:
        store = s["store"]
        parts += [f"## {s['session']} (pack {s['pack']}, {len(s['tasks'])} held-out tasks per condition)", "",
                  f"Demonstration store: {store.get('accepted_in_store')} accepted trajectories"
                  + (f" from {store['tasks']} tasks ({store['from']}, {store['wall_s']} s)" if "tasks" in store
                     else " (reused)") + ".", "", table(s["conditions"]), ""]
    if len(result["sessions"]) > 1:
        parts += ["## All sessions", "", table(result["overall"]), ""]
    lift = result.get("ratios") or {}
    if lift:
        parts += ["Against `none`: " + "; ".join(
            f"{name}: success ×{_num(r['success_ratio'], 2)}, seconds per episode ×{_num(r['s_per_episode_ratio'], 2)}"
            for name, r in lift.items()), ""]
    return "\n".join(parts)


def machine() -> str:
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "?"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores; load average at the end {load} (other work on the machine shares these figures)"


async def run(args) -> dict:
    from datetime import UTC, datetime

    conditions = parse_conditions(args.conditions)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    started = datetime.now(UTC).isoformat(timespec="seconds")
    sessions = [await measure_session(args, Path(p), conditions, out, log) for p in (args.session or DEFAULT_SESSIONS)]
    overall = combined(sessions, conditions)
    result = {"started": started, "command": " ".join(["bench/lift.py", *sys.argv[1:]]), "machine": machine(),
              "conditions": [dataclasses.asdict(c) for c in conditions], "seed": args.seed,
              "store_seed": args.store_seed, "sessions": sessions, "overall": overall,
              "ratios": ratios(overall, "none")}
    (out / "lift.json").write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    (out / "lift.md").write_text(markdown(result), encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="held-out tasks per condition (per session)")
    parser.add_argument("--conditions", default="none,k1,k2",
                        help="comma-separated: none, kN, kN@episode, kN@system, kN+rejected (default none,k1,k2)")
    parser.add_argument("--session", action="append", help="session YAML (repeatable; default: pilot and travel)")
    parser.add_argument("--agent", choices=("embedded", "model", "scripted"),
                        help="default: embedded, or model when --api-base is given")
    parser.add_argument("--model", help="embedded model name or GGUF path; with --api-base a litellm model string")
    parser.add_argument("--api-base", help="an OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--api-key-env", help="environment variable holding the server's API key")
    parser.add_argument("--temperature", type=float, default=0.0, help="with --api-base (default 0)")
    parser.add_argument("--format", choices=("json", "native"))
    parser.add_argument("--demos-from", choices=("model", "gold"), default="model",
                        help="fill the store with the agent's own successes (default) or with gold replays")
    parser.add_argument("--store-tasks", type=int, default=20, help="tasks the store is built from (per session)")
    parser.add_argument("--store-seed", type=int, default=1001)
    parser.add_argument("--seed", type=int, default=2002, help="seed of the held-out tasks and their episodes")
    parser.add_argument("--reuse-store", action="store_true", help="use <out>/store-<session> made by an earlier run")
    parser.add_argument("--steps", type=int, help="step budget per episode (default: the session's)")
    parser.add_argument("--episode-seconds", type=float, help="time budget per episode (default: the session's)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "lift-out"), help="folder for stores and results")
    args = parser.parse_args(argv)
    if args.n < 1 or args.store_tasks < 1:
        parser.error("-n and --store-tasks must be at least 1")
    result = asyncio.run(run(args))
    print(markdown(result))
    print(f"\nwritten: {Path(args.out) / 'lift.json'}, {Path(args.out) / 'lift.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
