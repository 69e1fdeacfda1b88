"""The hostile-inputs corpus: malformed sessions, packs, seed data, themes, and pack code that hangs,
exits or forks — each run through the real CLI in a subprocess, as a user would meet it.

For every case lamsim must give one message naming the file (and line where there is one), exit
non-zero, print no traceback, finish within the case's limit (under a memory cap), and leave the
store it was pointed at exactly as it was. `run_case` checks all five and returns them as a row;
`python tests/test_hostile.py` prints the totals in the columns of issue 15.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from packkit import MINI_TEMPLATES, MINI_TOOLS, ROOT, write_pack, write_session

MEMORY_CAP = 3 << 30  # bytes of address space per case (the alias bomb ran into a 3 GB cap)

SESSION = """\
pack: mini
seed: 3
tasks: 6
agent:
  kind: scripted
budget:
  tool_seconds: 0.5
store: store
"""


@dataclass
class Case:
    id: str
    kind: str  # session | pack | seed | code | theme | flag | store
    files: dict[str, str | bytes] = field(default_factory=dict)  # relative to the project root
    commands: tuple[tuple[str, ...], ...] = (("run", "sessions/s.yaml", "--headless"),)
    names: str = "sessions/s.yaml"  # the file the message must name
    line: int | None = None  # ... and its line, where there is one
    limit: float = 60.0  # seconds, the whole case
    contains: str | None = None  # a phrase the message must hold


@dataclass
class Row:
    case: str
    kind: str
    message: bool
    nonzero: bool
    no_traceback: bool
    no_hang: bool
    no_loss: bool
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.message and self.nonzero and self.no_traceback and self.no_hang and self.no_loss


def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _session(extra: str = "", **replace: str) -> str:
    text = SESSION
    for key, value in replace.items():
        text = "\n".join(f"{key}: {value}" if line.startswith(f"{key}:") else line for line in text.splitlines()) + "\n"
    return text + textwrap.dedent(extra)


def _templates(sampler: str = 'return {"item_id": rng.choice(data.rows("items"))["id"]}',
               gold: str = 'return call("get_item", item_id=slots["item_id"])["colour"]',
               query: str = "What colour is item {item_id}?", header: str = "", extra: str = "") -> str:
    return (f"from lamsim_tui.packs import template\n{header}\n\n"
            f"@template(query={query!r}, answer=\"text\"{extra})\n"
            f"def only(data, rng):\n    {sampler}\n\n\n"
            f"@only.gold\ndef _(slots, call):\n    {gold}\n")


def _tool(body: str, header: str = "") -> str:
    return (MINI_TOOLS + f"\n{header}\n\n@tool\ndef bad(sb: Sandbox, item_id: str) -> dict:\n"
            f'    """A tool that misbehaves.\n\n    Args:\n        item_id: Item id.\n    """\n    {body}\n')


def _code(body: str, header: str = "", line: int | None = None, contains: str | None = None) -> dict:
    """A pack whose only template's gold program calls a misbehaving tool: `check` and `run` meet it."""
    return dict(files={"tools/mini/tools.py": _tool(body, header),
                       "tools/mini/templates.py": _templates(gold='return call("bad", item_id=slots["item_id"])')},
                commands=(("check", "sessions/s.yaml"), ("run", "sessions/s.yaml", "--headless")),
                names="tools/mini/templates.py", line=line, contains=contains)


def _gold_api(body: str, gold: str, decorator: str = "@tool", templates: str | None = None,
              contains: str | None = None) -> dict:
    """A misbehaving tool reached through the gold API of issues 12/13 (`call.one`, `call.attempt`,
    `call.expect_error`, a hand-off tool), or a fixed task's own gold program (``templates``)."""
    tools = (MINI_TOOLS + f"\n\n{decorator}\ndef bad(sb: Sandbox, item_id: str) -> dict:\n"
             f'    """A tool that misbehaves.\n\n    Args:\n        item_id: Item id.\n    """\n    {body}\n')
    return dict(files={"tools/mini/tools.py": tools, "tools/mini/templates.py": templates or _templates(gold=gold)},
                commands=(("check", "sessions/s.yaml"), ("run", "sessions/s.yaml", "--headless")),
                names="tools/mini/templates.py", contains=contains)


FIXED_TASK_HANGS = """from lamsim_tui.packs.authoring import fixed_task


@fixed_task(query="What colour is item I-01?")
def stuck(call):
    call("get_item", item_id="I-01")
    while True:
        pass
"""


def _template_code(line: int | None = None, contains: str | None = None, **kw: str) -> dict:
    return dict(files={"tools/mini/templates.py": _templates(**kw)},
                commands=(("check", "sessions/s.yaml"), ("run", "sessions/s.yaml", "--headless")),
                names="tools/mini/templates.py", line=line, contains=contains)


def _manifest(text: str) -> dict:
    return dict(files={"tools/mini/pack.yaml": text}, names="tools/mini/pack.yaml")


GOOD_MANIFEST = ('name: mini\ndescription: A tiny pack.\nnow: "2026-03-01T09:00:00"\n'
                 "tables:\n  items: {file: data/items.json, key: id}\n")


def _seed(data: str | bytes, line: int | None = None, contains: str | None = None) -> dict:
    return dict(files={"tools/mini/data/items.json": data}, names="tools/mini/data/items.json", line=line,
                contains=contains)


def _theme(text: str | bytes, line: int | None = None, contains: str | None = None) -> dict:
    return dict(files={"themes/bad.yaml": text}, commands=(("theme", "themes/bad.yaml"),),
                names="themes/bad.yaml", line=line, contains=contains)


def _flags(*flags: str, contains: str | None = None) -> dict:
    return dict(commands=(("run", "sessions/s.yaml", "--headless", *flags),), names=flags[0], contains=contains)


CASES: list[Case] = [
    # ----- sessions: YAML itself
    Case("session-alias-bomb-9", "session", {"sessions/s.yaml": SESSION + _bomb(9)}, contains="alias"),
    Case("session-alias-bomb-6", "session", {"sessions/s.yaml": SESSION + _bomb(6)}, contains="alias"),
    Case("session-recursive-anchor-list", "session", {"sessions/s.yaml": SESSION + "x: &x [1, *x]\n"}, line=9,
         contains="recursive"),
    Case("session-recursive-anchor-map", "session", {"sessions/s.yaml": SESSION + "x: &x {a: *x}\n"}, line=9,
         contains="recursive"),
    Case("session-nul-byte", "session", {"sessions/s.yaml": SESSION.replace("tasks: 6", "tasks: 6\x00")}, line=3,
         contains="NUL"),
    Case("session-nul-escaped-in-pack", "session", {"sessions/s.yaml": _session(pack='"mi\\0ni"')}, line=1,
         contains="NUL"),
    Case("session-nul-escaped-in-store", "session", {"sessions/s.yaml": _session(store='"st\\0re"')}, line=8,
         contains="NUL"),
    Case("session-not-utf8", "session", {"sessions/s.yaml": SESSION.encode() + b"description: caf\xe9\n"}, line=9,
         contains="UTF-8"),
    Case("session-5000-digit-int", "session", {"sessions/s.yaml": _session(seed="9" * 5000)}, line=2,
         contains="digits"),
    Case("session-huge-int-tasks", "session", {"sessions/s.yaml": _session(tasks="1" + "0" * 40)}, line=3),
    Case("session-huge-seed", "session", {"sessions/s.yaml": _session(seed="1" + "0" * 30)}, line=2,
         contains="too large"),
    Case("session-5000-nested-brackets", "session",
         {"sessions/s.yaml": SESSION + "x: " + "[" * 5000 + "]" * 5000 + "\n"}, line=9, contains="nested"),
    Case("session-5000-nested-maps", "session",
         {"sessions/s.yaml": SESSION + "x: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n"}, line=9, contains="nested"),
    Case("session-deep-block-nesting", "session",
         {"sessions/s.yaml": SESSION + "".join("  " * i + f"k{i}:\n" for i in range(150)) + "  " * 150 + "v: 1\n"},
         contains="nested"),
    Case("session-duplicate-key", "session", {"sessions/s.yaml": SESSION + "seed: 4\n"}, line=9, contains="duplicate"),
    Case("session-duplicate-nested-key", "session",
         {"sessions/s.yaml": SESSION.replace("  kind: scripted", "  kind: scripted\n  kind: model")}, line=6,
         contains="duplicate"),
    Case("session-merge-key-duplicate-inside", "session",
         {"sessions/s.yaml": SESSION + "base: &b {steps: 3}\nbudget2:\n  <<: *b\n  steps: 4\n  steps: 5\n"},
         line=13, contains="duplicate"),
    Case("session-syntax-error", "session", {"sessions/s.yaml": SESSION + "budget: [unclosed\n"}, line=10),
    Case("session-tab-indent", "session", {"sessions/s.yaml": SESSION + "filters:\n\trequire_success: true\n"},
         line=10),
    Case("session-python-tag", "session", {"sessions/s.yaml": SESSION + "x: !!python/object/apply:os.system [id]\n"},
         line=9),
    Case("session-not-a-mapping", "session", {"sessions/s.yaml": "- just\n- a list\n"}, line=1),
    Case("session-empty-file", "session", {"sessions/s.yaml": ""}),
    Case("session-only-comment", "session", {"sessions/s.yaml": "# nothing\n"}),
    Case("session-binary-junk", "session", {"sessions/s.yaml": bytes(range(256)) * 4}),
    Case("session-is-a-directory", "session", {"sessions/s.yaml/keep": "x"}),
    Case("session-missing", "session", {}, commands=(("run", "sessions/nope.yaml", "--headless"),),
         names="sessions/nope.yaml"),
    Case("session-complex-key", "session", {"sessions/s.yaml": SESSION + "? [a, b]\n: 1\n"}, line=9),
    Case("session-unhashable-key", "session", {"sessions/s.yaml": SESSION + "? {a: 1}\n: 1\n"}, line=9),
    Case("session-anchor-to-undefined", "session", {"sessions/s.yaml": SESSION + "x: *nothing\n"}, line=9),
    Case("session-two-documents", "session", {"sessions/s.yaml": SESSION + "---\npack: other\n"}),
    Case("session-huge-string-value", "session", {"sessions/s.yaml": _session(pack="x" * 2_000_000)}, line=1),
    # ----- sessions: values
    Case("session-unknown-key", "session", {"sessions/s.yaml": SESSION + "taks: 5\n"}, line=9, contains="taks"),
    Case("session-nan-seconds", "session",
         {"sessions/s.yaml": SESSION.replace("  tool_seconds: 0.5", "  tool_seconds: 0.5\n  seconds: .nan")},
         line=8, contains="finite"),
    Case("session-inf-tool-seconds", "session",
         {"sessions/s.yaml": SESSION.replace("tool_seconds: 0.5", "tool_seconds: .inf")}, line=7, contains="finite"),
    Case("session-negative-inf-seconds", "session",
         {"sessions/s.yaml": SESSION.replace("tool_seconds: 0.5", "tool_seconds: -.inf")}, line=7),
    Case("session-negative-tasks", "session", {"sessions/s.yaml": _session(tasks="-5")}, line=3),
    Case("session-zero-tasks", "session", {"sessions/s.yaml": _session(tasks="0")}, line=3),
    Case("session-tasks-too-many", "session", {"sessions/s.yaml": _session(tasks="1000001")}, line=3),
    Case("session-tasks-string", "session", {"sessions/s.yaml": _session(tasks='"six"')}, line=3),
    Case("session-tasks-float", "session", {"sessions/s.yaml": _session(tasks="6.5")}, line=3),
    Case("session-tasks-bool", "session", {"sessions/s.yaml": _session(tasks="yes")}, line=3),
    Case("session-concurrency-zero", "session", {"sessions/s.yaml": SESSION + "concurrency: 0\n"}, line=9),
    Case("session-concurrency-negative", "session", {"sessions/s.yaml": SESSION + "concurrency: -1\n"}, line=9),
    Case("session-steps-zero", "session", {"sessions/s.yaml": SESSION.replace("  tool_seconds: 0.5",
                                                                               "  tool_seconds: 0.5\n  steps: 0")},
         line=8),
    Case("session-negative-template-weight", "session",
         {"sessions/s.yaml": SESSION + "templates: {item_colour: -1, paint: 1}\n"}, line=9, contains="weight"),
    Case("session-nan-template-weight", "session",
         {"sessions/s.yaml": SESSION + "templates: {item_colour: .nan, paint: 1}\n"}, line=9, contains="finite"),
    Case("session-all-zero-template-weights", "session",
         {"sessions/s.yaml": SESSION + "templates: {item_colour: 0, paint: 0}\n"}, line=9, contains="weight 0"),
    Case("session-empty-template-list", "session", {"sessions/s.yaml": SESSION + "templates: []\n"}, line=9),
    Case("session-unknown-template", "session", {"sessions/s.yaml": SESSION + "templates: [item_color]\n"},
         contains="item_colour"),
    Case("session-name-dotdot", "session", {"sessions/s.yaml": SESSION.replace("store: store\n", "")
                                              + "name: ../../outside\n"}, line=8, contains="separator"),
    Case("session-name-slash", "session", {"sessions/s.yaml": SESSION + "name: a/b\n"}, line=9),
    Case("session-name-dot", "session", {"sessions/s.yaml": SESSION.replace("store: store\n", "") + "name: ..\n"},
         line=8),
    Case("session-name-control-char", "session", {"sessions/s.yaml": SESSION + 'name: "a\\x1b[31mb"\n'}, line=9),
    Case("session-negative-model-weight", "session",
         {"sessions/s.yaml": SESSION.replace("  kind: scripted", "  kind: model\n  models:\n"
                                             "    - {model: openai/x, api_base: 'http://127.0.0.1:9/v1', weight: -1}")},
         line=7),
    Case("session-all-zero-model-weights", "session",
         {"sessions/s.yaml": SESSION.replace("  kind: scripted", "  kind: model\n  models:\n"
                                             "    - {model: openai/x, api_base: 'http://127.0.0.1:9/v1', weight: 0}")},
         line=6, contains="weight 0"),
    Case("session-model-without-models", "session", {"sessions/s.yaml": SESSION.replace("kind: scripted",
                                                                                        "kind: model")},
         contains="models"),
    Case("session-nan-temperature", "session",
         {"sessions/s.yaml": SESSION.replace("  kind: scripted", "  kind: model\n  models:\n"
                                             "    - {model: openai/x, api_base: 'http://127.0.0.1:9/v1', "
                                             "temperature: .nan}")}, line=7, contains="finite"),
    Case("session-nan-mistake-rate", "session",
         {"sessions/s.yaml": SESSION.replace("  kind: scripted", "  kind: scripted\n  mistake_rate: .nan")}, line=6),
    Case("session-unknown-feedback-code", "session",
         {"sessions/s.yaml": SESSION + "feedback:\n  disable: [exec.crashh]\n"}, line=10),
    Case("session-missing-pack", "session", {"sessions/s.yaml": _session(pack="nowhere")}, names="nowhere"),
    Case("session-pack-is-a-file", "session", {"sessions/s.yaml": _session(pack="./s.yaml")}, names="s.yaml"),
    Case("session-store-is-a-file", "session", {"sessions/s.yaml": _session(store="sessions/s.yaml")},
         names="s.yaml"),
    # ----- command-line flags
    Case("flag-concurrency-negative", "flag", **_flags("--concurrency", "-1", contains="at least 1")),
    Case("flag-concurrency-zero", "flag", **_flags("--concurrency", "0", contains="at least 1")),
    Case("flag-tasks-zero", "flag", **_flags("-n", "0", contains="at least 1")),
    Case("flag-tasks-negative", "flag", **_flags("-n", "-3", contains="at least 1")),
    Case("flag-tasks-huge", "flag", **_flags("-n", "9" * 30, contains="at most")),
    Case("flag-tasks-not-a-number", "flag", **_flags("-n", "many")),
    Case("flag-seed-huge", "flag", **_flags("--seed", "9" * 5000)),
    Case("flag-check-samples-zero", "flag", commands=(("check", "sessions/s.yaml", "--samples", "0"),),
         names="--samples"),
    # ----- pack.yaml
    Case("pack-alias-bomb", "pack", **_manifest(GOOD_MANIFEST + _bomb(9))),
    Case("pack-recursive-anchor", "pack", **_manifest(GOOD_MANIFEST + "x: &x [*x]\n")),
    Case("pack-nul", "pack", **_manifest(GOOD_MANIFEST.replace("tiny", "ti\x00ny"))),
    Case("pack-not-utf8", "pack", **_manifest(GOOD_MANIFEST.encode() + b"\xff\xfe\n")),
    Case("pack-merge-key-then-duplicate", "pack",
         **_manifest(GOOD_MANIFEST + "x: &b {a: 1}\ny:\n  <<: *b\n  c: 1\n  c: 2\n")),
    Case("pack-bad-now", "pack", **_manifest(GOOD_MANIFEST.replace('"2026-03-01T09:00:00"', '"yesterday"'))),
    Case("pack-name-nul-escape", "pack", **_manifest(GOOD_MANIFEST.replace("name: mini", 'name: "mi\\0ni"'))),
    Case("pack-missing-tools-module", "pack", {"tools/mini/tools.py": None}, names="tools/mini/tools.py"),
    Case("pack-tools-syntax-error", "pack", {"tools/mini/tools.py": MINI_TOOLS + "\ndef broken(:\n"},
         names="tools/mini/tools.py"),
    Case("pack-tools-import-raises", "pack", {"tools/mini/tools.py": "raise RuntimeError('at import')\n"},
         names="tools/mini/tools.py", line=1),
    Case("pack-tools-import-sys-exit-0", "pack", {"tools/mini/tools.py": "import sys\nsys.exit(0)\n"},
         names="tools/mini/tools.py", line=2, contains="sys.exit"),
    Case("pack-tools-import-os-exit", "pack", {"tools/mini/tools.py": "import os\nos._exit(0)\n"},
         names="tools/mini/tools.py", line=2, contains="os._exit"),
    Case("pack-tools-import-system-exit-3", "pack", {"tools/mini/tools.py": "raise SystemExit(3)\n"},
         names="tools/mini/tools.py", line=1),
    Case("pack-tools-import-forks", "pack", {"tools/mini/tools.py": "import os\nos.fork()\n" + MINI_TOOLS},
         names="tools/mini/tools.py", line=2, contains="may not"),
    Case("pack-tools-import-subprocess", "pack",
         {"tools/mini/tools.py": "import subprocess\nsubprocess.Popen(['sleep', '30'])\n" + MINI_TOOLS},
         names="tools/mini/tools.py", line=2, contains="may not"),
    Case("pack-templates-import-sys-exit", "pack", {"tools/mini/templates.py": "import sys\nsys.exit()\n"},
         names="tools/mini/templates.py", line=2, contains="sys.exit"),
    Case("pack-templates-import-raises", "pack", {"tools/mini/templates.py": MINI_TEMPLATES + "1/0\n"},
         names="tools/mini/templates.py"),
    Case("pack-no-tools", "pack", {"tools/mini/tools.py": "x = 1\n"}, names="tools/mini/tools.py"),
    Case("pack-query-bad-conversion", "pack", **_template_code(query="Colour of {item_id!z}?", contains="query")),
    Case("pack-query-lone-brace", "pack", **_template_code(query="Colour of {item_id} {?", contains="query")),
    Case("pack-query-positional", "pack", **_template_code(query="Colour of {0} {item_id}?", contains="query")),
    Case("pack-template-nan-weight", "pack", **_template_code(extra=", weight=float('nan')", contains="weight")),
    Case("pack-template-negative-weight", "pack", **_template_code(extra=", weight=-2", contains="weight")),
    Case("pack-template-zero-weight", "pack", **_template_code(extra=", weight=0", contains="weight 0")),
    # ----- seed data
    Case("seed-not-utf8", "seed", **_seed(b'[{"id": "I-01", "colour": "r\xe9d"}]', line=1, contains="UTF-8")),
    Case("seed-invalid-json", "seed", **_seed('[{"id": "I-01",\n "colour": }]', line=2)),
    Case("seed-5000-nested", "seed", **_seed('[{"id": "I-01", "x": ' + "[" * 5000 + "]" * 5000 + "}]")),
    Case("seed-5000-digit-int", "seed", **_seed('[{"id": "I-01", "x": ' + "9" * 5000 + "}]")),
    Case("seed-unhashable-key", "seed", **_seed('[{"id": ["I", "01"], "colour": "red"}]', contains="key field")),
    Case("seed-null-key", "seed", **_seed('[{"id": null, "colour": "red"}]', contains="key field")),
    Case("seed-duplicate-key", "seed", **_seed('[{"id": "I-01"}, {"id": "I-01"}]', contains="duplicate")),
    Case("seed-not-a-list", "seed", **_seed('{"id": "I-01"}')),
    Case("seed-missing-key-field", "seed", **_seed('[{"name": "x"}]', contains="key field")),
    Case("seed-empty-file", "seed", **_seed("")),
    Case("seed-is-a-directory", "seed", {"tools/mini/data/items.json/x": "1"}, names="tools/mini/data/items.json"),
    # ----- pack code at run time: tools
    Case("tool-endless-loop", "code", **_code("while True:\n        pass", contains="timed out"), limit=90),
    Case("tool-sleeps-in-c", "code", **_code("import time\n    time.sleep(3600)", contains="timed out"), limit=90),
    Case("tool-blocks-on-socket", "code",
         **_code("import socket\n    a, b = socket.socketpair()\n    a.recv(1)", contains="timed out"), limit=90),
    Case("tool-non-daemon-thread", "code",
         **_code("import threading, time\n    threading.Thread(target=time.sleep, args=(3600,), daemon=False).start()\n"
                 "    raise RuntimeError('left a thread')", contains="left a thread"), limit=90),
    Case("tool-sys-exit", "code", **_code("import sys\n    sys.exit(0)", contains="sys.exit")),
    Case("tool-sys-exit-1", "code", **_code("raise SystemExit(1)", contains="sys.exit")),
    Case("tool-os-exit", "code", **_code("import os\n    os._exit(0)", contains="os._exit")),
    Case("tool-os-abort", "code", **_code("import os\n    os.abort()", contains="os.abort")),
    Case("tool-keyboardinterrupt", "code", **_code("raise KeyboardInterrupt", contains="KeyboardInterrupt")),
    Case("tool-generatorexit", "code", **_code("raise GeneratorExit", contains="GeneratorExit")),
    Case("tool-forks", "code", **_code("import os\n    if os.fork() == 0:\n        import time; time.sleep(60)",
                                       contains="may not")),
    Case("tool-subprocess-orphan", "code", **_code("import subprocess\n    subprocess.Popen(['sleep', '60'])",
                                                   contains="may not")),
    Case("tool-os-system", "code", **_code("import os\n    os.system('sleep 60 &')", contains="may not")),
    Case("tool-kills-parent", "code", **_code("import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)",
                                              contains="may not")),
    Case("tool-forks-in-thread", "code",
         **_code("import threading, subprocess\n    errors = []\n"
                 "    def go():\n        try:\n            subprocess.Popen(['sleep', '60'])\n"
                 "        except Exception as exc:\n            errors.append(exc)\n"
                 "    t = threading.Thread(target=go); t.start(); t.join()\n    raise errors[0]",
                 contains="may not")),
    Case("tool-circular-result", "code", **_code("x = {}\n    x['x'] = x\n    return x", contains="not JSON")),
    Case("tool-huge-int-result", "code", **_code("return {'n': 10 ** 5000}", contains="not JSON")),
    Case("tool-unhashable-key-result", "code", **_code("return {(1, 2): 'x'}", contains="not JSON")),
    Case("tool-nan-result", "code", **_code("return {'x': float('nan')}", contains="not JSON")),
    Case("tool-deep-result", "code", **_code("x = []\n    for _ in range(100000):\n        x = [x]\n    return x",
                                             contains="not JSON")),
    Case("tool-memory-error", "code", **_code("return 'x' * (1 << 40)", contains="MemoryError")),
    Case("tool-recursion", "code", **_code("def f(): return f()\n    return f()", contains="RecursionError")),
    Case("tool-raises-huge-message", "code", **_code("raise RuntimeError('x' * 5_000_000)", contains="RuntimeError")),
    Case("tool-str-raises", "code",
         **_code("class B:\n        def __str__(self): raise RuntimeError('no str')\n    return {'b': B()}",
                 contains="no str")),
    # ----- pack code at run time: samplers and gold programs
    Case("sampler-endless-loop", "code", **_template_code(sampler="while True:\n        pass",
                                                          contains="did not finish"), limit=120),
    Case("sampler-sleeps-in-c", "code", **_template_code(sampler="import time\n    time.sleep(3600)",
                                                         contains="did not finish"), limit=120),
    Case("sampler-sys-exit", "code", **_template_code(sampler="import sys\n    sys.exit(0)", contains="sys.exit")),
    Case("sampler-os-exit", "code", **_template_code(sampler="import os\n    os._exit(3)", contains="os._exit")),
    Case("sampler-keyboardinterrupt", "code", **_template_code(sampler="raise KeyboardInterrupt",
                                                               contains="KeyboardInterrupt")),
    Case("sampler-forks", "code", **_template_code(sampler="import os\n    os.fork()", contains="may not")),
    Case("sampler-returns-list", "code", **_template_code(sampler="return [1, 2]", contains="dict")),
    Case("sampler-circular-slots", "code",
         **_template_code(sampler="x = {}\n    x['x'] = x\n    return {'item_id': x}", contains="not JSON")),
    Case("sampler-unhashable-slot", "code", **_template_code(sampler="return {'item_id': {1, 2}}")),
    Case("sampler-huge-int-slot", "code", **_template_code(sampler="return {'item_id': 10 ** 5000}",
                                                           contains="not JSON")),
    Case("gold-endless-loop", "code", **_template_code(gold="while True:\n        pass", contains="did not finish"),
         limit=120),
    Case("gold-sys-exit", "code", **_template_code(gold="raise SystemExit(0)", contains="sys.exit")),
    Case("gold-os-exit", "code", **_template_code(gold="import os\n    os._exit(0)", contains="os._exit")),
    Case("gold-generatorexit", "code", **_template_code(gold="raise GeneratorExit", contains="GeneratorExit")),
    Case("gold-circular-answer", "code", **_template_code(gold="x = []\n    x.append(x)\n    return x",
                                                          contains="not JSON")),
    Case("gold-huge-int-answer", "code", **_template_code(gold="return 10 ** 5000", contains="not JSON")),
    Case("gold-unhashable-answer", "code", **_template_code(gold="return {(1,): 2}", contains="not JSON")),
    Case("gold-returns-none", "code", **_template_code(gold="return None", contains="None")),
    Case("gold-unknown-tool", "code", **_template_code(gold="return call('nope', x=1)", contains="nope")),
    # the gold API of issues 12/13 under the same limits
    Case("gold-call-one-tool-exits", "code",
         **_gold_api("import sys\n    sys.exit(0)", 'return call.one("bad", item_id=slots["item_id"])',
                     contains="sys.exit")),
    Case("gold-attempt-tool-hangs", "code",
         **_gold_api("while True:\n        pass", 'return str(call.attempt("bad", item_id=slots["item_id"]))',
                     contains="timed out"), limit=90),
    Case("gold-expect-error-tool-forks", "code",
         **_gold_api("import os\n    os.fork()", 'return call.expect_error("bad", item_id=slots["item_id"])',
                     contains="may not")),
    Case("gold-handoff-tool-os-exit", "code",
         **_gold_api("import os\n    os._exit(0)", 'call("bad", item_id=slots["item_id"])\n    return "handed off"',
                     decorator="@tool(ends_episode=True)", contains="os._exit")),
    Case("fixed-task-gold-endless-loop", "code",
         **_gold_api("return {}", "", templates=FIXED_TASK_HANGS, contains="did not finish"), limit=90),
    # ----- themes (the app loads them through the same YAML loader)
    Case("theme-nul", "theme", **_theme("name: t\nprimary: '#fff'\x00\n", line=2, contains="NUL")),
    Case("theme-recursive-anchor", "theme", **_theme("name: t\nprimary: '#fff'\nvariables: &v {a: *v}\n", line=3,
                                                     contains="recursive")),
    Case("theme-alias-bomb", "theme", **_theme("name: t\nprimary: '#fff'\n" + _bomb(9), contains="alias")),
    Case("theme-deep-nesting", "theme", **_theme("name: t\nprimary: '#fff'\nx: " + "[" * 5000 + "]" * 5000 + "\n",
                                                 line=3, contains="nested")),
    Case("theme-huge-int", "theme", **_theme("name: t\nprimary: '#fff'\nluminosity_spread: " + "9" * 5000 + "\n",
                                             line=3, contains="digits")),
    Case("theme-not-utf8", "theme", **_theme(b"name: t\nprimary: '#fff'\nx: \xff\n", line=3, contains="UTF-8")),
    Case("theme-duplicate-key", "theme", **_theme("name: t\nprimary: '#fff'\nprimary: '#000'\n", line=3,
                                                  contains="duplicate")),
    # ----- stores
    Case("store-folder-with-other-files", "store", {"stores/other/notes.txt": "mine"},
         commands=(("run", "sessions/s.yaml", "--headless", "--store", "stores/other"),), names="stores/other"),
    Case("store-damaged-snapshot", "store", {"store/store.snapshot.jsonl": "garbage\n"},
         names="store/store.snapshot.jsonl", contains="damaged"),
    Case("store-newer-layout", "store", {"store/store.snapshot.jsonl": None}, names="store"),
]


THEME_LOADER = """
import sys
from lamsim_tui.ui.themes import ThemeError, load_theme_file
try:
    load_theme_file(sys.argv[1])
except ThemeError as exc:
    print(f"lamsim: {exc}", file=sys.stderr)
    sys.exit(2)
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    os.setsid()  # its own process group: an orphan it leaves behind is found and killed by the test


def make_project(root: Path) -> Path:
    """A project with the mini pack and a session, and no store."""
    write_pack(root)
    write_session(root, SESSION)
    return root


def make_store(root: Path) -> Path:
    """A store with records made by a real run (the store every case must leave untouched)."""
    result = subprocess.run([sys.executable, "-m", "lamsim_tui", "run", "sessions/s.yaml", "--headless"], cwd=root,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return root / "store"


def _store_files(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*"))
            if p.is_file() and p.name != "writer.lock"}


def _store_ids(store: Path) -> set[str] | None:
    from lamsim_tui.store import open_store

    try:
        with open_store(store, readonly=True) as opened:
            return set(opened.ids())
    except Exception:  # noqa: BLE001 - a store that no longer opens has lost everything
        return None


def _apply(root: Path, files: dict[str, str | bytes | None]) -> None:
    for rel, content in files.items():
        path = root / rel
        if content is None:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            if rel == "store/store.snapshot.jsonl":  # a snapshot from a newer lamsim's layout
                from lamsim_tui.store.storage import encode_line

                header = {"format": "lamsim-store", "store_version": 99, "generation": 1, "seq": 0, "tables": []}
                path.write_bytes(encode_line(header) + encode_line({"end": True, "docs": 0}))
            continue
        if path.parent.is_file():  # a file where the case wants a folder
            path.parent.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def _kill_group(pgid: int) -> None:
    import signal

    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_case(case: Case, root: Path, store_template: Path) -> Row:
    """Set the case up in ``root`` (a copy of the project with its store), run it, check the five things."""
    make_project(root)
    store = root / "store"
    shutil.copytree(store_template, store, ignore=shutil.ignore_patterns("writer.lock"))
    _apply(root, case.files)
    before = _store_ids(store)
    files_before = _store_files(store) if store.is_dir() else {}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LAMSIM_APP_STATE": str(root / "app.json")}
    env.pop("LAMSIM_DEBUG", None)
    outputs: list[tuple[int | None, str]] = []
    hung = False
    started = time.monotonic()
    for command in case.commands:
        if command[0] == "theme":
            argv = [sys.executable, "-c", THEME_LOADER, command[1]]
        else:
            argv = [sys.executable, "-m", "lamsim_tui", *command]
        left = case.limit - (time.monotonic() - started)
        proc = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=_limit_memory)
        try:
            out, err = proc.communicate(timeout=max(1.0, left))
        except subprocess.TimeoutExpired:
            hung = True
            _kill_group(proc.pid)
            out, err = proc.communicate()
        _kill_group(proc.pid)  # whatever it left behind
        outputs.append((None if hung else proc.returncode,
                        out.decode("utf-8", "replace") + err.decode("utf-8", "replace")))
        if hung:
            break
    text = "\n".join(o for _, o in outputs)
    where = case.names + (f":{case.line}" if case.line else "")
    message = (where in text or (case.line is None and Path(case.names).name in text)) and (
        case.contains is None or case.contains.lower() in text.lower())
    after = _store_ids(store)
    detail = "" if message else f"expected {where!r}" + (f" and {case.contains!r}" if case.contains else "")
    return Row(
        case=case.id,
        kind=case.kind,
        message=message,
        nonzero=all(code not in (0, None) for code, _ in outputs),
        no_traceback="Traceback (most recent call last)" not in text,
        no_hang=not hung,
        # A store that opened keeps every record; one the case damaged on purpose is left byte for byte.
        no_loss=(after is not None and before <= after) if before is not None
        else (_store_files(store) if store.is_dir() else {}) == files_before,
        detail=(detail + "\n" + text[-1500:]).strip(),
    )


def table(rows: list[Row]) -> str:
    """The totals in the columns of issue 15."""
    header = ("kind", "cases", "one clear message", "non-zero exit", "no traceback", "no hang", "no loss")
    kinds = sorted({r.kind for r in rows})
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for kind in [*kinds, "all"]:
        these = [r for r in rows if kind in ("all", r.kind)]
        cells = [kind, str(len(these))] + [
            str(sum(getattr(r, col) for r in these)) for col in ("message", "nonzero", "no_traceback", "no_hang",
                                                                "no_loss")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rows_json(rows: list[Row]) -> str:
    return json.dumps([r.__dict__ for r in rows], indent=1)
