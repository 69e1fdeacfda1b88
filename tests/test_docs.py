"""The documented contracts match the code they describe."""

import re

from packkit import ROOT

from lamsim_tui.session.config import session_schema_markdown
from lamsim_tui.simulator.feedback import CODES, code_table_markdown


def _generated(path):
    text = (ROOT / path).read_text()
    match = re.search(r"<!-- generated: begin -->\n(.*?)\n<!-- generated: end -->", text, re.S)
    assert match, f"{path} lost its generated section"
    return match.group(1)


def test_session_and_feedback_tables_are_current():
    hint = "run scripts/gen-docs"
    assert _generated("docs/sessions.md") == session_schema_markdown(), hint
    assert _generated("docs/feedback.md") == code_table_markdown(), hint


def test_every_feedback_code_is_documented():
    table = _generated("docs/feedback.md")
    for code in CODES:
        assert f"`{code}`" in table


def test_readme_quick_start_has_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "scripts/setup && .venv/bin/lamsim" in readme
    assert "scripts/setup --test && .venv/bin/python -m pytest" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/setup --test" in ci and ".venv/bin/python -m pytest" in ci
