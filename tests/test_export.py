"""Exports of real engine trajectories: loaded by Hugging Face `datasets`, rendered by a real chat template."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment
from packkit import ROOT
from storekit import engine_store, records

from lamsim_tui.curation.export import ExportError, export, is_rejected, meta_path
from lamsim_tui.record import ToolCall, Trajectory
from lamsim_tui.store import STATUSES, open_store

datasets = pytest.importorskip("datasets")
TEMPLATE = Path(__file__).parent / "data" / "qwen2_5_tool_calling.jinja"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return engine_store(tmp_path_factory.mktemp("engine"))


@pytest.fixture(scope="module")
def source(made):
    return records(made)


def load(path: Path):
    return datasets.load_dataset("json", data_files=str(path), split="train")


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def render(messages: list[dict], tools: list[dict]) -> str:
    """Render like transformers' apply_chat_template: a sandboxed Jinja2 environment with its tojson."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys
    )
    template = env.from_string(TEMPLATE.read_text())
    return template.render(messages=messages, tools=tools, add_generation_prompt=False)


def test_chat_export_loads_with_datasets_and_renders_through_a_real_chat_template(made, source, tmp_path):
    out = tmp_path / "chat.jsonl"
    with open_store(made, readonly=True) as store:
        meta = export(store, out, fmt="chat", status=STATUSES)
    finished = [r for r in source if r.end_reason == "finished"]
    assert meta["counts"]["trajectories"] == len(finished) and meta["counts"]["skipped_unfinished"] == 2
    written = lines(out)
    ds = load(out)
    assert ds.num_rows == len(written)
    for row, line in zip(ds, written, strict=True):
        assert row["messages"] == line["messages"] and row["tools"] == line["tools"]  # nothing padded or lost
        text = render(row["messages"], row["tools"])
        calls = [m for m in row["messages"] if m.get("tool_calls")]
        conversation = text.split("<|im_end|>", 1)[1]  # after the system turn (which shows the call format)
        rendered_calls = re.findall(r"<tool_call>\n(.*?)\n</tool_call>", conversation, flags=re.S)
        assert [json.loads(c) for c in rendered_calls] == [
            {"name": m["tool_calls"][0]["function"]["name"], "arguments": m["tool_calls"][0]["function"]["arguments"]}
            for m in calls
        ]
        assert text.count("<tool_response>") == sum(1 for m in row["messages"] if m["role"] == "tool")
        ids = [m["tool_calls"][0]["id"] for m in calls]
        assert len(set(ids)) == len(ids)
        assert [m["tool_call_id"] for m in row["messages"] if m["role"] == "tool"] == ids
        assert row["messages"][-1]["role"] == "assistant" and "tool_calls" not in row["messages"][-1]
        assert text.rstrip().endswith("<|im_end|>")


def test_sharegpt_export_loads_and_alternates_as_llama_factory_requires(made, tmp_path):
    out = tmp_path / "sharegpt.jsonl"
    with open_store(made, readonly=True) as store:
        export(store, out, fmt="sharegpt", status=STATUSES)
    ds = load(out)
    assert ds.num_rows > 0
    for row in ds:
        turns = row["conversations"]
        for i, turn in enumerate(turns):
            allowed = ("human", "observation") if i % 2 == 0 else ("gpt", "function_call")
            assert turn["from"] in allowed, (i, turn)
            if turn["from"] == "function_call":
                call = json.loads(turn["value"])
                assert set(call) == {"name", "arguments"} and isinstance(call["arguments"], dict)
        assert turns[-1]["from"] == "gpt"
        functions = json.loads(row["tools"])
        assert functions and all({"name", "parameters"} <= set(f) for f in functions)
        assert isinstance(row["system"], str)


def test_xlam_export_loads_with_the_unified_fields(made, source, tmp_path):
    out = tmp_path / "xlam.jsonl"
    with open_store(made, readonly=True) as store:
        export(store, out, fmt="xlam", status=STATUSES)
    ds = load(out)
    assert set(ds.column_names) == {"unique_trajectory_id", "task_instruction", "tools", "conversation"}
    by_id = {r.id: r for r in source}
    for row in ds:
        record = by_id[row["unique_trajectory_id"]]
        assert row["conversation"][0] == {"role": "user", "content": record.task.query}
        assert row["tools"] == record.tools
        calls = [m["tool_calls"][0]["id"] for m in row["conversation"] if m.get("tool_calls")]
        assert [m["tool_call_id"] for m in row["conversation"] if m["role"] == "tool"] == calls


def test_clean_leaves_out_rejected_steps_and_their_feedback(made, source, tmp_path):
    with open_store(made, readonly=True) as store:
        export(store, tmp_path / "all.jsonl", fmt="chat", status=STATUSES)
        meta = export(store, tmp_path / "clean.jsonl", fmt="chat", status=STATUSES, clean=True)
    finished = sorted(
        (r for r in source if r.end_reason == "finished"),
        key=lambda r: (r.task.template, r.task.id, r.episode.attempt, r.id),
    )
    rejected_total = sum(1 for r in finished for s in r.steps if is_rejected(s))
    assert rejected_total > 5 and meta["counts"]["steps_left_out_by_clean"] == rejected_total
    feedback_messages = {f.message for r in finished for s in r.steps if is_rejected(s) for f in s.feedback}
    for record, full, clean in zip(
        finished, lines(tmp_path / "all.jsonl"), lines(tmp_path / "clean.jsonl"), strict=True
    ):
        kept = [s for s in record.steps if not is_rejected(s)]
        clean_calls = [m["tool_calls"][0]["function"] for m in clean["messages"] if m.get("tool_calls")]
        assert clean_calls == [
            {"name": s.action.tool, "arguments": s.action.arguments}
            for s in kept
            if isinstance(s.action, ToolCall)
        ]
        for m in clean["messages"]:
            if m["role"] in ("tool", "user") and m is not clean["messages"][1]:
                assert not any(msg and msg in m["content"] for msg in feedback_messages if len(msg) > 20)
        if any(is_rejected(s) for s in record.steps):
            assert len(full["messages"]) > len(clean["messages"])  # by default corrected errors stay
        assert (
            clean["messages"][-1]["content"] == json.dumps(record.final_answer)
            or clean["messages"][-1]["content"] == record.final_answer
        )


def test_order_is_deterministic_whatever_the_insertion_order(made, source, tmp_path):
    shuffled = list(source)
    random.Random(5).shuffle(shuffled)
    with open_store(tmp_path / "other") as other:
        for record in shuffled:
            other.add(record)
        export(other, tmp_path / "b.jsonl", fmt="xlam", status=STATUSES)
    with open_store(made, readonly=True) as store:
        export(store, tmp_path / "a.jsonl", fmt="xlam", status=STATUSES)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_split_keeps_templates_apart_and_the_sidecar_says_what_is_where(made, tmp_path):
    out = tmp_path / "data.jsonl"
    with open_store(made, readonly=True) as store:
        meta = export(store, out, fmt="chat", status=STATUSES, eval_fraction=0.5, split_by="template", seed=3)
        again = export(
            store, tmp_path / "again.jsonl", fmt="chat", status=STATUSES, eval_fraction=0.5, split_by="template", seed=3
        )
        by_task = export(
            store, tmp_path / "t.jsonl", fmt="chat", status=STATUSES, eval_fraction=0.25, split_by="task", seed=1
        )
        with pytest.raises(ExportError, match="between 0 and 1"):
            from lamsim_tui.curation.export import parse_split

            parse_split("eval=1.5")
    train, evaluation = tmp_path / "data.train.jsonl", tmp_path / "data.eval.jsonl"
    assert not out.exists() and train.exists() and evaluation.exists()
    assert meta["ids"] == again["ids"]
    side = json.loads(meta_path(out).read_text())
    assert side["counts"]["train"] == len(lines(train)) and side["counts"]["eval"] == len(lines(evaluation))
    assert side["counts"]["train"] + side["counts"]["eval"] == side["counts"]["trajectories"]
    with open_store(made, readonly=True) as store:
        template_of = {r.id: r.task.template for r in store.records()}
        task_of = {r.id: r.task.id for r in store.records()}
    assert {template_of[i] for i in side["ids"]["train"]}.isdisjoint({template_of[i] for i in side["ids"]["eval"]})
    assert {task_of[i] for i in by_task["ids"]["train"]}.isdisjoint({task_of[i] for i in by_task["ids"]["eval"]})
    assert by_task["counts"]["eval"] > 0
    assert side["sessions"][0]["name"] and side["packs"][0]["name"] == "mini"
    assert side["models"] == [{"kind": "scripted", "mistake_rate": 0.6, "format": "json"}]
    assert side["filters"] and side["format"] == "chat" and side["statuses"] == list(STATUSES)


def test_no_secrets_in_exports(made, source, tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_SERVER_TOKEN", "tok-0123456789abcdef")
    record = next(r for r in source if r.end_reason == "finished").to_dict()
    record["id"] = "a" * 32
    record["status"] = "accepted"
    record["agent"]["api_key"] = "sk-proj-abcdefghijklmnopqrst"
    record["steps"][0]["observation"] = "error: bad token tok-0123456789abcdef"
    with open_store(tmp_path / "s") as store:
        store.add(Trajectory.from_dict(record))
        for fmt in ("chat", "sharegpt", "xlam"):
            out = tmp_path / f"{fmt}.jsonl"
            export(store, out, fmt=fmt)
            for path in (out, meta_path(out)):
                text = path.read_text()
                assert "tok-0123456789abcdef" not in text and "sk-proj-abcdefghijklmnopqrst" not in text


def test_cli_export_and_stats(made, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def lamsim(*args):
        return subprocess.run(
            [sys.executable, "-m", "lamsim_tui", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    out = lamsim("export", "--store", str(made), "--format", "sharegpt", "--out", str(tmp_path / "x.jsonl"))
    assert out.returncode == 0 and "exported 0 trajectories" in out.stdout and "no trajectory with status" in out.stderr
    out = lamsim(
        "export",
        "--store",
        str(made),
        "--format",
        "chat",
        "--status",
        "all",
        "--clean",
        "--split",
        "eval=0.5",
        "--by",
        "template",
        "--out",
        str(tmp_path / "y.jsonl"),
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "y.train.jsonl").exists() and (tmp_path / "y.meta.json").exists()
    out = lamsim(
        "export", "--store", str(made), "--format", "chat", "--split", "test=3", "--out", str(tmp_path / "z.jsonl")
    )
    assert out.returncode == 2 and "--split" in out.stderr and "Traceback" not in out.stderr


def test_export_reports_progress_up_to_the_total(made, tmp_path):
    from lamsim_tui.curation.export import export
    from lamsim_tui.store import open_store

    seen = []
    with open_store(made, readonly=True) as store:
        meta = export(store, tmp_path / "p.jsonl", fmt="chat", status=("pending", "filtered"),
                      include_unfinished=True, progress=lambda done, total: seen.append((done, total)))
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    assert seen and seen[-1] == (len(lines), len(lines)), (seen, meta)
    assert all(a[0] < b[0] for a, b in zip(seen, seen[1:], strict=False))
