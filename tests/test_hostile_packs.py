"""Issue 15's isolation and stopping, meeting issues 12/13's environments: a cancel that cuts episodes
ending with a hand-off tool, a tool that changes nested state in place run in the daemon workers, and
the run summary that names both. A real engine, a real store, real worker threads."""

from __future__ import annotations

import asyncio

from packkit import MINI_TOOLS, write_pack, write_session

from lamsim_tui.agents.replay import GoldReplayFactory
from lamsim_tui.cli.run import format_summary
from lamsim_tui.events import EpisodeCancelled, EpisodeFinished, EpisodeStored
from lamsim_tui.packs import load_pack
from lamsim_tui.session.config import load_session
from lamsim_tui.simulator.engine import Engine
from lamsim_tui.store import open_store

TOOLS = MINI_TOOLS + '''

@tool(changes_state=True)
def tag_item(sb: Sandbox, item_id: str, tag: str) -> dict:
    """Add a tag to an item.

    Args:
        item_id: Item id.
        tag: The tag.
    """
    item = sb.get("items", item_id)
    if item is None:
        raise ToolError(f"No item with id {item_id}.")
    item["tags"].append(tag)  # wrong: the stored list
    return sb.update("items", item_id, tags=item["tags"])


@tool(ends_episode=True)
def hand_over(sb: Sandbox, item_id: str) -> str:
    """Hand the item's case to a person.

    Args:
        item_id: Item id.
    """
    import time

    time.sleep(0.2)
    return f"{item_id} is with a person now"
'''

TEMPLATES = '''
from lamsim_tui.packs import template


@template(query="Hand item {item_id} over to a person.", answer=None, state=True, ends_with="hand_over")
def handoff(data, rng):
    return {"item_id": rng.choice(data.rows("items"))["id"]}


@handoff.gold
def _(slots, call):
    call("get_item", item_id=slots["item_id"])
    call("hand_over", item_id=slots["item_id"])
'''

ITEMS = [{"id": f"I-{i:02d}", "colour": "red", "tags": ["new"]} for i in range(1, 25)]


class _BuggyFirst(GoldReplayFactory):
    """Replays each gold program, after one call of the tool that changes a row in place."""

    def for_episode(self, episode_id, seed, gold=None):
        agent, public = super().for_episode(episode_id, seed, gold)
        agent.actions.insert(0, {"tool": "tag_item", "arguments": {"item_id": gold.slots["item_id"], "tag": "vip"}})
        return agent, public


def test_a_cancel_cuts_hand_offs_as_cancelled_and_the_summary_names_the_tool_bug(tmp_path):
    pack_dir = write_pack(tmp_path, tools=TOOLS, templates=TEMPLATES, items=ITEMS)
    session = load_session(write_session(tmp_path, "pack: mini\nseed: 2\ntasks: 12\nconcurrency: 3\n"
                                                   "agent:\n  kind: scripted\n"))
    pack = load_pack(pack_dir)
    stored: list[int] = []
    finished, cut = [], []

    async def main(store):
        two_stored = asyncio.Event()

        def on_event(event):
            if isinstance(event, EpisodeStored):
                stored.append(event.number)
                if len(stored) >= 2:
                    two_stored.set()
            elif isinstance(event, EpisodeFinished):
                finished.append(event.episode_id)
            elif isinstance(event, EpisodeCancelled):
                cut.append(event)

        engine = Engine(session, pack, _BuggyFirst(session, pack), store=store, tasks=12, seed=2, on_event=on_event)
        run = asyncio.create_task(engine.run())
        await asyncio.wait_for(two_stored.wait(), 30)
        engine.cancel()
        return await asyncio.wait_for(run, 30)

    with open_store(tmp_path / "store") as store:
        summary = asyncio.run(main(store))
    with open_store(tmp_path / "store", readonly=True) as store:
        records = list(store.records())

    assert summary.cancelled and len(records) == summary.episodes == len(stored) < 12
    ends = {r.end_reason for r in records}
    assert ends == {"ended.hand_over", "cancelled"}, ends
    for record in records:
        # an episode the cancel cut before its first step ended has no step: nothing ran to check
        assert record.steps or record.end_reason == "cancelled"
        if record.steps:
            crash = record.steps[0].crash
            assert record.steps[0].feedback[0].code == "exec.crash" and not record.steps[0].changed_state
            assert crash.startswith(f"tool 'tag_item' changed a sandbox row in place at {pack_dir / 'tools.py'}:"), \
                crash
        if record.end_reason == "ended.hand_over":  # the bug cost nothing: the seed and the state are unharmed
            assert record.verdict.success and record.status == "pending", record.verdict.reasons
            assert record.steps[-1].action.tool == "hand_over" and record.final_state == {}
        else:  # cut short by the cancel: kept, never for review, never a hand-off
            assert not record.verdict.success and record.status == "filtered"
            assert "cancelled" in record.verdict.filters_failed
            assert record.verdict.reasons[0] == "episode ended: cancelled"
    assert len(finished) == sum(r.end_reason == "ended.hand_over" for r in records)
    assert [c.stored for c in cut] == [True] * len(cut) and len(cut) == summary.end_reasons["cancelled"]

    data = summary.to_dict()
    assert data["tool_bugs"]["tag_item"].startswith("tool 'tag_item' changed a sandbox row in place at ")
    data.update(interrupted="interrupted by Ctrl-C (SIGINT)", not_run=12 - summary.episodes)
    lines = format_summary(data, tmp_path / "store").splitlines()
    assert any(line.startswith("tool bug in tag_item: tool 'tag_item' changed a sandbox row in place at ")
               for line in lines), lines
    assert (f"stopped: interrupted by Ctrl-C (SIGINT): {summary.episodes} episode(s) stored, "
            f"{summary.end_reasons['cancelled']} of them cut short and stored as cancelled; "
            f"{12 - summary.episodes} not run") in lines
