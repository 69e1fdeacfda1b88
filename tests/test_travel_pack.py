"""The travel pack `tools/travel`: loads, has the promised content, passes `lamsim check`, runs a
scripted session like the CRM pack does, and its tools enforce the travel desk's rules."""

from __future__ import annotations

import filecmp
import json
import math
import random
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from lamsim_tui.packs import ToolError, load_pack
from lamsim_tui.simulator.judge import states_match
from lamsim_tui.simulator.runner import ToolRunner
from lamsim_tui.simulator.tasks import check_templates, make_task, sample_slots

ROOT = Path(__file__).resolve().parents[1]
PACK_DIR = ROOT / "tools" / "travel"
LAMSIM = str(Path(sys.executable).parent / "lamsim")


@pytest.fixture(scope="module")
def pack():
    return load_pack(PACK_DIR)


@pytest.fixture()
def sb(pack):
    return pack.new_sandbox()


def tool(pack, name):
    return pack.tools[name].func


def task(pack, template_id: str, seed: int = 0):
    spec = pack.templates[template_id]
    return make_task(pack, spec, sample_slots(pack, spec, random.Random(seed)), ToolRunner(pack))


# ----- shape ---------------------------------------------------------------------------------


def test_pack_has_the_promised_tools_and_templates(pack):
    assert pack.name == "travel"
    assert len(pack.tools) >= 10
    writers = {t.name for t in pack.tools.values() if t.changes_state}
    assert {"book_flight", "book_hotel", "cancel_booking", "change_flight"} <= writers
    assert len(pack.templates) >= 8
    assert {"flights", "hotels", "bookings", "travellers", "loyalty", "rates", "events"} <= set(pack.seed.tables)
    for spec in pack.tools.values():  # read by small local models on every step
        assert spec.description and len(spec.description) <= 160, spec.name
    assert len(json.dumps(pack.tool_schemas())) < 6000


def test_templates_cover_answer_types_multi_step_and_state(pack):
    assert {"number", "text", "date", "bool"} <= {t.answer for t in pack.templates.values()}
    stateful = [t.id for t in pack.templates.values() if t.state]
    assert len(stateful) >= 3 and "book_cheapest_flight" in stateful
    depth = {tid: max(len(task(pack, tid, s).gold_calls) for s in range(3)) for tid in pack.templates}
    assert min(depth.values()) == 1 and max(depth.values()) >= 5
    assert sum(d >= 3 for d in depth.values()) >= 6


def test_generator_reproduces_the_seed_data(tmp_path):
    subprocess.run([sys.executable, str(PACK_DIR / "generate_data.py"), str(tmp_path)], check=True,
                   capture_output=True)
    shipped = sorted(p.name for p in (PACK_DIR / "data").glob("*.json"))
    assert sorted(p.name for p in tmp_path.glob("*.json")) == shipped
    for name in shipped:
        assert filecmp.cmp(PACK_DIR / "data" / name, tmp_path / name, shallow=False), name


def test_every_template_passes_the_gold_check_with_many_distinct_tasks(pack):
    before = pack.seed.fingerprint()
    reports = check_templates(pack, ToolRunner(pack), samples=10, seed=1)
    assert pack.seed.fingerprint() == before
    for report in reports:
        assert not report.failures, (report.template, report.failures[0].reason)
        assert report.distinct >= 20, report.template
        assert report.max_gold_s < 0.2, report.template


def test_check_and_scripted_run_from_the_command_line(tmp_path):
    done = subprocess.run([LAMSIM, "check", "sessions/travel.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"all {len(load_pack(PACK_DIR).templates)} templates passed" in done.stdout
    assert "warning" not in done.stdout
    done = subprocess.run([LAMSIM, "run", "sessions/travel.yaml", "--headless", "-n", "30", "--agent", "scripted",
                           "--seed", "7", "--store", str(tmp_path / "store"), "--json"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["episodes"] == 30 and summary["success_rate"] >= 0.85
    assert not summary["skipped_templates"]
    from lamsim_tui.store import open_store

    with open_store(tmp_path / "store", readonly=True) as store:
        records = list(store.records())
    assert len(records) == 30
    assert any(r.task.judge_state and r.verdict.state_correct for r in records)


# ----- judged on final state -------------------------------------------------------------------


def test_booking_task_is_judged_on_final_state(pack):
    t = task(pack, "book_cheapest_flight", 3)
    assert t.judge_state and set(t.gold_state) == {"bookings", "flights", "loyalty"}
    calls = {c.tool: c for c in t.gold_calls}
    booked = calls["book_flight"].arguments
    assert t.gold_answer == calls["book_flight"].result["booking_id"]

    def replay(flight_id: str) -> dict:
        sb = pack.new_sandbox()
        tool(pack, "book_flight")(sb, traveller_id=booked["traveller_id"], flight_id=flight_id, fare=booked["fare"])
        return json.loads(json.dumps(sb.changes()))

    assert states_match(replay(booked["flight_id"]), t.gold_state, t.state_fields) == (True, [])
    others = [f["id"] for f in calls["search_flights"].result["flights"]
              if f["id"] != booked["flight_id"] and f["seats_left"] > 0]
    if others:  # the same booking on another flight of that day is wrong
        ok, reasons = states_match(replay(others[0]), t.gold_state, t.state_fields)
        assert not ok and any("flight_id" in r for r in reasons)
    ok, reasons = states_match({}, t.gold_state, t.state_fields)
    assert not ok and any("expected a change that was not made" in r for r in reasons)


# ----- the desk's rules ------------------------------------------------------------------------


def _flight_with_seats(sb, seats: int = 2) -> dict:
    return next(f for f in sb.rows("flights") if f["seats_left"] >= seats and f["currency"] == "GBP")


def test_booking_takes_a_seat_and_earns_points(pack, sb):
    flight = _flight_with_seats(sb)
    account = sb.get("loyalty", "T-001")
    result = tool(pack, "book_flight")(sb, traveller_id="T-001", flight_id=flight["id"], fare="flex")
    eur = round(flight["flex"] / 0.86, 2)
    per_eur = {"basic": 1.0, "silver": 1.25, "gold": 1.5}[account["tier"]]
    assert result["points_earned"] == math.floor(eur * per_eur + 1e-6)
    assert sb.get("loyalty", "T-001")["points"] == account["points"] + result["points_earned"]
    assert sb.get("flights", flight["id"])["seats_left"] == flight["seats_left"] - 1
    with pytest.raises(ToolError, match="already booked"):
        tool(pack, "book_flight")(sb, traveller_id="T-001", flight_id=flight["id"])
    # cancelling a flex fare refunds it all, frees the seat and takes the points back
    cancelled = tool(pack, "cancel_booking")(sb, booking_id=result["booking_id"])
    assert cancelled["refund"] == flight["flex"]
    assert sb.get("flights", flight["id"])["seats_left"] == flight["seats_left"]
    assert sb.get("loyalty", "T-001")["points"] == account["points"]
    with pytest.raises(ToolError, match="already cancelled"):
        tool(pack, "cancel_booking")(sb, booking_id=result["booking_id"])
    assert pack.new_sandbox().changes() == {}


def test_full_flights_and_bad_input_are_domain_errors(pack, sb):
    full = next(f for f in sb.rows("flights") if f["seats_left"] == 0)
    with pytest.raises(ToolError, match="is full"):
        tool(pack, "book_flight")(sb, traveller_id="T-002", flight_id=full["id"])
    with pytest.raises(ToolError, match="Known: London"):
        tool(pack, "search_flights")(sb, origin="Atlantis", destination="Paris", date="2026-03-10")
    with pytest.raises(ToolError, match="From Tokyo we fly to: Frankfurt"):
        tool(pack, "search_flights")(sb, origin="NRT", destination="Paris", date="2026-03-10")
    with pytest.raises(ToolError, match="2026-03-14"):
        tool(pack, "shift_date")(sb, date="14/03/2026", days=1)
    with pytest.raises(ToolError, match="Known: EUR"):
        tool(pack, "convert_currency")(sb, amount=1, from_currency="XYZ", to_currency="EUR")
    with pytest.raises(ToolError, match="T-007"):
        tool(pack, "list_bookings")(sb, traveller_id="T-999")
    with pytest.raises(ToolError, match="after today"):
        tool(pack, "book_hotel")(sb, traveller_id="T-001", hotel_id="H-01", check_in="2026-03-01", nights=1)
    assert sb.changes() == {}
    out = tool(pack, "search_flights")(sb, origin="london", destination="PARIS", date="2026-04-20")
    assert out["flights"] == [] and "2026-03-09 to 2026-03-29" in out["note"]


def test_saver_refunds_half_and_late_hotel_cancellation_keeps_a_night(pack, sb):
    saver = next(b for b in sb.rows("bookings") if b["status"] == "confirmed" and b["fare"] == "saver")
    assert tool(pack, "cancel_booking")(sb, booking_id=saver["id"])["refund"] == round(saver["price"] * 0.5, 2)
    hotels = {h["id"]: h for h in sb.rows("hotels")}
    late = next(b for b in sb.rows("bookings") if b["kind"] == "hotel" and b["status"] == "confirmed"
                and (date.fromisoformat(b["date"]) - sb.now.date()).days < hotels[b["hotel_id"]]["free_cancel_days"])
    refund = tool(pack, "cancel_booking")(sb, booking_id=late["id"])["refund"]
    assert refund == round(late["price"] - hotels[late["hotel_id"]]["nightly_rate"], 2)


def test_change_flight_charges_difference_and_fee(pack, sb):
    booking = next(b for b in sb.rows("bookings") if b["status"] == "confirmed" and b["fare"] == "saver")
    old = sb.get("flights", booking["flight_id"])
    same_route = [f for f in sb.rows("flights") if (f["origin"], f["destination"]) == (old["origin"], old["destination"])
                  and f["id"] != old["id"] and f["seats_left"] > 0]
    new = same_route[0]
    result = tool(pack, "change_flight")(sb, booking_id=booking["id"], new_flight_id=new["id"])
    assert result["charged"] == round(max(0.0, new["saver"] - booking["price"]) + round(new["saver"] * 0.1, 2), 2)
    assert sb.get("bookings", booking["id"])["flight_id"] == new["id"]
    assert sb.get("flights", old["id"])["seats_left"] == old["seats_left"] + 1
    other_route = next(f for f in sb.rows("flights") if f["origin"] != old["origin"])
    with pytest.raises(ToolError, match="not " + old["origin"]):
        tool(pack, "change_flight")(sb, booking_id=booking["id"], new_flight_id=other_route["id"])
    hotel = next(b for b in sb.rows("bookings") if b["kind"] == "hotel")
    with pytest.raises(ToolError, match="only flights"):
        tool(pack, "change_flight")(sb, booking_id=hotel["id"], new_flight_id=new["id"])


def test_conversion_dates_and_calendar(pack, sb):
    assert tool(pack, "convert_currency")(sb, amount=100, from_currency="gbp", to_currency="EUR") == \
        {"amount": round(100 / 0.86, 2), "currency": "EUR"}
    assert tool(pack, "shift_date")(sb, date="2026-03-01", days=-1) == {"date": "2026-02-28", "weekday": "Saturday"}
    events = tool(pack, "get_calendar")(sb, traveller_id="T-001", month="2026-03")
    assert events and [e["date"] for e in events] == sorted(e["date"] for e in events)
    hotels = tool(pack, "search_hotels")(sb, city="Paris", min_stars=4)
    assert hotels and all(h["stars"] >= 4 for h in hotels)
    assert [h["nightly_rate"] for h in hotels] == sorted(h["nightly_rate"] for h in hotels)
