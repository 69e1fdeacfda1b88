"""Session files: a user's mistakes get one clear message naming file, line and key."""

import pytest
from packkit import lamsim, write_pack, write_session

from lamsim_tui.errors import ConfigError
from lamsim_tui.session.config import load_session


def test_pilot_session_loads_with_documented_defaults():
    from packkit import ROOT

    session = load_session(ROOT / "sessions" / "pilot.yaml")
    assert session.pack == "crm"
    assert session.pack_dir() == ROOT / "tools" / "crm"
    assert session.agent.kind in ("scripted", "embedded")
    assert session.budget.steps >= 5
    assert session.store_dir() == ROOT / "stores" / "pilot"


def test_mistyped_key_names_file_line_key_and_suggestion(tmp_path):
    path = write_session(tmp_path, """\
        pack: mini
        tasks: 5
        budget:
          stpes: 4
        """)
    with pytest.raises(ConfigError) as info:
        load_session(path)
    text = str(info.value)
    assert f"{path}:4" in text
    assert "budget.stpes" in text and "unknown key" in text
    assert "did you mean 'steps'" in text


def test_wrong_type_and_bad_choice_are_explained(tmp_path):
    path = write_session(tmp_path, "pack: mini\ntasks: many\n")
    with pytest.raises(ConfigError, match=r"s.yaml:2: tasks: expected an integer, got the string 'many'"):
        load_session(path)
    path = write_session(tmp_path, "pack: mini\nagent:\n  kind: scriptd\n")
    with pytest.raises(ConfigError) as info:
        load_session(path)
    assert ":3:" in str(info.value) and "did you mean 'scripted'" in str(info.value)


def test_bounds_duplicates_and_syntax_errors(tmp_path):
    path = write_session(tmp_path, "pack: mini\nconcurrency: 0\n")
    with pytest.raises(ConfigError, match="concurrency: must be at least 1"):
        load_session(path)
    path = write_session(tmp_path, "pack: mini\nseed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match=r":3: duplicate key 'seed' \(first at line 2\)"):
        load_session(path)
    path = write_session(tmp_path, "pack: mini\nbudget: {steps: 3\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_session(path)
    path = write_session(tmp_path, "pack: mini\nfeedback:\n  disable: [loop.repaet]\n")
    with pytest.raises(ConfigError, match="unknown feedback code 'loop.repaet'.*'loop.repeat'"):
        load_session(path)


def test_cli_reports_user_mistakes_in_one_message_without_traceback(tmp_path):
    write_pack(tmp_path)
    bad = write_session(tmp_path, "pack: mini\ntemplates: [item_colour]\ntaks: 3\n")
    result = lamsim("check", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:3" in result.stderr and "did you mean 'tasks'" in result.stderr

    missing_pack = write_session(tmp_path, "pack: nosuchpack\n", name="m.yaml")
    result = lamsim("check", str(missing_pack))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "tool pack not found" in result.stderr and "mini" in result.stderr  # lists the packs there

    result = lamsim("check", str(tmp_path / "sessions" / "nope.yaml"))
    assert result.returncode == 2 and "session file not found" in result.stderr
    assert "s.yaml" in result.stderr  # offers the sessions that do exist


def test_unknown_template_in_session_is_named(tmp_path):
    write_pack(tmp_path)
    path = write_session(tmp_path, "pack: mini\ntemplates: [item_color]\n")
    result = lamsim("check", str(path))
    assert result.returncode == 2
    assert "no template 'item_color'" in result.stderr and "did you mean 'item_colour'" in result.stderr
