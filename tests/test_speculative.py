"""Prompt-lookup speculative decoding for the embedded server: off (measured slower and with other
actions, docs/models.md; `bench/model.py --speculative` turns it on), and when on, started the only way
llama-cpp-python 0.3.36 runs it (every position's logits kept)."""

from pathlib import Path

from packkit import ROOT

from lamsim_tui.agents.embedded.server import EmbeddedServer
from lamsim_tui.agents.model import ModelAgentFactory
from lamsim_tui.packs import load_pack
from lamsim_tui.session.config import load_session


def _args(server: EmbeddedServer) -> dict[str, str]:
    args = server.command()
    return {args[i]: args[i + 1] for i in range(0, len(args) - 1) if args[i].startswith("--")}


def test_off_by_default_and_started_with_all_logits_when_on():
    session = load_session(ROOT / "sessions" / "pilot.yaml")
    assert ModelAgentFactory(session, load_pack(session.pack_dir()), embedded=True).speculative is False
    plain = _args(EmbeddedServer(model_path=Path("m.gguf")))
    assert plain["--logits_all"] == "False" and "--draft_model" not in plain
    drafted = _args(EmbeddedServer(model_path=Path("m.gguf"), speculative=True, draft_tokens=6))
    assert drafted["--draft_model"] == "prompt-lookup-decoding" and drafted["--draft_model_num_pred_tokens"] == "6"
    assert drafted["--logits_all"] == "True"
