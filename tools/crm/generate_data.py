"""Seeded generator of the crm pack's seed data (stdlib only, deterministic).

    python tools/crm/generate_data.py            # rewrites tools/crm/data/*.json
    python tools/crm/generate_data.py OUT_DIR    # writes the same files into OUT_DIR

Running it twice gives byte-identical files. Change SEED (or the tables below) to get another
world; the templates sample their slots from whatever the data holds.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

SEED = 20260701
NOW = datetime(2026, 7, 1, 9, 0)  # must match `now` in pack.yaml

TEAMS = ["billing", "technical", "logistics", "accounts"]

AGENT_NAMES = [
    "Maya Okafor", "Liam Brennan", "Sofia Marquez", "Ethan Park", "Chloe Dubois", "Noah Fischer",
    "Priya Raman", "Lucas Moreau", "Hannah Weiss", "Omar Haddad", "Grace Kim", "Daniel Novak",
    "Aisha Bello", "Jonas Lindqvist", "Elena Rossi", "Marcus Reid", "Yuki Tanaka", "Sara Costa",
    "Victor Alvarez", "Nina Petrova", "Tomás Silva", "Ruth Mensah", "Felix Wagner", "Leah Cohen",
]

PRODUCTS = [  # name, category, price
    ("Nimbus Router X2", "hardware", 189.00),
    ("Aurora Smart Display", "hardware", 249.00),
    ("Pulse Fitness Band", "hardware", 99.00),
    ("Nimbus Mesh Extender", "accessories", 79.00),
    ("Volt Charging Dock", "accessories", 49.00),
    ("Aurora Wall Mount", "accessories", 35.00),
    ("Shield Antivirus Pro", "software", 59.99),
    ("Cloud Backup Plus", "software", 89.99),
    ("StreamMax Annual", "subscriptions", 119.00),
    ("Support Premium Plan", "subscriptions", 149.00),
]

POLICIES = [  # category, refund window days, note
    ("hardware", 30, "Full refund within 30 days of the order date; after that, warranty repair only."),
    ("accessories", 60, "Full refund within 60 days of the order date."),
    ("software", 14, "Refund within 14 days of purchase if the licence was not activated on more devices."),
    ("subscriptions", 7, "Refund within 7 days of the order date; later cancellations stop renewal only."),
]

COMPANIES = [
    ("Northwind Traders", "retail"), ("Bluefin Logistics", "logistics"), ("Cedar Health Group", "healthcare"),
    ("Orbit Analytics", "technology"), ("Harbor Foods", "food"), ("Summit Legal LLP", "legal"),
    ("Maple Street Bakery", "food"), ("Ironclad Security", "technology"), ("Golden Gate Dental", "healthcare"),
    ("Riverside Schools", "education"), ("Polaris Energy", "energy"), ("Lumen Architects", "construction"),
    ("Quartz Media", "media"), ("Redwood Realty", "real estate"), ("Sapphire Hotels", "hospitality"),
    ("Tandem Cycles", "retail"), ("Union Credit Co", "finance"), ("Vertex Robotics", "technology"),
    ("Willow Pediatrics", "healthcare"), ("Zephyr Airlines", "transport"), ("Atlas Freight", "logistics"),
    ("Beacon Insurance", "finance"), ("Coral Bay Resorts", "hospitality"), ("Delta Print Shop", "media"),
    ("Evergreen Farms", "agriculture"), ("Falcon Couriers", "logistics"), ("Granite Builders", "construction"),
    ("Helix Biotech", "healthcare"), ("Indigo Fashion", "retail"), ("Juniper Consulting", "consulting"),
]

FIRST = [
    "James", "Olivia", "Robert", "Emma", "Michael", "Ava", "William", "Mia", "David", "Isabella",
    "Richard", "Sophia", "Joseph", "Amelia", "Thomas", "Harper", "Charles", "Evelyn", "Henry", "Abigail",
    "Samuel", "Ella", "Benjamin", "Scarlett", "Alexander", "Lily", "Jack", "Zoe", "Owen", "Nora",
    "Ryan", "Hazel", "Adam", "Ruby", "Leo", "Alice", "Isaac", "Clara", "Julian", "Stella",
]
LAST = [
    "Smith", "Johnson", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Anderson", "Taylor", "Thomas",
    "Moore", "Martin", "Jackson", "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young",
    "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell",
    "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Torres", "Parker", "Collins", "Edwards",
]
TITLES = ["Office Manager", "IT Lead", "Purchasing", "Operations Director", "Owner", "Accountant",
          "Front Desk", "Facilities", "CTO", "Assistant"]

SUBJECTS = {  # team -> (subject, needs an order)
    "billing": [("Double charge on invoice", True), ("Refund request", True), ("Refund request", True),
                ("Incorrect billing amount", True),
                ("Payment method declined", False), ("Subscription renewal question", False)],
    "technical": [("Device will not power on", False), ("Connection keeps dropping", False),
                  ("Firmware update failed", False), ("App crashes on login", False), ("Slow performance", False)],
    "logistics": [("Package not delivered", True), ("Damaged on arrival", True), ("Wrong item shipped", True),
                  ("Return label request", True)],
    "accounts": [("Password reset", False), ("Change account owner", False), ("Update billing contact", False),
                 ("Close account request", False)],
}
TEAM_WEIGHTS = [0.32, 0.33, 0.22, 0.13]

ARTICLE_TOPICS = [  # keyword, title pattern, summary
    ("setup", "Setting up the {p}", "Unbox, connect power, then follow the pairing steps in the app."),
    ("reset", "Factory reset of the {p}", "Hold the reset button for 10 seconds, then set it up again."),
    ("firmware", "Updating the firmware of the {p}", "Open Settings > Updates and install the latest version."),
    ("connectivity", "Fixing connectivity problems with the {p}", "Restart the device, move it closer, check cables."),
    ("warranty", "Warranty claims for the {p}", "Warranty covers defects for 12 months; open a case with the serial."),
    ("return", "Returning the {p}", "Request a return label from support; pack the item in its box."),
    ("billing", "Billing questions about the {p}", "Invoices are in the portal under Billing > History."),
    ("licence", "Activating the licence of the {p}", "Enter the key from the order email under Account > Licences."),
    ("cancel", "Cancelling the {p}", "Cancel from Account > Subscriptions; refunds follow the policy window."),
]
TOPICS_BY_CATEGORY = {
    "hardware": ["setup", "reset", "firmware", "connectivity", "warranty", "return"],
    "accessories": ["setup", "warranty", "return"],
    "software": ["setup", "licence", "billing", "connectivity"],
    "subscriptions": ["billing", "cancel", "setup"],
}

NOTE_TEXTS = [
    "Customer called back for an update.", "Asked customer for a photo of the issue.",
    "Waiting for the customer to confirm the fix.", "Sent troubleshooting steps by email.",
    "Checked order history; nothing unusual.", "Customer prefers contact by phone.",
    "Escalation requested by the customer.", "Shared knowledge article with the customer.",
]

MONTH_CASES = [70, 72, 78, 82, 92, 110]  # cases created per month, January..June 2026


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M")


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    rng = random.Random(seed)

    # ----- agents ------------------------------------------------------------------------
    agents = []
    speed = {}
    for i, name in enumerate(AGENT_NAMES):
        aid = f"AG-{i + 1:02d}"
        team = TEAMS[i % len(TEAMS)]
        first, last = name.split(" ", 1)
        agents.append({"id": aid, "name": name, "team": team,
                       "email": f"{first.lower()}.{last.lower().replace(' ', '')}@support.example.com"})
        speed[aid] = round(rng.uniform(0.7, 1.4), 3)
    team_agents = {t: [a["id"] for a in agents if a["team"] == t] for t in TEAMS}

    # ----- products, policies --------------------------------------------------------------
    products = [{"id": f"PR-{i + 1:02d}", "name": n, "category": c, "price": p} for i, (n, c, p) in enumerate(PRODUCTS)]
    policies = [{"id": c, "refund_window_days": d, "terms": t} for c, d, t in POLICIES]

    # ----- accounts, contacts ---------------------------------------------------------------
    accounts = []
    for i, (name, industry) in enumerate(COMPANIES):
        accounts.append({"id": f"A-{101 + i}", "name": name, "industry": industry,
                         "tier": rng.choice(["gold", "silver", "silver", "bronze", "bronze"]),
                         "region": rng.choice(["north", "south", "east", "west"]),
                         "manager_id": rng.choice(team_agents["accounts"])})
    domains = {a["id"]: "".join(ch for ch in a["name"].lower() if ch.isalnum()) + ".example" for a in accounts}

    all_names = [f"{first} {last}" for first in FIRST for last in LAST]
    rng.shuffle(all_names)
    dup_names = all_names[:12]  # each at two different accounts
    unique_names = iter(all_names[12:])
    contact_specs: list[tuple[str, str]] = []  # (name, account_id)
    for name in dup_names:
        a1, a2 = rng.sample([a["id"] for a in accounts], 2)
        contact_specs += [(name, a1), (name, a2)]
    for acc in accounts:
        for _ in range(rng.randint(3, 5)):
            contact_specs.append((next(unique_names), acc["id"]))
    rng.shuffle(contact_specs)
    contacts = []
    for i, (name, acc_id) in enumerate(contact_specs):
        first, last = name.split(" ")
        contacts.append({"id": f"CT-{i + 1:04d}", "name": name, "account_id": acc_id,
                         "title": rng.choice(TITLES),
                         "email": f"{first.lower()}.{last.lower()}@{domains[acc_id]}",
                         "phone": f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"})

    # ----- orders ---------------------------------------------------------------------------
    orders = []
    start = date(2025, 12, 1)
    span = (date(2026, 6, 30) - start).days
    order_dates = sorted(start + timedelta(days=rng.randint(0, span)) for _ in range(340))
    for i, d in enumerate(order_dates):
        contact = rng.choice(contacts)
        product = rng.choice(products)
        qty = 1 if product["category"] == "subscriptions" else rng.choice([1, 1, 1, 2, 2, 3])
        age = (NOW.date() - d).days
        status = "delivered" if age > 10 else rng.choice(["shipped", "delivered", "processing"])
        orders.append({"id": f"O-{50001 + i}", "contact_id": contact["id"], "account_id": contact["account_id"],
                       "product_id": product["id"], "quantity": qty, "amount": round(product["price"] * qty, 2),
                       "order_date": d.isoformat(), "status": status})
    window = {p["id"]: dict((c, d) for c, d, _ in POLICIES)[p["category"]] for p in products}

    # ----- cases ----------------------------------------------------------------------------
    cases = []
    priorities = ["low", "medium", "high", "urgent"]
    base_minutes = {"low": 25, "medium": 40, "high": 60, "urgent": 85}
    n = 0
    for month_index, count in enumerate(MONTH_CASES):
        month = month_index + 1
        for _ in range(count):
            team = rng.choices(TEAMS, TEAM_WEIGHTS)[0]
            subject, needs_order = rng.choice(SUBJECTS[team])
            order = None
            if needs_order:
                for _attempt in range(200):
                    cand = rng.choice(orders)
                    created_day = date.fromisoformat(cand["order_date"]) + timedelta(days=rng.randint(1, 20))
                    if created_day.year == 2026 and created_day.month == month:
                        order = cand
                        break
                if order is None:
                    subject, needs_order = "Payment method declined", False
            if order is None:
                created_day = date(2026, month, 1) + timedelta(days=rng.randint(0, 27))
                contact = rng.choice(contacts)
                product_id = rng.choice(products)["id"]
            else:
                contact = next(c for c in contacts if c["id"] == order["contact_id"])
                product_id = order["product_id"]
            created = datetime.combine(created_day, datetime.min.time()) + timedelta(
                hours=rng.randint(7, 18), minutes=rng.randint(0, 59))
            if created >= NOW:
                created = NOW - timedelta(hours=rng.randint(2, 40))
            agent_id = rng.choice(team_agents[team]) if rng.random() < 0.85 else rng.choice(agents)["id"]
            priority = rng.choices(priorities, [0.3, 0.4, 0.2, 0.1])[0]
            age_days = (NOW - created).days
            p_closed = 0.95 if age_days > 45 else 0.6 if age_days > 20 else 0.25
            if rng.random() < p_closed:
                status = "closed"
            else:
                status = rng.choices(["open", "pending", "escalated"], [0.45, 0.3, 0.25])[0]
            minutes = int(base_minutes[priority] * speed[agent_id] * rng.uniform(0.6, 1.5))
            closed_at = None
            if status == "closed":
                closed = created + timedelta(hours=rng.randint(2, 24 * 9), minutes=rng.randint(0, 59))
                closed_at = _iso(min(closed, NOW - timedelta(hours=1)))
            else:
                minutes = int(minutes * rng.uniform(0.2, 0.8))
            n += 1
            cases.append({"id": f"C-{n:04d}", "subject": subject, "contact_id": contact["id"],
                          "account_id": contact["account_id"], "product_id": product_id,
                          "order_id": order["id"] if order else None, "status": status, "priority": priority,
                          "agent_id": agent_id, "channel": rng.choice(["email", "phone", "chat", "web"]),
                          "created_at": _iso(created), "closed_at": closed_at, "handle_minutes": minutes,
                          "transfers": rng.choices([0, 1, 2, 3], [0.6, 0.25, 0.1, 0.05])[0]})

    # Make the least-loaded agent of every team unique (tasks ask for "the agent with the fewest
    # active cases on team X"): move an unclosed case from the busiest tied-team agent if needed.
    def open_counts(team: str) -> dict[str, int]:
        counts = {a: 0 for a in team_agents[team]}
        for c in cases:
            if c["status"] != "closed" and c["agent_id"] in counts:
                counts[c["agent_id"]] += 1
        return counts

    for team in TEAMS:
        for _ in range(20):
            counts = open_counts(team)
            low = min(counts.values())
            tied = sorted(a for a, k in counts.items() if k == low)
            if len(tied) == 1:
                break
            busiest = max(sorted(counts), key=lambda a: counts[a])
            movable = [c for c in cases if c["status"] != "closed" and c["agent_id"] == busiest]
            victim = movable[-1]
            victim["agent_id"] = tied[-1]

    # ----- refunds (seed history), notes, articles -----------------------------------------------
    refunds = []
    cands = [o for o in orders if (NOW.date() - date.fromisoformat(o["order_date"])).days > window[o["product_id"]]]
    for i, o in enumerate(sorted(rng.sample(cands, 36), key=lambda o: o["order_date"])):
        when = date.fromisoformat(o["order_date"]) + timedelta(days=rng.randint(1, window[o["product_id"]]))
        full = rng.random() < 0.4
        amount = o["amount"] if full else round(o["amount"] * rng.choice([0.2, 0.25, 0.5]), 2)
        reason = rng.choice(["damaged item", "customer request", "billing error", "late delivery"])
        at = datetime.combine(when, datetime.min.time()) + timedelta(hours=rng.randint(8, 17))
        refunds.append({"id": f"R-{i + 1:04d}", "order_id": o["id"], "account_id": o["account_id"],
                        "amount": amount, "reason": reason, "created_at": _iso(at)})
    # recent partial refunds on still-refundable orders (so "remaining amount" matters)
    refunded_ids = {r["order_id"] for r in refunds}
    recent = [o for o in orders if o["id"] not in refunded_ids
              and 0 < (NOW.date() - date.fromisoformat(o["order_date"])).days <= window[o["product_id"]]]
    for o in rng.sample(recent, 10):
        refunds.append({"id": f"R-{len(refunds) + 1:04d}", "order_id": o["id"], "account_id": o["account_id"],
                        "amount": round(o["amount"] * rng.choice([0.2, 0.25, 0.5]), 2), "reason": "goodwill credit",
                        "created_at": _iso(NOW - timedelta(days=1, hours=rng.randint(0, 12)))})

    notes = []
    for case in rng.sample(cases, 110):
        created = datetime.fromisoformat(case["created_at"])
        when = min(created + timedelta(hours=rng.randint(1, 72)), NOW - timedelta(minutes=30))
        notes.append({"case_id": case["id"], "author": case["agent_id"], "text": rng.choice(NOTE_TEXTS),
                      "created_at": _iso(when)})
    notes.sort(key=lambda r: r["created_at"])
    for i, note in enumerate(notes):
        note["id"] = f"N-{i + 1:04d}"
    notes = [{"id": r["id"], **{k: v for k, v in r.items() if k != "id"}} for r in notes]

    articles = []
    topic = {k: (title, summary) for k, title, summary in ARTICLE_TOPICS}
    for p in products:
        for key in TOPICS_BY_CATEGORY[p["category"]]:
            title, summary = topic[key]
            articles.append({"id": f"KA-{len(articles) + 1:03d}", "title": title.format(p=p["name"]),
                             "product_id": p["id"], "topic": key, "summary": summary})

    return {"accounts": accounts, "contacts": contacts, "agents": agents, "products": products,
            "policies": policies, "orders": orders, "cases": cases, "notes": notes, "refunds": refunds,
            "articles": articles}


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for table, rows in generate().items():
        path = out_dir / f"{table}.json"
        text = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "data"
    for p in write(target):
        print(p)
