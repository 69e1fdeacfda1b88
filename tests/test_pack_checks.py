"""`lamsim check` catches the authoring mistakes that used to pass without a word (issue 12's table).

Each test plants one mistake in a small, clean pack of its own (an office: employees and meeting
rooms), runs the real CLI, and asserts what a pack author reads: the code, the file and line of
the mistake, and the fix. Errors exit 1; warnings exit 0 but are printed.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from packkit import lamsim, write_session

TOOLS = '''
"""Tools of the office pack: employees and meeting rooms."""

from lamsim_tui.packs import Sandbox, ToolError, tool


@tool
def find_employees(sb: Sandbox, name: str) -> list[dict]:
    """Find employees whose name contains the text: id, name, team.

    Args:
        name: Full or partial name.
    """
    hits = [{"id": e["id"], "name": e["name"], "team": e["team"]} for e in sb.iter_rows("employees")
            if name.lower() in e["name"].lower()]
    if not hits:
        raise ToolError(f"No employee name contains {name!r}.")
    return hits


@tool
def get_room(sb: Sandbox, room_id: str) -> dict:
    """Get a meeting room: name, seats and who booked it."""
    room = sb.get("rooms", room_id)
    if room is None:
        raise ToolError(f"No room {room_id!r}. Room ids look like R-1.")
    return room


@tool(changes_state=True)
def book_room(sb: Sandbox, room_id: str, employee_id: str) -> dict:
    """Book a free meeting room for an employee."""
    room = sb.get("rooms", room_id)
    if room is None:
        raise ToolError(f"No room {room_id!r}.")
    if room["booked_by"]:
        raise ToolError(f"Room {room_id} is already booked.")
    return sb.update("rooms", room_id, booked_by=employee_id)
'''

TEMPLATES = '''
"""Templates of the office pack."""

from collections import Counter

from lamsim_tui.packs import template


def _unique_names(data):
    counts = Counter(e["name"] for e in data.rows("employees"))
    return sorted(name for name, n in counts.items() if n == 1)


@template(query="Which team is {name} in?", answer="text")
def employee_team(data, rng):
    """One lookup by name."""
    return {"name": rng.choice(_unique_names(data))}


@employee_team.gold
def _(slots, call):
    return call.one("find_employees", name=slots["name"])["team"]


@template(query="How many seats does room {room_id} have?", answer="number")
def room_seats(data, rng):
    """One lookup by id."""
    return {"room_id": rng.choice(data.rows("rooms"))["id"]}


@room_seats.gold
def _(slots, call):
    return call("get_room", room_id=slots["room_id"])["seats"]


@template(query="Book room {room_id} for {name}.", answer=None, state=True,
          state_fields={"rooms": ["booked_by"]})
def book(data, rng):
    """Action only: judged on who booked the room."""
    free = [r for r in data.rows("rooms") if not r["booked_by"]]
    return {"room_id": rng.choice(free)["id"], "name": rng.choice(_unique_names(data))}


@book.gold
def _(slots, call):
    employee = call.one("find_employees", name=slots["name"])
    call("book_room", room_id=slots["room_id"], employee_id=employee["id"])
'''

FIRST = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea"]
LAST = ["Moss", "Nash", "Orr", "Pike", "Quinn", "Rowe"]


def _employees() -> list[dict]:
    rows = []
    for i, first in enumerate(FIRST):
        for j, last in enumerate(LAST):
            rows.append({"id": f"E-{len(rows) + 1:03d}", "name": f"{first} {last}",
                         "team": ["sales", "support", "finance", "design"][(i + j) % 4]})
    rows.append({"id": "E-900", "name": "Ada Moss", "team": "finance"})  # a name two employees share
    return rows


ROOMS = [{"id": f"R-{i}", "name": f"Room {i}", "seats": 2 + (i * 3) % 11, "booked_by": None if i % 4 else "E-001"}
         for i in range(1, 25)]


def make_pack(root: Path, tools: str = TOOLS, templates: str = TEMPLATES) -> Path:
    pack = root / "tools" / "office"
    (pack / "data").mkdir(parents=True, exist_ok=True)
    (pack / "pack.yaml").write_text(textwrap.dedent("""\
        name: office
        description: Employees and meeting rooms.
        now: "2026-04-01T09:00:00"
        tables:
          employees: {file: data/employees.json, key: id}
          rooms: {file: data/rooms.json, key: id}
        """))
    (pack / "data" / "employees.json").write_text(json.dumps(_employees()))
    (pack / "data" / "rooms.json").write_text(json.dumps(ROOMS))
    (pack / "tools.py").write_text(tools)
    (pack / "templates.py").write_text(templates)
    write_session(root, "pack: office\nseed: 1\n", name="office.yaml")
    return pack


def check(root: Path):
    result = lamsim("check", str(root / "sessions" / "office.yaml"), "--samples", "8", cwd=root)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def line_of(path: Path, text: str) -> int:
    """1-based line of the first line of ``path`` containing ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def finding(output: str, code: str) -> tuple[str, str, str, str]:
    """(severity, where, message, fix) of the first finding with ``code`` in the check's output."""
    match = re.search(rf"^\s+(error|warning) \[{re.escape(code)}\] (\S+:\d+): (.*)\n(?:\s+fix: (.*))?", output, re.M)
    assert match, f"no [{code}] finding in:\n{output}"
    return match.group(1), match.group(2), match.group(3), match.group(4) or ""


def plant(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_clean_pack_passes_with_no_warnings(tmp_path):
    make_pack(tmp_path)
    result = check(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "all 3 templates passed" in result.stdout
    assert "warning" not in result.stdout and "error" not in result.stdout


def test_a_slot_the_query_never_mentions(tmp_path):
    templates = plant(TEMPLATES, '''    return {"room_id": rng.choice(data.rows("rooms"))["id"]}


@room_seats.gold
def _(slots, call):
    return call("get_room", room_id=slots["room_id"])["seats"]''', '''    room = rng.choice(data.rows("rooms"))
    return {"room_id": room["id"], "capacity": room["seats"]}


@room_seats.gold
def _(slots, call):
    call("get_room", room_id=slots["room_id"])
    return slots["capacity"]''')
    pack = make_pack(tmp_path, templates=templates)
    result = check(tmp_path)
    assert result.returncode == 1
    severity, where, message, fix = finding(result.stdout, "slot.unmentioned")
    assert severity == "error"
    assert where == f"{pack / 'templates.py'}:{line_of(pack / 'templates.py', 'How many seats does room')}"
    assert "'capacity'" in message and "never mentions" in message
    assert "{capacity}" in fix


def test_a_state_template_whose_gold_changes_nothing(tmp_path):
    templates = plant(TEMPLATES, '''    call("book_room", room_id=slots["room_id"], employee_id=employee["id"])''',
                      '''    call("get_room", room_id=slots["room_id"])''')
    pack = make_pack(tmp_path, templates=templates)
    result = check(tmp_path)
    assert result.returncode == 1
    severity, where, message, fix = finding(result.stdout, "state.no_change")
    assert severity == "error" and "changed nothing" in message
    assert where == f"{pack / 'templates.py'}:{line_of(pack / 'templates.py', 'answer=None, state=True')}"
    assert 'state="unchanged"' in fix


def test_a_template_that_writes_but_does_not_judge_state(tmp_path):
    templates = plant(TEMPLATES, '''@template(query="Book room {room_id} for {name}.", answer=None, state=True,
          state_fields={"rooms": ["booked_by"]})''', '''@template(query="Book room {room_id} for {name} and tell me its seats.",
          answer="number")''')
    templates = plant(templates, '''    call("book_room", room_id=slots["room_id"], employee_id=employee["id"])''',
                      '''    call("book_room", room_id=slots["room_id"], employee_id=employee["id"])
    return call("get_room", room_id=slots["room_id"])["seats"]''')
    pack = make_pack(tmp_path, templates=templates)
    result = check(tmp_path)
    assert result.returncode == 1
    severity, where, message, fix = finding(result.stdout, "state.unjudged")
    assert severity == "error" and "rooms" in message and "state=False" in message
    assert where == f"{pack / 'templates.py'}:{line_of(pack / 'templates.py', 'and tell me its seats')}"
    assert "state=True" in fix


@pytest.mark.parametrize(("fields", "code", "named", "hint"), [
    ('{"rooms": ["booked"]}', "state_fields.field", "'booked'", "did you mean 'booked_by'?"),
    ('{"room": ["booked_by"]}', "state_fields.table", "'room'", "did you mean 'rooms'?"),
])
def test_a_typo_in_state_fields(tmp_path, fields, code, named, hint):
    templates = plant(TEMPLATES, 'state_fields={"rooms": ["booked_by"]})', f"state_fields={fields})")
    pack = make_pack(tmp_path, templates=templates)
    result = check(tmp_path)
    assert result.returncode == 1
    severity, where, message, fix = finding(result.stdout, code)
    assert severity == "error" and named in message
    assert where == f"{pack / 'templates.py'}:{line_of(pack / 'templates.py', 'state_fields=')}"
    assert fix == hint


def test_a_number_answer_whose_gold_is_text(tmp_path):
    templates = plant(TEMPLATES, '@template(query="Which team is {name} in?", answer="text")',
                      '@template(query="Which team is {name} in?",\n          answer="number")')
    pack = make_pack(tmp_path, templates=templates)
    result = check(tmp_path)
    assert result.returncode == 1
    severity, where, message, fix = finding(result.stdout, "answer.type")
    assert severity == "error" and "cannot be read as a number" in message
    assert where == f"{pack / 'templates.py'}:{line_of(pack / 'templates.py', 'answer=' + chr(34) + 'number')}"
    assert "answer type" in fix


def test_a_sampler_that_draws_with_the_random_module(tmp_path):
    templates = plant(TEMPLATES, 'from collections import Counter\n', 'import random\nfrom collections import Counter\n')
    templates = plant(templates, '''    return {"room_id": rng.choice(data.rows("rooms"))["id"]}''',
                      '''    return {"room_id": random.choice(data.rows("rooms"))["id"]}''')
    pack = make_pack(tmp_path, templates=templates)
    result = check(tmp_path)
    assert result.returncode == 1
    severity, where, message, fix = finding(result.stdout, "sampler.global_random")
    assert severity == "error" and "same seed" in message
    assert where == f"{pack / 'templates.py'}:{line_of(pack / 'templates.py', 'random.choice(data.rows')}"
    assert "rng" in fix


def test_a_sampler_that_is_not_reproducible_for_other_reasons(tmp_path):
    templates = plant(TEMPLATES, '''    return {"room_id": rng.choice(data.rows("rooms"))["id"]}''',
                      '''    rooms = data.rows("rooms")
    _draws.append(1)  # a counter: each call draws another room, whatever the seed
    return {"room_id": rooms[len(_draws) % len(rooms)]["id"]}''')
    templates = plant(templates, "from collections import Counter\n", "from collections import Counter\n_draws = []\n")
    make_pack(tmp_path, templates=templates)
    result = check(tmp_path)
    assert result.returncode == 1
    severity, _, message, fix = finding(result.stdout, "sampler.nondeterministic")
    assert severity == "error" and "different slots for the same seed" in message and "rng" in fix


def test_a_sampler_that_depends_on_the_order_of_a_set(tmp_path):
    """Reproducible within one process, not across two: a set of strings is ordered by their hashes,
    which Python seeds anew in each process. Only another process shows it."""
    templates = plant(TEMPLATES, '''    return {"room_id": rng.choice(data.rows("rooms"))["id"]}''',
                      '''    ids = list({row["id"] for row in data.rows("rooms")})
    return {"room_id": rng.choice(ids)}''')
    make_pack(tmp_path, templates=templates)
    result = check(tmp_path)
    assert result.returncode == 1
    severity, _, message, fix = finding(result.stdout, "sampler.hash_order")
    assert severity == "error" and "in another Python process" in message and "sorted(" in fix
    assert "sampler.nondeterministic" not in result.stdout  # the same in one process: not that finding


def test_a_sampler_that_sorts_the_set_passes(tmp_path):
    templates = plant(TEMPLATES, '''    return {"room_id": rng.choice(data.rows("rooms"))["id"]}''',
                      '''    ids = sorted({row["id"] for row in data.rows("rooms")})
    return {"room_id": rng.choice(ids)}''')
    make_pack(tmp_path, templates=templates)
    result = check(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "sampler." not in result.stdout


def test_a_tool_that_writes_without_changes_state(tmp_path):
    pack = make_pack(tmp_path, tools=plant(TOOLS, "@tool(changes_state=True)\ndef book_room", "@tool\ndef book_room"))
    result = check(tmp_path)
    assert result.returncode == 1
    severity, where, message, fix = finding(result.stdout, "tool.undeclared_write")
    assert severity == "error" and "'book_room'" in message and "update rooms" in message
    assert where == f"{pack / 'tools.py'}:{line_of(pack / 'tools.py', 'def book_room') - 1}"  # the @tool line
    assert fix == "mark it @tool(changes_state=True)"


def test_a_gold_lookup_that_matches_several_rows(tmp_path):
    """`[0]` of rows that nothing in the call tells apart is a warning; `call.one` makes it an error."""
    templates = plant(TEMPLATES, '''    return {"name": rng.choice(_unique_names(data))}


@employee_team.gold
def _(slots, call):
    return call.one("find_employees", name=slots["name"])["team"]''', '''    return {"name": rng.choice(["Ada Moss", "Ben Nash"])}


@employee_team.gold
def _(slots, call):
    return call("find_employees", name=slots["name"])[0]["team"]''')
    pack = make_pack(tmp_path, templates=templates)
    result = check(tmp_path)
    severity, where, message, fix = finding(result.stdout, "gold.ambiguous_row")
    assert severity == "warning" and result.returncode == 0  # a judgement call: printed, not failed
    assert where == f"{pack / 'templates.py'}:{line_of(pack / 'templates.py', ')[0][' + chr(34) + 'team')}"
    assert "row 1 of the 2 rows find_employees(name='Ada Moss')" in message and "ambiguous" in message
    assert "call.one(" in fix and "call.first(" in fix
    assert "(2 warnings)" in result.stdout  # and the two names make a narrow template

    make_pack(tmp_path, templates=templates.replace('call("find_employees", name=slots["name"])[0]',
                                                    'call.one("find_employees", name=slots["name"])'))
    result = check(tmp_path)
    assert result.returncode == 1
    assert "call.one: find_employees(name='Ada Moss') matched 2 rows where the task expects exactly one" \
        in result.stdout


def test_pack_show_counts_the_rows_of_list_results(tmp_path):
    make_pack(tmp_path)
    result = lamsim("pack", "show", str(tmp_path / "tools" / "office"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"gold:   find_employees\(name=\"[^\"]+\"\) -> \[1 row\] \[", result.stdout)
    assert "employee_team  [text]" in result.stdout
    assert "book  [no answer (action only), judged on final state]" in result.stdout


def test_a_long_gold_result_names_the_call_and_the_slots(tmp_path):
    tools = TOOLS + '''

@tool
def room_log(sb: Sandbox, room_id: str) -> str:
    """The booking log of a room."""
    return "booked; " * 1000
'''
    templates = TEMPLATES + '''

@template(query="What does the log of room {room_id} say?", answer="text")
def room_log_text(data, rng):
    return {"room_id": rng.choice(data.rows("rooms"))["id"]}


@room_log_text.gold
def _(slots, call):
    return call("room_log", room_id=slots["room_id"])[:20]
'''
    pack = make_pack(tmp_path, tools=tools, templates=templates)
    result = check(tmp_path)
    severity, where, message, fix = finding(result.stdout, "gold.long_result")
    assert severity == "warning" and result.returncode == 0
    assert re.search(r'room_log\(room_id="R-\d+"\): 8000 characters \(slots \{"room_id": "R-\d+"\}\)', message)
    assert where == f"{pack / 'templates.py'}:{line_of(pack / 'templates.py', '@room_log_text.gold')}"
    assert "budget.observation_chars" in fix


def test_schema_keywords_that_are_not_valid_json_schema_fail_at_load(tmp_path):
    tools = plant(TOOLS, "from lamsim_tui.packs import Sandbox, ToolError, tool",
                  "from typing import Annotated\nfrom lamsim_tui.packs import Sandbox, Schema, ToolError, tool")
    tools = plant(tools, "def get_room(sb: Sandbox, room_id: str) -> dict:",
                  'def get_room(sb: Sandbox, room_id: Annotated[str, Schema(pattern="R-[")]) -> dict:')
    pack = make_pack(tmp_path, tools=tools)
    result = check(tmp_path)
    assert result.returncode == 2
    assert f"{pack / 'tools.py'}:{line_of(pack / 'tools.py', 'def get_room') - 1}" in result.stderr
    assert "tool 'get_room': invalid JSON schema" in result.stderr and "pattern" in result.stderr
