"""The trainers' own rules on lamsim's exports: LLaMA-Factory's converter (ported, source cited in
trainerkit), the model's real tokenizer at LLaMA-Factory's default cutoff, the `datasets` versions
people have."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from storekit import engine_store
from trainerkit import (
    DatasetAttr,
    as_chat,
    chat_template,
    convert_sharegpt,
    kept_lengths,
    pair_lengths,
    parse_function,
    parse_tools,
    render,
    supervised_keeps,
    tokenizer,
)

from lamsim_tui.curation.card import MIN_DATASETS_OBJECTS, MIN_DATASETS_STRINGS
from lamsim_tui.curation.export import export
from lamsim_tui.store import STATUSES, open_store

datasets = pytest.importorskip("datasets")
CUTOFF = 2048  # LLaMA-Factory's default cutoff_len (hparams/data_args.py; 61 of its 72 example configs)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return engine_store(tmp_path_factory.mktemp("engine"))


@pytest.fixture(scope="module")
def crm(tmp_path_factory):
    """A scripted run of the pilot session on the shipped CRM pack (16 tools, long observations)."""
    import contextlib
    import io

    from packkit import ROOT

    from lamsim_tui.cli import main

    store = tmp_path_factory.mktemp("crm") / "store"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["run", str(ROOT / "sessions" / "pilot.yaml"), "--headless", "-n", "20", "--agent", "scripted",
                     "--seed", "5", "--store", str(store)]) == 0
    return store


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:3] if p.isdigit())


def sharegpt(made, folder: Path, **kw) -> list[dict]:
    kw.setdefault("status", STATUSES)
    with open_store(made, readonly=True) as store:
        export(store, folder / "lamsim.jsonl", fmt="sharegpt", **kw)
    attr = DatasetAttr.from_info(folder, "lamsim")
    rows = lines(folder / attr.file_name)
    return [convert_sharegpt(row, attr) for row in rows]


def test_every_sharegpt_record_goes_through_llama_factorys_converter_with_its_tools(made, tmp_path):
    converted = sharegpt(made, tmp_path, keep_rejected=True)
    assert converted
    for example in converted:
        assert not example["broken"] and supervised_keeps(example)
        tools = parse_tools(example["_tools"])  # without the dataset_info mapping this would be "" (dropped)
        assert tools and all({"name", "parameters"} <= set(t) for t in tools)
        assert example["_system"] and "JSON object" not in example["_system"]
        thoughts = 0
        for message in example["_prompt"] + example["_response"]:
            if message["role"] == "function":
                thought, calls = parse_function(message["content"])
                assert len(calls) == 1 and isinstance(calls[0]["arguments"], dict)
                thoughts += bool(thought.strip())
        assert thoughts, "the thoughts of calls are exported (LLaMA-Factory >= 0.9.4 reads them)"
        assert example["_response"][0]["role"] == "assistant"


def test_without_thoughts_function_calls_are_bare_json_for_older_llama_factory(made, tmp_path):
    for example in sharegpt(made, tmp_path, thoughts=False):
        for message in example["_prompt"]:
            if message["role"] == "function":
                json.loads(message["content"])  # what LLaMA-Factory < 0.9.4 parses


def test_preference_and_kto_data_go_through_llama_factorys_converter(made, tmp_path):
    pairs = sharegpt(made, tmp_path / "p", kind="pairs")
    assert pairs
    for example in pairs:
        assert not example["broken"] and len(example["_response"]) == 2
        assert len(example["_prompt"]) % 2 == 1
    kto = sharegpt(made, tmp_path / "k", kind="kto", status=STATUSES)
    assert kto and all(not e["broken"] and len(e["_response"]) == 2 for e in kto)


@pytest.mark.parametrize("pack", ["mini", "crm"])
def test_every_sharegpt_record_keeps_its_query_at_llama_factorys_default_cutoff(pack, made, crm, tmp_path):
    tokenize = tokenizer()
    if tokenize is None:
        pytest.skip("the embedded model is not installed (scripts/install-model): no real tokenizer to count with")
    template, where = chat_template()
    converted = sharegpt(made if pack == "mini" else crm, tmp_path)
    assert converted
    over = 0
    for example in converted:
        pairs = pair_lengths(template, tokenize, example)
        kept = kept_lengths(pairs, CUTOFF)
        assert kept[0][0] == pairs[0][0], f"the first turn (system, tools, query) is cut: {pairs[0]} ({where})"
        query = example["_prompt"][0]["content"]
        first = render(template, as_chat(example)[:2], [{"type": "function", "function": f}
                                                         for f in parse_tools(example["_tools"])])
        assert query in first
        over += sum(s + t for s, t in pairs) > CUTOFF
    if pack == "mini":  # two small tools: everything fits (the CRM pack's 16 tool schemas alone take ~1,300)
        assert over == 0, f"{over} of {len(converted)} records are longer than {CUTOFF} tokens"


def test_the_installed_datasets_is_new_enough_for_the_object_layouts():
    assert _version(datasets.__version__) >= _version(MIN_DATASETS_OBJECTS), (
        f"chat and xlam keep tools and arguments as objects of differing shapes, which needs datasets >= "
        f"{MIN_DATASETS_OBJECTS} (its Json type); {datasets.__version__} is installed")


def _documented_decoding(path: Path):
    """The decoding docs/export.md gives users of --json-strings, run as written on `path`."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "export.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert '"crm.jsonl"' in code
    scope: dict = {}
    exec(code.replace('"crm.jsonl"', repr(str(path))), scope)  # noqa: S102  (our own documentation)
    return scope["ds"]


def test_json_strings_load_and_render_like_the_objects_once_decoded(made, tmp_path):
    template, _ = chat_template()
    with open_store(made, readonly=True) as store:
        export(store, tmp_path / "o.jsonl", fmt="chat", status=STATUSES, keep_rejected=True)
        export(store, tmp_path / "s.jsonl", fmt="chat", status=STATUSES, keep_rejected=True, json_strings=True)
    objects = lines(tmp_path / "o.jsonl")
    strings = datasets.load_dataset("json", data_files=str(tmp_path / "s.jsonl"), split="train")
    assert isinstance(strings[0]["tools"], str)
    assert isinstance(next(m for m in strings[0]["messages"] if m.get("tool_calls"))["tool_calls"][0]["function"][
        "arguments"], str)
    decoded = _documented_decoding(tmp_path / "s.jsonl")
    for row, plain in zip(decoded, objects, strict=True):
        assert render(template, row["messages"], row["tools"]) == render(template, plain["messages"], plain["tools"])


def _datasets4_python() -> str | None:
    """A Python with datasets 4.x (LAMSIM_DATASETS4_PYTHON, or /tmp/ds40 made as docs/export.md says)."""
    for candidate in (os.environ.get("LAMSIM_DATASETS4_PYTHON"), "/tmp/ds40/bin/python"):
        if candidate and shutil.which(candidate):
            probe = subprocess.run([candidate, "-c", "import datasets; print(datasets.__version__)"],
                                   capture_output=True, text=True, timeout=120)
            if probe.returncode == 0 and probe.stdout.startswith("4."):
                return candidate
    return None


_LOAD_ALL = """
import json, sys, datasets

def slim(v):  # datasets 4 pads structs with None for keys other rows have; nothing else may change
    if isinstance(v, dict):
        return {k: slim(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [slim(x) for x in v]
    return v

out = {}
for path in sys.argv[1:]:
    text = open(path, encoding="utf-8").read()
    rows = json.loads(text) if path.endswith(".json") else [json.loads(l) for l in text.splitlines()]
    try:
        ds = datasets.load_dataset("json", data_files=path, split="train")
        same = [slim(dict(d)) == slim(r) for d, r in zip(ds, rows)]
        out[path] = ["ok" if all(same) and len(same) == len(rows) else "changed", sum(same), len(rows)]
    except Exception as exc:
        out[path] = ["fail", type(exc).__name__, str(exc)[:200]]
print(json.dumps(out))
"""


def test_string_layouts_load_on_datasets_4(made, tmp_path):
    python = _datasets4_python()
    if python is None:
        pytest.skip("no Python with datasets 4.x: make one with `python3 -m venv /tmp/ds40 && /tmp/ds40/bin/pip "
                    "install datasets==4.0.0`, or set LAMSIM_DATASETS4_PYTHON")
    paths = []
    with open_store(made, readonly=True) as store:
        for fmt in ("chat", "xlam", "sharegpt"):
            for kind in ("sft", "pairs", "kto") if fmt != "xlam" else ("sft",):
                meta = export(store, tmp_path / f"{fmt}-{kind}.jsonl", fmt=fmt, kind=kind, status=STATUSES,
                              json_strings=True, keep_rejected=kind == "sft")
                assert meta["min_datasets"] == MIN_DATASETS_STRINGS
                paths.append(meta["files"]["all"])
    result = subprocess.run([python, "-c", _LOAD_ALL, *paths], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    failed = {Path(p).name: v for p, v in loaded.items() if v[0] != "ok"}
    assert not failed, failed


def test_the_embedded_chat_template_reads_the_gguf_when_it_is_installed():
    text, where = chat_template()
    assert "<tool_call>" in text and "tool_response" in text
    if tokenizer() is not None:
        assert where.startswith("the GGUF")
