"""The core runs without the UI, and importing the package stays light (no Textual, no litellm)."""

import json
import subprocess
import sys

from packkit import ROOT

CORE = ["lamsim_tui", "lamsim_tui.session.config", "lamsim_tui.packs", "lamsim_tui.simulator.tasks", "lamsim_tui.simulator.engine",
        "lamsim_tui.simulator.judge", "lamsim_tui.simulator.filters", "lamsim_tui.simulator.feedback", "lamsim_tui.agents.scripted",
        "lamsim_tui.cli", "lamsim_tui.agents.model", "lamsim_tui.agents.embedded.server", "lamsim_tui.store",
        "lamsim_tui.curation.review", "lamsim_tui.curation.export", "lamsim_tui.curation.stats"]


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
