"""Agents: what proposes each step's action. `base` holds the interface; `make_agent` picks one."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lamsim_tui.agents.base import AgentFactory
    from lamsim_tui.packs import Pack
    from lamsim_tui.session.config import Session


def make_agent_factory(session: Session, pack: Pack) -> AgentFactory:
    """The factory for the session's agent kind. Imports lazily."""
    kind = session.agent.kind
    if kind == "scripted":
        from lamsim_tui.agents.scripted import ScriptedAgentFactory

        return ScriptedAgentFactory(session, pack)
    if kind in ("model", "embedded"):
        from lamsim_tui.agents.model import ModelAgentFactory

        return ModelAgentFactory(session, pack, embedded=(kind == "embedded"))
    from lamsim_tui.errors import ConfigError

    raise ConfigError(f"unknown agent kind {kind!r}", hint="use scripted, model or embedded")
