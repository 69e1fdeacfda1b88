"""Replays a fixed list of actions (an operator's edit) through the normal episode loop."""

from __future__ import annotations

from lamsim_tui.agents.base import Agent, AgentTurn, EpisodeView
from lamsim_tui.simulator.actions import Finish, Parsed, ToolCall, render_json_action
from lamsim_tui.simulator.feedback import finding


class ReplayAgent(Agent):
    def __init__(self, actions: list[dict]):
        self.actions = list(actions)

    async def step(self, episode: EpisodeView, emit) -> AgentTurn:
        index = len(episode.steps)
        if index >= len(self.actions):
            return AgentTurn(raw="", parsed=Parsed(problem=finding("format.empty")))
        item = self.actions[index]
        thought = str(item.get("thought") or "")
        if item.get("type") == "finish" or item.get("tool") == "finish":
            has = "answer" in item or "answer" in (item.get("arguments") or {})
            answer = item.get("answer", (item.get("arguments") or {}).get("answer"))
            raw = render_json_action(thought, "finish", {"answer": answer})
            return AgentTurn(raw=raw, parsed=Parsed(thought=thought, action=Finish(answer=answer, has_answer=has)))
        tool = item.get("tool")
        arguments = item.get("arguments") if isinstance(item.get("arguments"), dict) else {}
        if not isinstance(tool, str) or not tool:
            return AgentTurn(raw=str(item), parsed=Parsed(
                thought=thought, problem=finding("format.schema", detail='each step needs a "tool" name')))
        raw = render_json_action(thought, tool, arguments)
        return AgentTurn(raw=raw, parsed=Parsed(thought=thought, action=ToolCall(tool=tool, arguments=arguments)))

