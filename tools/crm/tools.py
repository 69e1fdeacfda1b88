"""Tools of the crm pack: a customer-service CRM (cases, contacts, orders, refunds)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from lamsim_tui.packs import Sandbox, ToolError, tool

Status = Literal["open", "pending", "escalated", "closed"]
Team = Literal["billing", "technical", "logistics", "accounts"]

# status -> statuses it may move to
TRANSITIONS = {
    "open": ("pending", "escalated", "closed"),
    "pending": ("open", "escalated", "closed"),
    "escalated": ("open", "closed"),
    "closed": ("open",),
}
MAX_ROWS = 20  # keeps a list observation under ~4,000 characters


def _iso(sb: Sandbox) -> str:
    return sb.now.strftime("%Y-%m-%dT%H:%M")


def _case(sb: Sandbox, case_id: str) -> dict:
    case = sb.get("cases", case_id.strip())
    if case is None:
        raise ToolError(f"No case {case_id!r}. Case ids look like C-0042; use list_cases to find one.")
    return case


def _agent(sb: Sandbox, agent_id: str) -> dict:
    agent = sb.get("agents", agent_id.strip())
    if agent is None:
        raise ToolError(f"No agent {agent_id!r}. Agent ids look like AG-07; use list_agents to find one.")
    return agent


def _order(sb: Sandbox, order_id: str) -> dict:
    order = sb.get("orders", order_id.strip())
    if order is None:
        raise ToolError(f"No order {order_id!r}. Order ids look like O-50123.")
    return order


def _open_counts(sb: Sandbox) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in sb.iter_rows("cases"):
        if c["status"] != "closed":
            counts[c["agent_id"]] = counts.get(c["agent_id"], 0) + 1
    return counts


def _refunded(sb: Sandbox, order_id: str) -> float:
    return round(sum(r["amount"] for r in sb.iter_rows("refunds") if r["order_id"] == order_id), 2)


_STOP_WORDS = {"the", "a", "an", "of", "for", "how", "to", "about", "and", "on", "with", "in", "article"}


def _stem(word: str) -> str:
    """Crude stemming so "resets" finds "reset" and "updates" finds "updating"."""
    for suffix in ("ing", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def _month(month: str) -> str:
    month = month.strip()
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ToolError(f"month must look like 2026-03, not {month!r}.")
    return month


# ----- reading ---------------------------------------------------------------------------------


@tool
def get_case(sb: Sandbox, case_id: str) -> dict:
    """Get a support case (id C-nnnn) with its notes."""
    case = _case(sb, case_id)
    case["notes"] = [n["text"] for n in sb.iter_rows("notes") if n["case_id"] == case["id"]]
    return case


@tool
def list_cases(sb: Sandbox, status: Status | None = None, product_id: str | None = None,
               agent_id: str | None = None, contact_id: str | None = None, month: str | None = None,
               limit: Annotated[int, {"minimum": 1, "maximum": MAX_ROWS}] = MAX_ROWS) -> dict:
    """List cases matching all given filters, newest first.

    Args:
        month: Month created, YYYY-MM.
        limit: Most rows to show.
    """
    want = {k: v.strip() for k, v in (("status", status), ("product_id", product_id), ("agent_id", agent_id),
                                      ("contact_id", contact_id)) if v}
    prefix = _month(month) if month else None
    hits = [c for c in sb.iter_rows("cases")
            if all(c[k] == v for k, v in want.items()) and (prefix is None or c["created_at"].startswith(prefix))]
    hits.sort(key=lambda c: (c["created_at"], c["id"]), reverse=True)
    keep = ("id", "subject", "status", "priority", "product_id", "agent_id", "created_at")
    out: dict = {"matched": len(hits), "cases": [{k: c[k] for k in keep} for c in hits[:limit]]}
    if len(hits) > limit:
        out["note"] = f"showing the newest {limit}; add filters to see others"
    return out


@tool
def find_contacts(sb: Sandbox, name: str) -> list[dict]:
    """Find contacts by full or partial name, with their accounts."""
    needle = " ".join(name.lower().split())
    if not needle:
        raise ToolError("Give part of a contact's name.")
    hits = [c for c in sb.iter_rows("contacts") if needle in c["name"].lower()]
    if not hits:
        raise ToolError(f"No contact name contains {name!r}. Try the last name only.")
    out = []
    for c in hits[:MAX_ROWS]:
        account = sb.get("accounts", c["account_id"]) or {}
        out.append({"id": c["id"], "name": c["name"], "account_id": c["account_id"],
                    "account": account.get("name"), "email": c["email"], "phone": c["phone"]})
    return out


@tool
def get_account(sb: Sandbox, account: str) -> dict:
    """Get an account by id or company name, with its contacts."""
    text = account.strip()
    row = sb.get("accounts", text)
    if row is None:
        row = next((a for a in sb.iter_rows("accounts") if a["name"].lower() == text.lower()), None)
        if row is None:
            close = [a["name"] for a in sb.iter_rows("accounts") if text.lower() in a["name"].lower()]
            hint = f" Did you mean: {', '.join(close[:5])}?" if close else ""
            raise ToolError(f"No account {account!r}.{hint}")
        row = dict(row)
    row["contacts"] = [{"id": c["id"], "name": c["name"]} for c in sb.iter_rows("contacts")
                       if c["account_id"] == row["id"]]
    return row


@tool
def get_agent(sb: Sandbox, agent_id: str) -> dict:
    """Get an agent (id AG-nn) with their count of active (not closed) cases."""
    agent = _agent(sb, agent_id)
    agent["active_cases"] = _open_counts(sb).get(agent["id"], 0)
    return agent


@tool
def list_agents(sb: Sandbox, team: Team | None = None) -> list[dict]:
    """List agents with their counts of active (not closed) cases."""
    counts = _open_counts(sb)
    return [{"id": a["id"], "name": a["name"], "team": a["team"], "active_cases": counts.get(a["id"], 0)}
            for a in sb.iter_rows("agents") if team is None or a["team"] == team]


@tool
def get_order(sb: Sandbox, order_id: str) -> dict:
    """Get an order (id O-nnnnn) with product category, age_days and amount refunded."""
    order = _order(sb, order_id)
    product = sb.get("products", order["product_id"]) or {}
    order["product"] = product.get("name")
    order["category"] = product.get("category")
    order["age_days"] = (sb.now.date() - date.fromisoformat(order["order_date"])).days
    order["refunded"] = _refunded(sb, order["id"])
    return order


@tool
def list_products(sb: Sandbox) -> list[dict]:
    """List all products with id, category and price."""
    return [{"id": p["id"], "name": p["name"], "category": p["category"], "price": p["price"]}
            for p in sb.iter_rows("products")]


@tool
def get_policy(sb: Sandbox, category: str) -> dict:
    """Get the refund policy of a product category.

    Args:
        category: e.g. hardware
    """
    policy = sb.get("policies", category.strip().lower())
    if policy is None:
        known = ", ".join(p["id"] for p in sb.iter_rows("policies"))
        raise ToolError(f"No policy for category {category!r}. Categories: {known}.")
    return policy


@tool
def search_articles(sb: Sandbox, query: str) -> dict:
    """Search knowledge articles by title keywords."""
    words = [_stem(w) for w in re.findall(r"\w+", query.lower()) if w not in _STOP_WORDS]
    if not words:
        raise ToolError("Give one or more keywords.")
    hits = []
    for a in sb.iter_rows("articles"):
        text = f"{a['title']} {a['topic']}".lower()
        if all(w in text for w in words):
            hits.append({"id": a["id"], "title": a["title"], "product_id": a["product_id"], "summary": a["summary"]})
    out: dict = {"matched": len(hits), "articles": hits[:10]}
    if not hits:
        out["note"] = "No title has all these words; try fewer keywords."
    return out


@tool
def list_refunds(sb: Sandbox, order_id: str | None = None, account_id: str | None = None) -> dict:
    """List refunds, and their total, of an order or an account."""
    if not order_id and not account_id:
        raise ToolError("Give an order_id or an account_id.")
    hits = [r for r in sb.iter_rows("refunds")
            if (not order_id or r["order_id"] == order_id.strip())
            and (not account_id or r["account_id"] == account_id.strip())]
    return {"matched": len(hits), "total": round(sum(r["amount"] for r in hits), 2),
            "refunds": [{k: r[k] for k in ("id", "order_id", "amount", "created_at")} for r in hits[:MAX_ROWS]]}


@tool
def handle_time_by_agent(sb: Sandbox, product_id: str, month: str) -> list[dict]:
    """Average handle time per agent of a product's closed cases created in a month, lowest first.

    Args:
        month: YYYY-MM
    """
    if sb.get("products", product_id.strip()) is None:
        raise ToolError(f"No product {product_id!r}; use list_products.")
    prefix = _month(month)
    per: dict[str, list[int]] = {}
    for c in sb.iter_rows("cases"):
        if c["product_id"] == product_id.strip() and c["status"] == "closed" and c["created_at"].startswith(prefix):
            per.setdefault(c["agent_id"], []).append(c["handle_minutes"])
    rows = []
    for agent_id, minutes in per.items():
        agent = sb.get("agents", agent_id) or {}
        rows.append({"agent_id": agent_id, "name": agent.get("name"), "cases": len(minutes),
                     "avg_minutes": round(sum(minutes) / len(minutes), 1)})
    rows.sort(key=lambda r: (r["avg_minutes"], r["agent_id"]))
    return rows


# ----- writing ---------------------------------------------------------------------------------


@tool(changes_state=True)
def update_case_status(sb: Sandbox, case_id: str, status: Status) -> dict:
    """Change a case's status."""
    case = _case(sb, case_id)
    if case["status"] == status:
        raise ToolError(f"Case {case['id']} is already {status}.")
    allowed = TRANSITIONS[case["status"]]
    if status not in allowed:
        raise ToolError(f"Case {case['id']} is {case['status']}; it can only become: {', '.join(allowed)}.")
    closed_at = _iso(sb) if status == "closed" else None
    row = sb.update("cases", case["id"], status=status, closed_at=closed_at)
    return {"id": row["id"], "status": row["status"], "closed_at": row["closed_at"]}


@tool(changes_state=True)
def assign_case(sb: Sandbox, case_id: str, agent_id: str) -> dict:
    """Assign an unclosed case to an agent."""
    case = _case(sb, case_id)
    agent = _agent(sb, agent_id)
    if case["status"] == "closed":
        raise ToolError(f"Case {case['id']} is closed; reopen it before assigning it.")
    if case["agent_id"] == agent["id"]:
        raise ToolError(f"Case {case['id']} is already assigned to {agent['id']}.")
    row = sb.update("cases", case["id"], agent_id=agent["id"], transfers=case["transfers"] + 1)
    return {"id": row["id"], "agent_id": row["agent_id"], "agent": agent["name"], "status": row["status"]}


@tool(changes_state=True)
def issue_refund(sb: Sandbox, order_id: str, amount: float, reason: str) -> dict:
    """Refund part or all of what is left on an order (the desk's policy says when a refund is allowed)."""
    order = _order(sb, order_id)
    amount = round(float(amount), 2)
    if amount <= 0:
        raise ToolError("amount must be positive.")
    # The refund window and the approval limit are the policy's (policy.md), not the system's: an agent
    # that ignores them gets its refund, and the judge sees it in the final state.
    remaining = round(order["amount"] - _refunded(sb, order["id"]), 2)
    if amount > remaining + 1e-9:
        raise ToolError(f"Refund {amount:.2f} exceeds what is left on order {order['id']} "
                        f"({remaining:.2f} of {order['amount']:.2f}).")
    row = sb.insert("refunds", {"id": sb.new_key("refunds", "R-"), "order_id": order["id"],
                                "account_id": order["account_id"], "amount": amount, "reason": reason.strip(),
                                "created_at": _iso(sb)})
    return {"id": row["id"], "order_id": row["order_id"], "amount": amount,
            "remaining": round(remaining - amount, 2)}


@tool(changes_state=True)
def add_case_note(sb: Sandbox, case_id: str, text: str) -> dict:
    """Add a note to a case."""
    case = _case(sb, case_id)
    if not text.strip():
        raise ToolError("The note text is empty.")
    row = sb.insert("notes", {"id": sb.new_key("notes", "N-"), "case_id": case["id"], "author": "agent",
                              "text": text.strip(), "created_at": _iso(sb)})
    return {"id": row["id"], "case_id": row["case_id"]}
