"""The documented contracts match the code they describe."""

import re

from packkit import ROOT

from lamsim_tui.session.config import session_schema_markdown
from lamsim_tui.simulator.feedback import code_table_markdown


def _generated(path):
    text = (ROOT / path).read_text()
    match = re.search(r"<!-- generated: begin -->\n(.*?)\n<!-- generated: end -->", text, re.S)
    assert match, f"{path} lost its generated section"
    return match.group(1)


def test_session_and_feedback_tables_are_current():
    # Regenerated from the code and compared with the committed docs: fails when the code changes
    # without scripts/gen-docs. (The feedback table and CODES come from one list, and `finding`
    # refuses codes outside it, so there is no separate "every code is documented" check.)
    hint = "run scripts/gen-docs"
    assert _generated("docs/sessions.md") == session_schema_markdown(), hint
    assert _generated("docs/feedback.md") == code_table_markdown(), hint


def test_readme_quick_start_has_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "scripts/setup && .venv/bin/lamsim" in readme
    assert "scripts/setup --test && .venv/bin/python -m pytest" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/setup --test" in ci and ".venv/bin/python -m pytest" in ci
