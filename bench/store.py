"""Store benchmark: lamsim's journal store against plain TinyDB JSONStorage.

    .venv/bin/python bench/store.py [--sizes 1000,10000,50000] [--accepts 200] [--plain-accepts 10]

For each size it fills a store with realistic trajectories (`lamsim_tui.testing.synthetic`, about
11 KB of JSON each) and prints: time to open, time to list pending (what `lamsim review list
--status pending` does: filter and one summary line each), and the median / 95th percentile / max of one durable accept (an fsync'd write, through
`review.accept`). Plain TinyDB gets the same figures with the same records; because every one
of its writes rewrites (and re-reads) the whole file, it gets fewer accepts at the larger sizes
(`--plain-accepts`, at most 3 at 50,000); those figures are measured, not extrapolated.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


def bench_lamsim(n: int, root: Path, accepts: int) -> dict:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--accepts", type=int, default=200, help="accepts timed on the lamsim store")
    parser.add_argument("--plain-accepts", type=int, default=20, help="accepts timed on plain TinyDB (<=3 at 50k)")
    parser.add_argument("--no-plain", action="store_true", help="skip plain TinyDB")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--dir", help="where to build the stores (default: a temp folder)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    root = Path(args.dir or tempfile.mkdtemp(prefix="lamsim-bench-"))
    results = {}
    try:
        for n in sizes:
            work = root / str(n)
            work.mkdir(parents=True, exist_ok=True)
            ours = bench_lamsim(n, work, args.accepts)
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
    if args.json:
        print(json.dumps({str(k): v for k, v in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
