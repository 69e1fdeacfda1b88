"""Untrusted text on the terminal, YAML that is legal but unusual, and settings that are accepted
but would have been wrong silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from packkit import MINI_TOOLS, ROOT, lamsim, write_pack, write_session

from lamsim_tui.errors import ConfigError
from lamsim_tui.session.config import load_session
from lamsim_tui.session.yamlload import parse_yaml
from lamsim_tui.text import plain, visible

INVISIBLE = ["\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200b", "\u200c", "\u200d", "\u200e",
             "\u200f", "\u2060", "\ufeff", "\u2028", "\u2029", "\u061c", "\U000e0041"]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_bidi_and_zero_width_characters_are_shown_as_escapes(char):
    shown = visible(f"pay {char}evil{char} now")
    assert char not in shown and shown.startswith("pay \\") and "evil" in shown
    assert char not in plain({"note": char})


def test_ordinary_text_in_any_script_is_left_as_it_is():
    text = "Grüße, 日本語, עברית, العربية, emoji 🙂, tab\tand newline\n"
    assert visible(text) == text.replace("\t", "    ")


HOSTILE_ID = "tmpl\x1b]0;owned\x07\u202egnp.exe"
TEMPLATES = f'''
from lamsim_tui.packs import template


@template(id={HOSTILE_ID!r}, query="What colour is item {{item_id}}? \\x1b]52;c;ZWNobyBoaQ==\\x07\u200b", answer="text")
def colour(data, rng):
    return {{"item_id": rng.choice(data.rows("items"))["id"]}}


@colour.gold
def _(slots, call):
    return call("get_item", item_id=slots["item_id"])["colour"]
'''


def test_check_run_and_stats_never_print_a_packs_escapes_or_bidi_characters_raw(tmp_path):
    write_pack(tmp_path, tools=MINI_TOOLS, templates=TEMPLATES)
    write_session(tmp_path, "pack: mini\ntasks: 3\nagent:\n  kind: scripted\nstore: store\n")
    outputs = [lamsim("check", "sessions/s.yaml", cwd=tmp_path),
               lamsim("run", "sessions/s.yaml", "--headless", cwd=tmp_path),
               lamsim("stats", "--store", "store", cwd=tmp_path),
               lamsim("review", "--store", "store", "list", cwd=tmp_path)]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        text = result.stdout + result.stderr
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text and "\u200b" not in text
    assert "\\x1b]0;owned" in outputs[0].stdout and "\\u202e" in outputs[2].stdout


def test_a_merge_key_is_yaml_and_its_keys_may_be_overridden(tmp_path):
    write_pack(tmp_path)
    path = write_session(tmp_path, """\
        pack: mini
        agent:
          kind: model
          models:
            - &local {model: openai/a, api_base: "http://127.0.0.1:1/v1", timeout: 5, weight: 2}
            - <<: *local
              model: openai/b
        """)
    first, second = load_session(path).agent.models
    assert (second.model, second.timeout, second.weight, second.api_base) == ("openai/b", 5, 2, first.api_base)
    located = parse_yaml("base: &b {steps: 4, seconds: 30}\nbudget:\n  <<: *b\n  steps: 6\n", path)
    assert located.data["budget"] == {"steps": 6, "seconds": 30}
    assert located.where(("budget", "steps")) == f"{path}:4" and located.where(("budget", "seconds")) == f"{path}:1"
    several = parse_yaml("a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n", path)
    assert several.data["c"] == {"x": 1, "y": 2, "z": 3}
    with pytest.raises(ConfigError, match="duplicate key 'z'"):  # the mapping's own keys still may not repeat
        parse_yaml("a: &a {x: 1}\nc:\n  <<: *a\n  z: 3\n  z: 4\n", path)


def test_aliases_within_reason_are_fine(tmp_path):
    text = "models: &m [1, 2, 3]\n" + "".join(f"k{i}: *m\n" for i in range(200))
    assert parse_yaml(text, tmp_path / "x.yaml").data["k199"] == [1, 2, 3]


BOMB = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (400 << 20, 400 << 20))
from lamsim_tui.errors import ConfigError
from lamsim_tui.session.config import load_session
started = time.perf_counter()
try:
    load_session(sys.argv[1])
except ConfigError as exc:
    print(f"{time.perf_counter() - started:.3f}", exc)
"""


def test_a_600_byte_alias_bomb_is_refused_at_once_under_a_400_mb_memory_cap(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("pack: mini\n" + "\n".join(lines) + "\n")
    assert path.stat().st_size < 800
    result = subprocess.run([sys.executable, "-c", BOMB, str(path)], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    seconds, message = result.stdout.split(" ", 1)
    assert float(seconds) < 1.0 and "alias" in message and str(path) in message


def test_asking_for_more_tasks_than_the_templates_have_says_so(tmp_path):
    write_pack(tmp_path)
    write_session(tmp_path, "pack: mini\ntasks: 1000000\nagent:\n  kind: scripted\nstore: store\n")
    started = time.monotonic()
    result = lamsim("run", "sessions/s.yaml", "--headless", "--json", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "of the 1000000 tasks asked for could be made" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["tasks"] < summary["tasks_requested"] == 1000000
    assert time.monotonic() - started < 120
