"""The hostile-inputs corpus (tests/hostilekit.py): every case gets one message naming its file (and
line), a non-zero exit, no traceback, no hang past its limit and no stored record lost.

    python tests/test_hostile.py [CASE ...]     runs the corpus and prints the totals table
"""

from __future__ import annotations

import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hostilekit import CASES, make_project, make_store, run_case, table

KINDS = sorted({c.kind for c in CASES})


@pytest.fixture(scope="module")
def store_template(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("template"))
    return make_store(root)


def _run(cases, store_template, base: Path):
    def one(index_case):
        index, case = index_case
        root = base / f"{index:03d}-{case.id}"
        root.mkdir()
        return run_case(case, root, store_template)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(one, enumerate(cases)))


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_inputs_get_one_clear_message_and_lose_nothing(kind, store_template, tmp_path):
    rows = _run([c for c in CASES if c.kind == kind], store_template, tmp_path)
    failed = [r for r in rows if not r.ok]
    report = "\n\n".join(f"{r.case}: message={r.message} nonzero={r.nonzero} no_traceback={r.no_traceback} "
                         f"no_hang={r.no_hang} no_loss={r.no_loss}\n{r.detail}" for r in failed)
    assert not failed, f"{len(failed)} of {len(rows)} {kind} cases failed:\n{report}"


def test_the_corpus_is_large_and_every_case_is_distinct():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


if __name__ == "__main__":
    wanted = set(sys.argv[1:])
    cases = [c for c in CASES if not wanted or c.id in wanted or c.kind in wanted]
    with tempfile.TemporaryDirectory() as tmp:
        template = make_store(make_project(Path(tmp) / "template"))
        rows = _run(cases, template, Path(tmp))
    for row in rows:
        if not row.ok:
            print(f"FAILED {row.case}: message={row.message} nonzero={row.nonzero} no_traceback={row.no_traceback} "
                  f"no_hang={row.no_hang} no_loss={row.no_loss}\n{row.detail}\n")
    print(table(rows))
