"""Session files (`sessions/*.yaml`): their schema and loading.

The dataclasses below are the schema; `docs/sessions.md` is generated from them
(`scripts/gen-docs` writes it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from lamsim_tui.errors import ConfigError
from lamsim_tui.session.schema import Builder, schema_table
from lamsim_tui.session.yamlload import Located, load_yaml

T = TypeVar("T")
PATH_CHARS = 4096  # the longest path a setting may name (Linux's PATH_MAX)


def _doc(text: str, **extra) -> dict:
    return {"doc": text, **extra}


@dataclass(frozen=True)
class ModelSettings:
    """One model the agent may use. Secrets are only ever named, never written here."""

    model: str = field(metadata=_doc("litellm model string, e.g. `openai/local-agent`, `ollama_chat/qwen2.5`"))
    api_base: str | None = field(default=None, metadata=_doc("server URL, e.g. `http://127.0.0.1:8080/v1`"))
    api_key_env: str | None = field(
        default=None, metadata=_doc("name of the environment variable holding the API key (never the key)")
    )
    weight: float = field(default=1.0, metadata=_doc("relative share of episodes", min=0.0))
    temperature: float = field(default=0.0, metadata=_doc("sampling temperature", min=0.0, max=5.0))
    top_p: float | None = field(default=None, metadata=_doc("nucleus sampling", min=0.0, max=1.0))
    max_tokens: int = field(default=256, metadata=_doc("tokens per step", min=1))
    seed: int | None = field(default=None, metadata=_doc("sampling seed sent to the server"))
    stop: list[str] = field(default_factory=list, metadata=_doc("stop sequences"))
    timeout: float = field(default=120.0, metadata=_doc(
        "seconds per request: a deadline for the whole reply, however slowly a server sends it", min=0.1))
    retries: int = field(default=2, metadata=_doc("retries of transient failures", min=0, max=20))
    constrain_with: Literal["json_schema", "json_object_schema", "json_object"] = field(
        default="json_schema",
        metadata=_doc("how `agent.constrained` asks this server for constrained decoding: `json_schema` "
                      "(OpenAI structured outputs: llama.cpp `llama-server`, vLLM, LM Studio, Ollama), "
                      "`json_object_schema` (llama-cpp-python's server), `json_object` (JSON mode, no schema)"),
    )


@dataclass(frozen=True)
class AgentSettings:
    kind: Literal["scripted", "model", "embedded"] = field(
        default="scripted",
        metadata=_doc("`scripted` replays gold programs with mistakes; `model` uses `models`; "
                      "`embedded` starts the bundled local model"),
    )
    mistake_rate: float = field(
        default=0.35, metadata=_doc("scripted agent: chance of a mistake before each gold call", min=0.0, max=1.0)
    )
    format: Literal["json", "native"] = field(
        default="json", metadata=_doc("action format: JSON object in the text, or native tool calls")
    )
    constrained: bool | None = field(
        default=None, metadata=_doc("constrained decoding of the JSON action (default: on for embedded)")
    )
    system_prompt: str | None = field(default=None, metadata=_doc("replaces the default system prompt"))
    models: list[ModelSettings] = field(default_factory=list, metadata=_doc("models for `kind: model`"))
    embedded_model: str = field(
        default="qwen2.5-coder-1.5b",
        metadata=_doc("embedded model name, or a path to any GGUF file"),
    )
    paraphrase: bool = field(default=False, metadata=_doc("let the model paraphrase each query"))
    temperature_after_error: float | None = field(
        default=0.7,
        metadata=_doc("sampling temperature of a step that follows an error finding or a repeated call (at "
                      "temperature 0 a small model repeats a rejected reply word for word); null: never change it",
                      min=0.0, max=5.0),
    )
    embedded_context: int = field(
        default=8192, metadata=_doc("embedded model: context window in tokens", min=512, max=131072)
    )
    embedded_threads: int | None = field(
        default=None, metadata=_doc("embedded model: CPU threads (default: all available)", min=1, max=512)
    )
    embedded_temperature: float = field(
        default=0.0, metadata=_doc("embedded model: sampling temperature (the episode seed is sent too)",
                                   min=0.0, max=5.0)
    )
    embedded_max_tokens: int = field(default=256, metadata=_doc("embedded model: tokens per step", min=16))
    embedded_timeout: float = field(
        default=600.0, metadata=_doc("embedded model: seconds per request (the first prompt is slow on CPU)",
                                     min=1.0)
    )

    def check(self):
        if self.kind == "model" and not self.models:
            return ("models",), "`kind: model` needs at least one entry under `models`"
        if self.models and not any(m.weight > 0 for m in self.models):
            return ("models",), "every model has weight 0: give at least one a positive weight"
        return None


@dataclass(frozen=True)
class BudgetSettings:
    steps: int = field(default=10, metadata=_doc("model turns per episode", min=1, max=200))
    seconds: float = field(default=300.0, metadata=_doc("wall-clock limit per episode", min=0.1))
    tool_seconds: float = field(default=5.0, metadata=_doc("time limit of one tool call", min=0.01))
    warn_steps_left: int = field(default=2, metadata=_doc("`budget.low` when this many steps are left", min=0))
    observation_chars: int = field(
        default=4000, metadata=_doc("observations longer than this are cut for the agent", min=100)
    )


@dataclass(frozen=True)
class FeedbackSettings:
    disable: list[str] = field(default_factory=list, metadata=_doc("feedback codes (or prefixes like `loop`) to turn off"))
    reveal_wrong_answer: bool = field(
        default=True, metadata=_doc("tell the agent its final answer is wrong and let it try again")
    )
    answer_attempts: int = field(default=2, metadata=_doc("final answers allowed when revealing", min=1, max=10))

    def check(self):
        from lamsim_tui.simulator.feedback import CODES

        for i, code in enumerate(self.disable):
            if code not in CODES and not any(c.startswith(code + ".") for c in CODES):
                from lamsim_tui.names import nearest_names

                close = nearest_names(code, CODES)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                return ("disable", i), f"unknown feedback code {code!r}{hint}"
        return None


@dataclass(frozen=True)
class FilterSettings:
    require_success: bool = field(default=True, metadata=_doc("keep only trajectories the judge marked successful"))
    max_errors: int | None = field(default=None, metadata=_doc("at most this many error findings", min=0))
    max_steps: int | None = field(default=None, metadata=_doc("at most this many steps", min=1))
    no_loops: bool = field(default=True, metadata=_doc("reject trajectories with `loop.repeat` findings"))
    dedupe: bool = field(default=True, metadata=_doc("reject an action sequence already kept for the same task"))
    error_free: bool = field(default=False, metadata=_doc("reject any trajectory with an error finding"))


@dataclass(frozen=True)
class DemonstrationSettings:
    """Solved tasks shown to a model agent as examples (docs/models.md, 'Demonstrations')."""

    count: int = field(default=0, metadata=_doc("demonstrations per episode (0: off)", min=0, max=20))
    source: str | None = field(
        default=None, metadata=_doc("store directory they come from (default: the session's own store)"))
    include_pending: bool = field(
        default=False,
        metadata=_doc("also pending trajectories that succeeded (accepted ones, edited or not, always count)"))
    placement: Literal["system", "episode"] = field(
        default="system",
        metadata=_doc("`system`: one set for the whole session inside the system prompt (the server's prefix "
                      "cache serves it); `episode`: chosen per episode (same template first, then the most "
                      "similar query), as turns after the system prompt"))
    seed: int | None = field(default=None, metadata=_doc("seed of the choice (default: the session's seed)"))
    token_budget: int = field(
        default=1200, metadata=_doc("at most this many tokens of demonstrations (estimated: characters / 2.5)",
                                    min=50))
    observation_chars: int = field(
        default=400, metadata=_doc("a tool result longer than this is cut in a demonstration", min=40))
    keep_rejected: bool = field(
        default=False, metadata=_doc("keep the steps feedback rejected, and the feedback (recoveries)"))
    cold_start: Literal["gold", "none"] = field(
        default="gold",
        metadata=_doc("when no trajectory counts yet: `gold` shows clean replays of other tasks' gold programs "
                      "(labelled `gold` in the record); `none` shows nothing"))


@dataclass(frozen=True)
class ReviewSettings:
    """How the operator reviews in the app (left out of the records: it says nothing about a trajectory)."""

    reasons: list[str] = field(default_factory=list, metadata=_doc(
        "discard reasons offered on keys 1-9 in the app (before the ones used lately), e.g. `[wrong-answer, loop]`"))


@dataclass(frozen=True)
class Session:
    pack: str = field(metadata=_doc("tool pack: a folder name under `tools/`, or a path", nonempty=True,
                                    max_chars=PATH_CHARS))
    name: str | None = field(default=None, metadata=_doc("defaults to the file name", max_chars=255))
    description: str = field(default="", metadata=_doc("free text"))
    templates: Literal["all"] | list[str] | dict[str, float] = field(
        default="all", metadata=_doc("`all`, a list of template ids, or ids with weights")
    )
    tasks: int = field(default=20, metadata=_doc("tasks to generate", min=1, max=1_000_000))
    attempts: int = field(default=1, metadata=_doc("episodes per task", min=1, max=100))
    seed: int = field(default=0, metadata=_doc("seed of task generation and the scripted agent"))
    concurrency: int = field(default=4, metadata=_doc("episodes run at once", min=1, max=256))
    agent: AgentSettings = field(default_factory=AgentSettings)
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    filters: FilterSettings = field(default_factory=FilterSettings)
    store: str | None = field(default=None, metadata=_doc("store directory (default `stores/<name>`)",
                                                          max_chars=PATH_CHARS))
    demonstrations: DemonstrationSettings = field(default_factory=DemonstrationSettings)
    policy: str | None = field(default=None, metadata=_doc(
        "a policy document (file relative to this session file) added to the agent's system prompt instead of "
        "the pack's `policy`; `none`: no policy"))
    review: ReviewSettings = field(default_factory=ReviewSettings)

    # Where the session came from: set by load_session, never read from YAML (`internal`).
    source: Path | None = field(default=None, compare=False, metadata={"internal": True})
    root: Path | None = field(default=None, compare=False, metadata={"internal": True})

    def check(self):
        if self.name is not None:
            problem = _name_problem(self.name)
            if problem:
                return ("name",), problem
        if isinstance(self.templates, list | dict) and not self.templates:
            return ("templates",), "names no template: write `all`, or list template ids"
        if isinstance(self.templates, dict):
            for tid, weight in self.templates.items():
                if weight < 0:
                    return ("templates", tid), f"weight must be 0 or more, got {weight}"
            if not any(w > 0 for w in self.templates.values()):
                return ("templates",), "every template has weight 0: give at least one a positive weight"
        return None

    @property
    def session_name(self) -> str:
        if self.name:
            return self.name
        return self.source.stem if self.source else "session"

    def pack_dir(self) -> Path:
        """Resolve `pack`: a path (relative to the session file) or a name under `<root>/tools/`."""
        root = self.root or Path.cwd()
        raw = Path(self.pack).expanduser()
        if "/" in self.pack or raw.is_absolute():
            base = self.source.parent if self.source else Path.cwd()
            return (base / raw).resolve()
        for candidate in (root / "tools" / self.pack, Path.cwd() / "tools" / self.pack):
            if candidate.is_dir():
                return candidate.resolve()
        return (root / "tools" / self.pack).resolve()

    def store_dir(self, override: str | Path | None = None) -> Path:
        if override is not None:
            return Path(override).expanduser().resolve()
        root = self.root or Path.cwd()
        if self.store:
            return (root / Path(self.store).expanduser()).resolve()
        return (root / "stores" / self.session_name).resolve()

    def public_settings(self) -> dict:
        """Settings safe to record with every trajectory (no secrets: only env var names)."""
        data = dataclasses.asdict(self)
        data.pop("source", None)
        data.pop("root", None)
        data.pop("review", None)  # how the operator works, not how the trajectory was made
        data["name"] = self.session_name
        data["path"] = str(self.source) if self.source else None
        if not self.demonstrations.count:  # off: records stay as they were before the setting existed
            data.pop("demonstrations", None)
        return data


def _name_problem(name: str) -> str | None:
    """Why a session name cannot name its default store folder (`stores/<name>`), or None."""
    if not name.strip():
        return "must not be empty"
    if "/" in name or "\\" in name:
        return f"{name!r} contains a path separator: the name is the folder of its store under `stores/`"
    if name.strip() in (".", "..") or name.startswith("."):
        return f"{name!r} may not start with a dot: the name is the folder of its store under `stores/`"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "contains a control character"
    return None


def project_root(session_path: Path) -> Path:
    """The folder holding `sessions/`, `tools/`, `themes/`: a session's relative paths start here."""
    parent = session_path.resolve().parent
    return parent.parent if parent.name == "sessions" else parent


def load_session(path: str | Path) -> Session:
    path = Path(path)
    if not path.exists():
        hint = None
        sessions = path.parent if path.parent.exists() else Path("sessions")
        if sessions.is_dir():
            names = sorted(p.name for p in sessions.glob("*.yaml"))
            if names:
                hint = "sessions there: " + ", ".join(names)
        raise ConfigError(f"session file not found: {path}", hint=hint)
    located = load_yaml(path, ConfigError)
    return session_from_located(located)


def session_from_located(located: Located) -> Session:
    if not isinstance(located.data, dict):
        raise ConfigError("a session file must be a mapping of settings (key: value)", where=located.where(()))
    session = Builder(located).build_dataclass(Session, located.data, ())
    return dataclasses.replace(session, source=located.path.resolve(), root=project_root(located.path))


def session_schema_markdown() -> str:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, tp, default, doc in schema_table(Session):
        lines.append(f"| `{key}` | {tp} | `{default}` | {doc} |")
    return "\n".join(lines)



def recorded_section(cls: type[T], data: dict | None) -> T:
    """A settings section (`BudgetSettings`, ...) rebuilt from a record's `session.settings`.

    Keys this lamsim does not know (a record written by another version) are left out.
    """
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    return cls(**{k: v for k, v in (data or {}).items() if k in names})
