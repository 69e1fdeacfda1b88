"""What a real environment needs from a pack (issue 13): its policy, nested state, episode-ending tools,
gold calls that fail on purpose, fixed task lists, the public replay-and-judge API, `loop.repeat`
after a write, seed tables keyed by id and the domain-error wording.

The pack here is written the way a port of a third-party environment looks: seed tables as JSON
objects keyed by id, orders with nested items and payment histories, a hand-off tool, a policy.
"""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from pathlib import Path

import pytest
from packkit import lamsim, write_session

from lamsim_tui.agents.prompts import agent_system_prompt
from lamsim_tui.agents.scripted import ScriptedAgentFactory
from lamsim_tui.packs import load_pack
from lamsim_tui.record import ToolCall
from lamsim_tui.session.config import load_session
from lamsim_tui.simulator.engine import Engine
from lamsim_tui.simulator.replay import ajudge_calls, judge_calls, task_for, task_from_calls
from lamsim_tui.simulator.runner import ToolRunner
from lamsim_tui.simulator.tasks import GoldFailure, make_task

TOOLS = '''
"""Tools of the desk pack (a retail desk, laid out like a port of another benchmark)."""

from lamsim_tui.packs import Sandbox, ToolError, tool


class NotFound(ToolError):
    """A subclass of ToolError: the agent sees its message like any domain error."""


def _order(sb, order_id):
    order = sb.get("orders", order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


@tool
def find_user_by_email(sb: Sandbox, email: str) -> str:
    """The user id of an email address."""
    for user in sb.iter_rows("users"):
        if user["email"] == email:
            return user["user_id"]
    raise NotFound("user not found")


@tool
def find_user_by_name(sb: Sandbox, name: str, zip: str) -> str:
    """The user id of a name and zip code."""
    for user in sb.iter_rows("users"):
        if user["name"] == name and user["address"]["zip"] == zip:
            return user["user_id"]
    raise NotFound("user not found")


@tool
def get_order(sb: Sandbox, order_id: str) -> dict:
    """An order with its items and payment history."""
    return _order(sb, order_id)


@tool(changes_state=True)
def refund_item(sb: Sandbox, order_id: str, item_id: str) -> dict:
    """Refund one item of a delivered order."""
    order = _order(sb, order_id)
    item = next((i for i in order["items"] if i["item_id"] == item_id), None)
    if item is None:
        raise ToolError(f"no item {item_id} in order {order_id}")
    if order["status"] != "delivered":
        raise ToolError("only delivered orders can be refunded")
    payments = [*order["payment_history"], {"kind": "refund", "amount": -item["price"]}]
    return sb.update("orders", order_id, payment_history=payments, status="refunded")


@tool(changes_state=True)
def refund_item_in_place(sb: Sandbox, order_id: str, item_id: str) -> dict:
    """Refund one item (the way a port first wrote it: changing the nested list in place)."""
    order = _order(sb, order_id)
    item = next(i for i in order["items"] if i["item_id"] == item_id)
    order["payment_history"].append({"kind": "refund", "amount": -item["price"]})
    return sb.update("orders", order_id, **order)


@tool(ends_episode=True)
def transfer_to_human_agents(sb: Sandbox, summary: str) -> str:
    """Hand the customer over to a human agent."""
    return "Transfer successful"
'''

TEMPLATES = '''
from lamsim_tui.packs import template


def _delivered(data):
    return [o for o in data.rows("orders") if o["status"] == "delivered"]


@template(query="Refund item {item_id} of order {order_id}.", answer=None, state=True,
          state_fields={"orders": ["status", "payment_history.*.amount"]})
def refund(data, rng):
    order = rng.choice(_delivered(data))
    return {"order_id": order["order_id"], "item_id": rng.choice(order["items"])["item_id"]}


@refund.gold
def _(slots, call):
    call("get_order", order_id=slots["order_id"])
    call("refund_item", order_id=slots["order_id"], item_id=slots["item_id"])
    return f"Item {slots['item_id']} of order {slots['order_id']} is refunded."


@template(query="I am {name}, zip {zip}, my email is {email}. What is my user id?", answer="text")
def who_am_i(data, rng):
    user = rng.choice(data.rows("users"))
    return {"name": user["name"], "zip": user["address"]["zip"], "email": "old." + user["email"]}


@who_am_i.gold
def _(slots, call):
    call.expect_error("find_user_by_email", email=slots["email"])  # the old address is unknown
    return call("find_user_by_name", name=slots["name"], zip=slots["zip"])


@template(query="Order {order_id} arrived broken and I want to talk to a person.", answer=None, state="unchanged",
          ends_with="transfer_to_human_agents")
def hand_off(data, rng):
    return {"order_id": rng.choice(data.rows("orders"))["order_id"]}


@hand_off.gold
def _(slots, call):
    call("get_order", order_id=slots["order_id"])
    call("transfer_to_human_agents", summary=f"order {slots['order_id']} arrived broken")
'''

POLICY = "# Desk policy\\n\\n- Identify the user before any change.\\n- Transfer to a human only when asked."


def _users() -> dict:
    names = ["Ana Ruiz", "Bo Chen", "Cy Diaz", "Di Eze", "Ed Fox", "Flo Gray", "Gil Hart", "Hal Ives", "Ida Jung",
             "Jo Kim", "Kit Lane", "Lu Mo"]
    return {f"user_{i}": {"name": name, "email": f"{name.split()[0].lower()}@mail.example",
                          "address": {"city": "Springfield", "zip": f"{10000 + i}"}}
            for i, name in enumerate(names)}


def _orders() -> dict:
    out = {}
    for i in range(12):
        out[f"#W{100 + i}"] = {
            "user_id": f"user_{i}", "status": "delivered" if i % 3 else "pending",
            "items": [{"item_id": f"I{i}{k}", "price": 10.0 * (k + 1) + i} for k in range(2)],
            "payment_history": [{"kind": "payment", "amount": 30.0 + 2 * i}],
        }
    return out


def make_desk(root: Path, *, tools: str = TOOLS, templates: str = TEMPLATES, extra: str = "",
              fixed: str | None = None) -> Path:
    pack = root / "tools" / "desk"
    (pack / "data").mkdir(parents=True, exist_ok=True)
    manifest = textwrap.dedent("""\
        name: desk
        now: "2026-05-01T09:00:00"
        tables:
          users: {file: data/users.json, key: user_id}
          orders: {file: data/orders.json, key: order_id}
        policy: policy.md
        error_style: plain
        """) + extra
    if fixed is not None:
        manifest += "fixed_tasks: tasks.yaml\n"
        (pack / "tasks.yaml").write_text(fixed)
    (pack / "pack.yaml").write_text(manifest)
    (pack / "data" / "users.json").write_text(json.dumps(_users(), indent=1))
    (pack / "data" / "orders.json").write_text(json.dumps(_orders(), indent=1))
    (pack / "tools.py").write_text(tools)
    (pack / "templates.py").write_text(templates)
    (pack / "policy.md").write_text(POLICY.replace("\\n", "\n"))
    write_session(root, "pack: desk\nseed: 5\nconcurrency: 1\n", name="desk.yaml")
    return pack


@pytest.fixture
def desk(tmp_path):
    make_desk(tmp_path)
    return load_pack(tmp_path / "tools" / "desk")


def line_of(path: Path, text: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


# ----- seed tables keyed by id, domain errors ---------------------------------------------------------


def test_seed_tables_given_as_objects_keyed_by_id_load_as_tables(desk):
    sb = desk.new_sandbox()
    assert sb.count("orders") == 12 and sb.key_field("orders") == "order_id"
    assert sb.get("orders", "#W101")["order_id"] == "#W101"  # the key field is filled in from the object's key
    assert sb.get("users", "user_3")["address"] == {"city": "Springfield", "zip": "10003"}


def test_a_pack_chooses_how_domain_errors_read(tmp_path, desk):
    runner = ToolRunner(desk)
    outcome = runner.execute_sync(desk.new_sandbox(), ToolCall("get_order", {"order_id": "#W999"}))
    assert [f.code for f in outcome.findings] == ["exec.error"]
    assert runner.observation(outcome) == "Error: order #W999 not found"  # a ToolError subclass, τ-bench's wording
    make_desk(tmp_path, extra="")
    (tmp_path / "tools" / "desk" / "pack.yaml").write_text(
        (tmp_path / "tools" / "desk" / "pack.yaml").read_text().replace("error_style: plain\n", ""))
    default = load_pack(tmp_path / "tools" / "desk")
    runner = ToolRunner(default)
    outcome = runner.execute_sync(default.new_sandbox(), ToolCall("get_order", {"order_id": "#W999"}))
    assert runner.observation(outcome) == "Note: get_order failed: order #W999 not found"


# ----- nested state ---------------------------------------------------------------------------------------


def test_nested_state_changed_in_place_is_refused_with_the_tool_and_its_line(tmp_path, desk):
    runner = ToolRunner(desk)
    sb = desk.new_sandbox()
    outcome = runner.execute_sync(sb, ToolCall("refund_item_in_place", {"order_id": "#W101", "item_id": "I10"}))
    assert [f.code for f in outcome.findings] == ["exec.crash"]
    line = line_of(tmp_path / "tools" / "desk" / "tools.py", 'order["payment_history"].append(')
    assert outcome.crash.startswith(f"tool 'refund_item_in_place' changed a sandbox row in place at "
                                    f"{tmp_path / 'tools' / 'desk' / 'tools.py'}:{line}")
    assert "sb.update('orders'" in outcome.crash  # and what to write instead
    assert sb.changes() == {}
    assert len(desk.new_sandbox().get("orders", "#W101")["payment_history"]) == 1  # the seed is unharmed
    # The right way works, and copies made from a read are the author's to change.
    outcome = runner.execute_sync(sb, ToolCall("refund_item", {"order_id": "#W101", "item_id": "I10"}))
    assert outcome.ok and outcome.wrote
    row = sb.get("orders", "#W101")
    row["status"] = "changed on a copy"  # top-level fields of a copy: fine
    import copy

    mutable = copy.deepcopy(row)
    mutable["payment_history"].append({"kind": "note"})
    assert len(sb.get("orders", "#W101")["payment_history"]) == 2


def test_nested_state_changed_in_place_is_caught_by_check_and_run(tmp_path):
    templates = TEMPLATES.replace('call("refund_item", order_id=', 'call("refund_item_in_place", order_id=')
    pack = make_desk(tmp_path, templates=templates)
    where = f"{pack / 'tools.py'}:{line_of(pack / 'tools.py', 'order[' + chr(34) + 'payment_history' + chr(34) + '].append(')}"
    checked = lamsim("check", str(tmp_path / "sessions" / "desk.yaml"), "--samples", "3", cwd=tmp_path)
    assert checked.returncode == 1
    assert "FAIL" in checked.stdout and "refund_item_in_place" in checked.stdout and where in checked.stdout
    ran = lamsim("run", str(tmp_path / "sessions" / "desk.yaml"), "--headless", "-n", "6", "--agent", "scripted",
                 "--store", str(tmp_path / "store"), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "template 'refund' skipped" in ran.stderr  # its gold program cannot run: never reaches an agent
    # A model agent can still call the broken tool: the run names it at once.
    session = load_session(tmp_path / "sessions" / "desk.yaml")
    desk = load_pack(pack)
    task = task_for(desk, "who_am_i", seed=1)
    judged = judge_calls(desk, task, [("refund_item_in_place", {"order_id": "#W101", "item_id": "I10"}),
                                      ("find_user_by_name", {"name": task.slots["name"], "zip": task.slots["zip"]})],
                         answer=task.gold_answer)
    assert judged.steps[0].codes == ["exec.crash"] and where in judged.steps[0].crash
    assert judged.success  # the seed was never touched, so the rest of the episode is sound
    from lamsim_tui.simulator.engine import note_tool_bugs
    from lamsim_tui.simulator.tally import RunSummary

    summary = RunSummary()
    note_tool_bugs(summary.tool_bugs, judged.record)
    assert summary.to_dict()["tool_bugs"]["refund_item_in_place"].startswith(
        "tool 'refund_item_in_place' changed a sandbox row in place at " + where)
    assert session.pack == "desk"


def test_nested_fields_are_judged_by_path(desk):
    task = task_for(desk, "refund", {"order_id": "#W101", "item_id": "I11"})
    assert task.judge_state and task.answer_type == "none"
    good = judge_calls(desk, task, [("refund_item", {"order_id": "#W101", "item_id": "I11"})])
    assert good.success, good.reasons
    wrong = judge_calls(desk, task, [("refund_item", {"order_id": "#W101", "item_id": "I10"})])
    assert not wrong.success
    assert wrong.reasons == ("orders #W101: fields payment_history.*.amount differ from the gold state "
                             "(first at payment_history.*.amount[1]: -11.0 vs gold -21.0)",)


# ----- episode-ending tools ---------------------------------------------------------------------------------


def test_a_tool_that_ends_the_episode(desk):
    task = task_for(desk, "hand_off", {"order_id": "#W104"})
    assert task.ends_with == "transfer_to_human_agents" and not task.judges_answer
    assert [c.tool for c in task.gold_calls] == ["get_order", "transfer_to_human_agents"]
    handed = judge_calls(desk, task, [("get_order", {"order_id": "#W104"}),
                                      ("transfer_to_human_agents", {"summary": "broken"}),
                                      ("refund_item", {"order_id": "#W104", "item_id": "I40"})])
    assert handed.success, handed.reasons
    assert handed.record.end_reason == "ended.transfer_to_human_agents"
    assert len(handed.steps) == 2 and handed.steps[-1].observation == "Transfer successful"
    assert handed.final_state == {}  # the refund after the hand-off never ran
    answered = judge_calls(desk, task, [("get_order", {"order_id": "#W104"})], answer="I will pass you on.")
    assert not answered.success
    assert "the task calls for transfer_to_human_agents (which ends the episode); the episode ended with a final " \
           "answer" in answered.reasons
    # A task that does not call for a hand-off: an action-only one is judged on its state...
    other = task_for(desk, "refund", {"order_id": "#W101", "item_id": "I10"})
    gave_up = judge_calls(desk, other, [("transfer_to_human_agents", {"summary": "refund"})])
    assert not gave_up.success and gave_up.reasons == ("orders #W101: expected a change that was not made",)
    done_then_handed = judge_calls(desk, other, [("refund_item", {"order_id": "#W101", "item_id": "I10"}),
                                                 ("transfer_to_human_agents", {"summary": "refunded"})])
    assert done_then_handed.success, done_then_handed.reasons
    # ...and one with an answer fails: no answer was given.
    asked = task_for(desk, "who_am_i", seed=1)
    handed_over = judge_calls(desk, asked, [("transfer_to_human_agents", {"summary": "who is this"})])
    assert not handed_over.success
    assert handed_over.reasons == ("no final answer: the episode was ended with transfer_to_human_agents before one "
                                   "was given",)


def test_a_hand_off_is_declared_by_the_template_and_checked(tmp_path, desk):
    from lamsim_tui.errors import PackError

    spec = desk.templates["hand_off"]
    original = spec.gold_program
    spec.gold_program = lambda slots, call: call("get_order", order_id=slots["order_id"])
    try:
        with pytest.raises(GoldFailure, match="ends_with='transfer_to_human_agents', but the gold program did not "
                                              "call it"):
            make_task(desk, spec, {"order_id": "#W104"}, ToolRunner(desk))
    finally:
        spec.gold_program = original
    make_desk(tmp_path, templates=TEMPLATES.replace('ends_with="transfer_to_human_agents"', 'ends_with="get_order"'))
    with pytest.raises(PackError, match="ends_with='get_order', but that tool does not end the episode"):
        load_pack(tmp_path / "tools" / "desk")


def test_gold_calls_after_an_ending_tool_fail_the_template(desk):
    spec = desk.templates["hand_off"]
    original = spec.gold_program

    def after(slots, call):
        original(slots, call)
        return call("get_order", order_id=slots["order_id"])

    spec.gold_program = after
    try:
        with pytest.raises(GoldFailure, match="comes after transfer_to_human_agents, which ends the episode"):
            make_task(desk, spec, {"order_id": "#W104"}, ToolRunner(desk))
    finally:
        spec.gold_program = original


# ----- gold calls that fail on purpose ------------------------------------------------------------------------


def test_gold_calls_that_fail_on_purpose_are_kept_and_replayed(tmp_path, desk):
    task = task_for(desk, "who_am_i", seed=2)
    first, second = task.gold_calls
    assert first.tool == "find_user_by_email" and first.error == "user not found" and first.result is None
    assert first.to_dict()["error"] == "user not found" and second.to_dict().keys() == {"tool", "arguments", "result"}
    session = load_session(tmp_path / "sessions" / "desk.yaml")
    session = session.__class__(**{**session.__dict__, "agent": session.agent.__class__(mistake_rate=0.0),
                                   "templates": ["who_am_i"]})
    engine = Engine(session, desk, ScriptedAgentFactory(session, desk), tasks=3)
    summary = asyncio.run(engine.run())
    assert summary.episodes == 3 and summary.succeeded == 3
    assert summary.findings == {"exec.error": 3}  # the recovery is in the data, as a warning
    events = []
    engine = Engine(session, desk, ScriptedAgentFactory(session, desk), tasks=1, on_event=events.append)
    asyncio.run(engine.run())
    record = next(e.trajectory for e in events if type(e).__name__ == "EpisodeFinished")
    assert record.steps[0].observation == "Error: user not found" and record.steps[1].executed


def test_an_expected_failure_that_succeeds_fails_the_check(tmp_path):
    templates = TEMPLATES.replace('"email": "old." + user["email"]', '"email": user["email"]')
    pack = make_desk(tmp_path, templates=templates)
    result = lamsim("check", str(tmp_path / "sessions" / "desk.yaml"), "--samples", "3", cwd=tmp_path)
    assert result.returncode == 1
    where = f"{pack / 'templates.py'}:{line_of(pack / 'templates.py', 'call.expect_error(')}"
    assert re.search(rf"FAIL {re.escape(where)}: gold call find_user_by_email\(email='[a-z]+@mail.example'\) was "
                     "expected to fail, but it succeeded", result.stdout), result.stdout


# ----- fixed tasks -------------------------------------------------------------------------------------------

FIXED = """\
- id: ticket-1
  query: Refund item I11 of order '#W101', please.
  calls:
    - {tool: get_order, arguments: {order_id: "#W101"}}
    - {tool: refund_item, arguments: {order_id: "#W101", item_id: I11}}
  state_fields: {orders: [status, payment_history]}
- id: ticket-2
  query: "I am Bo Chen (zip 10001); bo.old@mail.example is my old address. My user id?"
  calls:
    - {tool: find_user_by_email, arguments: {email: bo.old@mail.example}, expect_error: not found}
    - {tool: find_user_by_name, arguments: {name: Bo Chen, zip: "10001"}}
  answer: user_1
"""


def test_fixed_tasks_are_loaded_checked_and_run(tmp_path):
    make_desk(tmp_path, fixed=FIXED)
    desk = load_pack(tmp_path / "tools" / "desk")
    one, two = desk.templates["ticket-1"], desk.templates["ticket-2"]
    assert one.fixed and one.answer == "none" and two.answer == "text"
    task = task_for(desk, "ticket-1")
    assert task.query == "Refund item I11 of order '#W101', please." and task.judge_state
    assert task.gold_state["orders"]["#W101"]["status"] == "refunded"
    assert task_for(desk, "ticket-2").gold_calls[0].error == "user not found"
    result = lamsim("check", str(tmp_path / "sessions" / "desk.yaml"), "--samples", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "3 templates, 2 fixed tasks" in result.stdout
    assert re.search(r"^ticket-1\s+1\s+1\s+0\s+1\s+2 ", result.stdout, re.M)
    assert "all 5 templates and fixed tasks passed" in result.stdout
    session = load_session(tmp_path / "sessions" / "desk.yaml")
    session = session.__class__(**{**session.__dict__, "agent": session.agent.__class__(mistake_rate=0.0),
                                   "templates": ["ticket-1", "ticket-2"]})
    engine = Engine(session, desk, ScriptedAgentFactory(session, desk), tasks=10)
    summary = asyncio.run(engine.run())
    assert summary.tasks == 2 and summary.succeeded == 2  # each fixed task once, however many are asked for


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("  state_fields: {orders: [status, payment_history]}", "  state_fields: {orders: [status, payment_histroy]}",
     r"error \[state_fields.field\] {file}:6: state_fields\['orders'\] names field 'payment_histroy'.*\n"
     r"\s+fix: did you mean 'payment_history'\?"),
    ("expect_error: not found}", "expect_error: no such user}",
     r"FAIL {file}:10: gold program raised FixedCallFailed: gold call find_user_by_email failed as expected, but "
     r"with 'user not found', which does not contain 'no such user'"),
    ("{tool: refund_item, arguments:", "{tool: refund_itme, arguments:",
     r"FAIL {file}:5: gold call refund_itme\(.*\) failed: \[tool.unknown\] .*Did you mean 'refund_item'"),
    ("  answer: user_1", "  answer: user_1\n  answer_type: number",
     r"error \[answer.type\] {file}:12: the gold answer \"user_1\".*cannot be read as a number"),
])
def test_mistakes_in_a_fixed_tasks_file_name_its_line(tmp_path, old, new, expected):
    pack = make_desk(tmp_path, fixed=FIXED.replace(old, new))
    result = lamsim("check", str(tmp_path / "sessions" / "desk.yaml"), "--samples", "2", cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert re.search(expected.format(file=re.escape(str(pack / "tasks.yaml"))), result.stdout), result.stdout


# ----- the public replay-and-judge API -----------------------------------------------------------------------


def test_judge_calls_executes_any_sequence_and_judges_it(desk):
    task = task_from_calls(desk, "Refund item I20 of order #W102.",
                           [{"name": "get_order", "kwargs": {"order_id": "#W102"}},
                            {"name": "refund_item", "kwargs": {"order_id": "#W102", "item_id": "I20"}}])
    assert task.answer_type == "none" and task.judge_state and task.gold_state["orders"]["#W102"]["status"] == "refunded"

    class Action:  # another benchmark's action object: .name and .kwargs
        def __init__(self, name, kwargs):
            self.name, self.kwargs = name, kwargs

    gold = judge_calls(desk, task, [Action("get_order", {"order_id": "#W102"}),
                                    Action("refund_item", {"order_id": "#W102", "item_id": "I20"})])
    assert gold.success and gold.verdict.state_correct and gold.reasons == ()
    assert gold.record.final_answer == "Done." and gold.record.end_reason == "finished"
    assert gold.record.to_dict()["task"]["gold_calls"][1]["tool"] == "refund_item"
    perturbed = judge_calls(desk, task, [("refund_item", {"order_id": "#W102", "item_id": "I21"})])
    assert not perturbed.success and perturbed.reasons[0].startswith("orders #W102: fields payment_history differ")
    nothing = judge_calls(desk, task, [])
    assert not nothing.success and nothing.reasons == ("orders #W102: expected a change that was not made",)
    # With an answer: the task's answer type judges it.
    lookup = task_from_calls(desk, "User id of Bo Chen, zip 10001?",
                             [("find_user_by_name", {"name": "Bo Chen", "zip": "10001"})], answer="user_1")
    assert judge_calls(desk, lookup, [], answer="USER_1").success  # text: case and punctuation do not matter
    assert not judge_calls(desk, lookup, [], answer="user_2").success
    # The async form, from code already in an event loop.
    judged = asyncio.run(ajudge_calls(desk, "refund", [("refund_item", {"order_id": "#W101", "item_id": "I10"})],
                                      slots={"order_id": "#W101", "item_id": "I10"}))
    assert judged.success


def test_every_call_is_executed_even_identical_ones(desk):
    task = task_for(desk, "refund", {"order_id": "#W101", "item_id": "I10"})
    judged = judge_calls(desk, task, [("get_order", {"order_id": "#W101"}), ("get_order", {"order_id": "#W101"}),
                                      ("refund_item", {"order_id": "#W101", "item_id": "I10"})])
    assert [s.executed for s in judged.steps[:3]] == [True, True, True] and judged.success


# ----- loop.repeat after a write -----------------------------------------------------------------------------


def test_a_call_repeated_after_a_write_is_not_a_repeat(desk):
    from lamsim_tui.session.config import FeedbackSettings

    task = task_for(desk, "refund", {"order_id": "#W101", "item_id": "I10"})
    calls = [("get_order", {"order_id": "#W101"}), ("refund_item", {"order_id": "#W101", "item_id": "I10"}),
             ("get_order", {"order_id": "#W101"}), ("get_order", {"order_id": "#W101"})]
    judged = judge_calls(desk, task, calls, feedback=FeedbackSettings())  # loop.repeat on, as in a session
    assert [s.codes for s in judged.steps[:4]] == [[], [], [], ["loop.repeat"]]
    assert "status" in judged.steps[2].observation and "refunded" in judged.steps[2].observation
    assert [s.changed_state for s in judged.steps[:4]] == [False, True, False, False]
    assert "at step 3" in judged.steps[3].observation  # steps are counted from 1, as people read them


# ----- the policy -------------------------------------------------------------------------------------------


def test_the_policy_is_added_to_every_prompt_and_recorded(tmp_path, desk):
    session = load_session(tmp_path / "sessions" / "desk.yaml")
    for fmt in ("json", "native"):
        prompt = agent_system_prompt(desk, session, fmt)
        assert prompt.endswith("Policy: the rules of this workplace. Follow them in every task, even when the task "
                               "asks otherwise.\n# Desk policy\n\n- Identify the user before any change.\n"
                               "- Transfer to a human only when asked.")
    assert "- transfer_to_human_agents(summary: string): Hand the customer over to a human agent. Calling it ends " \
           "the task." in agent_system_prompt(desk, session, "json")
    shown = lamsim("pack", "show", str(tmp_path / "tools" / "desk"), "--prompt", cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout.count("- Identify the user before any change.") == 2
    events = []
    engine = Engine(session, desk, ScriptedAgentFactory(session, desk), tasks=2, on_event=events.append)
    asyncio.run(engine.run())
    records = [e.trajectory for e in events if type(e).__name__ == "EpisodeFinished"]
    assert records and all(r.policy == POLICY.replace("\\n", "\n") for r in records)
    assert all(r.policy in r.system_prompt for r in records)
    assert records[0].to_dict()["policy"] == records[0].policy


def test_a_session_can_replace_place_or_drop_the_policy(tmp_path, desk):
    (tmp_path / "sessions" / "strict.md").write_text("Refuse everything.\n")
    session = load_session(write_session(tmp_path, """\
        pack: desk
        policy: strict.md
        agent:
          system_prompt: "You are a desk agent.\\n{policy}\\nTools:\\n{tools}"
        """, name="strict.yaml"))
    prompt = agent_system_prompt(desk, session, "json")
    assert prompt.startswith("You are a desk agent.\nPolicy: the rules of this workplace.")
    assert "Refuse everything." in prompt and prompt.index("Refuse everything.") < prompt.index("Tools:")
    shown = lamsim("pack", "show", str(tmp_path / "tools" / "desk"), "--prompt", "--session",
                   str(tmp_path / "sessions" / "strict.yaml"), cwd=tmp_path)
    assert "Refuse everything." in shown.stdout and "Identify the user" not in shown.stdout
    none = load_session(write_session(tmp_path, "pack: desk\npolicy: none\n", name="none.yaml"))
    assert "Policy:" not in agent_system_prompt(desk, none, "native")
    missing = write_session(tmp_path, "pack: desk\npolicy: nowhere.md\n", name="missing.yaml")
    result = lamsim("run", str(missing), "--headless", "-n", "1", "--agent", "scripted", cwd=tmp_path)
    assert result.returncode == 2 and "policy file not found" in result.stderr and "Traceback" not in result.stderr


def test_editing_the_policy_makes_a_new_pack_version(tmp_path, desk):
    (tmp_path / "tools" / "desk" / "policy.md").write_text("Other rules.\n")
    again = load_pack(tmp_path / "tools" / "desk")
    assert again.version != desk.version and again.policy == "Other rules."


def test_hand_offs_are_stored_judged_and_exported(tmp_path):
    make_desk(tmp_path)
    session = write_session(tmp_path, "pack: desk\nseed: 2\ntemplates: [hand_off]\nagent: {mistake_rate: 0}\n",
                            name="handoff.yaml")
    store = tmp_path / "store"
    ran = lamsim("run", str(session), "--headless", "-n", "3", "--agent", "scripted", "--store", str(store),
                 cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "ended.transfer_to_human_agents 3" in ran.stdout and "success rate      100.0%" in ran.stdout
    out = tmp_path / "chat.jsonl"
    exported = lamsim("export", "--store", str(store), "--format", "chat", "--status", "all", "--out", str(out),
                      cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3  # a hand-off ended properly: it is training data, not an unfinished episode
    assert rows[0]["messages"][-1]["content"] == "Transfer successful"
    assert "- Identify the user before any change." in rows[0]["messages"][0]["content"]  # the policy
