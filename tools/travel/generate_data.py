"""Seeded generator of the travel pack's seed data (stdlib only, deterministic).

    python tools/travel/generate_data.py            # rewrites tools/travel/data/*.json
    python tools/travel/generate_data.py OUT_DIR    # writes the same files into OUT_DIR

Running it twice gives byte-identical files. Change SEED (or the lists below) to get another
world; the templates sample their slots from whatever the data holds.

The world: ten airports, a three-week flight schedule (2026-03-09 .. 2026-03-29) on 11 routes
flown both ways, four hotels per city, 30 travellers with loyalty accounts, calendars and some
existing bookings. Prices are in the local currency of the departure airport (flights) or of the
city (hotels); `rates` converts between currencies.
"""

from __future__ import annotations

import json
import math
import random
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

SEED = 20260302
NOW = datetime(2026, 3, 2, 9, 0)  # must match `now` in pack.yaml
FIRST_DAY = date(2026, 3, 9)
DAYS = 21  # flights exist on FIRST_DAY .. FIRST_DAY + DAYS - 1

AIRPORTS = [  # code, city, country, currency
    ("LHR", "London", "GB", "GBP"),
    ("CDG", "Paris", "FR", "EUR"),
    ("FRA", "Frankfurt", "DE", "EUR"),
    ("AMS", "Amsterdam", "NL", "EUR"),
    ("MAD", "Madrid", "ES", "EUR"),
    ("FCO", "Rome", "IT", "EUR"),
    ("ZRH", "Zurich", "CH", "CHF"),
    ("JFK", "New York", "US", "USD"),
    ("SFO", "San Francisco", "US", "USD"),
    ("NRT", "Tokyo", "JP", "JPY"),
]

RATES = [  # currency, units per 1 EUR
    ("EUR", 1.0), ("GBP", 0.86), ("USD", 1.09), ("CHF", 0.96), ("JPY", 163.0), ("SEK", 11.4), ("CAD", 1.47),
]

ROUTES = [  # a, b, minutes, base fare in EUR, airline code
    ("LHR", "CDG", 75, 120, "NW"), ("LHR", "FRA", 100, 140, "NW"), ("LHR", "JFK", 480, 520, "AB"),
    ("LHR", "ZRH", 105, 150, "AJ"), ("CDG", "FRA", 70, 110, "NW"), ("CDG", "MAD", 120, 130, "SL"),
    ("CDG", "FCO", 125, 135, "SL"), ("FRA", "AMS", 65, 105, "NW"), ("FRA", "NRT", 705, 780, "SS"),
    ("JFK", "SFO", 380, 310, "AB"), ("AMS", "MAD", 150, 140, "SL"),
]
AIRLINES = {"NW": "Northwind Air", "AB": "Atlantic Blue", "AJ": "Alpine Jet", "SL": "Solair",
            "SS": "Sakura Sky"}
DEPARTURES = ["06:40", "07:55", "09:10", "11:25", "13:05", "15:30", "17:45", "19:20"]

HOTELS = {  # city -> (name, stars, nightly rate in EUR)
    "London": [("Thames View Hotel", 4, 210), ("Camden Lodge", 2, 95), ("Kensington Grand", 5, 390),
               ("Baker Street Inn", 3, 150)],
    "Paris": [("Hotel Lumiere", 4, 190), ("Le Petit Montmartre", 2, 85), ("Palais Rivoli", 5, 420),
              ("Maison Bastille", 3, 135)],
    "Frankfurt": [("Mainufer Hotel", 3, 120), ("Skyline Tower Hotel", 4, 175), ("Roemer Residenz", 5, 300),
                  ("Bahnhof Budget Rooms", 2, 70)],
    "Amsterdam": [("Canal House Hotel", 4, 200), ("Jordaan Rooms", 2, 90), ("Dam Square Palace", 5, 360),
                  ("Museum Quarter Inn", 3, 140)],
    "Madrid": [("Hotel Gran Via", 4, 160), ("Hostal Sol", 2, 65), ("Palacio Retiro", 5, 310),
               ("Casa Malasana", 3, 110)],
    "Rome": [("Albergo Trevi", 4, 180), ("Pensione Termini", 2, 75), ("Villa Borghese Suites", 5, 380),
             ("Hotel Navona", 3, 130)],
    "Zurich": [("Seeblick Hotel", 4, 240), ("Altstadt Rooms", 2, 120), ("Bahnhofstrasse Grand", 5, 450),
               ("Limmat Inn", 3, 170)],
    "New York": [("Hudson Yards Hotel", 4, 280), ("Queens Budget Inn", 2, 120), ("Park Avenue Grand", 5, 520),
                 ("Midtown Lodge", 3, 190)],
    "San Francisco": [("Bayview Hotel", 4, 250), ("Mission Rooms", 2, 110), ("Nob Hill Palace", 5, 470),
                      ("Union Square Inn", 3, 175)],
    "Tokyo": [("Shinjuku Sky Hotel", 4, 210), ("Asakusa Capsule Inn", 2, 60), ("Ginza Imperial", 5, 430),
              ("Shibuya Stay", 3, 140)],
}

FIRST = ["Anna", "Ben", "Carla", "David", "Elif", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Keiko", "Lars",
         "Maria", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Samir", "Tara", "Ugo", "Vera", "Wei", "Xavier",
         "Yara", "Zoe", "Mateo", "Lena", "Omar", "Freya"]
LAST = ["Berg", "Okafor", "Rossi", "Schmidt", "Yilmaz", "Dubois", "Kowalski", "Tanaka", "Silva", "Novak",
        "Moreau", "Jensen", "Garcia", "Haddad", "Larsen", "Iyer", "Fontaine", "Costa", "Khan", "Murphy",
        "Bianchi", "Petrova", "Chen", "Laurent", "Nasser", "Walsh", "Ortega", "Fischer", "Aziz", "Nilsson"]

EVENT_TITLES = ["Client workshop", "Quarterly review", "Supplier visit", "Board meeting", "Product launch",
                "Team offsite", "Sales kickoff", "Partner summit", "Training day", "Site inspection"]
TIERS = [("basic", 0.5), ("silver", 0.3), ("gold", 0.2)]


def _price(eur: float, currency: str, rates: dict[str, float]) -> float:
    amount = eur * rates[currency]
    return float(round(amount)) if currency == "JPY" else round(amount, 2)


def _add_minutes(hhmm: str, minutes: int) -> str:
    h, m = map(int, hhmm.split(":"))
    total = h * 60 + m + minutes
    days, rest = divmod(total, 24 * 60)
    text = f"{rest // 60:02d}:{rest % 60:02d}"
    return text + (f"+{days}" if days else "")


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    rates = dict(RATES)
    airports = [{"code": c, "city": city, "country": cc, "currency": cur} for c, city, cc, cur in AIRPORTS]
    by_code = {a["code"]: a for a in airports}
    code_of_city = {a["city"]: a["code"] for a in airports}

    # ----- flights ---------------------------------------------------------------------------
    flights = []
    schedule = []  # (origin, destination, number, depart, minutes, base)
    used_numbers: set[str] = set()
    for a, b, minutes, base, airline in ROUTES:
        for origin, dest in ((a, b), (b, a)):
            slots = sorted(rng.sample(DEPARTURES[:4] if minutes > 300 else DEPARTURES, rng.choice([2, 2, 3])))
            for depart in slots:
                while True:
                    number = f"{airline}{rng.randint(100, 989)}"
                    if number not in used_numbers:
                        used_numbers.add(number)
                        break
                schedule.append((origin, dest, number, depart, minutes, base))
    for day in range(DAYS):
        when = FIRST_DAY + timedelta(days=day)
        weekend = when.weekday() >= 5
        for origin, dest, number, depart, minutes, base in schedule:
            currency = by_code[origin]["currency"]
            eur = base * rng.uniform(0.7, 1.35) * (0.9 if weekend else 1.0) + rng.random()
            saver = _price(eur, currency, rates)
            flex = float(round(saver * 1.45)) if currency == "JPY" else round(saver * 1.45, 2)
            flights.append({"id": "", "number": number, "airline": AIRLINES[number[:2]], "origin": origin,
                            "destination": dest, "date": when.isoformat(), "depart": depart,
                            "arrive": _add_minutes(depart, minutes), "currency": currency, "saver": saver,
                            "flex": flex, "seats_left": rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9])})
    flights.sort(key=lambda f: (f["date"], f["depart"], f["number"]))
    # distinct saver prices per route and day: "the cheapest flight" is always one flight
    groups: dict[tuple, list[dict]] = {}
    for f in flights:
        groups.setdefault((f["origin"], f["destination"], f["date"]), []).append(f)
    for group in groups.values():
        seen: set[float] = set()
        for f in group:
            while f["saver"] in seen:
                f["saver"] = round(f["saver"] + (1 if f["currency"] == "JPY" else 0.37), 2)
                f["flex"] = float(round(f["saver"] * 1.45)) if f["currency"] == "JPY" else round(f["saver"] * 1.45, 2)
            seen.add(f["saver"])
    for i, f in enumerate(flights):
        f["id"] = f"FL-{i + 1:04d}"

    # ----- hotels ----------------------------------------------------------------------------
    hotels = []
    for city, entries in HOTELS.items():
        currency = by_code[code_of_city[city]]["currency"]
        for name, stars, eur in entries:
            hotels.append({"id": f"H-{len(hotels) + 1:02d}", "name": name, "city": city, "stars": stars,
                           "nightly_rate": _price(eur * rng.uniform(0.92, 1.08), currency, rates),
                           "currency": currency,
                           "free_cancel_days": rng.choice([3, 7, 14, 21])})

    # ----- travellers, loyalty ---------------------------------------------------------------
    names = [f"{f} {last}" for f, last in zip(FIRST, LAST, strict=True)]
    rng.shuffle(names)
    homes = ["LHR"] * 6 + ["CDG"] * 5 + ["FRA"] * 5 + ["AMS"] * 3 + ["MAD"] * 3 + ["JFK"] * 4 + ["ZRH"] * 2 + ["SFO"] * 2
    rng.shuffle(homes)
    travellers, loyalty = [], []
    for i, (name, home) in enumerate(zip(names, homes, strict=True)):
        tid = f"T-{i + 1:03d}"
        first, last = name.lower().split(" ")
        travellers.append({"id": tid, "name": name, "home_airport": home, "home_city": by_code[home]["city"],
                           "currency": by_code[home]["currency"], "email": f"{first}.{last}@example.com"})
        tier = rng.choices([t for t, _ in TIERS], [w for _, w in TIERS])[0]
        loyalty.append({"traveller_id": tid, "tier": tier, "points": rng.randint(0, 400) * 50 + rng.randint(0, 49)})

    # ----- calendars -------------------------------------------------------------------------
    neighbours: dict[str, list[str]] = {}
    for a, b, *_ in ROUTES:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    events = []
    for t in travellers:
        titles = rng.sample(EVENT_TITLES, rng.randint(2, 3))
        days = rng.sample(range(1, DAYS), len(titles))  # never the first day: a flight the day before exists
        for title, day in zip(titles, sorted(days), strict=True):
            where = rng.choice(neighbours[t["home_airport"]])
            events.append({"id": "", "traveller_id": t["id"], "date": (FIRST_DAY + timedelta(days=day)).isoformat(),
                           "time": rng.choice(["09:00", "10:00", "11:30", "14:00", "15:30"]), "title": title,
                           "city": by_code[where]["city"]})
    events.sort(key=lambda e: (e["date"], e["time"], e["traveller_id"]))
    for i, e in enumerate(events):
        e["id"] = f"E-{i + 1:03d}"

    # ----- bookings: some trips already booked for calendar events -----------------------------
    flight_index: dict[tuple, list[dict]] = {}
    for f in flights:
        flight_index.setdefault((f["origin"], f["destination"], f["date"]), []).append(f)
    hotel_by_city: dict[str, list[dict]] = {}
    for h in hotels:
        hotel_by_city.setdefault(h["city"], []).append(h)
    tier_of = {row["traveller_id"]: row["tier"] for row in loyalty}
    per_eur = {"basic": 1.0, "silver": 1.25, "gold": 1.5}
    bookings = []
    for e in rng.sample(events, 45):
        t = next(t for t in travellers if t["id"] == e["traveller_id"])
        day_before = (date.fromisoformat(e["date"]) - timedelta(days=1)).isoformat()
        options = [f for f in flight_index[(t["home_airport"], code_of_city[e["city"]], day_before)]
                   if f["seats_left"] > 0]
        status = "cancelled" if rng.random() < 0.15 else "confirmed"
        if options:
            f = rng.choice(options)
            fare = rng.choice(["saver", "saver", "flex"])
            price = f[fare]
            eur = round(price / rates[f["currency"]], 2)
            points = math.floor(eur * per_eur[tier_of[t["id"]]] + 1e-6) if status == "confirmed" else 0
            bookings.append({"traveller_id": t["id"], "kind": "flight", "flight_id": f["id"], "hotel_id": None,
                             "date": f["date"], "nights": None, "fare": fare, "price": price,
                             "currency": f["currency"], "points": points, "status": status})
        if rng.random() < 0.8:
            h = rng.choice(hotel_by_city[e["city"]])
            nights = rng.randint(1, 4)
            bookings.append({"traveller_id": t["id"], "kind": "hotel", "flight_id": None, "hotel_id": h["id"],
                             "date": day_before, "nights": nights, "fare": None,
                             "price": round(h["nightly_rate"] * nights, 2), "currency": h["currency"], "points": 0,
                             "status": "cancelled" if rng.random() < 0.1 else "confirmed"})
    bookings.sort(key=lambda b: (b["date"], b["traveller_id"], b["kind"]))
    bookings = [{"id": f"BK-{i + 1:04d}", **b} for i, b in enumerate(bookings)]

    return {"airports": airports, "rates": [{"currency": c, "per_eur": r} for c, r in RATES],
            "flights": flights, "hotels": hotels, "travellers": travellers, "loyalty": loyalty,
            "events": events, "bookings": bookings}


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
