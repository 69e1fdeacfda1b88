"""What one tool call costs through the runner (the one path every call takes), from the engine's
event loop and blocking, as medians over repeats.

    python bench/tool_call.py [--calls 5000] [--repeats 7] [--root OTHER_CHECKOUT]

`--root` measures another checkout's lamsim with this script (e.g. main, for a before/after in the
same run). The call is the CRM pack's `get_account`: a dict lookup, so what is measured is the
runner's own cost (worker hand-off, time limit, result to JSON, observation).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    sys.path.insert(0, str(args.root))

    from lamsim_tui.packs import load_pack
    from lamsim_tui.simulator.actions import ToolCall
    from lamsim_tui.simulator.runner import ToolRunner

    pack = load_pack(args.root / "tools" / "crm")
    account = next(iter(pack.seed.tables["accounts"]))
    runner = ToolRunner(pack)
    call = ToolCall("get_account", {"account": account})

    async def async_calls() -> tuple[float, float]:
        sb = pack.new_sandbox()
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.calls):
            outcome = await runner.execute(sb, call, prechecked=True)
            runner.observation(outcome)
        return (time.perf_counter() - started) / args.calls, (time.process_time() - cpu) / args.calls

    def sync_calls() -> tuple[float, float]:
        sb = pack.new_sandbox()
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.calls):
            runner.observation(runner.execute_sync(sb, call))
        return (time.perf_counter() - started) / args.calls, (time.process_time() - cpu) / args.calls

    asyncio.run(async_calls())  # warm up: threads started, caches filled
    a = [asyncio.run(async_calls()) for _ in range(args.repeats)]
    s = [sync_calls() for _ in range(args.repeats)]
    print(f"{args.root}: one tool call, {args.calls} calls x {args.repeats} repeats")
    for name, runs in (("from the event loop", a), ("blocking", s)):
        wall, cpu = [w for w, _ in runs], [c for _, c in runs]
        print(f"  {name:<20}  wall median {statistics.median(wall) * 1e6:7.1f} us (min {min(wall) * 1e6:6.1f})  "
              f"CPU median {statistics.median(cpu) * 1e6:7.1f} us (min {min(cpu) * 1e6:6.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
