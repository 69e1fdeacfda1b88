"""`lamsim check SESSION`: sample tasks from every template, run their gold programs, report."""

from __future__ import annotations

import json
from typing import Any

from lamsim_tui.text import plain, shorten


def add_commands(sub: Any) -> None:
    check = sub.add_parser("check", help="check a session's pack and templates")
    check.add_argument("session", help="session YAML file")
    check.add_argument("--samples", type=_samples, default=20, help="tasks sampled per template (1 to 10000)")
    check.set_defaults(handler=cmd_check)


def _samples(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 10000, got {value}")
    return value


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def cmd_check(args) -> int:
    from lamsim_tui.packs import load_pack
    from lamsim_tui.session.config import load_session
    from lamsim_tui.simulator.runner import ToolRunner
    from lamsim_tui.simulator.tasks import check_templates, template_weights

    session = load_session(args.session)
    pack = load_pack(session.pack_dir())
    from lamsim_tui.cli.run import in_session

    selected = list(in_session(session, lambda: template_weights(pack, session.templates)))
    runner = ToolRunner(pack, timeout=session.budget.tool_seconds,
                        observation_chars=session.budget.observation_chars)
    before = pack.seed.fingerprint()
    reports = check_templates(pack, runner, samples=args.samples, seed=session.seed, only=selected)
    mutated = pack.seed.fingerprint() != before
    print(f"pack {plain(pack.name)} ({plain(pack.path)}) version {pack.version}: {_plural(len(pack.tools), 'tool')}, "
          f"{_plural(len(pack.templates), 'template')}, tables "
          + ", ".join(f"{plain(t)} {len(rows)}" for t, rows in pack.seed.tables.items()))
    width = max([len("template"), *(len(plain(r.template)) for r in reports)])
    header = f"{'template':<{width}} {'tried':>5} {'ok':>4} {'fail':>4} {'distinct':>9} {'calls':>6} {'gold ms':>8}  example"
    print(header)
    print("-" * len(header))
    failed = 0
    for r in reports:
        distinct = f"{r.distinct}" if r.saturated else f"{r.distinct}+"
        calls = f"{r.gold_calls[0]}-{r.gold_calls[1]}" if r.gold_calls[0] != r.gold_calls[1] else str(r.gold_calls[0])
        example = ""
        if r.examples:
            query, answer = r.examples[0]
            example = f"{query}  => {json.dumps(answer, ensure_ascii=False)}"
            example = shorten(plain(example), 110, "...")
        print(f"{plain(r.template):<{width}} {r.tried:>5} {r.ok:>4} {len(r.failures):>4} {distinct:>9} {calls:>6} "
              f"{r.max_gold_s * 1000:>8.1f}  {example}")
        if r.failures:
            failed += 1
            first = r.failures[0]
            lines = first.reason.splitlines() or [""]
            print(f"    FAIL {plain(first.where)}: {plain(lines[0], 300)}")
            for more in lines[1:4]:
                print(f"         {plain(more, 300)}")
        elif r.distinct < 10:
            print(f"    warning: only {r.distinct} distinct tasks: the template is narrow")
        if r.truncated_observations:
            print(f"    warning: {r.truncated_observations} gold call result(s) are longer than "
                  f"budget.observation_chars ({runner.observation_chars}); the agent would see them cut")
        if r.max_gold_s > 0.5:
            print(f"    warning: slow gold program ({r.max_gold_s:.2f} s)")
    if mutated:
        failed += 1
        print("FAIL: a tool changed seed rows in place; write with sb.update/insert/delete instead")
    print()
    if failed:
        print(f"{failed} problem(s) found")
        return 1
    print(f"all {_plural(len(reports), 'template')} passed")
    return 0
