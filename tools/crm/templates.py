"""Task templates of the crm pack.

Samplers read the seed through `data` and draw with `rng` only, so a seed gives the same tasks.
Every sampler draws slots that make the task answerable and unambiguous (unique minimum, at
least one matching case, ...). Gold programs call the tools the way a careful agent would.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

from lamsim_tui.packs import template

MONTHS = {f"2026-{m:02d}": name + " 2026" for m, name in enumerate(
    ["January", "February", "March", "April", "May", "June"], start=1)}
MONTH_BY_LABEL = {label: key for key, label in MONTHS.items()}
TEAMS = ["billing", "technical", "logistics", "accounts"]
TOPIC_PHRASES = {  # article topic -> how a user asks about it
    "setup": "setting up", "reset": "factory resets", "firmware": "firmware updates",
    "connectivity": "connectivity problems", "warranty": "warranty claims", "return": "returns",
    "billing": "billing questions", "licence": "activating the licence", "cancel": "cancelling",
}


# ----- helpers (seed side) ---------------------------------------------------------------------


def _dup_contacts(data) -> list[dict]:
    """Contacts whose full name is shared with a contact at another account."""
    counts = Counter(c["name"] for c in data.rows("contacts"))
    return [c for c in data.rows("contacts") if counts[c["name"]] > 1]


def _pick_contact(data, rng, pool: list[dict]) -> dict:
    """Half the time a contact whose name is ambiguous, otherwise any contact from the pool."""
    dups = {c["id"] for c in _dup_contacts(data)}
    ambiguous = [c for c in pool if c["id"] in dups]
    if ambiguous and rng.random() < 0.5:
        return rng.choice(ambiguous)
    return rng.choice(pool)


def _handle_times(data, product_id: str, month: str) -> list[tuple[float, str]]:
    """(avg minutes rounded like the tool, agent id), lowest first."""
    per: dict[str, list[int]] = {}
    for c in data.rows("cases"):
        if c["product_id"] == product_id and c["status"] == "closed" and c["created_at"].startswith(month):
            per.setdefault(c["agent_id"], []).append(c["handle_minutes"])
    return sorted((round(sum(v) / len(v), 1), a) for a, v in per.items())


def _open_counts(data) -> Counter:
    return Counter(c["agent_id"] for c in data.rows("cases") if c["status"] != "closed")


def _window_days(data, order: dict) -> int:
    product = data.get("products", order["product_id"])
    return data.get("policies", product["category"])["refund_window_days"]


def _refunded(data, order_id: str) -> float:
    return round(sum(r["amount"] for r in data.rows("refunds") if r["order_id"] == order_id), 2)


def _product_id(call, name: str) -> str:
    return next(p["id"] for p in call("list_products") if p["name"] == name)


def _contact_id(call, name: str, account: str) -> str:
    return next(c["id"] for c in call("find_contacts", name=name) if c["account"] == account)


def _agent_id(call, name: str) -> str:
    return next(a["id"] for a in call("list_agents") if a["name"] == name)


APPROVAL_LIMIT = 150.0  # policy.md: a refund of more than this waits for a supervisor


_REFUND_CASES: dict[str, list[dict]] = {}  # built once: a changed seed is a new pack version (a new module)


def _refund_cases(data) -> dict[str, list[dict]]:
    """Open or pending cases with an order that still has money left to refund, by what the policy
    says to do: "refund" (inside the window, at most the approval limit left), "approval" (inside,
    more left), "refuse" (outside the window)."""
    if not _REFUND_CASES:
        _REFUND_CASES.update(_sort_refund_cases(data))
    return _REFUND_CASES


def _sort_refund_cases(data) -> dict[str, list[dict]]:
    today = data.now.date()
    out: dict[str, list[dict]] = {"refund": [], "approval": [], "refuse": []}
    for c in data.rows("cases"):
        if c["status"] not in ("open", "pending") or not c["order_id"]:
            continue
        order = data.get("orders", c["order_id"])
        left = round(order["amount"] - _refunded(data, order["id"]), 2)
        if left <= 0.005:
            continue
        inside = (today - date.fromisoformat(order["order_date"])).days <= _window_days(data, order)
        out["refuse" if not inside else "refund" if left <= APPROVAL_LIMIT else "approval"].append(c)
    return out


def _follow_refund_policy(call, case_id: str) -> tuple[float, str]:
    """What policy.md says to do with a refund request on a case: (amount refunded, what was done)."""
    case = call("get_case", case_id=case_id)
    order = call("get_order", order_id=case["order_id"])
    policy = call("get_policy", category=order["category"])
    left = round(order["amount"] - order["refunded"], 2)
    if order["age_days"] > policy["refund_window_days"]:
        call("update_case_status", case_id=case["id"], status="escalated")
        call("add_case_note", case_id=case["id"],
             text=f"Refund refused: order {order['id']} is {order['age_days']} days old, outside the "
                  f"{policy['refund_window_days']}-day refund window. Escalated for the account manager.")
        return 0, (f"Order {order['id']} is outside its {policy['refund_window_days']}-day refund window, so I "
                   f"cannot refund it. I escalated case {case['id']} so that the account manager can follow up.")
    if left > APPROVAL_LIMIT:
        call("update_case_status", case_id=case["id"], status="escalated")
        call("add_case_note", case_id=case["id"],
             text=f"Refund of {left:.2f} on order {order['id']} waits for a supervisor's approval.")
        return 0, (f"A refund of {left:.2f} needs a supervisor's approval: I escalated case {case['id']} and "
                   "noted the request.")
    call("issue_refund", order_id=order["id"], amount=left, reason="refund request " + case["id"])
    call("update_case_status", case_id=case["id"], status="closed")
    call("add_case_note", case_id=case["id"], text=f"Refunded {left:.2f} on order {order['id']}; case closed.")
    return left, f"I refunded {left:.2f} on order {order['id']} and closed case {case['id']}."


# ----- lookups ---------------------------------------------------------------------------------


@template(query="What is the current status of case {case_id}?", answer="text")
def case_status(data, rng):
    """Single lookup of a case's status."""
    status = rng.choice(["open", "pending", "escalated", "closed"])
    return {"case_id": rng.choice(data.find("cases", status=status))["id"]}


@case_status.gold
def _(slots, call):
    return call("get_case", case_id=slots["case_id"])["status"]


@template(query="Which agent is assigned to case {case_id}? Answer with the agent's full name.", answer="text")
def case_agent_name(data, rng):
    """Case -> agent join (two calls)."""
    return {"case_id": rng.choice(data.rows("cases"))["id"]}


@case_agent_name.gold
def _(slots, call):
    case = call("get_case", case_id=slots["case_id"])
    return call("get_agent", agent_id=case["agent_id"])["name"]


@template(query="On what date was case {case_id} closed?", answer="date")
def case_closed_date(data, rng):
    """Date answer from a closed case."""
    return {"case_id": rng.choice(data.find("cases", status="closed"))["id"]}


@case_closed_date.gold
def _(slots, call):
    return call("get_case", case_id=slots["case_id"])["closed_at"][:10]


@template(query="What is the id of the knowledge article about {topic} for the {product_name}?", answer="text")
def article_for_product(data, rng):
    """Knowledge search; several products share the topic, so the product must be matched."""
    article = rng.choice(data.rows("articles"))
    product = data.get("products", article["product_id"])
    return {"topic": TOPIC_PHRASES[article["topic"]], "product_name": product["name"]}


@article_for_product.gold
def _(slots, call):
    product_id = _product_id(call, slots["product_name"])
    keyword = next(k for k, phrase in TOPIC_PHRASES.items() if phrase == slots["topic"])
    found = call("search_articles", query=keyword)
    return next(a["id"] for a in found["articles"] if a["product_id"] == product_id)


# ----- disambiguation --------------------------------------------------------------------------


@template(query="How many {status} cases does {contact_name} from {account_name} have?", answer="number")
def contact_case_count(data, rng):
    """Two contacts share the name: the account decides which one is meant."""
    contact = rng.choice(_dup_contacts(data))
    has = sorted({c["status"] for c in data.find("cases", contact_id=contact["id"])})
    status = rng.choice(has if has and rng.random() < 0.6 else ["open", "pending", "escalated", "closed"])
    account = data.get("accounts", contact["account_id"])
    return {"status": status, "contact_name": contact["name"], "account_name": account["name"]}


@contact_case_count.gold
def _(slots, call):
    contact_id = _contact_id(call, slots["contact_name"], slots["account_name"])
    return call("list_cases", contact_id=contact_id, status=slots["status"])["matched"]


@template(query="When did {contact_name} from {account_name} open their most recent case? Answer with the date.",
          answer="date")
def contact_latest_case_date(data, rng):
    """Disambiguate a contact, then find their newest case."""
    with_cases = {c["contact_id"] for c in data.rows("cases")}
    contact = _pick_contact(data, rng, [c for c in data.rows("contacts") if c["id"] in with_cases])
    account = data.get("accounts", contact["account_id"])
    return {"contact_name": contact["name"], "account_name": account["name"]}


@contact_latest_case_date.gold
def _(slots, call):
    contact_id = _contact_id(call, slots["contact_name"], slots["account_name"])
    return call("list_cases", contact_id=contact_id)["cases"][0]["created_at"][:10]


# ----- aggregations ----------------------------------------------------------------------------


def _unique_best_cells(data, need: int) -> list[tuple[str, str]]:
    """(product id, month) cells whose `need` best agents have distinct averages (and differ from the next)."""
    cells = []
    for p in data.rows("products"):
        for month in MONTHS:
            rows = _handle_times(data, p["id"], month)
            if len(rows) < max(need, 2):
                continue
            avgs = [r[0] for r in rows[:need + 1]]
            if len(set(avgs)) == len(avgs):
                cells.append((p["id"], month))
    return cells


@template(query="Which agent had the lowest average handle time on closed {product_name} cases created in "
                "{month}? Answer with the agent's name.", answer="text")
def best_handle_time(data, rng):
    """Aggregation over a product and a month."""
    product_id, month = rng.choice(_unique_best_cells(data, 1))
    return {"product_name": data.get("products", product_id)["name"], "month": MONTHS[month]}


@best_handle_time.gold
def _(slots, call):
    product_id = _product_id(call, slots["product_name"])
    rows = call("handle_time_by_agent", product_id=product_id, month=MONTH_BY_LABEL[slots["month"]])
    return rows[0]["name"]


@template(query="List the three agents with the lowest average handle time on closed {product_name} cases "
                "created in {month}, fastest first. Answer with their names.", answer="list")
def top3_handle_time(data, rng):
    """Ordered list answer from an aggregation."""
    product_id, month = rng.choice(_unique_best_cells(data, 3))
    return {"product_name": data.get("products", product_id)["name"], "month": MONTHS[month]}


@top3_handle_time.gold
def _(slots, call):
    product_id = _product_id(call, slots["product_name"])
    rows = call("handle_time_by_agent", product_id=product_id, month=MONTH_BY_LABEL[slots["month"]])
    return [r["name"] for r in rows[:3]]


@template(query="Which cases did {agent_name} handle for the {product_name} in {month}? Answer with the case ids.",
          answer="set")
def agent_product_cases(data, rng):
    """Set answer: cases filtered by agent, product and month."""
    cells = Counter((c["agent_id"], c["product_id"], c["created_at"][:7]) for c in data.rows("cases"))
    agent_id, product_id, month = rng.choice(sorted(cells))
    return {"agent_name": data.get("agents", agent_id)["name"],
            "product_name": data.get("products", product_id)["name"], "month": MONTHS[month]}


@agent_product_cases.gold
def _(slots, call):
    agent_id = _agent_id(call, slots["agent_name"])
    product_id = _product_id(call, slots["product_name"])
    found = call("list_cases", agent_id=agent_id, product_id=product_id, month=MONTH_BY_LABEL[slots["month"]])
    return [c["id"] for c in found["cases"]]


@template(query="How many {status} cases are there for the {product_name}?", answer="number")
def product_status_count(data, rng):
    """Count from a filtered list."""
    return {"status": rng.choice(["open", "pending", "escalated", "closed"]),
            "product_name": rng.choice(data.rows("products"))["name"]}


@product_status_count.gold
def _(slots, call):
    product_id = _product_id(call, slots["product_name"])
    return call("list_cases", product_id=product_id, status=slots["status"])["matched"]


@template(query="What is the total amount refunded to {account_name} so far?", answer="number", tolerance=0.01)
def account_refund_total(data, rng):
    """Number answer: sum of an account's refunds."""
    refunded = sorted({r["account_id"] for r in data.rows("refunds")})
    accounts = data.rows("accounts")
    pool = [a for a in accounts if a["id"] in refunded]
    account = rng.choice(pool if rng.random() < 0.85 else accounts)
    return {"account_name": account["name"]}


@account_refund_total.gold
def _(slots, call):
    account = call("get_account", account=slots["account_name"])
    return call("list_refunds", account_id=account["id"])["total"]


# ----- multi-hop -------------------------------------------------------------------------------


@template(query="Who is the account manager of the company that placed order {order_id}? Answer with the name.",
          answer="text")
def order_account_manager(data, rng):
    """Order -> account -> manager (three calls)."""
    return {"order_id": rng.choice(data.rows("orders"))["id"]}


@order_account_manager.gold
def _(slots, call):
    order = call("get_order", order_id=slots["order_id"])
    account = call("get_account", account=order["account_id"])
    return call("get_agent", agent_id=account["manager_id"])["name"]


@template(query="Which agent is handling the most recent case of the customer who placed order {order_id}? "
                "Answer with the agent's name.", answer="text")
def order_contact_latest_case_agent(data, rng):
    """Order -> contact -> newest case -> agent (three calls)."""
    with_cases = {c["contact_id"] for c in data.rows("cases")}
    return {"order_id": rng.choice([o for o in data.rows("orders") if o["contact_id"] in with_cases])["id"]}


@order_contact_latest_case_agent.gold
def _(slots, call):
    order = call("get_order", order_id=slots["order_id"])
    latest = call("list_cases", contact_id=order["contact_id"])["cases"][0]
    return call("get_agent", agent_id=latest["agent_id"])["name"]


@template(query="Is order {order_id} still within its refund window?", answer="bool")
def order_in_refund_window(data, rng):
    """Bool answer: order age against the category's policy."""
    today = data.now.date()
    inside = rng.random() < 0.5
    pool = [o for o in data.rows("orders")
            if ((today - date.fromisoformat(o["order_date"])).days <= _window_days(data, o)) == inside]
    return {"order_id": rng.choice(pool)["id"]}


@order_in_refund_window.gold
def _(slots, call):
    order = call("get_order", order_id=slots["order_id"])
    policy = call("get_policy", category=order["category"])
    return order["age_days"] <= policy["refund_window_days"]


# ----- state-changing tasks --------------------------------------------------------------------


@template(query="Escalate case {case_id} and assign it to the {team} agent with the fewest active (not closed) "
                "cases. Answer with that agent's id.", answer="text", state=True,
          state_fields={"cases": ["status", "agent_id"]})
def escalate_and_assign(data, rng):
    """Status change plus a workload lookup and a reassignment."""
    cases = [c for c in data.rows("cases") if c["status"] in ("open", "pending")]
    case = rng.choice(cases)
    team_of = {a["id"]: a["team"] for a in data.rows("agents")}
    counts = _open_counts(data)
    teams = []
    for team in TEAMS:
        members = [a for a in team_of if team_of[a] == team]
        low = min(counts[a] for a in members)
        # the target must be unique and differ from the current assignee
        best = [a for a in members if counts[a] == low]
        if team != team_of[case["agent_id"]] and len(best) == 1:
            teams.append(team)
    return {"case_id": case["id"], "team": rng.choice(teams)}


@escalate_and_assign.gold
def _(slots, call):
    call("update_case_status", case_id=slots["case_id"], status="escalated")
    agents = call("list_agents", team=slots["team"])
    best = min(agents, key=lambda a: (a["active_cases"], a["id"]))
    call("assign_case", case_id=slots["case_id"], agent_id=best["id"])
    return best["id"]


@template(query="Reassign case {case_id} to {agent_name}. Answer with the agent's id.", answer="text",
          state=True, state_fields={"cases": ["status", "agent_id"]})
def reassign_case(data, rng):
    """Resolve an agent by name, then write."""
    case = rng.choice([c for c in data.rows("cases") if c["status"] != "closed"])
    agent = rng.choice([a for a in data.rows("agents") if a["id"] != case["agent_id"]])
    return {"case_id": case["id"], "agent_name": agent["name"]}


@reassign_case.gold
def _(slots, call):
    agent_id = _agent_id(call, slots["agent_name"])
    call("assign_case", case_id=slots["case_id"], agent_id=agent_id)
    return agent_id


@template(query="The customer of case {case_id} asks for a refund of the case's order. If the order is still "
                "within its refund window, refund everything not yet refunded on that order and close the case; "
                "otherwise escalate the case. Either way, add a note to the case saying what you did. Answer "
                "with the amount refunded (0 if none).", answer="number", tolerance=0.01, state=True,
          state_fields={"cases": ["status"], "refunds": ["order_id", "amount"], "notes": ["case_id"]})
def refund_case_order(data, rng):
    """Policy check, then refund+close or escalate, plus a note (5-6 calls). Only requests the desk's
    policy agrees with the query on (none that needs a supervisor's approval)."""
    pools = _refund_cases(data)
    pool = pools["refund"] if (rng.random() < 0.6 or not pools["refuse"]) else pools["refuse"]
    return {"case_id": rng.choice(pool)["id"]}


@refund_case_order.gold
def _(slots, call):
    return _follow_refund_policy(call, slots["case_id"])[0]


# ----- the desk's policy (policy.md): the query does not say what to do -----------------------------


@template(query="The customer of case {case_id} wants their money back for the order on that case.", answer=None,
          state=True, state_fields={"cases": ["status"], "refunds": ["order_id", "amount"], "notes": ["case_id"]})
def refund_request(data, rng):
    """Action only, judged on state: the policy decides between a refund (and closing the case) and a
    supervisor's approval (escalate), by what is left on the order."""
    pools = _refund_cases(data)
    return {"case_id": rng.choice(pools["refund"] if rng.random() < 0.5 else pools["approval"])["id"]}


@refund_request.gold
def _(slots, call):
    return _follow_refund_policy(call, slots["case_id"])[1]


@template(query="The customer of case {case_id} insists on a full refund of the order on that case today.",
          answer=None, state=True,
          state_fields={"cases": ["status"], "refunds": ["order_id", "amount"], "notes": ["case_id"]})
def refund_refused(data, rng):
    """The policy's refusal: the order is outside its refund window, so no refund may be issued (the
    tool would allow it); the case is escalated and noted. Judged on state alone."""
    return {"case_id": rng.choice(_refund_cases(data)["refuse"])["id"]}


@refund_refused.gold
def _(slots, call):
    return _follow_refund_policy(call, slots["case_id"])[1]
