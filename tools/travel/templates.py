"""Task templates of the travel pack.

Samplers read the seed through `data` and draw with `rng` only, so a seed gives the same tasks.
Every sampler draws slots that make the task answerable and unambiguous (one cheapest flight,
one matching booking, ...). Gold programs call the tools the way a careful agent would.

`lamsim check` calls each sampler a few thousand times to estimate how many distinct tasks a
template can produce, so the indexes samplers need are built once (`_index`): the seed never
changes while the pack is loaded, and a changed seed gives a new pack version (a fresh module).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, timedelta

from lamsim_tui.packs import template

_CACHE: dict = {}


def _index(data) -> dict:
    if "index" not in _CACHE:
        airports = {a["code"]: a for a in data.rows("airports")}
        flights = data.rows("flights")
        by_route_day: dict[tuple, list[dict]] = {}
        for f in flights:
            by_route_day.setdefault((f["origin"], f["destination"], f["date"]), []).append(f)
        days = sorted({f["date"] for f in flights})
        bookings = data.rows("bookings")
        hotels = {h["id"]: h for h in data.rows("hotels")}
        confirmed = [b for b in bookings if b["status"] == "confirmed"]
        _CACHE["index"] = {
            "airports": airports,
            "city": {code: a["city"] for code, a in airports.items()},
            "routes": sorted({(f["origin"], f["destination"]) for f in flights}),
            "by_route_day": by_route_day,
            "days": days,
            "travellers": {t["id"]: t for t in data.rows("travellers")},
            "events": data.rows("events"),
            "hotels": hotels,
            "hotel_list": list(hotels.values()),
            "currencies": [r["currency"] for r in data.rows("rates")],
            "confirmed": confirmed,
            "flights": {f["id"]: f for f in flights},
        }
    return _CACHE["index"]


def _other_currency(ix: dict, rng, *avoid: str) -> str:
    return rng.choice([c for c in ix["currencies"] if c not in avoid])


def _cheapest(flights: list[dict], fare: str = "saver", with_seats: bool = False) -> dict:
    pool = [f for f in flights if f["seats_left"] > 0] if with_seats else flights
    return min(pool, key=lambda f: f[fare])


def _traveller_id(call, name: str) -> str:
    return next(t["id"] for t in call("find_traveller", name=name) if t["name"] == name)


def _unique(rows: list[dict], key) -> list[dict]:
    """Rows whose key occurs once: the task text then names exactly one of them."""
    counts = Counter(key(r) for r in rows)
    return [r for r in rows if counts[key(r)] == 1]


# ----- flights and hotels ----------------------------------------------------------------------


@template(query="Which flight from {origin} to {destination} on {date} has the cheapest saver fare? "
                "Answer with the flight number.", answer="text")
def cheapest_flight(data, rng):
    """One search, then a minimum."""
    ix = _index(data)
    origin, dest = rng.choice(ix["routes"])
    return {"origin": ix["city"][origin], "destination": ix["city"][dest], "date": rng.choice(ix["days"])}


@cheapest_flight.gold
def _(slots, call):
    found = call("search_flights", origin=slots["origin"], destination=slots["destination"], date=slots["date"])
    return _cheapest(found["flights"])["number"]


@template(query="How much is the cheapest saver fare from {origin} to {destination} on {date}, in {currency}?",
          answer="number", tolerance=0.01)
def flight_cost_converted(data, rng):
    """Search, then currency conversion."""
    ix = _index(data)
    origin, dest = rng.choice(ix["routes"])
    return {"origin": ix["city"][origin], "destination": ix["city"][dest], "date": rng.choice(ix["days"]),
            "currency": _other_currency(ix, rng, ix["airports"][origin]["currency"])}


@flight_cost_converted.gold
def _(slots, call):
    found = call("search_flights", origin=slots["origin"], destination=slots["destination"], date=slots["date"])
    best = _cheapest(found["flights"])
    return call("convert_currency", amount=best["saver"], from_currency=best["currency"],
                to_currency=slots["currency"])["amount"]


@template(query="What would {nights} nights at the {hotel} in {city} cost in {currency}?", answer="number",
          tolerance=0.01)
def hotel_stay_cost(data, rng):
    """Hotel rate times nights, converted."""
    ix = _index(data)
    hotel = rng.choice(ix["hotel_list"])
    return {"nights": rng.randint(2, 7), "hotel": hotel["name"], "city": hotel["city"],
            "currency": _other_currency(ix, rng, hotel["currency"])}


@hotel_stay_cost.gold
def _(slots, call):
    hotel = next(h for h in call("search_hotels", city=slots["city"]) if h["name"] == slots["hotel"])
    total = round(hotel["nightly_rate"] * slots["nights"], 2)
    return call("convert_currency", amount=total, from_currency=hotel["currency"],
                to_currency=slots["currency"])["amount"]


# ----- travellers: bookings, loyalty, calendar -------------------------------------------------


@template(query="On what date does {name} check out of their hotel in {city}?", answer="date")
def checkout_date(data, rng):
    """Find the booking, then date arithmetic (check-in plus nights)."""
    ix = _index(data)
    stays = [b for b in ix["confirmed"] if b["kind"] == "hotel"]
    stays = _unique(stays, lambda b: (b["traveller_id"], ix["hotels"][b["hotel_id"]]["city"]))
    stay = rng.choice(stays)
    return {"name": ix["travellers"][stay["traveller_id"]]["name"], "city": ix["hotels"][stay["hotel_id"]]["city"]}


@checkout_date.gold
def _(slots, call):
    tid = _traveller_id(call, slots["name"])
    stay = next(b for b in call("list_bookings", traveller_id=tid, status="confirmed")
                if b["kind"] == "hotel" and b["city"] == slots["city"])
    return call("shift_date", date=stay["check_in"], days=stay["nights"])["date"]


@template(query="How many loyalty points does {name} have?", answer="number")
def loyalty_points(data, rng):
    """Name -> id -> loyalty account."""
    return {"name": rng.choice(list(_index(data)["travellers"].values()))["name"]}


@loyalty_points.gold
def _(slots, call):
    return call("get_loyalty", traveller_id=_traveller_id(call, slots["name"]))["points"]


@template(query="How many loyalty points would {name} have after booking the {fare} fare of flight {number} "
                "from {origin} to {destination} on {date}?", answer="number")
def points_after_flight(data, rng):
    """Loyalty arithmetic: fare converted to EUR, times the tier's rate, rounded down, plus the balance."""
    ix = _index(data)
    traveller = rng.choice(list(ix["travellers"].values()))
    origin, dest = rng.choice(ix["routes"])
    flight = rng.choice(ix["by_route_day"][(origin, dest, rng.choice(ix["days"]))])
    return {"name": traveller["name"], "fare": rng.choice(["saver", "flex"]), "number": flight["number"],
            "origin": ix["city"][origin], "destination": ix["city"][dest], "date": flight["date"]}


@points_after_flight.gold
def _(slots, call):
    account = call("get_loyalty", traveller_id=_traveller_id(call, slots["name"]))
    found = call("search_flights", origin=slots["origin"], destination=slots["destination"], date=slots["date"])
    flight = next(f for f in found["flights"] if f["number"] == slots["number"])
    price = flight[slots["fare"]]
    eur = price if flight["currency"] == "EUR" else call(
        "convert_currency", amount=price, from_currency=flight["currency"], to_currency="EUR")["amount"]
    return account["points"] + math.floor(eur * account["points_per_eur"] + 1e-6)


@template(query="{name} has '{title}' on their calendar. Which flight from their home city to the city of that "
                "event, on the day before it, has the cheapest saver fare? Answer with the flight number.",
          answer="text")
def flight_before_event(data, rng):
    """Calendar -> date arithmetic -> flight search (four calls)."""
    ix = _index(data)
    event = rng.choice(ix["events"])
    return {"name": ix["travellers"][event["traveller_id"]]["name"], "title": event["title"]}


@flight_before_event.gold
def _(slots, call):
    traveller = next(t for t in call("find_traveller", name=slots["name"]) if t["name"] == slots["name"])
    event = next(e for e in call("get_calendar", traveller_id=traveller["id"]) if e["title"] == slots["title"])
    day_before = call("shift_date", date=event["date"], days=-1)["date"]
    found = call("search_flights", origin=traveller["home_airport"], destination=event["city"], date=day_before)
    return _cheapest(found["flights"])["number"]


@template(query="Does {name} have anything on their calendar on {date}?", answer="bool")
def busy_on_date(data, rng):
    """Calendar lookup with a yes/no answer."""
    ix = _index(data)
    traveller = rng.choice(list(ix["travellers"].values()))
    busy = sorted({e["date"] for e in ix["events"] if e["traveller_id"] == traveller["id"]})
    free = [d for d in ix["days"] if d not in busy]
    return {"name": traveller["name"], "date": rng.choice(busy if rng.random() < 0.5 else free)}


@busy_on_date.gold
def _(slots, call):
    events = call("get_calendar", traveller_id=_traveller_id(call, slots["name"]), month=slots["date"][:7])
    return any(e["date"] == slots["date"] for e in events)


@template(query="How much has {name} spent in total on confirmed bookings, in their home currency?",
          answer="number", tolerance=0.1)
def total_spend(data, rng):
    """Sum of bookings in several currencies: convert each currency's subtotal, then add."""
    ix = _index(data)
    spenders = sorted({b["traveller_id"] for b in ix["confirmed"]})
    return {"name": ix["travellers"][rng.choice(spenders)]["name"]}


@total_spend.gold
def _(slots, call):
    traveller = next(t for t in call("find_traveller", name=slots["name"]) if t["name"] == slots["name"])
    subtotals: dict[str, float] = {}
    for b in call("list_bookings", traveller_id=traveller["id"], status="confirmed"):
        subtotals[b["currency"]] = round(subtotals.get(b["currency"], 0.0) + b["price"], 2)
    total = 0.0
    for currency, amount in sorted(subtotals.items()):
        if currency != traveller["currency"]:
            amount = call("convert_currency", amount=amount, from_currency=currency,
                          to_currency=traveller["currency"])["amount"]
        total += amount
    return round(total, 2)


# ----- state-changing tasks --------------------------------------------------------------------


@template(query="Book {name} on the {fare} fare of the cheapest flight from {origin} to {destination} on {date} "
                "that still has seats. Answer with the booking id.", answer="text", state=True,
          state_fields={"bookings": ["traveller_id", "flight_id", "fare", "status"], "flights": ["seats_left"],
                        "loyalty": ["points"]})
def book_cheapest_flight(data, rng):
    """Search, skip full flights, book (earns points)."""
    ix = _index(data)
    traveller = rng.choice(list(ix["travellers"].values()))
    origin = traveller["home_airport"]
    dest = rng.choice([d for o, d in ix["routes"] if o == origin])
    fare = rng.choice(["saver", "saver", "flex"])
    booked = {b["flight_id"] for b in ix["confirmed"] if b["traveller_id"] == traveller["id"]}

    def bookable(day: str) -> bool:  # seats left, and not the traveller's own flight already
        flights = [f for f in ix["by_route_day"][(origin, dest, day)] if f["seats_left"] > 0]
        return bool(flights) and _cheapest(flights, fare)["id"] not in booked

    days = [d for d in ix["days"] if bookable(d)]
    return {"name": traveller["name"], "fare": fare, "origin": ix["city"][origin], "destination": ix["city"][dest],
            "date": rng.choice(days)}


@book_cheapest_flight.gold
def _(slots, call):
    tid = _traveller_id(call, slots["name"])
    found = call("search_flights", origin=slots["origin"], destination=slots["destination"], date=slots["date"])
    flight = _cheapest(found["flights"], slots["fare"], with_seats=True)
    return call("book_flight", traveller_id=tid, flight_id=flight["id"], fare=slots["fare"])["booking_id"]


@template(query="Cancel {name}'s booking at the {hotel} and tell me the refund in {currency}.", answer="number",
          tolerance=0.01, state=True, state_fields={"bookings": ["status"]})
def cancel_hotel_refund(data, rng):
    """Find the booking, cancel it (refund rules), convert the refund."""
    ix = _index(data)
    stays = _unique([b for b in ix["confirmed"] if b["kind"] == "hotel"], lambda b: (b["traveller_id"], b["hotel_id"]))
    stay = rng.choice(stays)
    hotel = ix["hotels"][stay["hotel_id"]]
    return {"name": ix["travellers"][stay["traveller_id"]]["name"], "hotel": hotel["name"],
            "currency": _other_currency(ix, rng, hotel["currency"])}


@cancel_hotel_refund.gold
def _(slots, call):
    tid = _traveller_id(call, slots["name"])
    stay = next(b for b in call("list_bookings", traveller_id=tid, status="confirmed")
                if b["kind"] == "hotel" and b["hotel"] == slots["hotel"])
    done = call("cancel_booking", booking_id=stay["id"])
    return call("convert_currency", amount=done["refund"], from_currency=done["currency"],
                to_currency=slots["currency"])["amount"]


@template(query="Cancel {name}'s flight to {city} on {date}. How many loyalty points do they have afterwards?",
          answer="number", state=True,
          state_fields={"bookings": ["status"], "flights": ["seats_left"], "loyalty": ["points"]})
def cancel_flight_points(data, rng):
    """Cancelling a flight takes back the points it earned."""
    ix = _index(data)
    trips = [b for b in ix["confirmed"] if b["kind"] == "flight"]
    dest = {b["id"]: ix["flights"][b["flight_id"]]["destination"] for b in trips}
    trip = rng.choice(_unique(trips, lambda b: (b["traveller_id"], dest[b["id"]], b["date"])))
    return {"name": ix["travellers"][trip["traveller_id"]]["name"], "city": ix["city"][dest[trip["id"]]],
            "date": trip["date"]}


@cancel_flight_points.gold
def _(slots, call):
    tid = _traveller_id(call, slots["name"])
    trip = next(b for b in call("list_bookings", traveller_id=tid, status="confirmed")
                if b["kind"] == "flight" and b["to"] == slots["city"] and b["date"] == slots["date"])
    call("cancel_booking", booking_id=trip["id"])
    return call("get_loyalty", traveller_id=tid)["points"]


@template(query="Move {name}'s flight to {city} on {date} to the earliest flight with free seats on {new_date}, "
                "same route and fare. How much extra do they pay, in {currency}?", answer="number", tolerance=0.01,
          state=True, state_fields={"bookings": ["flight_id", "status"], "flights": ["seats_left"]})
def change_to_earliest(data, rng):
    """Find the booking, search the new day, change (fare difference plus fee), convert."""
    ix = _index(data)
    trips = [b for b in ix["confirmed"] if b["kind"] == "flight"]
    dest = {b["id"]: ix["flights"][b["flight_id"]]["destination"] for b in trips}
    trip = rng.choice(_unique(trips, lambda b: (b["traveller_id"], dest[b["id"]], b["date"])))
    flight = ix["flights"][trip["flight_id"]]
    route = (flight["origin"], flight["destination"])
    day = date.fromisoformat(trip["date"])
    options = []
    for delta in (-3, -2, -1, 1, 2, 3):
        new = (day + timedelta(days=delta)).isoformat()
        if any(f["seats_left"] > 0 for f in ix["by_route_day"].get((*route, new), [])):
            options.append(new)
    return {"name": ix["travellers"][trip["traveller_id"]]["name"], "city": ix["city"][flight["destination"]],
            "date": trip["date"], "new_date": rng.choice(options),
            "currency": _other_currency(ix, rng, flight["currency"])}


@change_to_earliest.gold
def _(slots, call):
    tid = _traveller_id(call, slots["name"])
    trip = next(b for b in call("list_bookings", traveller_id=tid, status="confirmed")
                if b["kind"] == "flight" and b["to"] == slots["city"] and b["date"] == slots["date"])
    found = call("search_flights", origin=trip["from"], destination=trip["to"], date=slots["new_date"])
    earliest = next(f for f in found["flights"] if f["seats_left"] > 0)  # listed by departure time
    done = call("change_flight", booking_id=trip["id"], new_flight_id=earliest["id"])
    return call("convert_currency", amount=done["charged"], from_currency=done["currency"],
                to_currency=slots["currency"])["amount"]


@template(query="Book {name} into the cheapest hotel with at least {stars} stars in the city of their '{title}', "
                "checking in the day before it, for {nights} nights. What is the total price in their home "
                "currency?", answer="number", tolerance=0.01, state=True,
          state_fields={"bookings": ["traveller_id", "hotel_id", "date", "nights", "status"]})
def book_hotel_for_event(data, rng):
    """Calendar -> date arithmetic -> hotel search -> booking -> conversion (up to six calls)."""
    ix = _index(data)
    event = rng.choice(ix["events"])
    return {"name": ix["travellers"][event["traveller_id"]]["name"], "title": event["title"],
            "stars": rng.choice([3, 4, 5]), "nights": rng.randint(1, 4)}


@book_hotel_for_event.gold
def _(slots, call):
    traveller = next(t for t in call("find_traveller", name=slots["name"]) if t["name"] == slots["name"])
    event = next(e for e in call("get_calendar", traveller_id=traveller["id"]) if e["title"] == slots["title"])
    check_in = call("shift_date", date=event["date"], days=-1)["date"]
    hotel = call("search_hotels", city=event["city"], min_stars=slots["stars"])[0]
    booked = call("book_hotel", traveller_id=traveller["id"], hotel_id=hotel["id"], check_in=check_in,
                  nights=slots["nights"])
    if booked["currency"] == traveller["currency"]:
        return booked["price"]
    return call("convert_currency", amount=booked["price"], from_currency=booked["currency"],
                to_currency=traveller["currency"])["amount"]
