"""The default tool pack `tools/crm`: loads, has the promised content, and behaves like a CRM."""

from __future__ import annotations

import filecmp
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from lamsim_tui.packs import DataView, ToolError, load_pack

PACK_DIR = Path(__file__).resolve().parent.parent / "tools" / "crm"


@pytest.fixture(scope="module")
def pack():
    return load_pack(PACK_DIR)


def run_gold(pack, template, slots):
    """Run a gold program directly against the pack's tools on a fresh sandbox."""
    sb = pack.new_sandbox()
    calls = []

    def call(tool_name, **args):
        calls.append(tool_name)
        return pack.tools[tool_name].func(sb, **args)

    return template.gold_program(slots, call), calls, sb


# ----- shape of the pack -----------------------------------------------------------------------


def test_pack_loads_with_tools_and_templates(pack):
    assert pack.name == "crm"
    assert len(pack.tools) >= 12
    writers = [t.name for t in pack.tools.values() if t.changes_state]
    assert len(writers) >= 3
    assert {"update_case_status", "assign_case", "issue_refund", "add_case_note"} <= set(writers)
    assert len(pack.templates) >= 10
    for spec in pack.tools.values():
        assert spec.description and len(spec.description) < 120, spec.name


def test_tool_schemas_are_compact_json(pack):
    schemas = pack.tool_schemas()
    text = json.dumps(schemas)
    assert len(text) < 5500  # read by small local models on every prompt
    for schema in schemas:
        assert schema["function"]["parameters"]["type"] == "object"


def test_seed_sizes_and_duplicate_contact_names(pack):
    sb = pack.new_sandbox()
    cases = sb.rows("cases")
    assert len(cases) >= 200
    assert len(sb.rows("agents")) >= 20
    months = {c["created_at"][:7] for c in cases}
    assert len(months) >= 5
    assert {c["status"] for c in cases} == {"open", "pending", "escalated", "closed"}
    names = Counter(c["name"] for c in sb.rows("contacts"))
    duplicated = [n for n, k in names.items() if k > 1]
    assert len(duplicated) >= 3
    for name in duplicated:  # same name, different accounts
        accounts = [c["account_id"] for c in sb.find("contacts", name=name)]
        assert len(set(accounts)) == len(accounts)
    for table in ("accounts", "products", "orders", "articles", "policies"):
        assert sb.rows(table), table


def test_data_files_are_small():
    total = sum(p.stat().st_size for p in (PACK_DIR / "data").glob("*.json"))
    assert total < 600_000


def test_generator_is_deterministic(tmp_path):
    subprocess.run([sys.executable, str(PACK_DIR / "generate_data.py"), str(tmp_path)], check=True,
                   capture_output=True)
    shipped = sorted(p.name for p in (PACK_DIR / "data").glob("*.json"))
    assert sorted(p.name for p in tmp_path.glob("*.json")) == shipped
    for name in shipped:
        assert filecmp.cmp(PACK_DIR / "data" / name, tmp_path / name, shallow=False), name


# ----- templates -------------------------------------------------------------------------------


def test_every_template_gold_program_succeeds(pack):
    for template in pack.templates.values():
        queries = set()
        for seed in range(20):
            slots = template.sample(DataView(pack.new_sandbox()), random.Random(seed))
            assert set(template.slot_names) <= set(slots), template.id
            queries.add(template.query.format(**slots))
            answer, calls, sb = run_gold(pack, template, slots)
            assert answer is not None, template.id
            json.dumps(answer)
            assert bool(sb.changes()) == (template.state is True), template.id
        assert len(queries) >= 5, f"{template.id} yields too few distinct tasks"


def test_templates_cover_answer_types_and_call_depths(pack):
    answer_types = {t.answer for t in pack.templates.values()}
    assert {"number", "text", "bool", "date"} <= answer_types
    assert answer_types & {"list", "set"}
    stateful = [t for t in pack.templates.values() if t.state]
    assert len(stateful) >= 2
    depth = {}
    for template in pack.templates.values():
        slots = template.sample(DataView(pack.new_sandbox()), random.Random(0))
        depth[template.id] = len(run_gold(pack, template, slots)[1])
    assert min(depth.values()) == 1
    assert max(depth[t.id] for t in stateful) >= 5


def test_sampling_is_reproducible(pack):
    for template in pack.templates.values():
        a = template.sample(DataView(pack.new_sandbox()), random.Random(7))
        b = template.sample(DataView(pack.new_sandbox()), random.Random(7))
        assert a == b, template.id


def test_disambiguation_picks_the_contact_at_the_named_account(pack):
    sb = pack.new_sandbox()
    names = Counter(c["name"] for c in sb.rows("contacts"))
    name = next(n for n, k in names.items() if k > 1)
    found = pack.tools["find_contacts"].func(sb, name=name)
    assert len(found) >= 2
    assert len({c["account"] for c in found}) == len(found)


# ----- tool behaviour --------------------------------------------------------------------------


def test_unknown_ids_raise_tool_errors(pack):
    sb = pack.new_sandbox()
    tools = pack.tools
    with pytest.raises(ToolError, match="C-0042"):
        tools["get_case"].func(sb, case_id="C-9999")
    with pytest.raises(ToolError):
        tools["get_order"].func(sb, order_id="O-1")
    with pytest.raises(ToolError):
        tools["get_agent"].func(sb, agent_id="AG-99")
    with pytest.raises(ToolError, match="Categories"):
        tools["get_policy"].func(sb, category="food")
    with pytest.raises(ToolError):
        tools["list_cases"].func(sb, month="March")


def _refundable_order(pack):
    sb = pack.new_sandbox()
    for order in sb.rows("orders"):
        info = pack.tools["get_order"].func(sb, order_id=order["id"])
        policy = pack.tools["get_policy"].func(sb, category=info["category"])
        if info["age_days"] <= policy["refund_window_days"] and info["refunded"] == 0:
            return info
    raise AssertionError("no refundable order in the seed")


def test_refund_beyond_amount_is_refused(pack):
    order = _refundable_order(pack)
    sb = pack.new_sandbox()
    refund = pack.tools["issue_refund"].func
    with pytest.raises(ToolError, match="exceeds"):
        refund(sb, order_id=order["id"], amount=order["amount"] + 1, reason="too much")
    assert sb.changes() == {}
    refund(sb, order_id=order["id"], amount=order["amount"], reason="full refund")
    with pytest.raises(ToolError, match="exceeds"):  # nothing left to refund
        refund(sb, order_id=order["id"], amount=1, reason="again")
    assert pack.tools["get_order"].func(sb, order_id=order["id"])["refunded"] == order["amount"]


def test_the_policy_not_the_tool_refuses_a_refund_outside_the_window(pack):
    """The tool would refund an old order; the desk's policy (policy.md, in every agent's prompt) forbids
    it, and the judge sees a refund that should not be there in the final state."""
    from lamsim_tui.simulator.replay import judge_calls, task_for

    assert "Outside the refund window" in pack.policy and "refuse" in pack.policy
    task = task_for(pack, "refund_refused", seed=3)
    assert task.answer_type == "none" and task.judge_state
    steps = [{"tool": c.tool, "arguments": c.arguments} for c in task.gold_calls]
    assert [s["tool"] for s in steps] == ["get_case", "get_order", "get_policy", "update_case_status", "add_case_note"]
    followed = judge_calls(pack, task, steps, answer=task.gold_answer)
    assert followed.success, followed.reasons
    assert "outside its" in followed.record.final_answer  # the refusal, told to the customer

    order_id = task.gold_calls[1].arguments["order_id"]
    left = task.gold_calls[1].result["amount"] - task.gold_calls[1].result["refunded"]
    ignored = judge_calls(pack, task, [*steps[:3], {"tool": "issue_refund", "arguments": {
        "order_id": order_id, "amount": round(left, 2), "reason": "customer insisted"}}, *steps[3:]],
        answer="Refunded.")
    assert ignored.steps[3].executed and ignored.steps[3].changed_state  # nothing in the system stopped it
    assert not ignored.success
    assert any(r.startswith("refunds R-") and r.endswith("changed, but the task did not require it")
               for r in ignored.reasons), ignored.reasons


def test_a_refund_above_the_approval_limit_waits_for_a_supervisor(pack):
    from lamsim_tui.simulator.replay import judge_calls, task_for

    tasks = [task_for(pack, "refund_request", seed=s) for s in range(12)]
    waiting = [t for t in tasks if "refunds" not in t.gold_state]
    refunded = [t for t in tasks if "refunds" in t.gold_state]
    assert waiting and refunded  # the sampler draws both sides of the limit
    task = waiting[0]
    assert task.gold_state["cases"][task.slots["case_id"]]["status"] == "escalated"
    order = task.gold_calls[1].result
    refund_all = judge_calls(pack, task, [{"tool": "issue_refund", "arguments": {
        "order_id": order["id"], "amount": round(order["amount"] - order["refunded"], 2), "reason": "x"}}])
    assert not refund_all.success


def test_invalid_status_transition_is_refused(pack):
    sb = pack.new_sandbox()
    update = pack.tools["update_case_status"].func
    closed = sb.find("cases", status="closed")[0]
    with pytest.raises(ToolError, match="can only become: open"):
        update(sb, case_id=closed["id"], status="escalated")
    with pytest.raises(ToolError, match="already"):
        update(sb, case_id=closed["id"], status="closed")
    with pytest.raises(ToolError, match="reopen"):
        pack.tools["assign_case"].func(sb, case_id=closed["id"], agent_id="AG-01")
    assert sb.changes() == {}
    row = update(sb, case_id=closed["id"], status="open")
    assert row["status"] == "open" and row["closed_at"] is None


def test_writes_show_in_changes_and_not_in_a_fresh_sandbox(pack):
    sb = pack.new_sandbox()
    case = sb.find("cases", status="open")[0]
    other = next(a for a in sb.rows("agents") if a["id"] != case["agent_id"])
    pack.tools["update_case_status"].func(sb, case_id=case["id"], status="escalated")
    pack.tools["assign_case"].func(sb, case_id=case["id"], agent_id=other["id"])
    note = pack.tools["add_case_note"].func(sb, case_id=case["id"], text="Escalated to a specialist.")
    changes = sb.changes()
    assert changes["cases"][case["id"]]["status"] == "escalated"
    assert changes["cases"][case["id"]]["agent_id"] == other["id"]
    assert changes["notes"][note["id"]]["case_id"] == case["id"]
    assert "Escalated to a specialist." in pack.tools["get_case"].func(sb, case_id=case["id"])["notes"]

    fresh = pack.new_sandbox()
    assert fresh.changes() == {}
    assert fresh.get("cases", case["id"])["status"] == "open"
    assert fresh.get("notes", note["id"]) is None
    assert pack.seed.tables["cases"][case["id"]]["status"] == "open"


def test_aggregate_tool_sorts_lowest_first(pack):
    sb = pack.new_sandbox()
    rows = pack.tools["handle_time_by_agent"].func(sb, product_id="PR-01", month="2026-03")
    assert rows
    avgs = [r["avg_minutes"] for r in rows]
    assert avgs == sorted(avgs)
    with pytest.raises(ToolError):
        pack.tools["handle_time_by_agent"].func(sb, product_id="PR-99", month="2026-03")


def test_list_cases_caps_rows_and_reports_matches(pack):
    sb = pack.new_sandbox()
    out = pack.tools["list_cases"].func(sb, status="closed")
    assert out["matched"] > len(out["cases"]) == 20
    assert "note" in out
    dates = [c["created_at"] for c in out["cases"]]
    assert dates == sorted(dates, reverse=True)


def test_gold_programs_pass_the_agent_execution_path(pack):
    """Gold calls also pass the argument validation an agent's calls get (as in `lamsim check`)."""
    tasks = pytest.importorskip("lamsim_tui.simulator.tasks")
    runner_mod = pytest.importorskip("lamsim_tui.simulator.runner")
    runner = runner_mod.ToolRunner(pack)
    for template in pack.templates.values():
        for seed in range(10):
            slots = tasks.sample_slots(pack, template, random.Random(seed))
            task = tasks.make_task(pack, template, slots, runner)  # raises GoldFailure on a bad call
            assert task.gold_calls and task.gold_answer is not None
            assert bool(task.gold_state) == template.state, template.id
