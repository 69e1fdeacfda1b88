"""`lamsim pack new` and `lamsim pack show`, run as a user runs them: the real CLI in a temp project."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys
from pathlib import Path

import pytest

LAMSIM = str(Path(sys.executable).parent / "lamsim")


def lamsim(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LAMSIM, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("project")
    done = lamsim(root, "pack", "new", "shop")
    assert done.returncode == 0, done.stderr
    return root


def test_new_writes_a_pack_and_a_session(project):
    pack = project / "tools" / "shop"
    for name in ("pack.yaml", "tools.py", "templates.py", "generate_data.py", "README.md", "data/items.json"):
        assert (pack / name).is_file(), name
    session = (project / "sessions" / "shop.yaml").read_text()
    assert "pack: shop\n" in session and "kind: scripted" in session
    items = json.loads((pack / "data" / "items.json").read_text())
    assert len(items) == 24 and len({i["id"] for i in items}) == 24


def test_scaffold_passes_check_as_written(project):
    done = lamsim(project, "check", "sessions/shop.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all 1 template passed" in done.stdout
    assert "warning" not in done.stdout  # not narrow, not slow


def test_generator_reproduces_the_seed_data(project, tmp_path):
    pack = project / "tools" / "shop"
    subprocess.run([sys.executable, str(pack / "generate_data.py"), str(tmp_path)], check=True, capture_output=True)
    assert filecmp.cmp(pack / "data" / "items.json", tmp_path / "items.json", shallow=False)


def test_scaffold_runs_headless_and_stores_trajectories(project):
    done = lamsim(project, "run", "sessions/shop.yaml", "--headless", "--agent", "scripted", "--seed", "3",
                  "--store", "stores/shop", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["episodes"] == 10 and summary["success_rate"] >= 0.8
    from lamsim_tui.store import open_store

    with open_store(project / "stores" / "shop", readonly=True) as store:
        assert store.count() == 10


def test_new_refuses_to_overwrite(project):
    before = (project / "tools" / "shop" / "tools.py").read_text()
    done = lamsim(project, "pack", "new", "shop")
    assert done.returncode == 2
    assert "tools/shop already exists" in done.stderr and "Traceback" not in done.stderr
    assert (project / "tools" / "shop" / "tools.py").read_text() == before


def test_new_refuses_bad_names_and_existing_sessions(tmp_path):
    done = lamsim(tmp_path, "pack", "new", "9 lives")
    assert done.returncode == 2 and "invalid pack name '9 lives'" in done.stderr
    (tmp_path / "sessions").mkdir()
    (tmp_path / "sessions" / "pilot.yaml").write_text("pack: crm\n")
    done = lamsim(tmp_path, "pack", "new", "pilot")
    assert done.returncode == 2 and "sessions/pilot.yaml already exists" in done.stderr
    assert not (tmp_path / "tools" / "pilot").exists()


def test_new_in_another_folder_links_the_session_by_path(tmp_path):
    done = lamsim(tmp_path, "pack", "new", "kit", "--dir", "packs")
    assert done.returncode == 0, done.stderr
    assert "pack: ../packs/kit\n" in (tmp_path / "sessions" / "kit.yaml").read_text()
    done = lamsim(tmp_path, "check", "sessions/kit.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_show_prints_what_the_agent_sees_and_a_task_per_template(project):
    done = lamsim(project, "pack", "show", "shop")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "- get_item(item_id: string): Get one item of the inventory" in out
    assert '"required": ["item_id"]' in out
    assert "item_stock  [number]" in out
    assert "    query:  How many units of item IT-" in out
    assert '    gold:   get_item(item_id="IT-' in out
    assert "    answer: " in out


def test_show_json_is_machine_readable(project):
    done = lamsim(project, "pack", "show", "tools/shop", "--json", "--seed", "4")
    data = json.loads(done.stdout)
    assert data["pack"] == "shop"
    assert [t["function"]["name"] for t in data["tools"]] == ["get_item"]
    (task,) = data["tasks"]
    assert task["template"] == "item_stock" and task["answer_type"] == "number"
    item_id = task["slots"]["item_id"]
    items = {i["id"]: i for i in json.loads((project / "tools/shop/data/items.json").read_text())}
    assert task["gold_answer"] == items[item_id]["stock"]
    assert task["gold_calls"] == [{"tool": "get_item", "arguments": {"item_id": item_id}, "result": items[item_id]}]


def test_show_reports_a_broken_template(project, tmp_path):
    import shutil

    pack = tmp_path / "shop"
    shutil.copytree(project / "tools" / "shop", pack)
    with (pack / "templates.py").open("a") as f:
        f.write('\n\n@template(query="Price of {item_id}?", answer="number")\ndef price(data, rng):\n'
                '    return {"item_id": "IT-001"}\n\n\n@price.gold\ndef _(slots, call):\n'
                '    return call("get_item", item_id=slots["item_id"])["cost"]\n')
    done = lamsim(tmp_path, "pack", "show", str(pack))
    assert done.returncode == 1
    assert "price  [number]" in done.stdout and "FAIL" in done.stdout and "KeyError: 'cost'" in done.stdout
    assert "1 template(s) failed" in done.stdout


def test_show_unknown_pack_and_bare_pack_command(tmp_path):
    done = lamsim(tmp_path, "pack", "show", "nosuch")
    assert done.returncode == 2 and "tool pack not found" in done.stderr and "Traceback" not in done.stderr
    done = lamsim(tmp_path, "pack")
    assert done.returncode == 2 and "new" in done.stderr and "from-openapi" in done.stderr
