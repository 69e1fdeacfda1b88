"""A port in the style of τ-bench's retail domain, judged two ways.

Users, orders and products are JSON objects keyed by id with records nested inside them; tools raise
domain errors worded `Error: ...`; `transfer_to_human_agents` ends the episode; the policy is the
pack's. Tasks are given by their gold actions (as another benchmark has them) through
`task_from_calls`, and every action sequence, gold and perturbed, is judged by `judge_calls` and by a
second judge written the way τ-bench rewards an episode: the whole database after the actions must
equal the database after the gold actions, and every expected output must appear in the final
answer. The two must agree on every sequence.
"""

from __future__ import annotations

import copy
import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from lamsim_tui.packs import load_pack
from lamsim_tui.record import ToolCall
from lamsim_tui.simulator.replay import judge_calls, task_from_calls
from lamsim_tui.simulator.runner import ToolRunner

TOOLS = '''
"""Retail tools, ported: the sandbox holds what τ-bench keeps in one dict."""

import copy

from lamsim_tui.packs import Sandbox, ToolError, tool


def _user(sb, user_id):
    user = sb.get("users", user_id)
    if user is None:
        raise ToolError("user not found")
    return user


def _order(sb, order_id):
    order = sb.get("orders", order_id)
    if order is None:
        raise ToolError("order not found")
    return order


@tool
def find_user_id_by_email(sb: Sandbox, email: str) -> str:
    """Find a user id by email."""
    for user in sb.iter_rows("users"):
        if user["email"].lower() == email.lower():
            return user["user_id"]
    raise ToolError("user not found")


@tool
def find_user_id_by_name_zip(sb: Sandbox, first_name: str, last_name: str, zip: str) -> str:
    """Find a user id by first name, last name and zip code."""
    for user in sb.iter_rows("users"):
        if (user["name"]["first_name"].lower(), user["name"]["last_name"].lower(), user["address"]["zip"]) == \\
                (first_name.lower(), last_name.lower(), zip):
            return user["user_id"]
    raise ToolError("user not found")


@tool
def get_order_details(sb: Sandbox, order_id: str) -> dict:
    """The status, items and payments of an order."""
    return _order(sb, order_id)


@tool
def get_user_details(sb: Sandbox, user_id: str) -> dict:
    """A user's profile, payment methods and orders."""
    return _user(sb, user_id)


@tool(changes_state=True)
def cancel_pending_order(sb: Sandbox, order_id: str, reason: str) -> dict:
    """Cancel a pending order; the money goes back to the payment method (a gift card at once)."""
    order = copy.deepcopy(_order(sb, order_id))
    if order["status"] != "pending":
        raise ToolError("non-pending order cannot be cancelled")
    if reason not in ("no longer needed", "ordered by mistake"):
        raise ToolError("invalid reason")
    refunds = []
    for payment in order["payment_history"]:
        refund = {"transaction_type": "refund", "amount": payment["amount"],
                  "payment_method_id": payment["payment_method_id"]}
        refunds.append(refund)
        user = copy.deepcopy(_user(sb, order["user_id"]))
        method = user["payment_methods"][payment["payment_method_id"]]
        if method["source"] == "gift_card":
            method["balance"] = round(method["balance"] + payment["amount"], 2)
            sb.update("users", user["user_id"], payment_methods=user["payment_methods"])
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
    order["payment_history"].extend(refunds)
    return sb.update("orders", order_id, **order)


@tool(changes_state=True)
def modify_user_address(sb: Sandbox, user_id: str, address1: str, city: str, zip: str) -> dict:
    """Change a user's default address."""
    user = _user(sb, user_id)
    return sb.update("users", user_id, address={**user["address"], "address1": address1, "city": city, "zip": zip})


@tool(ends_episode=True)
def transfer_to_human_agents(sb: Sandbox, summary: str) -> str:
    """Transfer the user to a human agent, with a summary of the issue."""
    return "Transfer successful"
'''

POLICY = """As a retail agent you can cancel pending orders, change addresses and answer questions.
- Authenticate the user first, by email or by name and zip code.
- Cancel only pending orders, with the reason "no longer needed" or "ordered by mistake".
- Transfer to a human agent only when the request is outside your tools.
"""


def _data() -> tuple[dict, dict]:
    users, orders = {}, {}
    people = [("Yusuf", "Rossi", "19122"), ("Mei", "Davis", "80217"), ("Ivan", "Khan", "94117")]
    for i, (first, last, zip_code) in enumerate(people):
        uid = f"{first.lower()}_{last.lower()}_{1000 + i}"
        users[uid] = {"name": {"first_name": first, "last_name": last}, "email": f"{first.lower()}@example.com",
                      "address": {"address1": f"{i + 1} Main St", "city": "Springfield", "zip": zip_code},
                      "payment_methods": {f"gift_card_{i}": {"source": "gift_card", "balance": 50.0 + i,
                                                             "id": f"gift_card_{i}"},
                                          f"credit_card_{i}": {"source": "credit_card", "id": f"credit_card_{i}"}},
                      "orders": [f"#W{100 + 2 * i}", f"#W{101 + 2 * i}"]}
        for k in range(2):
            oid = f"#W{100 + 2 * i + k}"
            orders[oid] = {"user_id": uid, "status": "pending" if k == 0 else "delivered",
                           "items": [{"item_id": f"{oid[2:]}{n}", "price": 10.0 * (n + 1)} for n in range(2)],
                           "payment_history": [{"transaction_type": "payment", "amount": 30.0,
                                                "payment_method_id": f"{'gift' if k == 0 else 'credit'}_card_{i}"}]}
    return users, orders


@pytest.fixture(scope="module")
def port(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("port") / "retail"
    (root / "data").mkdir(parents=True)
    users, orders = _data()
    (root / "data" / "users.json").write_text(json.dumps(users, indent=1))
    (root / "data" / "orders.json").write_text(json.dumps(orders, indent=1))
    (root / "tools.py").write_text(TOOLS)
    (root / "wiki.md").write_text(POLICY)
    (root / "pack.yaml").write_text(textwrap.dedent("""\
        name: retail
        tables:
          users: {file: data/users.json, key: user_id}
          orders: {file: data/orders.json, key: order_id}
        policy: wiki.md
        error_style: plain
        """))
    return root


# ----- the second judge: τ-bench's reward, written from its description -----------------------------------


def _database(pack, actions: list[dict]) -> str:
    """A hash of the whole database after the actions (every table, every row)."""
    runner = ToolRunner(pack)
    sb = pack.new_sandbox()
    for action in actions:
        outcome = runner.execute_sync(sb, ToolCall(action["name"], action["kwargs"]))
        spec = pack.tools.get(action["name"])
        if outcome.ok and spec is not None and spec.ends_episode:
            break
    tables = {t: {str(k): row for k, row in sorted((k, r) for k, r in ((r[sb.key_field(t)], r) for r in sb.rows(t)))}
              for t in sb.tables}
    return hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest()


def tau_reward(pack, gold: list[dict], actions: list[dict], outputs: list[str], answer: str | None) -> bool:
    if _database(pack, actions) != _database(pack, gold):
        return False
    return all(output.lower() in (answer or "").lower() for output in outputs)


TASKS = [
    {  # an unknown email first (it fails on purpose), then name and zip, then a cancellation
        "instruction": "I am Yusuf Rossi, zip 19122; my old email is yusuf.r@old.example. Cancel my pending order "
                       "#W100, I no longer need it.",
        "actions": [{"name": "find_user_id_by_email", "kwargs": {"email": "yusuf.r@old.example"}, "fails": True},
                    {"name": "find_user_id_by_name_zip",
                     "kwargs": {"first_name": "Yusuf", "last_name": "Rossi", "zip": "19122"}},
                    {"name": "get_order_details", "kwargs": {"order_id": "#W100"}},
                    {"name": "cancel_pending_order", "kwargs": {"order_id": "#W100", "reason": "no longer needed"}}],
        "outputs": [],
    },
    {  # a question: the output must be in the answer
        "instruction": "I am Mei Davis (mei@example.com). What is the balance of my gift card?",
        "actions": [{"name": "find_user_id_by_email", "kwargs": {"email": "mei@example.com"}},
                    {"name": "get_user_details", "kwargs": {"user_id": "mei_davis_1001"}}],
        "outputs": ["51.0"],
    },
    {  # a request outside the tools: transfer
        "instruction": "I am Ivan Khan (ivan@example.com) and I want to complain about a courier.",
        "actions": [{"name": "find_user_id_by_email", "kwargs": {"email": "ivan@example.com"}},
                    {"name": "transfer_to_human_agents", "kwargs": {"summary": "complaint about a courier"}}],
        "outputs": [],
    },
    {  # a write to a nested record
        "instruction": "I am Ivan Khan (ivan@example.com); I moved to 9 Elm St, Shelbyville 94118.",
        "actions": [{"name": "find_user_id_by_email", "kwargs": {"email": "ivan@example.com"}},
                    {"name": "modify_user_address", "kwargs": {"user_id": "ivan_khan_1002", "address1": "9 Elm St",
                                                               "city": "Shelbyville", "zip": "94118"}}],
        "outputs": [],
    },
]


def _perturbed(actions: list[dict]) -> list[list[dict]]:
    """The kinds of wrong sequences an agent produces: stop early, a wrong argument, an extra write,
    a read repeated, a transfer tacked on, the failing call left out."""
    out = [actions[:-1], [*actions, actions[-1]], [*actions[:1], *actions]]
    writes = [i for i, a in enumerate(actions) if a["name"] in ("cancel_pending_order", "modify_user_address")]
    for i in writes:
        wrong = copy.deepcopy(actions)
        key = "reason" if "reason" in wrong[i]["kwargs"] else "zip"
        wrong[i]["kwargs"][key] = "ordered by mistake" if key == "reason" else "00000"
        out.append(wrong)
    extra = {"name": "cancel_pending_order", "kwargs": {"order_id": "#W102", "reason": "no longer needed"}}
    out.append([*actions, extra])
    out.append([*actions[:-1], extra, actions[-1]])
    out.append([*actions, {"name": "transfer_to_human_agents", "kwargs": {"summary": "done"}}])
    out.append([a for a in actions if not a.get("fails")])
    return out


@pytest.mark.parametrize("number", range(len(TASKS)))
def test_both_judges_agree_on_gold_and_perturbed_sequences(port, number):
    pack = load_pack(port)
    spec = TASKS[number]
    gold = spec["actions"]
    answer = spec["outputs"][0] if spec["outputs"] else None
    task = task_from_calls(pack, spec["instruction"],
                           [{"tool": a["name"], "arguments": a["kwargs"], "expect_error": a.get("fails", False)}
                            for a in gold], **({"answer": float(answer)} if answer else {}))
    assert [c.error is not None for c in task.gold_calls] == [bool(a.get("fails")) for a in gold]
    # Unmarked, as another benchmark lists them: allow_errors keeps the failing call as an expected failure.
    unmarked = task_from_calls(pack, spec["instruction"], [(a["name"], a["kwargs"]) for a in gold],
                               allow_errors=True, **({"answer": float(answer)} if answer else {}))
    assert unmarked.gold_calls == task.gold_calls and unmarked.gold_state == task.gold_state
    sequences = [gold, *_perturbed(gold)]
    verdicts = []
    for actions in sequences:
        calls = [(a["name"], a["kwargs"]) for a in actions]
        # The agent's last words: the output where there is one (a hand-off ends the episode before them).
        judged = judge_calls(pack, task, calls, answer=answer) if answer else judge_calls(pack, task, calls)
        final = judged.record.final_answer
        reward = tau_reward(pack, gold, actions, spec["outputs"], None if final is None else str(final))
        verdicts.append((judged.success, reward, judged.reasons))
        assert judged.success == reward, (actions, judged.reasons, reward)
    assert verdicts[0][0] is True  # the gold sequence passes both
    assert any(not ok for ok, _, _ in verdicts)  # and some perturbation fails both


def test_the_port_never_touches_the_seed(port):
    pack = load_pack(port)
    before = pack.seed.fingerprint()
    for spec in TASKS:
        for actions in [spec["actions"], *_perturbed(spec["actions"])]:
            judge_calls(pack, task_from_calls(pack, spec["instruction"], [
                {"tool": a["name"], "arguments": a["kwargs"], "expect_error": a.get("fails", False)}
                for a in spec["actions"]]), [(a["name"], a["kwargs"]) for a in actions])
    assert pack.seed.fingerprint() == before
    runner = ToolRunner(pack)
    outcome = runner.execute_sync(pack.new_sandbox(), ToolCall("get_order_details", {"order_id": "#W999"}))
    assert runner.observation(outcome) == "Error: order not found"
