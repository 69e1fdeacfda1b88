"""The trainers' side of an export, for tests: the model's real chat template and tokenizer, and
LLaMA-Factory's own data checks.

- **Chat template and tokenizer.** The Qwen2.5-Coder GGUF that `scripts/install-model` installs
  carries its tokenizer and chat template; llama-cpp-python reads both with `vocab_only=True` (about
  a second). Where the model is not installed, the template comes from the Jinja copy in
  tests/data and token counts are not available.
- **LLaMA-Factory.** It pins `datasets<=4.0.0`, torch, torchvision, torchaudio and gradio, so it is
  not a test dependency; its checks are ported here from its source (hiyouga/LLaMA-Factory, HEAD of
  2026-08-18, `src/llamafactory/data/`), each function naming the one it follows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

JINJA_COPY = Path(__file__).parent / "data" / "qwen2_5_tool_calling.jinja"


# ----- the model's template and tokenizer ------------------------------------------------------------


def gguf_path() -> Path | None:
    from lamsim_tui.agents.embedded.catalogue import DEFAULT_MODEL, MODELS
    from lamsim_tui.agents.embedded.weights import models_dir

    path = models_dir() / MODELS[DEFAULT_MODEL].file_name
    return path if path.is_file() else None


@lru_cache(maxsize=1)
def _vocab():
    path = gguf_path()
    if path is None:
        return None
    try:
        import llama_cpp
    except ImportError:
        return None
    return llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)


def chat_template() -> tuple[str, str]:
    """(template text, where it came from): the GGUF's own, else the Jinja copy."""
    vocab = _vocab()
    if vocab is not None:
        text = vocab.metadata.get("tokenizer.chat_template")
        if text:
            return text, f"the GGUF ({gguf_path()})"
    return JINJA_COPY.read_text(encoding="utf-8"), f"the Jinja copy ({JINJA_COPY.name})"


def tokenizer():
    """A function text -> token ids with the model's real tokenizer, or None where it is not installed."""
    vocab = _vocab()
    if vocab is None:
        return None
    return lambda text: vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def _raise(message):
    raise ValueError(message)


def render(template: str, messages: list[dict], tools: list | None, add_generation_prompt: bool = False) -> str:
    """Render like transformers' apply_chat_template: a sandboxed Jinja2 environment with its tojson."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False, ensure_ascii=False: json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals["raise_exception"] = _raise
    return env.from_string(template).render(messages=messages, tools=tools or None,
                                            add_generation_prompt=add_generation_prompt)


# ----- LLaMA-Factory, ported ------------------------------------------------------------------------


@dataclass
class DatasetAttr:
    """parser.py: `DatasetAttr` and `DatasetAttr.join` (the columns and tags of a dataset_info.json entry)."""

    file_name: str
    formatting: str = "alpaca"
    ranking: bool = False
    system: str | None = None
    tools: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    kto_tag: str | None = None
    messages: str | None = "conversations"
    role_tag: str | None = "from"
    content_tag: str | None = "value"
    user_tag: str | None = "human"
    assistant_tag: str | None = "gpt"
    observation_tag: str | None = "observation"
    function_tag: str | None = "function_call"
    system_tag: str | None = "system"

    @classmethod
    def from_info(cls, dataset_dir: Path, name: str) -> DatasetAttr:
        """parser.py: `get_dataset_list` (a local `dataset_info.json`; an unknown name is an error)."""
        info = json.loads((dataset_dir / "dataset_info.json").read_text(encoding="utf-8"))
        if name not in info:
            raise ValueError(f"Undefined dataset {name} in dataset_info.json.")
        entry = info[name]
        attr = cls(file_name=entry["file_name"])
        attr.formatting = entry.get("formatting", "alpaca")
        attr.ranking = entry.get("ranking", False)
        for column in ("messages", "system", "tools", "chosen", "rejected", "kto_tag"):
            if "columns" in entry:
                setattr(attr, column, entry["columns"].get(column))
        for tag in ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag",
                    "system_tag"):
            if "tags" in entry:
                setattr(attr, tag, entry["tags"].get(tag))
        return attr


def convert_sharegpt(example: dict, attr: DatasetAttr) -> dict:
    """converter.py: `SharegptDatasetConverter.__call__`. A broken example comes back with empty prompt and response."""
    tag_mapping = {attr.user_tag: "user", attr.assistant_tag: "assistant", attr.observation_tag: "observation",
                   attr.function_tag: "function", attr.system_tag: "system"}
    odd_tags = (attr.user_tag, attr.observation_tag)
    even_tags = (attr.assistant_tag, attr.function_tag)
    accept_tags = (odd_tags, even_tags)
    messages = example[attr.messages]
    if attr.system_tag and messages and messages[0][attr.role_tag] == attr.system_tag:
        system = messages[0][attr.content_tag]
        messages = messages[1:]
    else:
        system = example[attr.system] if attr.system else ""
    aligned, broken = [], False
    for turn_idx, message in enumerate(messages):
        if message[attr.role_tag] not in accept_tags[turn_idx % 2]:
            broken = True
            break
        aligned.append({"role": tag_mapping[message[attr.role_tag]], "content": message[attr.content_tag]})
    if (not attr.ranking and len(aligned) % 2 != 0) or (attr.ranking and len(aligned) % 2 == 0):
        broken = True
    if broken:
        prompt, response = [], []
    elif attr.kto_tag and isinstance(example[attr.kto_tag], bool):
        prompt, response = aligned[:-1], aligned[-1:]
        empty = {"role": "assistant", "content": ""}
        response = response + [empty] if example[attr.kto_tag] else [empty] + response
    elif attr.ranking and isinstance(example[attr.chosen], dict) and isinstance(example[attr.rejected], dict):
        chosen, rejected = example[attr.chosen], example[attr.rejected]
        if chosen[attr.role_tag] not in accept_tags[-1] or rejected[attr.role_tag] not in accept_tags[-1]:
            broken = True
        prompt = aligned
        response = [{"role": tag_mapping[chosen[attr.role_tag]], "content": chosen[attr.content_tag]},
                    {"role": tag_mapping[rejected[attr.role_tag]], "content": rejected[attr.content_tag]}]
    else:
        prompt, response = aligned[:-1], aligned[-1:]
    return {"_prompt": prompt, "_response": response, "_system": system,
            "_tools": example[attr.tools] if attr.tools else "", "broken": broken}


def supervised_keeps(converted: dict) -> bool:
    """processor/supervised.py: `SupervisedDatasetProcessor.preprocess_dataset` drops other examples."""
    return len(converted["_prompt"]) % 2 == 1 and len(converted["_response"]) == 1


def parse_function(content: str, tool_call_words=("<tool_call>", "</tool_call>")) -> tuple[str, list[dict]]:
    """formatter.py: `FunctionFormatter.apply` (a template's default tool_call_words, template.py
    `register_template`): the thought before the call, and the calls; invalid JSON raises."""
    regex = re.compile(rf"{re.escape(tool_call_words[0])}(.*?){re.escape(tool_call_words[1])}", re.DOTALL)
    match = re.search(regex, content)
    if match is None:
        thought, json_part = "", content
    else:
        thought, json_part = content.replace(match.group(0), ""), match.group(1)
    try:
        calls = json.loads(json_part)
    except json.JSONDecodeError:
        raise RuntimeError(f"Invalid JSON format in function message: {[content]}.") from None
    if not isinstance(calls, list):
        calls = [calls]
    return thought, [{"name": c["name"], "arguments": c["arguments"]} for c in calls]


def parse_tools(content: str) -> list:
    """formatter.py: `ToolFormatter.apply` (the tools column is a JSON string; invalid JSON raises)."""
    try:
        return json.loads(content)
    except json.JSONDecodeError:
        raise RuntimeError(f"Invalid JSON format in tool description: {[content]}.") from None


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """processor/processor_utils.py: `infer_seqlen`."""
    if target_len * 2 < cutoff_len:
        max_target_len = cutoff_len
    elif source_len * 2 < cutoff_len:
        max_target_len = cutoff_len - source_len
    else:
        max_target_len = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target_len = min(max_target_len, target_len)
    max_source_len = max(cutoff_len - new_target_len, 0)
    new_source_len = min(max_source_len, source_len)
    return new_source_len, new_target_len


def kept_lengths(pairs: list[tuple[int, int]], cutoff_len: int) -> list[tuple[int, int]]:
    """processor/supervised.py: `_encode_data_example` (no mask_history): tokens kept of each (source, target) pair."""
    total, kept = 0, []
    for source_len, target_len in pairs:
        if total >= cutoff_len:
            kept.append((0, 0))
            continue
        s, t = infer_seqlen(source_len, target_len, cutoff_len - total)
        total += s + t
        kept.append((s, t))
    return kept


def as_chat(converted: dict) -> list[dict]:
    """LLaMA-Factory's roles as chat messages, for rendering through the model's own template."""
    messages = [{"role": "system", "content": converted["_system"]}] if converted["_system"] else []
    for n, message in enumerate(converted["_prompt"] + converted["_response"][:1]):
        role, content = message["role"], message["content"]
        if role == "function":
            thought, calls = parse_function(content)
            messages.append({"role": "assistant", "content": thought.strip(), "tool_calls": [
                {"id": f"call_{n}", "type": "function", "function": c} for c in calls]})
        elif role == "observation":
            messages.append({"role": "tool", "content": content})
        else:
            messages.append({"role": role, "content": content})
    return messages


def pair_lengths(template: str, tokenize, converted: dict) -> list[tuple[int, int]]:
    """Tokens of each (source, target) pair as LLaMA-Factory encodes them (template.py: `Template._encode`:
    the system and tools go with the first source), counted with the model's template and tokenizer."""
    messages = as_chat(converted)
    tools = [{"type": "function", "function": f} for f in parse_tools(converted["_tools"])] if converted["_tools"] \
        else None
    offset = 1 if converted["_system"] else 0
    ends = []
    for n in range(offset + 1, len(messages) + 1):
        ends.append(len(tokenize(render(template, messages[:n], tools))))
    starts = [0, *ends[:-1]]
    lengths = [end - start for start, end in zip(starts, ends, strict=True)]
    return [(lengths[i], lengths[i + 1]) for i in range(0, len(lengths) - 1, 2)]
