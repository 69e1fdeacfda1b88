"""`lamsim stats`: figures per template and overall, checked against the records themselves."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter

from packkit import ROOT
from storekit import copy_store, engine_store

from lamsim_tui.curation.review import accept, discard
from lamsim_tui.curation.stats import compute, format_table
from lamsim_tui.store import open_store
from lamsim_tui.testing.synthetic import make_record


def test_stats_match_the_records(tmp_path):
    store_dir = copy_store(engine_store(tmp_path / "e"), tmp_path / "s")
    with open_store(store_dir) as store:
        docs = list(store.records())
        paint = [d for d in docs if d.template == "paint"]
        accept(store, paint[0].id)
        accept(store, paint[1].id)
        discard(store, paint[2].id, reason="dull")
        stats = compute(store)
    per = stats["templates"]["paint"]
    assert per["episodes"] == len(paint)
    assert per["success_rate"] == round(sum(d.verdict.success for d in paint) / len(paint), 4)
    assert per["filter_pass_rate"] == round(sum(d.verdict.passed for d in paint) / len(paint), 4)
    assert per["reviewed"] == 3 and per["acceptance_rate"] == round(2 / 3, 4)
    assert per["statuses"]["accepted"] == 2 and per["statuses"]["discarded"] == 1
    overall = stats["overall"]
    assert overall["episodes"] == len(docs)
    assert overall["findings"] == dict(
        sorted(Counter(code for d in docs for code, n in d.verdict.findings.items() for _ in range(n)).items())
    )
    assert overall["mean_steps"] == round(sum(d.verdict.steps_used for d in docs) / len(docs), 3)
    assert stats["templates"]["item_colour"]["acceptance_rate"] is None  # nothing reviewed there
    table = format_table(stats)
    assert "paint" in table and "(all)" in table and "67%" in table


def test_tokens_and_wall_time_per_accepted(tmp_path):
    rng = random.Random(4)
    rs = [make_record(rng, i, status="pending") for i in range(4)]
    with open_store(tmp_path / "s") as store:
        for r in rs:
            store.add(r)
        accept(store, rs[0].id)
        accept(store, rs[1].id)
        stats = compute(store)["overall"]
    tokens = [sum(s.usage["total_tokens"] for s in r.steps) for r in rs[:2]]
    assert stats["tokens_per_accepted"] == round(sum(tokens) / 2, 1)
    assert stats["wall_s_per_accepted"] == round((rs[0].timing.wall_s + rs[1].timing.wall_s) / 2, 3)


def test_cli_stats_json_reads_while_a_writer_holds_the_store(tmp_path):
    rng = random.Random(5)
    with open_store(tmp_path / "s") as store:
        for i in range(3):
            store.add(make_record(rng, i))
        out = subprocess.run(
            [sys.executable, "-m", "lamsim_tui", "stats", "--store", str(tmp_path / "s"), "--json"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["overall"]["episodes"] == 3
