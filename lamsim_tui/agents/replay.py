"""Replays a fixed list of actions (an operator's edit, or a gold program) through the normal episode loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lamsim_tui.agents.base import Agent, AgentFactory, AgentTurn, EpisodeView
from lamsim_tui.simulator.actions import Finish, Parsed, ToolCall, render_json_action
from lamsim_tui.simulator.feedback import finding

if TYPE_CHECKING:
    from lamsim_tui.record import Task


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



class GoldReplayFactory(AgentFactory):
    """Replays each task's gold program cleanly — its calls, then its answer, with short neutral
    thoughts — as agent kind `gold-replay`. Trajectories it makes can seed a demonstration store
    (`simulator.demos` labels them `gold`)."""

    replays_gold = True

    def __init__(self, session=None, pack=None):
        from lamsim_tui.agents import prompts

        self.system_prompt = (prompts.system_prompt(list(pack.tools.values()), "json",
                                                    session.agent.system_prompt if session else None)
                              if pack is not None else None)

    def describe(self) -> dict:
        from lamsim_tui.simulator.demos import GOLD_AGENT_KIND

        return {"kind": GOLD_AGENT_KIND, "format": "json"}

    def for_episode(self, episode_id: str, seed: int, gold: Task | None = None) -> tuple[Agent, dict]:
        if gold is None:
            raise ValueError("a gold replay needs the task with its gold program")
        from lamsim_tui.simulator.demos import gold_thoughts

        thoughts = gold_thoughts(gold)
        actions = [{"tool": c.tool, "arguments": dict(c.arguments), "thought": thoughts[i]}
                   for i, c in enumerate(gold.gold_calls)]
        actions.append({"type": "finish", "answer": gold.gold_answer, "thought": thoughts[-1]})
        agent = ReplayAgent(actions)
        agent.system_prompt = self.system_prompt
        return agent, {}
