"""What trainers get from an export, in figures: system-prompt tokens per record, records over
LLaMA-Factory's default cutoff (2,048 tokens), the share of trained assistant tokens that are
rejected actions, and which files load on `datasets` 4.x.

Tokens are counted with the embedded model's own tokenizer and chat template (the Qwen2.5-Coder
GGUF, read with llama-cpp-python), so the script needs the model installed.

    .venv/bin/python bench/export_figures.py --store STORE [--store STORE2] [--lamsim ROOT] \\
        [--datasets4 /tmp/ds40/bin/python]

`--lamsim ROOT` exports with the lamsim source tree at ROOT (e.g. a checkout of an older commit), so
the same script measures before and after. `--datasets4` names a Python with datasets 4.x
(`python3 -m venv /tmp/ds40 && /tmp/ds40/bin/pip install datasets==4.0.0`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "tests"))

CUTOFF = 2048

LOAD = """
import json, sys, datasets
ok = 0
for path in sys.argv[1:]:
    try:
        datasets.load_dataset("json", data_files=path, split="train"); ok += 1; print("ok", path)
    except Exception as exc:
        print("fail", path, type(exc).__name__)
"""


def export(root: Path, store: str, out: Path, *args: str) -> Path | None:
    env = {**os.environ, "PYTHONPATH": str(root)}
    run = subprocess.run([sys.executable, "-m", "lamsim_tui", "export", "--store", store, "--status", "all",
                          "--out", str(out), *args], cwd=root, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        return None
    meta = json.loads(out.with_name(out.name.rsplit(".", 1)[0] + ".meta.json").read_text())
    return Path(meta["files"]["all"])


def rows_of(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else [json.loads(line) for line in text.splitlines()]


def rejected_steps(store: str) -> list[list[bool]]:
    """Which steps feedback rejected, per finished record in export order (template, task, attempt, id)."""
    from lamsim_tui.curation.turns import is_rejected
    from lamsim_tui.store import open_store

    with open_store(store, readonly=True) as opened:
        done = [r for r in opened.records() if r.end_reason == "finished"]
    done.sort(key=lambda r: (r.task.template, r.task.id, r.episode.attempt, r.id))
    return [[is_rejected(s) for s in r.steps] for r in done]


def figures(root: Path, store: str, tmp: Path, datasets4: str | None, new: bool, chat_args: list[str]) -> dict:
    from trainerkit import chat_template, render, tokenizer

    template, _ = chat_template()
    tokenize = tokenizer()
    chat = export(root, store, tmp / "chat.jsonl", "--format", "chat", *chat_args)
    rows = rows_of(chat)
    rejected = rejected_steps(store)
    system_tokens, lengths = [], []
    assistant_tokens = rejected_tokens = weighted_rejected = 0
    for number, row in enumerate(rows):
        messages, tools = row["messages"], row["tools"]
        if messages[0]["role"] == "system":
            system_tokens.append(len(tokenize(messages[0]["content"])))
        else:
            system_tokens.append(0)
        total = len(tokenize(render(template, messages, tools)))
        lengths.append(total)
        flags = rejected[number]
        assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        previous = 0
        counts = {}
        for i in range(1, len(messages) + 1):
            n = len(tokenize(render(template, messages[:i], tools)))
            counts[i - 1] = n - previous
            previous = n
        for position, i in enumerate(assistant):
            m = messages[i]
            assistant_tokens += counts[i]
            is_bad = m.get("weight") == 0 if new else bool(flags and position < len(flags) and flags[position])
            if is_bad:
                rejected_tokens += counts[i]
                weighted_rejected += counts[i] if m.get("weight") == 0 else 0
    from trainerkit import DatasetAttr, convert_sharegpt, kept_lengths, pair_lengths

    sharegpt = export(root, store, tmp / "lf" / "lamsim.jsonl", "--format", "sharegpt")
    attr = DatasetAttr(file_name=sharegpt.name, formatting="sharegpt", system="system", tools="tools")
    query_cut = 0
    for row in rows_of(sharegpt):
        pairs = pair_lengths(template, tokenize, convert_sharegpt(row, attr))
        query_cut += kept_lengths(pairs, CUTOFF)[0][0] < pairs[0][0]
    loads = {}
    if datasets4:
        strings = ["--json-strings"] if new else ["--string-arguments"]
        paths = []
        for fmt in ("chat", "xlam", "sharegpt"):
            extra = strings if (new or fmt == "chat") else []
            path = export(root, store, tmp / f"d4-{fmt}.jsonl", "--format", fmt, *extra)
            if path:
                paths.append(str(path))
        run = subprocess.run([datasets4, "-c", LOAD, *paths], capture_output=True, text=True)
        for line in run.stdout.splitlines():
            state, path, *_ = line.split()
            loads[Path(path).name] = state
    return {
        "records": len(rows),
        "system_tokens_median": statistics.median(system_tokens) if system_tokens else 0,
        "tokens_median": statistics.median(lengths) if lengths else 0,
        "over_cutoff": sum(n > CUTOFF for n in lengths),
        "sharegpt_query_cut_at_cutoff": query_cut,
        "rejected_share_of_assistant_tokens": round(rejected_tokens / assistant_tokens, 4) if assistant_tokens else 0,
        "rejected_share_of_weighted_targets": round((rejected_tokens - weighted_rejected) / max(
            assistant_tokens - weighted_rejected, 1), 4),
        "datasets4": loads,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", action="append", required=True)
    parser.add_argument("--lamsim", default=str(HERE), help="lamsim source tree that exports (default: this one)")
    parser.add_argument("--datasets4", help="a Python with datasets 4.x")
    parser.add_argument("--keep-rejected", action="store_true", help="measure the --keep-rejected export")
    args = parser.parse_args()
    root = Path(args.lamsim).resolve()
    new = (root / "lamsim_tui" / "curation" / "turns.py").exists()
    chat_args = ["--keep-rejected"] if args.keep_rejected and new else []
    for store in args.store:
        with tempfile.TemporaryDirectory() as tmp:
            result = figures(root, store, Path(tmp), args.datasets4, new, chat_args)
        print(json.dumps({"store": store, "lamsim": str(root), **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
