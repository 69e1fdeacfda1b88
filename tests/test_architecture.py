"""The layout described in docs/architecture.md and the record described in docs/record.md are the real ones."""

import re

from packkit import ROOT

from lamsim_tui.record import record_markdown


def test_every_module_the_architecture_names_exists():
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = re.findall(r"`(lamsim_tui/[\w/]+\.py)`", text)
    assert len(named) >= 20, "docs/architecture.md names the module of each stage"
    missing = [path for path in named if not (ROOT / path).is_file()]
    assert not missing, f"docs/architecture.md names modules that are gone: {missing}"


def test_the_record_tables_are_generated_from_the_record_type():
    text = (ROOT / "docs" / "record.md").read_text()
    match = re.search(r"<!-- generated: begin -->\n(.*?)\n<!-- generated: end -->", text, re.S)
    assert match, "docs/record.md lost its generated section"
    assert match.group(1) == record_markdown(), "run scripts/gen-docs"
