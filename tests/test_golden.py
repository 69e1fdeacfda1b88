"""Behaviour kept: a scripted run with a fixed seed gives the same records and the same export bytes.

The golden files in tests/data/golden were written by this module before the package was
reorganised (`python tests/test_golden.py --update` rewrites them; do that only for a deliberate
change of behaviour, and say so in the commit). Ids, timestamps, timings and absolute paths are
replaced by placeholders; everything else must match byte for byte.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
SEED = 11
TASKS = 16

_TIMING_KEYS = {"wall_s", "model_s", "engine_s", "latency_s", "ttft_s"}
_TIME_KEYS = {"created_at", "finished_at", "at", "exported_at", "user", "replayed_by"}


def _normalise(value, ids: dict[str, str]):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in _TIMING_KEYS and isinstance(item, (int, float)):
                out[key] = "<s>"
            elif key in _TIME_KEYS and isinstance(item, str):
                out[key] = "<time>"
            else:
                out[key] = _normalise(item, ids)
        return out
    if isinstance(value, list):
        return [_normalise(v, ids) for v in value]
    if isinstance(value, str):
        value = value.replace(str(ROOT), "<root>")
        return re.sub(r"\b[0-9a-f]{32}\b", lambda m: ids.setdefault(m.group(0), f"<id{len(ids)}>"), value)
    return value


def produce(tmp: Path) -> dict[str, str]:
    """Run the pilot session with the scripted agent, review a few records, export every way."""
    from lamsim_tui.cli import main
    from lamsim_tui.store import open_store

    store_dir = tmp / "store"
    rc = main(["run", str(ROOT / "sessions" / "pilot.yaml"), "--headless", "-n", str(TASKS), "--agent", "scripted",
               "--seed", str(SEED), "--concurrency", "1", "--store", str(store_dir), "--json"])
    assert rc == 0
    with open_store(store_dir, readonly=True) as store:
        records = [r.to_dict() for r in store.records()]
    # Order records by what they are, not by their random ids.
    records.sort(key=lambda r: (r["task"]["template"], r["task"]["id"], r["episode"]["attempt"]))
    order = [r["id"] for r in records]
    for n, record_id in enumerate(order[:6]):
        rc = main(["review", "--store", str(store_dir), "accept" if n % 3 else "discard", record_id,
                   "--note", f"golden {n}"])
        assert rc == 0
    ids: dict[str, str] = {record_id: f"<id{n}>" for n, record_id in enumerate(order)}
    out: dict[str, str] = {}
    with open_store(store_dir, readonly=True) as store:
        by_id = {r.id: r.to_dict() for r in store.records()}
    out["records.jsonl"] = "".join(
        json.dumps(_normalise(by_id[i], ids), ensure_ascii=False, sort_keys=True) + "\n" for i in order)
    variants = {"chat": ([], ["--keep-rejected"], ["--json-strings"], ["--kind", "pairs"]),
                "sharegpt": ([], ["--keep-rejected"]), "xlam": ([], ["--keep-rejected"])}
    for fmt, extras in variants.items():
        for extra in extras:
            name = f"{fmt}{''.join(e for e in extra if e.startswith('--')).replace('--', '.')}.jsonl"
            if extra[-1:] == ["pairs"]:
                name = f"{fmt}.pairs.jsonl"
            target = tmp / name
            rc = main(["export", "--store", str(store_dir), "--format", fmt, "--status", "all", "--out", str(target),
                       *extra])
            assert rc == 0
            written = Path(json.loads((tmp / f"{target.stem}.meta.json").read_text())["files"]["all"])
            text = written.read_text(encoding="utf-8")
            if written.suffix == ".json":  # xlam: one JSON array, compared one element per line
                text = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in json.loads(text))
            out[name] = _normalise_lines(text, ids)
    return out


def _normalise_lines(text: str, ids: dict[str, str]) -> str:
    lines = []
    for line in text.splitlines():
        lines.append(json.dumps(_normalise(json.loads(line), ids), ensure_ascii=False))
    return "\n".join(lines) + "\n"


def test_scripted_run_reproduces_the_golden_records_and_exports(tmp_path):
    produced = produce(tmp_path)
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(produced)
    for name, text in produced.items():
        expected = (GOLDEN / name).read_text(encoding="utf-8")
        if text != expected:
            for n, (a, b) in enumerate(zip(text.splitlines(), expected.splitlines(), strict=False)):
                assert a == b, f"{name} line {n + 1} differs from the golden file"
            assert text == expected, f"{name}: a different number of lines than the golden file"


if __name__ == "__main__" and "--update" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        produced = produce(Path(tmp))
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for old in GOLDEN.iterdir():
        old.unlink()
    for name, text in produced.items():
        (GOLDEN / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(produced)} golden files to {GOLDEN}")
