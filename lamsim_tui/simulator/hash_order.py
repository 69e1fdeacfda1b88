"""Samplers drawn again in other Python processes, for `lamsim check`.

Python orders a set of strings (and anything keyed by `hash()` of one) differently in each process
(hash randomisation). A sampler that chooses from such an order gives the same slots twice in one
process, so the in-process re-draw cannot see it, but another run of the same session draws other
tasks from the same seed. `lamsim check` therefore draws the first few seeds of every template in
two more processes with other hash seeds (`PYTHONHASHSEED`), while it checks in its own, and
compares the slots.

    python -m lamsim_tui.simulator.hash_order PACK_DIR SEED [TEMPLATE ...]

prints one line, `LAMSIM-SLOTS {template: [slots, ...]}` (null for a draw that failed).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

DRAWS = 3  # the first draws of each template compared
HASH_SEEDS = ("1", "2")  # two other orders: a two-element set keeps its order in both only one time in four
MARK = "LAMSIM-SLOTS "
WAIT_S = 60.0


def draw_seeds(seed: int, template: str, n: int = DRAWS) -> list[int]:
    """The seeds of a template's first `n` draws in `check_templates` (the same sequence)."""
    rng = random.Random(f"{seed}:{template}")
    return [rng.getrandbits(64) for _ in range(n)]


def same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class Elsewhere:
    """The other processes, started at once so they draw while the check runs in this one."""

    def __init__(self, pack_dir: Path, seed: int, templates: list[str]):
        self.procs: list[subprocess.Popen] = []
        if not templates:
            return
        own = os.environ.get("PYTHONHASHSEED")
        for hash_seed in HASH_SEEDS:
            env = {**os.environ, "PYTHONHASHSEED": hash_seed if hash_seed != own else "3"}
            try:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "lamsim_tui.simulator.hash_order", str(pack_dir), str(seed), *templates],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True))
            except OSError:  # no process to spare: this check is skipped, the others stand
                break

    def results(self) -> list[dict[str, list]]:
        """Each process's draws; a process that failed or took too long gives nothing (and is killed)."""
        out = []
        for proc in self.procs:
            try:
                text, _ = proc.communicate(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                continue
            for line in text.splitlines():
                if line.startswith(MARK):
                    try:
                        out.append(json.loads(line[len(MARK):]))
                    except ValueError:
                        pass
        return out


def main(argv: list[str]) -> int:
    from lamsim_tui.packs import load_pack
    from lamsim_tui.simulator.runner import ToolRunner
    from lamsim_tui.simulator.tasks import GoldFailure, sample_slots

    pack_dir, seed, wanted = Path(argv[0]), int(argv[1]), argv[2:]
    pack = load_pack(pack_dir)
    runner = ToolRunner(pack)
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
    sys.stdout.write(MARK + json.dumps(drawn, ensure_ascii=True) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
