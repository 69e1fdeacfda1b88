"""Tools of the travel pack: a corporate travel desk (flights, hotels, bookings, loyalty, calendar).

Descriptions are short on purpose: small local models read every one of them on every step.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Annotated, Literal

from lamsim_tui.packs import Sandbox, ToolError, tool

Fare = Literal["saver", "flex"]
Status = Literal["confirmed", "cancelled"]
PER_EUR = {"basic": 1.0, "silver": 1.25, "gold": 1.5}  # loyalty points per EUR of a flight fare
SAVER_REFUND = 0.5  # share of a saver fare refunded on cancellation (flex: all of it)
SAVER_CHANGE_FEE = 0.1  # share of the new fare charged to change a saver booking (flex: free)
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


# ----- helpers ---------------------------------------------------------------------------------


def _day(text: str, what: str = "date") -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ToolError(f"{what} must look like 2026-03-14, not {text!r}.") from None


def _airport(sb: Sandbox, place: str) -> dict:
    text = place.strip()
    row = sb.get("airports", text.upper())
    if row is None:
        row = next((a for a in sb.iter_rows("airports") if a["city"].lower() == text.lower()), None)
    if row is None:
        known = ", ".join(f"{a['city']} ({a['code']})" for a in sb.iter_rows("airports"))
        raise ToolError(f"Unknown city or airport {place!r}. Known: {known}.")
    return row


def _traveller(sb: Sandbox, traveller_id: str) -> dict:
    row = sb.get("travellers", traveller_id.strip())
    if row is None:
        raise ToolError(f"No traveller {traveller_id!r}. Ids look like T-007; use find_traveller.")
    return row


def _flight(sb: Sandbox, flight_id: str) -> dict:
    row = sb.get("flights", flight_id.strip())
    if row is None:
        raise ToolError(f"No flight {flight_id!r}. Flight ids look like FL-0123; use search_flights.")
    return row


def _hotel(sb: Sandbox, hotel_id: str) -> dict:
    row = sb.get("hotels", hotel_id.strip())
    if row is None:
        raise ToolError(f"No hotel {hotel_id!r}. Hotel ids look like H-07; use search_hotels.")
    return row


def _booking(sb: Sandbox, booking_id: str) -> dict:
    row = sb.get("bookings", booking_id.strip())
    if row is None:
        raise ToolError(f"No booking {booking_id!r}. Booking ids look like BK-0042; use list_bookings.")
    return row


def _rate(sb: Sandbox, currency: str) -> float:
    row = sb.get("rates", currency.strip().upper())
    if row is None:
        known = ", ".join(r["currency"] for r in sb.iter_rows("rates"))
        raise ToolError(f"Unknown currency {currency!r}. Known: {known}.")
    return row["per_eur"]


def convert(sb: Sandbox, amount: float, src: str, dst: str) -> float:
    return round(float(amount) / _rate(sb, src) * _rate(sb, dst), 2)


def _points(sb: Sandbox, traveller_id: str, price: float, currency: str) -> int:
    tier = (sb.get("loyalty", traveller_id) or {}).get("tier", "basic")
    return math.floor(convert(sb, price, currency, "EUR") * PER_EUR[tier] + 1e-6)


def _city(sb: Sandbox, code: str) -> str:
    return (sb.get("airports", code) or {}).get("city", code)


def _summary(sb: Sandbox, b: dict) -> dict:
    out = {"id": b["id"], "kind": b["kind"], "status": b["status"]}
    if b["kind"] == "flight":
        f = sb.get("flights", b["flight_id"]) or {}
        out.update({"flight_id": b["flight_id"], "flight": f.get("number"), "from": _city(sb, f.get("origin", "")),
                    "to": _city(sb, f.get("destination", "")), "date": b["date"], "fare": b["fare"]})
    else:
        h = sb.get("hotels", b["hotel_id"]) or {}
        out.update({"hotel_id": b["hotel_id"], "hotel": h.get("name"), "city": h.get("city"),
                    "check_in": b["date"], "nights": b["nights"]})
    out.update({"price": b["price"], "currency": b["currency"]})
    return out


# ----- reading ---------------------------------------------------------------------------------


@tool
def find_traveller(sb: Sandbox, name: str) -> list[dict]:
    """Find travellers by full or partial name: id, home city and airport, home currency."""
    needle = " ".join(name.lower().split())
    hits = [t for t in sb.iter_rows("travellers") if needle and needle in t["name"].lower()]
    if not hits:
        raise ToolError(f"No traveller name contains {name!r}. Try the last name only.")
    return [{k: t[k] for k in ("id", "name", "home_city", "home_airport", "currency")} for t in hits]


@tool
def search_flights(sb: Sandbox, origin: str, destination: str, date: str) -> dict:
    """Direct flights on a date, by departure time; prices are per fare (saver, flex).

    Args:
        origin: City or airport code.
        destination: City or airport code.
        date: YYYY-MM-DD
    """
    src, dst = _airport(sb, origin), _airport(sb, destination)
    day = _day(date).isoformat()
    on_route = [f for f in sb.iter_rows("flights") if f["origin"] == src["code"] and f["destination"] == dst["code"]]
    if not on_route:
        served = sorted({_city(sb, f["destination"]) for f in sb.iter_rows("flights") if f["origin"] == src["code"]})
        raise ToolError(f"No direct flights from {src['city']} to {dst['city']}. From {src['city']} we fly to: "
                        f"{', '.join(served)}.")
    hits = sorted((f for f in on_route if f["date"] == day), key=lambda f: f["depart"])
    out: dict = {"from": f"{src['city']} ({src['code']})", "to": f"{dst['city']} ({dst['code']})", "date": day,
                 "flights": [{k: f[k] for k in ("id", "number", "depart", "arrive", "saver", "flex", "currency",
                                                "seats_left")} for f in hits]}
    if not hits:
        days = sorted({f["date"] for f in on_route})
        out["note"] = f"No flights that day; this route is scheduled from {days[0]} to {days[-1]}."
    return out


@tool
def get_flight(sb: Sandbox, flight_id: str) -> dict:
    """Get a flight (id FL-nnnn) with its cities."""
    flight = _flight(sb, flight_id)
    flight["from"], flight["to"] = _city(sb, flight["origin"]), _city(sb, flight["destination"])
    return flight


@tool
def search_hotels(sb: Sandbox, city: str,
                  min_stars: Annotated[int | None, {"minimum": 1, "maximum": 5}] = None) -> list[dict]:
    """Hotels in a city, cheapest first, with nightly rate and free-cancellation days."""
    town = _airport(sb, city)["city"]
    hits = [h for h in sb.iter_rows("hotels") if h["city"] == town and (min_stars is None or h["stars"] >= min_stars)]
    hits.sort(key=lambda h: (h["nightly_rate"], h["id"]))
    return [{k: h[k] for k in ("id", "name", "stars", "nightly_rate", "currency", "free_cancel_days")} for h in hits]


@tool
def list_bookings(sb: Sandbox, traveller_id: str, status: Status | None = None) -> list[dict]:
    """A traveller's flight and hotel bookings, by date."""
    traveller = _traveller(sb, traveller_id)
    rows = [b for b in sb.iter_rows("bookings") if b["traveller_id"] == traveller["id"]
            and (status is None or b["status"] == status)]
    rows.sort(key=lambda b: (b["date"], b["id"]))
    return [_summary(sb, b) for b in rows]


@tool
def get_booking(sb: Sandbox, booking_id: str) -> dict:
    """Get a booking (id BK-nnnn)."""
    booking = _booking(sb, booking_id)
    return {**booking, **_summary(sb, booking)}


@tool
def get_loyalty(sb: Sandbox, traveller_id: str) -> dict:
    """A traveller's loyalty tier, points, and points earned per EUR of flight fare (rounded down)."""
    traveller = _traveller(sb, traveller_id)
    row = sb.get("loyalty", traveller["id"]) or {"tier": "basic", "points": 0}
    return {"traveller_id": traveller["id"], "tier": row["tier"], "points": row["points"],
            "points_per_eur": PER_EUR[row["tier"]]}


@tool
def convert_currency(sb: Sandbox, amount: float, from_currency: str, to_currency: str) -> dict:
    """Convert an amount between currencies (EUR, GBP, USD, CHF, JPY, SEK, CAD).

    Args:
        from_currency: e.g. GBP
        to_currency: e.g. EUR
    """
    return {"amount": convert(sb, amount, from_currency, to_currency), "currency": to_currency.strip().upper()}


@tool
def get_calendar(sb: Sandbox, traveller_id: str, month: str | None = None) -> list[dict]:
    """A traveller's calendar events, by date.

    Args:
        month: YYYY-MM
    """
    traveller = _traveller(sb, traveller_id)
    prefix = (month or "").strip()
    rows = [e for e in sb.iter_rows("events") if e["traveller_id"] == traveller["id"] and e["date"].startswith(prefix)]
    rows.sort(key=lambda e: (e["date"], e["time"]))
    return [{k: e[k] for k in ("date", "time", "title", "city")} for e in rows]


@tool
def shift_date(sb: Sandbox, date: str, days: int) -> dict:
    """Add days to a date (negative days go back); also gives the weekday."""
    day = _day(date) + timedelta(days=days)
    return {"date": day.isoformat(), "weekday": WEEKDAYS[day.weekday()]}


# ----- writing ---------------------------------------------------------------------------------


@tool(changes_state=True)
def book_flight(sb: Sandbox, traveller_id: str, flight_id: str, fare: Fare = "saver") -> dict:
    """Book a seat on a flight for a traveller; earns loyalty points."""
    traveller = _traveller(sb, traveller_id)
    flight = _flight(sb, flight_id)
    if flight["seats_left"] <= 0:
        raise ToolError(f"Flight {flight['number']} on {flight['date']} is full.")
    if any(b["flight_id"] == flight["id"] and b["traveller_id"] == traveller["id"] and b["status"] == "confirmed"
           for b in sb.iter_rows("bookings")):
        raise ToolError(f"{traveller['name']} is already booked on this flight.")
    price = flight[fare]
    points = _points(sb, traveller["id"], price, flight["currency"])
    booking = sb.insert("bookings", {
        "id": sb.new_key("bookings", "BK-"), "traveller_id": traveller["id"], "kind": "flight",
        "flight_id": flight["id"], "hotel_id": None, "date": flight["date"], "nights": None, "fare": fare,
        "price": price, "currency": flight["currency"], "points": points, "status": "confirmed"})
    sb.update("flights", flight["id"], seats_left=flight["seats_left"] - 1)
    account = sb.get("loyalty", traveller["id"])
    if account is not None:
        sb.update("loyalty", traveller["id"], points=account["points"] + points)
    return {"booking_id": booking["id"], "flight": flight["number"], "date": flight["date"], "fare": fare,
            "price": price, "currency": flight["currency"], "points_earned": points}


@tool(changes_state=True)
def book_hotel(sb: Sandbox, traveller_id: str, hotel_id: str, check_in: str,
               nights: Annotated[int, {"minimum": 1, "maximum": 30}]) -> dict:
    """Book a hotel room for a traveller.

    Args:
        check_in: YYYY-MM-DD
    """
    traveller = _traveller(sb, traveller_id)
    hotel = _hotel(sb, hotel_id)
    day = _day(check_in, "check_in")
    if day <= sb.now.date():
        raise ToolError(f"check_in must be after today ({sb.now.date().isoformat()}).")
    price = round(hotel["nightly_rate"] * nights, 2)
    booking = sb.insert("bookings", {
        "id": sb.new_key("bookings", "BK-"), "traveller_id": traveller["id"], "kind": "hotel", "flight_id": None,
        "hotel_id": hotel["id"], "date": day.isoformat(), "nights": nights, "fare": None, "price": price,
        "currency": hotel["currency"], "points": 0, "status": "confirmed"})
    return {"booking_id": booking["id"], "hotel": hotel["name"], "check_in": day.isoformat(),
            "check_out": (day + timedelta(days=nights)).isoformat(), "price": price, "currency": hotel["currency"]}


@tool(changes_state=True)
def cancel_booking(sb: Sandbox, booking_id: str) -> dict:
    """Cancel a booking. Refunds: flex all, saver half; hotels all until free_cancel_days before check-in,
    then all but one night."""
    booking = _booking(sb, booking_id)
    if booking["status"] == "cancelled":
        raise ToolError(f"Booking {booking['id']} is already cancelled.")
    if booking["kind"] == "flight":
        flight = _flight(sb, booking["flight_id"])
        refund = booking["price"] if booking["fare"] == "flex" else round(booking["price"] * SAVER_REFUND, 2)
        sb.update("flights", flight["id"], seats_left=flight["seats_left"] + 1)
        account = sb.get("loyalty", booking["traveller_id"])
        if account is not None and booking["points"]:
            sb.update("loyalty", booking["traveller_id"], points=max(0, account["points"] - booking["points"]))
    else:
        hotel = _hotel(sb, booking["hotel_id"])
        days_before = (date.fromisoformat(booking["date"]) - sb.now.date()).days
        refund = booking["price"]
        if days_before < hotel["free_cancel_days"]:
            refund = round(booking["price"] - hotel["nightly_rate"], 2)
    sb.update("bookings", booking["id"], status="cancelled", refund=refund)
    return {"booking_id": booking["id"], "status": "cancelled", "refund": refund, "currency": booking["currency"]}


@tool(changes_state=True)
def change_flight(sb: Sandbox, booking_id: str, new_flight_id: str) -> dict:
    """Move a flight booking to another flight on the same route. Charges any fare increase, plus
    10% of the new fare for saver bookings."""
    booking = _booking(sb, booking_id)
    if booking["kind"] != "flight":
        raise ToolError(f"Booking {booking['id']} is a hotel booking; only flights can be changed.")
    if booking["status"] != "confirmed":
        raise ToolError(f"Booking {booking['id']} is {booking['status']}.")
    old, new = _flight(sb, booking["flight_id"]), _flight(sb, new_flight_id)
    if new["id"] == old["id"]:
        raise ToolError(f"Booking {booking['id']} is already on flight {new['id']}.")
    if (new["origin"], new["destination"]) != (old["origin"], old["destination"]):
        raise ToolError(f"Flight {new['id']} flies {new['origin']}-{new['destination']}, not "
                        f"{old['origin']}-{old['destination']}.")
    if new["seats_left"] <= 0:
        raise ToolError(f"Flight {new['number']} on {new['date']} is full.")
    price = new[booking["fare"]]
    fee = 0.0 if booking["fare"] == "flex" else round(price * SAVER_CHANGE_FEE, 2)
    charged = round(max(0.0, price - booking["price"]) + fee, 2)
    sb.update("flights", old["id"], seats_left=old["seats_left"] + 1)
    sb.update("flights", new["id"], seats_left=new["seats_left"] - 1)
    sb.update("bookings", booking["id"], flight_id=new["id"], date=new["date"], price=price,
              fees=round(booking.get("fees", 0.0) + fee, 2))
    return {"booking_id": booking["id"], "flight": new["number"], "date": new["date"], "depart": new["depart"],
            "charged": charged, "currency": new["currency"]}
