"""The core runs without the UI, and importing the package stays light (no Textual, no litellm)."""

import json
import pkgutil
import subprocess
import sys

from packkit import ROOT

# Every module of the package except the app and its test helpers: a new module is guarded by default.
UI = ("lamsim_tui.ui", "lamsim_tui.testing.ui")


def core_modules() -> list[str]:
    names = ["lamsim_tui"]
    for info in pkgutil.walk_packages([str(ROOT / "lamsim_tui")], prefix="lamsim_tui."):
        if any(info.name == u or info.name.startswith(u + ".") for u in UI) or info.name.endswith(".__main__"):
            continue
        names.append(info.name)
    return names


CORE = core_modules()


def test_the_walk_finds_the_core():
    assert {"lamsim_tui.record", "lamsim_tui.simulator.episode", "lamsim_tui.curation.export",
            "lamsim_tui.cli.run", "lamsim_tui.agents.embedded.server"} <= set(CORE)
    assert not [m for m in CORE if m.startswith("lamsim_tui.ui")]


def _loaded_after(imports: list[str]) -> set[str]:
    code = ("import importlib, json, sys\n"
            f"for name in {imports!r}:\n    importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_core_imports_neither_textual_nor_litellm():
    loaded = _loaded_after(CORE)
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}
    assert not {m for m in loaded if m == "litellm" or m.startswith("litellm.")}


def test_headless_run_of_scripted_session_never_imports_textual(tmp_path):
    code = (
        "import sys\n"
        "from lamsim_tui.cli import main\n"
        f"rc = main(['run', 'sessions/pilot.yaml', '--headless', '-n', '3', '--agent', 'scripted', '--store', {str(tmp_path / 'st')!r}])\n"
        "assert rc == 0, rc\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'litellm')]\n"
        "print('LOADED', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout
