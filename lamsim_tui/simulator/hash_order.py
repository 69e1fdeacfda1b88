"""Samplers drawn again in other Python processes, for `lamsim check`.

Python orders a set of strings (and anything keyed by `hash()` of one) differently in each process
(hash randomisation). A sampler that chooses from such an order gives the same slots twice in one
process, so the in-process re-draw cannot see it, but another run of the same session draws other
tasks from the same seed. `lamsim check` therefore draws the first few seeds of every template in
two more processes with other hash seeds (`PYTHONHASHSEED`), while it checks in its own, and
compares the slots.

    python -m lamsim_tui.simulator.hash_order PACK_DIR SEED TOOL_SECONDS [TEMPLATE ...]

prints one line, `LAMSIM-SLOTS {template: [slots, ...]}` (null for a draw that failed; a template
stops at its first failure). It ends when its standard input closes (the check that started it
ended, or died), and the check waits for it at most `WAIT_S` seconds after its own work: a sampler
that hangs costs the check nothing more.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

DRAWS = 3  # the first draws of each template compared
HASH_SEEDS = ("1", "2")  # two other orders: a two-element set keeps its order in both only one time in four
MARK = "LAMSIM-SLOTS "
WAIT_S = 10.0


def draw_seeds(seed: int, template: str, n: int = DRAWS) -> list[int]:
    """The seeds of a template's first `n` draws in `check_templates` (the same sequence)."""
    rng = random.Random(f"{seed}:{template}")
    return [rng.getrandbits(64) for _ in range(n)]


def same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class Elsewhere:
    """The other processes, started at once so they draw while the check runs in this one."""

    def __init__(self, pack_dir: Path, seed: int, templates: list[str], tool_seconds: float):
        self.procs: list[tuple[subprocess.Popen, threading.Thread, list[str]]] = []
        if not templates:
            return
        own = os.environ.get("PYTHONHASHSEED")
        for hash_seed in HASH_SEEDS:
            env = {**os.environ, "PYTHONHASHSEED": hash_seed if hash_seed != own else "3"}
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "lamsim_tui.simulator.hash_order", str(pack_dir), str(seed),
                     repr(float(tool_seconds)), *templates],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
            except OSError:  # no process to spare: this check is skipped, the others stand
                break
            lines: list[str] = []
            reader = threading.Thread(target=lambda p=proc, out=lines: out.extend(p.stdout), daemon=True)
            reader.start()
            self.procs.append((proc, reader, lines))

    def results(self) -> list[dict[str, list]]:
        """Each process's draws; one that failed or is still drawing `WAIT_S` from now gives nothing."""
        out = []
        deadline = time.monotonic() + WAIT_S
        for _proc, reader, lines in self.procs:
            reader.join(max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                continue
            for line in list(lines):
                if line.startswith(MARK):
                    try:
                        out.append(json.loads(line[len(MARK):]))
                    except ValueError:
                        pass
        self.close()
        return out

    def close(self) -> None:
        """Stop the processes still running (a hung sampler), by their pids."""
        for proc, _reader, _lines in self.procs:
            try:
                proc.stdin.close()  # the process ends on its own when its input closes...
            except OSError:
                pass
            if proc.poll() is None:
                proc.kill()  # ...but one stuck in C code does not notice
            proc.wait()
        self.procs = []


def main(argv: list[str]) -> int:
    from lamsim_tui.packs import load_pack
    from lamsim_tui.simulator.runner import ToolRunner
    from lamsim_tui.simulator.tasks import GoldFailure, sample_slots

    def orphaned() -> None:  # the check closed our input, or died: stop at once
        try:
            sys.stdin.read()
        finally:
            os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    pack_dir, seed, tool_seconds, wanted = Path(argv[0]), int(argv[1]), float(argv[2]), argv[3:]
    pack = load_pack(pack_dir)
    runner = ToolRunner(pack, timeout=tool_seconds)
    drawn: dict[str, list] = {}
    for tid in wanted:
        spec = pack.templates.get(tid)
        if spec is None or spec.fixed:
            continue
        drawn[tid] = []
        for draw in draw_seeds(seed, tid):
            try:
                drawn[tid].append(sample_slots(pack, spec, random.Random(draw), runner))
            except GoldFailure:
                drawn[tid].append(None)
                break  # nothing more to compare; a sampler that hangs would hang again
    sys.stdout.write(MARK + json.dumps(drawn, ensure_ascii=True) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
