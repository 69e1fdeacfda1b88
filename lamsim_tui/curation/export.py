"""Export trajectories as training data: supervised conversations, preference pairs or KTO labels,
in the layouts trainers read (`chat`, `sharegpt`, `xlam`; see `curation.layouts`).

What a trainer learns from is decided in one place (`curation.turns`): a format-neutral system turn
(the rules of the default prompt, and the pack's policy, without the JSON-action block, the tool
listing or `finish`; `system="original"` keeps the agent's prompt), native tool calls, a plain final
answer, and feedback worded for that encoding. Rejected steps are never training targets: they are
left out unless `keep_rejected`, which keeps them as context (`weight: 0` in chat). `strict` also
leaves out executed calls whose arguments were invented.

One export is one unit of files written together: the data (`FILE` or `FILE.train` / `FILE.eval`,
JSONL, a JSON array for xlam, or Parquet), the dataset card `README.md`, `dataset_info.json` for
sharegpt, and the sidecar `FILE.meta.json` last, which lists every file with its SHA-256. Each file
is written to a temporary name first and renamed into place only when all were written, so a full
disk or a kill leaves the previous export whole, never a mix. Order is deterministic (template,
task, attempt, id); an optional train/eval split keeps whole templates (or tasks) on one side.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lamsim_tui.curation import card as cards
from lamsim_tui.curation.layouts import (
    Layout,
    chat_head,
    chat_message,
    chat_tools,
    functions,
    sft_row,
    sharegpt_entry,
    sharegpt_turns,
    system_text,
)
from lamsim_tui.curation.pairs import Pair, desirable, pairs_of
from lamsim_tui.curation.turns import Turn, TurnOptions, conversation, is_rejected  # noqa: F401  (is_rejected: API)
from lamsim_tui.errors import LamsimError
from lamsim_tui.record import Trajectory
from lamsim_tui.store import Store
from lamsim_tui.store.redact import environment_secrets, redact

FORMATS = ("chat", "sharegpt", "xlam")
KINDS = ("sft", "pairs", "kto")
SPLIT_BY = ("template", "task")
SYSTEMS = ("neutral", "original")
DEFAULT_STATUSES = {"sft": ("accepted",), "pairs": ("accepted",), "kto": ("accepted", "discarded")}
_SUFFIXES = (".jsonl", ".json", ".parquet")


class ExportError(LamsimError):
    """Export options that cannot work (unknown format, bad split, unwritable file)."""


# ----- options ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportOptions:
    fmt: str = "chat"
    kind: str = "sft"
    keep_rejected: bool = False
    strict: bool = False
    system: str = "neutral"
    strings: bool = False
    string_arguments: bool = False
    thoughts: bool = True
    parquet: bool = False
    include_unfinished: bool = False

    def check(self) -> None:
        if self.fmt not in FORMATS:
            raise ExportError(f"unknown export format {self.fmt!r}", where="--format",
                              hint="formats: " + ", ".join(FORMATS))
        if self.kind not in KINDS:
            raise ExportError(f"unknown export kind {self.kind!r}", where="--kind", hint="kinds: " + ", ".join(KINDS))
        if self.system not in SYSTEMS:
            raise ExportError(f"unknown system turn {self.system!r}", where="--system", hint="neutral or original")
        if self.fmt == "xlam" and self.kind != "sft":
            raise ExportError(f"xlam has no {self.kind} layout", where="--kind",
                              hint="preference data is written as chat (TRL) or sharegpt (LLaMA-Factory)")
        if self.string_arguments and self.fmt == "sharegpt":
            raise ExportError("--string-arguments applies to chat and xlam (sharegpt calls are text already)",
                              where="--string-arguments")

    @property
    def layout(self) -> Layout:
        return Layout(self.fmt, self.system, self.strings, self.string_arguments)

    @property
    def turn_options(self) -> TurnOptions:
        return TurnOptions(keep_rejected=self.keep_rejected, strict=self.strict, thoughts=self.thoughts)

    @property
    def suffix(self) -> str:
        if self.parquet:
            return ".parquet"
        return ".json" if self.fmt == "xlam" else ".jsonl"


# ----- rows ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    assistant_turns: int = 0
    rejected_turns: int = 0
    weighted_out: int = 0  # rejected turns marked weight 0
    rejected_left_out: int = 0
    invented_left_out: int = 0
    pairs_by_source: Counter | None = None

    def count(self, turns: list[Turn], fmt: str) -> None:
        for turn in turns:
            if turn.assistant:
                self.assistant_turns += 1
                if turn.rejected:
                    self.rejected_turns += 1
                    if fmt == "chat":
                        self.weighted_out += 1

    def targets(self) -> dict:
        share = self.rejected_turns / self.assistant_turns if self.assistant_turns else 0.0
        trained_rejected = self.rejected_turns - self.weighted_out
        trained = self.assistant_turns - self.weighted_out
        return {
            "assistant_turns": self.assistant_turns,
            "rejected_turns": self.rejected_turns,
            "rejected_share": round(share, 4),
            "rejected_share_of_targets": round(trained_rejected / trained, 4) if trained else 0.0,
        }


def sft_rows(record: Trajectory, options: ExportOptions, tally: Tally) -> list[dict]:
    conv = conversation(record, options.turn_options)
    tally.rejected_left_out += conv.rejected_left_out
    tally.invented_left_out += conv.invented_left_out
    if options.fmt == "sharegpt" and (not conv.turns or conv.turns[-1].kind != "answer"):
        raise ExportError(
            f"trajectory {record.short_id} ends without a final answer ({record.end_reason}): LLaMA-Factory "
            "drops sharegpt records that do not end on an assistant answer",
            where="--include-unfinished", hint="leave out --include-unfinished, or export it as chat")
    tally.count(conv.turns, options.fmt)
    return [sft_row(record, conv.turns, options.layout)]


def _plain(turn: Turn) -> Turn:
    return Turn(turn.kind, turn.content, turn.tool, turn.arguments, turn.call_id, False, turn.step, turn.codes)


def pair_row(pair: Pair, options: ExportOptions) -> dict:
    record, layout = pair.record, options.layout
    if options.fmt == "sharegpt":
        return {"id": pair.id, "conversations": sharegpt_turns(record, pair.prefix),
                "chosen": sharegpt_entry(pair.chosen), "rejected": sharegpt_entry(pair.rejected),
                "system": system_text(record, layout), "tools": json.dumps(functions(record), ensure_ascii=False)}
    prompt = chat_head(record, layout) + [chat_message(_plain(t), layout) for t in pair.prefix]
    return {"id": pair.id, "prompt": prompt, "chosen": [chat_message(_plain(pair.chosen), layout)],
            "rejected": [chat_message(_plain(pair.rejected), layout)], "tools": chat_tools(record, layout),
            "source": pair.source, "rejected_codes": pair.rejected_codes}


def preference_rows(record: Trajectory, options: ExportOptions, tally: Tally) -> list[dict]:
    found = pairs_of(record)
    tally.pairs_by_source = tally.pairs_by_source or Counter()
    for pair in found:
        tally.pairs_by_source[pair.source] += 1
        tally.assistant_turns += 1
    return [pair_row(p, options) for p in found]


def kto_rows(record: Trajectory, options: ExportOptions, tally: Tally) -> list[dict]:
    conv = conversation(record, options.turn_options)
    tally.rejected_left_out += conv.rejected_left_out
    tally.invented_left_out += conv.invented_left_out
    tally.count(conv.turns, options.fmt)
    label = desirable(record)
    layout = options.layout
    if options.fmt == "sharegpt":
        return [{"id": record.id, "conversations": sharegpt_turns(record, conv.turns),
                 "system": system_text(record, layout), "tools": json.dumps(functions(record), ensure_ascii=False),
                 "label": label}]
    return [{"id": record.id, "prompt": chat_head(record, layout),
             "completion": [chat_message(t, layout) for t in conv.turns], "label": label,
             "tools": chat_tools(record, layout)}]


def convert(record: Trajectory, fmt: str, **options: Any) -> tuple[dict, int]:
    """One record's SFT row in a layout (`ExportOptions` fields as keywords), and the steps left out."""
    opts = ExportOptions(fmt=fmt, **options)
    opts.check()
    conv = conversation(record, opts.turn_options)
    return sft_row(record, conv.turns, opts.layout), conv.rejected_left_out + conv.invented_left_out


# ----- choosing, ordering, splitting ----------------------------------------------------------------


def order_key(record: Trajectory) -> tuple:
    return (record.task.template, record.task.id, record.episode.attempt, record.id)


def parse_split(text: str | None) -> float | None:
    """`eval=0.1` (or `0.1`) -> 0.1."""
    if text is None:
        return None
    value = text.split("=", 1)[1] if "=" in text else text
    if "=" in text and text.split("=", 1)[0].strip() != "eval":
        raise ExportError(f"cannot read split {text!r}", where="--split", hint="write it as eval=0.1")
    try:
        fraction = float(value)
    except ValueError:
        raise ExportError(f"cannot read split {text!r}", where="--split", hint="write it as eval=0.1") from None
    if not 0 < fraction < 1:
        raise ExportError(f"the eval fraction must be between 0 and 1, not {fraction}", where="--split")
    return fraction


def split_groups(keys: Iterable[str], fraction: float, seed: int) -> set[str]:
    """Which groups go to eval: a seeded shuffle of the sorted group keys, round(fraction * n) of them (>= 1)."""
    groups = sorted(set(keys))
    if len(groups) < 2:
        raise ExportError(
            f"cannot split {len(groups)} group(s) into train and eval",
            where="--by",
            hint="split by task, or export more templates",
        )
    random.Random(seed).shuffle(groups)
    n_eval = min(len(groups) - 1, max(1, round(fraction * len(groups))))
    return set(groups[:n_eval])


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _line(obj: Any, **kw: Any) -> str:
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, **kw)
    except ValueError:
        return json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False, **kw)


def stem_of(out: Path) -> str:
    for suffix in _SUFFIXES:
        if out.name.endswith(suffix) and len(out.name) > len(suffix):
            return out.name[: -len(suffix)]
    return out.name


def output_paths(out: Path, split: bool, suffix: str = ".jsonl") -> dict[str, Path]:
    stem = stem_of(out)
    if not split:
        return {"all": out.with_name(stem + suffix)}
    return {"train": out.with_name(f"{stem}.train{suffix}"), "eval": out.with_name(f"{stem}.eval{suffix}")}


def meta_path(out: Path) -> Path:
    out = Path(out)
    return out.with_name(f"{stem_of(out)}.meta.json")


# ----- writing one unit of files ------------------------------------------------------------------


class FileUnit:
    """Files written together: each to a temporary name in its folder, renamed into place at commit."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []

    def add(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        # os.open with 0o666 leaves the mode to the umask, like any file a user writes (0644 usually)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self.pending.append((path, tmp))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def commit(self) -> None:
        folders = {path.parent for path, _ in self.pending}
        for path, tmp in self.pending:
            os.replace(tmp, path)
        self.pending = []
        _sync_dirs(folders)

    def abort(self) -> None:
        for _, tmp in self.pending:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        self.pending = []


def _sync_dirs(dirs: Iterable[Path]) -> None:
    for directory in dirs:
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(_line(r) + "\n" for r in rows).encode("utf-8")


def _json_array(rows: list[dict]) -> bytes:
    if not rows:
        return b"[]\n"
    return ("[\n" + ",\n".join(_line(r) for r in rows) + "\n]\n").encode("utf-8")


def _parquet(rows: list[dict], feats: list[dict] | None) -> bytes:
    try:
        import datasets
    except ImportError:
        raise ExportError("Parquet export needs the `datasets` package", where="--parquet",
                          hint="pip install 'datasets>=4.7', or export JSONL") from None
    clean = [json.loads(_line(r)) for r in rows]
    kwargs: dict[str, Any] = {}
    if feats is not None:
        kwargs["features"] = datasets.Features.from_dict(_features_dict(feats))
    try:
        table = datasets.Dataset.from_list(clean, **kwargs) if clean else datasets.Dataset.from_dict({})
    except Exception as exc:  # noqa: BLE001  (pyarrow's errors have no common type)
        raise ExportError(f"cannot write Parquet with this `datasets` ({datasets.__version__}): {exc}",
                          where="--parquet", hint="use --json-strings, or `datasets` >= 4.7") from None
    buffer = io.BytesIO()
    table.to_parquet(buffer)
    return buffer.getvalue()


def _features_dict(feats: list[dict]) -> dict:
    def one(item: dict) -> Any:
        if "dtype" in item:
            return {"_type": "Json"} if item["dtype"] == "json" else {"dtype": item["dtype"], "_type": "Value"}
        if "list" in item:
            inner = item["list"]
            if inner == "json":
                return {"feature": {"_type": "Json"}, "_type": "List"}
            return {"feature": {f["name"]: one(f) for f in inner}, "_type": "List"}
        return {f["name"]: one(f) for f in item["struct"]}
    return {f["name"]: one(f) for f in feats}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _previous_files(sidecar: Path) -> list[Path]:
    try:
        old = json.loads(sidecar.read_text(encoding="utf-8"))
        names = list((old.get("manifest") or {}).keys())
    except (OSError, ValueError, AttributeError):
        return []
    return [sidecar.with_name(n) for n in names if isinstance(n, str) and "/" not in n and n != sidecar.name]


def _dataset_info(path: Path, name: str, entry: dict) -> bytes:
    info: dict = {}
    if path.exists():
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ExportError(f"cannot read the existing dataset_info.json ({exc})", where=str(path),
                              hint="fix or move it: the export adds its entry to it") from None
        if not isinstance(info, dict):
            raise ExportError("the existing dataset_info.json is not a JSON object", where=str(path),
                              hint="fix or move it: the export adds its entry to it")
    info[name] = entry
    return (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _card_allowed(path: Path) -> bool:
    if not path.exists():
        return True
    try:
        return cards.CARD_MARK in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


# ----- the export ---------------------------------------------------------------------------------


def export(
    store: Store,
    out: str | Path,
    *,
    fmt: str = "chat",
    kind: str = "sft",
    status: str | Iterable[str] | None = None,
    clean: bool | None = None,
    keep_rejected: bool = False,
    strict: bool = False,
    system: str = "neutral",
    json_strings: bool = False,
    string_arguments: bool = False,
    thoughts: bool = True,
    parquet: bool = False,
    eval_fraction: float | None = None,
    split_by: str = "template",
    seed: int = 0,
    include_unfinished: bool = False,
    license_id: str = "unknown",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write the export (data, card, dataset_info.json, sidecar) as one unit; returns the sidecar's content.

    ``clean`` is accepted for older callers: rejected steps are left out unless ``keep_rejected``.
    ``progress(done, total)`` is called as records are converted (every 50 and at the end).
    """
    del clean  # the safe form is the default now
    options = ExportOptions(fmt=fmt, kind=kind, keep_rejected=keep_rejected, strict=strict, system=system,
                            strings=json_strings, string_arguments=string_arguments, thoughts=thoughts,
                            parquet=parquet, include_unfinished=include_unfinished)
    options.check()
    if split_by not in SPLIT_BY:
        raise ExportError(f"cannot split by {split_by!r}", where="--by", hint="split by template or task")
    out = Path(out)
    if out.is_dir():
        raise ExportError("--out must be a file, not a folder", where=str(out), hint=f"e.g. {out / 'data.jsonl'}")
    if status is None:
        statuses = list(DEFAULT_STATUSES[kind])
    else:
        statuses = [status] if isinstance(status, str) else list(status)
    records = sorted(store.records(status=statuses), key=order_key)
    # A hand-off (a tool that ends the episode, `ended.<tool>`) ended properly too: it is exported.
    skipped = [r for r in records if not include_unfinished and not r.ended_properly]
    records = [r for r in records if include_unfinished or r.ended_properly]

    eval_groups: set[str] = set()
    if eval_fraction is not None:
        group_of = (lambda r: r.task.template) if split_by == "template" else (lambda r: r.task.id)
        eval_groups = split_groups((group_of(r) for r in records), eval_fraction, seed)
    paths = output_paths(out, eval_fraction is not None, options.suffix)
    rows: dict[str, list[dict]] = {name: [] for name in paths}
    ids: dict[str, list[str]] = {name: [] for name in paths}
    env = environment_secrets()
    tally = Tally()
    make = {"sft": sft_rows, "pairs": preference_rows, "kto": kto_rows}[kind]
    for done, record in enumerate(records, 1):
        if progress is not None and (done % 50 == 0 or done == len(records)):
            progress(done, len(records))
        made = make(record, options, tally)
        if eval_fraction is None:
            side = "all"
        else:
            key = record.task.template if split_by == "template" else record.task.id
            side = "eval" if key in eval_groups else "train"
        rows[side].extend(redact(r, env) for r in made)
        if made:
            ids[side].append(record.id)

    feats = cards.features(fmt, kind, json_strings)
    sidecar = meta_path(out)
    stem = stem_of(out)
    all_rows = [r for side in rows.values() for r in side]
    meta = _meta(store, options, statuses, records, skipped, tally, rows, ids, paths, eval_fraction, split_by, seed,
                 eval_groups, env, sidecar, stem, all_rows)

    unit = FileUnit()
    written: dict[str, bytes] = {}
    try:
        for name, path in paths.items():
            if options.parquet:
                data = _parquet(rows[name], feats)
            elif fmt == "xlam":
                data = _json_array(rows[name])
            else:
                data = _jsonl(rows[name])
            unit.add(path, data)
            written[path.name] = data
        if fmt == "sharegpt":
            info_path = out.with_name("dataset_info.json")
            file_name = paths["all"].name if "all" in paths else paths["train"].name
            data = _dataset_info(info_path, stem, cards.dataset_info_entry(kind, file_name))
            if "eval" in paths:
                entries = json.loads(data)
                entries[f"{stem}.eval"] = cards.dataset_info_entry(kind, paths["eval"].name)
                data = (json.dumps(entries, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
            unit.add(info_path, data)
            written[info_path.name] = data
        card_path = out.with_name("README.md")
        if _card_allowed(card_path):
            split_names = {"all": "train", "train": "train", "eval": "eval"}
            data_files = {split_names[n]: p.name for n, p in paths.items()}
            text = cards.card_text(meta, data_files=data_files, feats=feats, license_id=license_id)
            data = text.encode("utf-8")
            unit.add(card_path, data)
            written[card_path.name] = data
            meta["card"] = card_path.name
        else:
            meta["card"] = None
            meta["notes"].append(f"{card_path} was not written by lamsim: the dataset card was not written")
        meta["manifest"] = {name: {"sha256": _sha256(data), "bytes": len(data)} for name, data in written.items()}
        previous = _previous_files(sidecar)
        unit.add(sidecar, (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        unit.commit()  # the sidecar is renamed last
    except OSError as exc:
        unit.abort()
        where = getattr(exc, "filename", None) or str(out)
        raise ExportError(f"could not write the export: {exc.strerror or exc}", where=str(where),
                          hint="nothing was changed; free some space or choose another --out") from None
    except BaseException:
        unit.abort()
        raise
    for stale in previous:
        if stale.name not in written and stale != sidecar:
            try:
                stale.unlink()
            except OSError:
                pass
    _sync_dirs({sidecar.parent})
    return meta


def _distinct(values: Iterable[Any]) -> list:
    seen: list = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def _meta(store, options: ExportOptions, statuses, records, skipped, tally: Tally, rows, ids, paths, eval_fraction,
          split_by, seed, eval_groups, env, sidecar: Path, stem: str, all_rows: list[dict]) -> dict:
    fmt, kind = options.fmt, options.kind
    treatment = ("kept as context, weight 0" if fmt == "chat" else "kept (and trained: this layout has no weights)") \
        if options.keep_rejected else "left out"
    notes: list[str] = []
    if options.keep_rejected and fmt != "chat" and kind == "sft":
        notes.append(f"{fmt} has no per-turn weights: the trainer trains the rejected steps kept here")
    counts = {
        "trajectories": len(records),
        "rows": len(all_rows),
        "by_file": {name: len(v) for name, v in rows.items()},
        "by_template": dict(sorted(Counter(r.task.template for r in records).items())),
        "by_status": dict(sorted(Counter(r.status for r in records).items())),
        "skipped_unfinished": len(skipped),
        "steps_left_out_by_clean": tally.rejected_left_out,
        "calls_left_out_by_strict": tally.invented_left_out,
        **({name: len(v) for name, v in rows.items()} if eval_fraction is not None else {}),
    }
    if kind == "pairs":
        counts["pairs_by_source"] = dict(sorted((tally.pairs_by_source or Counter()).items()))
    if kind == "kto":
        counts["labels"] = {"desirable": sum(1 for r in all_rows if r["label"]),
                            "undesirable": sum(1 for r in all_rows if not r["label"])}
    return {
        "lamsim_export": 2,
        "format": fmt,
        "kind": kind,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "store": str(store.path),
        "statuses": statuses,
        "clean": not options.keep_rejected,
        "rejected_steps": treatment,
        "strict": options.strict,
        "system": "format-neutral rules (and the pack's policy)" if options.system == "neutral"
        else "the agent's own system prompt",
        "strings": options.strings,
        "string_arguments": (options.string_arguments or options.strings) if fmt != "sharegpt" else None,
        "thoughts": options.thoughts,
        "final_answer": "a plain assistant message (thought, then the answer on its own line); no finish tool",
        "min_datasets": cards.min_datasets(fmt, options.strings),
        "targets": tally.targets(),
        "lengths": cards.lengths(all_rows, fmt),
        "counts": counts,
        "sessions": _distinct(redact({"name": r.session.name, "path": r.session.path}, env) for r in records),
        "packs": _distinct(r.pack.to_dict() for r in records),
        "models": _distinct(redact(r.agent, env) for r in records),
        "filters": _distinct(redact(r.session.settings.get("filters"), env) for r in records),
        "split": None
        if eval_fraction is None
        else {"eval": eval_fraction, "by": split_by, "seed": seed, "eval_groups": sorted(eval_groups)},
        "files": {name: str(path) for name, path in paths.items()},
        "ids": ids,
        "sidecar": sidecar.name,
        "dataset_info_name": stem if fmt == "sharegpt" else None,
        "notes": notes,
    }
