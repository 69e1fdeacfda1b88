"""Exports of real engine trajectories: loaded by Hugging Face `datasets`, rendered by the model's real
chat template, written as one unit of files."""

from __future__ import annotations

import errno
import json
import os
import random
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from packkit import ROOT
from storekit import copy_store, engine_store, records
from trainerkit import chat_template, render

from lamsim_tui.curation.export import ExportError, export, meta_path
from lamsim_tui.curation.review import edit, editable
from lamsim_tui.curation.turns import is_rejected
from lamsim_tui.record import Finish, ToolCall, Trajectory
from lamsim_tui.store import STATUSES, open_store

datasets = pytest.importorskip("datasets")

# What only the JSON-action prompt and feedback say; none of it may reach an exported conversation.
JSON_ACTION = re.compile(r"JSON (action )?object|\"tool\": \"<tool name>\"|Reply with exactly one|^Tools:$", re.M)
FINISH_WORD = re.compile(r"\bfinish\b")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return engine_store(tmp_path_factory.mktemp("engine"))


@pytest.fixture(scope="module")
def source(made):
    return records(made)


def finished(source):
    return sorted((r for r in source if r.end_reason == "finished"),
                  key=lambda r: (r.task.template, r.task.id, r.episode.attempt, r.id))


def load(path: Path):
    return datasets.load_dataset("json", data_files=str(path), split="train")


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_export(made, out, **kw):
    kw.setdefault("status", STATUSES)
    with open_store(made, readonly=True) as store:
        return export(store, out, **kw)


def test_chat_renders_through_the_model_template_with_a_system_turn_that_matches_the_turns(made, source, tmp_path):
    template, where = chat_template()
    out = tmp_path / "chat.jsonl"
    meta = run_export(made, out, fmt="chat")
    done = finished(source)
    assert meta["counts"]["trajectories"] == len(done) and meta["counts"]["skipped_unfinished"] == 2
    written = lines(out)
    ds = load(out)
    assert ds.num_rows == len(written) == len(done)
    for row, line, record in zip(ds, written, done, strict=True):
        assert row["messages"] == line["messages"] and row["tools"] == line["tools"]  # nothing padded or lost
        assert row["id"] == record.id
        text = render(template, row["messages"], row["tools"])
        system = row["messages"][0]
        assert system["role"] == "system" and not JSON_ACTION.search(system["content"]), where
        tool_names = {t["function"]["name"] for t in row["tools"]}
        assert "finish" not in tool_names and not FINISH_WORD.search(text), (where, text[-400:])
        for tool in tool_names:  # the tools are listed once, by the template, not again in the system turn
            assert f"- {tool}(" not in system["content"]
        calls = [m for m in row["messages"] if m.get("tool_calls")]
        conversation = text.split("<|im_end|>", 1)[1]
        rendered = re.findall(r"<tool_call>\n(.*?)\n</tool_call>", conversation, flags=re.S)
        assert [json.loads(c) for c in rendered] == [
            {"name": m["tool_calls"][0]["function"]["name"], "arguments": m["tool_calls"][0]["function"]["arguments"]}
            for m in calls]
        ids = [m["tool_calls"][0]["id"] for m in calls]
        assert len(set(ids)) == len(ids)
        assert [m["tool_call_id"] for m in row["messages"] if m["role"] == "tool"] == ids
        last = row["messages"][-1]
        assert last["role"] == "assistant" and "tool_calls" not in last
        final = record.steps[-1]
        assert isinstance(final.action, Finish)
        answer = final.action.answer if isinstance(final.action.answer, str) else json.dumps(final.action.answer)
        assert last["content"].splitlines()[-1] == answer.splitlines()[-1]
        assert last["content"].startswith(final.thought) and final.thought
        assert text.rstrip().endswith("<|im_end|>")


def test_rejected_steps_are_never_targets_by_default_and_weigh_zero_when_kept(made, source, tmp_path):
    default = run_export(made, tmp_path / "d.jsonl", fmt="chat")
    kept = run_export(made, tmp_path / "k.jsonl", fmt="chat", keep_rejected=True)
    done = finished(source)
    rejected_total = sum(1 for r in done for s in r.steps if is_rejected(s))
    assert rejected_total > 5
    assert default["counts"]["steps_left_out_by_clean"] == rejected_total
    assert default["targets"]["rejected_turns"] == 0 and default["targets"]["rejected_share"] == 0
    for record, clean, full in zip(done, lines(tmp_path / "d.jsonl"), lines(tmp_path / "k.jsonl"), strict=True):
        kept_steps = [s for s in record.steps if not is_rejected(s)]
        assert [m["tool_calls"][0]["function"] for m in clean["messages"] if m.get("tool_calls")] == [
            {"name": s.action.tool, "arguments": s.action.arguments} for s in kept_steps
            if isinstance(s.action, ToolCall)]
        assert not any("weight" in m for m in clean["messages"])
        assistant = [m for m in full["messages"] if m["role"] == "assistant"]
        steps = [s for s in record.steps]
        assert len(assistant) == len(steps)
        assert [m.get("weight") for m in assistant] == [0 if is_rejected(s) else None for s in steps]
        for m in full["messages"]:  # feedback in the exported encoding's words
            if m["role"] in ("user", "tool"):
                assert not JSON_ACTION.search(m["content"]) and not FINISH_WORD.search(m["content"]), m
    targets = kept["targets"]
    assert targets["rejected_turns"] == rejected_total and targets["rejected_share_of_targets"] == 0
    assert targets["rejected_share"] == round(rejected_total / targets["assistant_turns"], 4)
    ds = load(tmp_path / "k.jsonl")  # the weight key loads (datasets' Json type keeps it where it is)
    assert [m.get("weight") for m in ds[0]["messages"]] == [m.get("weight") for m in lines(tmp_path / "k.jsonl")[0][
        "messages"]]
    side = json.loads(meta_path(tmp_path / "k.jsonl").read_text())
    assert side["targets"] == targets and side["rejected_steps"] == "kept as context, weight 0"
    sharegpt = run_export(made, tmp_path / "s.jsonl", fmt="sharegpt", keep_rejected=True)
    assert sharegpt["targets"]["rejected_share_of_targets"] == sharegpt["targets"]["rejected_share"] > 0
    assert any("no per-turn weights" in n for n in sharegpt["notes"])


def test_strict_leaves_out_executed_calls_with_invented_arguments(made, source, tmp_path):
    meta = run_export(made, tmp_path / "strict.jsonl", fmt="chat", strict=True)
    assert meta["counts"]["calls_left_out_by_strict"] > 0
    by_id = {r.id: r for r in source}
    for row in lines(tmp_path / "strict.jsonl"):
        record = by_id[row["id"]]
        known = [record.task.query.lower(), json.dumps(record.tools).lower(),
                 *(json.dumps(c.arguments).lower() for c in record.task.gold_calls)]
        for m in row["messages"]:
            if m.get("tool_calls"):
                for value in m["tool_calls"][0]["function"]["arguments"].values():
                    if isinstance(value, str) and re.search(r"\d", value):
                        assert any(value.lower() in k for k in known), (value, row["id"])
            if m["role"] == "tool":
                known.append(m["content"].lower())
    plain = lines(tmp_path / "plain.jsonl") if run_export(made, tmp_path / "plain.jsonl", fmt="chat") else []
    invented = [m for row in plain for m in row["messages"] if m["role"] == "tool" and "failed:" in m["content"]]
    assert invented, "the scripted run has calls that failed on invented ids"


def test_edited_final_thought_and_answer_are_exported(made, tmp_path):
    store_dir = copy_store(made, tmp_path / "store")
    with open_store(store_dir) as store:
        record = next(r for r in store.records(status=["pending"])
                      if r.verdict.success and not any(s.has_error for s in r.steps))
        edited = editable(record, observations=False)
        edited["final_thought"] = "The records agree, so this is the answer."
        edit(store, record.id, edited, note="clearer thought")
    meta = run_export(store_dir, tmp_path / "e.jsonl", fmt="sharegpt", status=["accepted"])
    assert meta["counts"]["trajectories"] == 1
    last = lines(tmp_path / "e.jsonl")[0]["conversations"][-1]
    assert last["from"] == "gpt" and last["value"].startswith("The records agree, so this is the answer.\n")


def test_sharegpt_refuses_unfinished_trajectories_with_one_clear_message(made, tmp_path):
    with pytest.raises(ExportError, match="ends without a final answer") as caught:
        run_export(made, tmp_path / "u.jsonl", fmt="sharegpt", include_unfinished=True)
    assert "--include-unfinished" in str(caught.value.where)
    assert not (tmp_path / "u.jsonl").exists()
    chat = run_export(made, tmp_path / "u2.jsonl", fmt="chat", include_unfinished=True)
    assert chat["counts"]["skipped_unfinished"] == 0 and lines(tmp_path / "u2.jsonl")[-1]


def test_xlam_is_one_json_array_that_actionstudio_reads(made, source, tmp_path):
    meta = run_export(made, tmp_path / "xlam.jsonl", fmt="xlam")
    path = Path(meta["files"]["all"])
    assert path.name == "xlam.json"
    data = json.loads(path.read_text())
    assert isinstance(data, list) and len(data) == meta["counts"]["trajectories"]
    by_id = {r.id: r for r in source}
    for dp in data:
        record = by_id[dp["unique_trajectory_id"]]
        assert dp["conversation"][0] == {"role": "user", "content": record.task.query}
        assert not JSON_ACTION.search(dp["task_instruction"])
        # data_converters.py (xLAM ActionStudio): every assistant turn becomes a `chosen` target;
        # none may be a rejected action, none empty.
        for message in dp["conversation"]:
            if message["role"] == "assistant":
                assert message.get("tool_calls") or message["content"].strip()
                assert "weight" not in message
        calls = [m["tool_calls"][0]["id"] for m in dp["conversation"] if m.get("tool_calls")]
        assert [m["tool_call_id"] for m in dp["conversation"] if m["role"] == "tool"] == calls
    assert load(path).num_rows == len(data)


def test_files_are_readable_and_the_sidecar_lists_each_with_its_hash(made, tmp_path):
    old = os.umask(0o022)
    try:
        meta = run_export(made, tmp_path / "m.jsonl", fmt="sharegpt", eval_fraction=0.5, seed=1)
    finally:
        os.umask(old)
    names = {"m.train.jsonl", "m.eval.jsonl", "dataset_info.json", "README.md", "m.meta.json"}
    assert {p.name for p in tmp_path.iterdir()} == names
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    import hashlib

    manifest = json.loads((tmp_path / "m.meta.json").read_text())["manifest"]
    assert set(manifest) == names - {"m.meta.json"}
    for name, entry in manifest.items():
        data = (tmp_path / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert meta["counts"]["train"] + meta["counts"]["eval"] == meta["counts"]["trajectories"]


def test_a_failed_write_leaves_the_previous_export_whole_and_says_so(made, tmp_path, monkeypatch):
    out = tmp_path / "data.jsonl"
    run_export(made, out, fmt="chat")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    import lamsim_tui.curation.export as module

    calls = {"n": 0}
    real = os.fsync

    def full_disk(fd):
        calls["n"] += 1
        if calls["n"] == 2:  # the second file of the unit: the data is already written
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(module.os, "fsync", full_disk)
    with pytest.raises(ExportError, match="No space left on device") as caught:
        run_export(made, out, fmt="chat", keep_rejected=True, eval_fraction=0.5)
    assert "nothing was changed" in caught.value.hint
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp file, no half export
    monkeypatch.setattr(module.os, "fsync", real)
    run_export(made, out, fmt="chat", eval_fraction=0.5)  # a later export replaces the earlier one whole
    assert not out.exists() and (tmp_path / "data.train.jsonl").exists()


def test_dataset_card_configs_load_and_a_foreign_readme_is_kept(made, tmp_path):
    folder = tmp_path / "ds"
    meta = run_export(made, folder / "chat.jsonl", fmt="chat", eval_fraction=0.5, seed=2, license_id="apache-2.0")
    card = (folder / "README.md").read_text()
    front = card.split("---\n")[1]
    import yaml

    header = yaml.safe_load(front)
    assert header["license"] == "apache-2.0"
    assert header["configs"][0]["data_files"] == [{"split": "train", "path": "chat.train.jsonl"},
                                                 {"split": "eval", "path": "chat.eval.jsonl"}]
    assert {"name": "messages", "list": "json"} in header["dataset_info"]["features"]
    for needed in ("mini", "scripted", "mistake_rate 0.6", "left out", "minimum `datasets` | 4.7.0", "0.0%"):
        assert needed in card, needed
    # the card's configs name the splits; a cache of its own (`datasets` caches a folder by its name)
    loaded = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))
    assert loaded["train"].num_rows == meta["counts"]["train"] and loaded["eval"].num_rows == meta["counts"]["eval"]
    assert loaded["train"][0]["messages"] == lines(folder / "chat.train.jsonl")[0]["messages"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("# my project\n")
    other = run_export(made, mine / "chat.jsonl", fmt="chat")
    assert (mine / "README.md").read_text() == "# my project\n" and other["card"] is None and other["notes"]


def test_sharegpt_dataset_info_is_added_to_an_existing_one(made, tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"alpaca_en": {"file_name": "alpaca.json"}}))
    run_export(made, tmp_path / "crm.jsonl", fmt="sharegpt")
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["alpaca_en"] == {"file_name": "alpaca.json"}
    assert info["crm"]["file_name"] == "crm.jsonl" and info["crm"]["columns"]["tools"] == "tools"
    (tmp_path / "dataset_info.json").write_text("[1, 2]")
    with pytest.raises(ExportError, match="not a JSON object"):
        run_export(made, tmp_path / "crm.jsonl", fmt="sharegpt")


def test_parquet_loads_like_the_jsonl(made, tmp_path):
    run_export(made, tmp_path / "a.jsonl", fmt="chat", keep_rejected=True)
    meta = run_export(made, tmp_path / "b.parquet", fmt="chat", keep_rejected=True, parquet=True)
    assert Path(meta["files"]["all"]).name == "b.parquet"
    table = datasets.load_dataset("parquet", data_files=str(tmp_path / "b.parquet"), split="train")
    assert [dict(r) for r in table] == lines(tmp_path / "a.jsonl")


def test_order_is_deterministic_whatever_the_insertion_order(made, source, tmp_path):
    shuffled = list(source)
    random.Random(5).shuffle(shuffled)
    with open_store(tmp_path / "other") as other:
        for record in shuffled:
            other.add(record)
        export(other, tmp_path / "b" / "x.jsonl", fmt="xlam", status=STATUSES)
    run_export(made, tmp_path / "a" / "x.jsonl", fmt="xlam")
    for name in ("x.json", "README.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_split_keeps_templates_apart_and_the_sidecar_says_what_is_where(made, tmp_path):
    out = tmp_path / "data.jsonl"
    meta = run_export(made, out, fmt="chat", eval_fraction=0.5, split_by="template", seed=3)
    again = run_export(made, tmp_path / "again.jsonl", fmt="chat", eval_fraction=0.5, split_by="template", seed=3)
    by_task = run_export(made, tmp_path / "t.jsonl", fmt="chat", eval_fraction=0.25, split_by="task", seed=1)
    from lamsim_tui.curation.export import parse_split

    with pytest.raises(ExportError, match="between 0 and 1"):
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
            out = tmp_path / fmt / f"{fmt}.jsonl"
            meta = export(store, out, fmt=fmt, keep_rejected=True)
            for path in out.parent.iterdir():
                text = path.read_text()
                assert "tok-0123456789abcdef" not in text and "sk-proj-abcdefghijklmnopqrst" not in text, path
            assert meta["counts"]["trajectories"] == 1


def lamsim(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "lamsim_tui", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_export_states_the_rejected_share_and_refuses_bad_options_plainly(made, tmp_path):
    out = lamsim("export", "--store", str(made), "--format", "sharegpt", "--out", str(tmp_path / "x.jsonl"))
    assert out.returncode == 0 and "exported 0 trajectories" in out.stdout and "no trajectory with status" in out.stderr
    out = lamsim("export", "--store", str(made), "--format", "chat", "--status", "all", "--keep-rejected",
                 "--split", "eval=0.5", "--by", "template", "--out", str(tmp_path / "y.jsonl"))
    assert out.returncode == 0, out.stderr
    side = json.loads((tmp_path / "y.meta.json").read_text())
    t = side["targets"]
    assert f"rejected share: {t['rejected_turns']} of {t['assistant_turns']} assistant turns" in out.stdout
    assert "of training targets 0.0%" in out.stdout and (tmp_path / "y.train.jsonl").exists()
    for bad in (["--split", "test=3"], ["--kind", "pairs", "--format", "xlam"],
                ["--include-unfinished", "--format", "sharegpt", "--status", "all"],
                ["--clean", "--keep-rejected"]):
        args = ["export", "--store", str(made), "--out", str(tmp_path / "z.jsonl"), *bad]
        if "--format" not in bad:
            args += ["--format", "chat"]
        out = lamsim(*args)
        assert out.returncode == 2 and "Traceback" not in out.stderr and out.stderr.startswith("lamsim:"), out.stderr
    assert not (tmp_path / "z.jsonl").exists()


def test_export_reports_progress_up_to_the_total(made, tmp_path):
    seen = []
    with open_store(made, readonly=True) as store:
        meta = export(store, tmp_path / "p.jsonl", fmt="chat", status=("pending", "filtered"),
                      include_unfinished=True, progress=lambda done, total: seen.append((done, total)))
    written = (tmp_path / "p.jsonl").read_text().splitlines()
    assert seen and seen[-1] == (len(written), len(written)), (seen, meta)
    assert all(a[0] < b[0] for a, b in zip(seen, seen[1:], strict=False))
