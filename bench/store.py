"""Store benchmark: lamsim's journal store against plain TinyDB JSONStorage, and the CLI on big stores.

    .venv/bin/python bench/store.py [--sizes 1000,10000,50000] [--accepts 200] [--plain-accepts 10]
                                    [--cli-runs 5] [--before DIR] [--no-plain]

For each size it fills a store with realistic trajectories (`lamsim_tui.testing.synthetic`, about
11 KB of JSON each) and prints: time to open, time to list pending (what `lamsim review list
--status pending` does: filter and one summary line each), and the median / 95th percentile / max of
one durable accept (an fsync'd write, through `review.accept`). Plain TinyDB gets the same figures
with the same records; because every one of its writes rewrites (and re-reads) the whole file, it
gets fewer accepts at the larger sizes (`--plain-accepts`, at most 3 at 50,000); those figures are
measured, not extrapolated.

Then, on the same store, whole CLI commands as a user runs them, each in its own process: `review
show ID`, `review list --status pending`, `stats`, `review accept ID`, and what the app does to show
its queue (open the store for writing, read the pending and filtered listings). For each: the median
wall time and the median peak memory (max RSS of that process, from `os.wait4`: the per-process
figure `getrusage(RUSAGE_CHILDREN)` accumulates) over `--cli-runs` runs. With `--before DIR` (a
checkout of an earlier lamsim, e.g. `git worktree add --detach /tmp/before main`) the same commands
run with that code too, on the same store, in the same session: the before and after figures are
measured side by side. The earlier lamsim's accepts run on a copy of the store (it keeps no index).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinydb import Query, TinyDB  # noqa: E402
from tinydb.storages import JSONStorage  # noqa: E402

from lamsim_tui.cli.review import list_rows, summary_line  # noqa: E402
from lamsim_tui.curation.review import accept  # noqa: E402
from lamsim_tui.record import Listing  # noqa: E402
from lamsim_tui.store import open_store  # noqa: E402
from lamsim_tui.testing.synthetic import make_record  # noqa: E402


def records(n: int, seed: int = 0, chunk: int = 500):
    """The same n records every time, in chunks (never all in memory at once)."""
    rng = random.Random(seed)
    for start in range(0, n, chunk):
        yield [make_record(rng, i) for i in range(start, min(n, start + chunk))]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:,.1f} ms" if ms < 10_000 else f"{seconds:,.1f} s"


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(samples), "median": statistics.median(ordered), "p95": p95, "max": ordered[-1]}


def bench_lamsim(n: int, root: Path, accepts: int, keep: bool = False) -> dict:
    path = root / "lamsim"
    store = open_store(path)
    fill_start = time.perf_counter()
    for chunk in records(n):  # filling is not what is measured: one fsync per 500 records
        with store.batch():
            for record in chunk:
                store.add(record)
    store.close()  # compacts: the state after any normal session
    fill_s = time.perf_counter() - fill_start
    size = sum(p.stat().st_size for p in path.iterdir())
    gc.collect()
    open_s, store = timed(lambda: open_store(path))
    open_ro_s, reader = timed(lambda: open_store(path, readonly=True))
    reader.close()
    list_s, rows = timed(lambda: [(item.id, summary_line(item)) for item in list_rows(store, status="pending")])
    pending = [record_id for record_id, _ in rows]
    random.Random(1).shuffle(pending)
    samples = []
    for record_id in pending[:accepts]:
        t, _ = timed(lambda rid=record_id: accept(store, rid, note="bench"))
        samples.append(t)
    store.close()
    return {
        "path": str(path),
        "fill_s": fill_s,
        "bytes": size,
        "open_s": open_s,
        "open_readonly_s": open_ro_s,
        "list_s": list_s,
        "pending": len(rows),
        "accept": summary(samples),
    }


def bench_plain(n: int, root: Path, accepts: int) -> dict:
    path = root / "plain.json"
    fill_start = time.perf_counter()
    storage = JSONStorage(str(path))
    docs = {str(i + 1): r.to_dict() for i, r in enumerate(r for chunk in records(n) for r in chunk)}
    storage.write({"_default": docs})  # one write, not n rewrites
    del docs
    storage.close()
    fill_s = time.perf_counter() - fill_start
    gc.collect()

    def _open():
        db = TinyDB(str(path))
        len(db)  # JSONStorage reads lazily: the first access parses the file
        return db

    open_s, db = timed(_open)
    q = Query()
    list_s, rows = timed(lambda: [(d.doc_id, summary_line(Listing.of(d, d.doc_id))) for d in db.search(q.status == "pending")])
    pending = [r.doc_id for r in db.search(q.status == "pending")]
    random.Random(1).shuffle(pending)
    samples = []
    for doc_id in pending[:accepts]:
        entry = {"seq": 1, "action": "accept", "user": "bench", "note": "bench"}
        t, _ = timed(
            lambda d=doc_id, e=entry: db.update({"status": "accepted", "review": {"history": [e]}}, doc_ids=[d])
        )
        samples.append(t)
    db.close()
    return {
        "fill_s": fill_s,
        "bytes": path.stat().st_size,
        "open_s": open_s,
        "list_s": list_s,
        "pending": len(rows),
        "accept": summary(samples),
    }


# ----- whole CLI commands, each in its own process -------------------------------------------------

APP_QUEUE = (
    "import sys, time; t = time.perf_counter(); from lamsim_tui.store import open_store; "
    "s = open_store(sys.argv[1]); q = s.listings(('pending', 'filtered')); "
    "print(len(q), time.perf_counter() - t); s.close()"
)


# Runs each measured command for the benchmark and reports how it went. It is a small process of its
# own because a child's peak RSS (what wait4 and getrusage(RUSAGE_CHILDREN) report) includes the memory
# of the process it was forked from: forked from this benchmark, every command would count its 100+ MB.
LAUNCHER = r"""
import json, os, sys, time
for request in sys.stdin:
    job = json.loads(request)
    err = os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(err, 2)
        os.chdir(job["cwd"])
        os.execve(job["argv"][0], job["argv"], job["env"])
    _pid, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    os.close(err)
    print(json.dumps({"wall": wall, "maxrss_kb": usage.ru_maxrss, "exit": os.waitstatus_to_exitcode(status)}),
          flush=True)
"""


class Launcher:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.stderr = Path(tempfile.mkdtemp(prefix="lamsim-bench-")) / "stderr"

    def run(self, argv: list[str], tree: Path) -> tuple[float, int, int]:
        """(wall seconds, peak RSS in KB, exit status) of one command run with `tree`'s code."""
        # As a user runs it: compiled modules cached (the first, warming-up run of each command writes them).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPATH"] = str(tree)
        job = {"argv": [sys.executable, *argv], "env": env, "cwd": tempfile.gettempdir(), "stderr": str(self.stderr)}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        done = json.loads(self.proc.stdout.readline())
        if done["exit"] != 0:
            tail = self.stderr.read_text(errors="replace")[-300:]
            print(f"  {' '.join(argv[2:6])}...: exit {done['exit']}: {tail}", file=sys.stderr)
        return done["wall"], done["maxrss_kb"], done["exit"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
        shutil.rmtree(self.stderr.parent, ignore_errors=True)


def cli_commands(path: Path, ids: list[str], accept_ids: list[str]) -> dict[str, list[list[str]]]:
    """Each figure's command lines, one per run (show and accept take a different id each time)."""
    store = str(path)
    lamsim = ["-m", "lamsim_tui"]
    return {
        "review show ID": [[*lamsim, "review", "--store", store, "show", i[:10]] for i in ids],
        "review list --status pending": [[*lamsim, "review", "--store", store, "list", "--status", "pending"]],
        "stats": [[*lamsim, "stats", "--store", store]],
        "review accept ID": [[*lamsim, "review", "--store", store, "accept", i[:10], "--note", "bench"]
                             for i in accept_ids],
        "app: open + queue listings": [["-c", APP_QUEUE, store]],
    }


def bench_cli(path: Path, runs: int, before: Path | None) -> dict:
    from lamsim_tui.store import open_store

    with open_store(path, readonly=True) as store:
        pending = [item.id for item in store.listings("pending")]
    rng = random.Random(7)
    rng.shuffle(pending)
    trees: list[tuple[str, Path, Path]] = []
    if before is not None:
        copy = path.parent / "before-copy"
        shutil.copytree(path, copy, ignore=shutil.ignore_patterns("writer.lock"))
        trees.append(("before", before, copy))
    trees.append(("after", ROOT, path))
    results: dict = {}
    launcher = Launcher()
    for label, tree, store_path in trees:
        for name, lines in cli_commands(store_path, pending[:runs], pending[runs:2 * runs]).items():
            if name.startswith(("review show", "review list", "app")):
                launcher.run(lines[-1], tree)  # warm up: compiled modules, the page cache
            samples = []
            for i in range(runs):
                argv = lines[i % len(lines)]
                samples.append(launcher.run(argv, tree))
            ok = [s for s in samples if s[2] == 0]
            results.setdefault(name, {})[label] = {
                "runs": len(ok),
                "failed": len(samples) - len(ok),
                "wall_s": statistics.median(s[0] for s in ok) if ok else None,
                "max_rss_mb": statistics.median(s[1] for s in ok) / 1024 if ok else None,
            }
            print(f"  cli {label:6} {name:30} {fmt_ms(results[name][label]['wall_s']):>10}", flush=True)
    launcher.close()
    if before is not None:
        shutil.rmtree(path.parent / "before-copy", ignore_errors=True)
    return results


def print_cli(n: int, cli: dict) -> None:
    labels = [label for label in ("before", "after") if any(label in v for v in cli.values())]
    header = f"{'command at ' + format(n, ',') + ' trajectories':<36}" + "".join(
        f" {label + ' wall':>12} {label + ' RSS':>11}" for label in labels)
    print()
    print(header)
    print("-" * len(header))
    for name, by in cli.items():
        cells = ""
        for label in labels:
            r = by.get(label) or {}
            rss = r.get("max_rss_mb")
            cells += f" {fmt_ms(r.get('wall_s')):>12} {('-' if rss is None else f'{rss:,.0f} MB'):>11}"
        print(f"{name:<36}{cells}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--accepts", type=int, default=200, help="accepts timed on the lamsim store")
    parser.add_argument("--plain-accepts", type=int, default=20, help="accepts timed on plain TinyDB (<=3 at 50k)")
    parser.add_argument("--no-plain", action="store_true", help="skip plain TinyDB")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--dir", help="where to build the stores (default: a temp folder)")
    parser.add_argument("--cli-runs", type=int, default=5, help="runs of each CLI command (0: none)")
    parser.add_argument("--cli-sizes", default="50000", help="sizes whose CLI commands are measured")
    parser.add_argument("--before", help="a checkout of an earlier lamsim: its CLI is measured too")
    args = parser.parse_args()
    cli_sizes = {int(s) for s in args.cli_sizes.split(",") if s}
    before = Path(args.before).resolve() if args.before else None
    sizes = [int(s) for s in args.sizes.split(",")]
    root = Path(args.dir or tempfile.mkdtemp(prefix="lamsim-bench-"))
    results = {}
    try:
        for n in sizes:
            work = root / str(n)
            work.mkdir(parents=True, exist_ok=True)
            ours = bench_lamsim(n, work, args.accepts)
            if args.cli_runs and n in cli_sizes:
                ours["cli"] = bench_cli(Path(ours["path"]), args.cli_runs, before)
            plain = None
            if not args.no_plain:
                plain_accepts = args.plain_accepts if n < 20_000 else min(args.plain_accepts, 3)
                plain = bench_plain(n, work, plain_accepts)
            results[n] = {"lamsim": ours, "plain_tinydb": plain}
            shutil.rmtree(work, ignore_errors=True)
            gc.collect()
            print(
                f"{n:>6} trajectories   store size: lamsim {ours['bytes'] / 1e6:,.0f} MB"
                + (f", plain {plain['bytes'] / 1e6:,.0f} MB" if plain else ""),
                flush=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    header = (
        f"{'size':>6}  {'store':<12} {'open':>10} {'list pending':>13} {'accept median':>14} "
        f"{'accept p95':>11} {'accept max':>11} {'accepts':>8}"
    )
    print()
    print(header)
    print("-" * len(header))
    for n, both in results.items():
        for name, r in (("lamsim", both["lamsim"]), ("plain TinyDB", both["plain_tinydb"])):
            if r is None:
                continue
            a = r["accept"]
            print(
                f"{n:>6}  {name:<12} {fmt_ms(r['open_s']):>10} {fmt_ms(r['list_s']):>13} {fmt_ms(a['median']):>14} "
                f"{fmt_ms(a['p95']):>11} {fmt_ms(a['max']):>11} {a['n']:>8}"
            )
    print()
    print(
        "open: lamsim opens as the writer (lock, snapshot + journal, index); read-only open: "
        + ", ".join(f"{n}: {fmt_ms(b['lamsim']['open_readonly_s'])}" for n, b in results.items())
    )
    print(
        "accept: one durable decision (fsync) through review.accept; plain TinyDB: Table.update (its "
        "JSONStorage re-reads, rewrites and fsyncs the whole file)"
    )
    for n, both in results.items():
        if both["lamsim"].get("cli"):
            print_cli(n, both["lamsim"]["cli"])
    if any(b["lamsim"].get("cli") for b in results.values()):
        print("\nwall: median of the runs, process start to exit; RSS: median peak resident memory of the process")
    if args.json:
        print(json.dumps({str(k): v for k, v in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
