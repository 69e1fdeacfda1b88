"""What trainers expect beside the data: a dataset card (`README.md`) and LLaMA-Factory's `dataset_info.json`.

The card's YAML front matter follows the Hugging Face dataset card: `configs` name the data files
of each split (so `datasets.load_dataset(FOLDER)` finds them), `dataset_info.features` declares the
columns (`json` for free-form objects, which needs `datasets` >= 4.7), and the licence, source pack
and session, agent, mistake rate, how rejected steps were treated, the rejected share and length
statistics are stated. A `README.md` that lamsim did not write is never overwritten.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

import yaml

CARD_MARK = "<!-- written by lamsim export: it rewrites this file on the next export to this folder -->"

# datasets that load each layout as written (measured: tests/test_export.py, docs/export.md)
MIN_DATASETS_OBJECTS = "4.7.0"  # `Json()`: tools and arguments as objects of differing shapes
MIN_DATASETS_STRINGS = "4.0.0"  # tools and arguments as JSON strings (the oldest version tested)


def min_datasets(fmt: str, strings: bool) -> str:
    return MIN_DATASETS_STRINGS if strings or fmt == "sharegpt" else MIN_DATASETS_OBJECTS


def _feature(name: str, kind: str) -> dict:
    if kind == "string":
        return {"name": name, "dtype": "string"}
    if kind == "bool":
        return {"name": name, "dtype": "bool"}
    if kind == "json":
        return {"name": name, "dtype": "json"}
    if kind == "list-json":
        return {"name": name, "list": "json"}
    if kind == "turns":  # sharegpt turns
        return {"name": name, "list": [{"name": "from", "dtype": "string"}, {"name": "value", "dtype": "string"}]}
    if kind == "turn":
        return {"name": name, "struct": [{"name": "from", "dtype": "string"}, {"name": "value", "dtype": "string"}]}
    raise ValueError(kind)


def features(fmt: str, kind: str, strings: bool) -> list[dict] | None:
    """The declared columns, or None where a column's shape is left for `datasets` to infer."""
    tools = "string" if strings else "list-json"
    if fmt == "sharegpt":
        cols = [("id", "string"), ("conversations", "turns")]
        if kind == "pairs":
            cols += [("chosen", "turn"), ("rejected", "turn")]
        cols += [("system", "string"), ("tools", "string")]
        if kind == "kto":
            cols.append(("label", "bool"))
        return [_feature(n, k) for n, k in cols]
    if strings:
        return None  # messages as plain structs: inferred (datasets < 4.7 has no `json` type to declare)
    if fmt == "xlam":
        cols = [("unique_trajectory_id", "string"), ("task_instruction", "string"), ("tools", tools),
                ("conversation", "list-json")]
    elif kind == "pairs":
        cols = [("id", "string"), ("prompt", "list-json"), ("chosen", "list-json"), ("rejected", "list-json"),
                ("tools", tools), ("source", "string"), ("rejected_codes", "list-json")]
    elif kind == "kto":
        cols = [("id", "string"), ("prompt", "list-json"), ("completion", "list-json"), ("label", "bool"),
                ("tools", tools)]
    else:
        cols = [("id", "string"), ("messages", "list-json"), ("tools", tools)]
    return [_feature(n, k) for n, k in cols]


def lengths(rows: list[dict], fmt: str) -> dict:
    """Characters and turns per row (min / median / max): what a cutoff length is chosen from."""
    key = {"chat": "messages", "sharegpt": "conversations", "xlam": "conversation"}[fmt]
    chars = [len(json.dumps(r, ensure_ascii=False)) for r in rows]
    turns = [len(r.get(key) or r.get("prompt") or []) for r in rows]

    def summary(values: list[int]) -> dict:
        if not values:
            return {"min": 0, "median": 0, "max": 0}
        return {"min": min(values), "median": statistics.median_low(values), "max": max(values)}

    return {"characters": summary(chars), "turns": summary(turns)}


def card_text(meta: dict, *, data_files: dict[str, str], feats: list[dict] | None, license_id: str) -> str:
    """The README.md of an export."""
    fmt, kind = meta["format"], meta["kind"]
    configs = [{"config_name": "default",
                "data_files": [{"split": split, "path": path} for split, path in data_files.items()]}]
    front: dict[str, Any] = {
        "license": license_id,
        "pretty_name": f"lamsim {kind} export ({fmt})",
        "tags": ["lamsim", "tool-use", "function-calling", "synthetic"],
        "task_categories": ["text-generation"],
        "configs": configs,
    }
    if feats is not None:
        front["dataset_info"] = {"features": feats}
    counts = meta["counts"]
    treatment = meta["rejected_steps"]
    packs = ", ".join(f"{p['name']} ({p['version'][:12]})" for p in meta["packs"]) or "none"
    sessions = ", ".join(str(s.get("name")) for s in meta["sessions"]) or "none"
    agents = "; ".join(_agent_text(a) for a in meta["models"]) or "none"
    share = meta["targets"]
    length = meta["lengths"]
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        CARD_MARK,
        "",
        f"# lamsim {kind} export ({fmt})",
        "",
        "Tool-use trajectories generated with lamsim (supervised generation in the LAM SIMULATOR",
        "method): every action was checked by the environment as it happened, every answer and final",
        "state judged against a ground truth computed by code, and each trajectory reviewed by an",
        "operator. The sidecar `" + meta["sidecar"] + "` lists the trajectory ids of each file.",
        "",
        "| | |",
        "| --- | --- |",
        f"| layout | {_layout_text(fmt, kind)} |",
        f"| rows | {counts['rows']} ({', '.join(f'{k}: {v}' for k, v in counts['by_file'].items())}) |",
        f"| statuses | {', '.join(meta['statuses'])} |",
        f"| source packs | {packs} |",
        f"| sessions | {sessions} |",
        f"| agents | {agents} |",
        f"| rejected steps | {treatment} |",
        f"| strict (invented arguments left out) | {'yes' if meta['strict'] else 'no'} |",
        f"| rejected share | {share['rejected_turns']} of {share['assistant_turns']} assistant turns "
        f"({_pct(share['rejected_share'])}); of training targets {_pct(share['rejected_share_of_targets'])} |",
        f"| system turn | {meta['system']} |",
        f"| characters per row | min {length['characters']['min']}, median {length['characters']['median']}, "
        f"max {length['characters']['max']} |",
        f"| turns per row | min {length['turns']['min']}, median {length['turns']['median']}, "
        f"max {length['turns']['max']} |",
        f"| minimum `datasets` | {meta['min_datasets']} |",
        "",
        "## Loading",
        "",
        "```python",
        "import datasets",
        f"ds = datasets.load_dataset(\"json\", data_files={json.dumps(data_files)})",
        "```",
        "",
        _usage_text(meta),
        "",
    ]
    return "\n".join(lines)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _agent_text(agent: dict) -> str:
    parts = [str(agent.get("kind", "?"))]
    for key in ("model", "format", "mistake_rate"):
        if agent.get(key) is not None:
            parts.append(f"{key} {agent[key]}")
    return ", ".join(parts)


def _layout_text(fmt: str, kind: str) -> str:
    names = {
        ("chat", "sft"): "chat: `messages` + `tools` (TRL conversational, OpenAI fine-tuning)",
        ("chat", "pairs"): "TRL conversational preference: `prompt`, `chosen`, `rejected`, `tools`",
        ("chat", "kto"): "TRL unpaired preference (KTO): `prompt`, `completion`, `label`, `tools`",
        ("sharegpt", "sft"): "LLaMA-Factory sharegpt with tools (see `dataset_info.json`)",
        ("sharegpt", "pairs"): "LLaMA-Factory sharegpt `ranking` data (see `dataset_info.json`)",
        ("sharegpt", "kto"): "LLaMA-Factory sharegpt with `kto_tag` (see `dataset_info.json`)",
        ("xlam", "sft"): "xLAM / ActionStudio unified trajectories (one JSON array)",
    }
    return names[(fmt, kind)]


def _usage_text(meta: dict) -> str:
    fmt = meta["format"]
    if fmt == "sharegpt":
        return ("LLaMA-Factory: point `dataset_dir` at this folder and name the dataset "
                f"`{meta['dataset_info_name']}` (its entry in `dataset_info.json` maps the `tools` and "
                "`system` columns; without it LLaMA-Factory drops the tools). Thoughts are written "
                "before `<tool_call>` (LLaMA-Factory >= 0.9.4).")
    if meta["strings"]:
        return ("`tools` and every call's `arguments` are JSON strings. Decode them before a chat "
                "template that applies `tojson` to the arguments (docs/export.md shows how).")
    return ("Rejected assistant turns kept as context carry `\"weight\": 0` (OpenAI fine-tuning, Axolotl "
            "`message_field_training: weight`); TRL trains every assistant turn, so the default export "
            "leaves them out.") if meta["rejected_steps"] != "left out" else (
        "Rejected steps are left out: every assistant turn is a training target.")


def dataset_info_entry(kind: str, file_name: str) -> dict:
    """LLaMA-Factory's `dataset_info.json` entry for a sharegpt export file (parser.py: DatasetAttr)."""
    entry: dict[str, Any] = {"file_name": file_name, "formatting": "sharegpt"}
    columns = {"messages": "conversations", "system": "system", "tools": "tools"}
    if kind == "pairs":
        entry["ranking"] = True
        columns.update({"chosen": "chosen", "rejected": "rejected"})
    if kind == "kto":
        columns["kto_tag"] = "label"
    entry["columns"] = columns
    entry["tags"] = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                     "observation_tag": "observation", "function_tag": "function_call"}
    return entry
