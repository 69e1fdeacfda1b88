"""`lamsim check SESSION`: sample tasks from every template, run their gold programs, run the
authoring checks (`simulator/pack_checks.py`), report. Exit status 1 when a template fails or a
check finds an error; warnings are printed and leave the status 0."""

from __future__ import annotations

import json
from typing import Any

from lamsim_tui.text import plain, shorten, visible


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


def _print_problem(problem, indent: str = "    ") -> None:
    print(visible(f"{indent}{problem.severity} [{problem.code}] {problem.where}: {problem.message}"))
    if problem.fix:
        print(visible(f"{indent}    fix: {problem.fix}"))


def cmd_check(args) -> int:
    from lamsim_tui.packs import load_pack
    from lamsim_tui.session.config import load_session
    from lamsim_tui.simulator.pack_checks import tool_problems
    from lamsim_tui.simulator.runner import ToolRunner
    from lamsim_tui.simulator.tasks import check_templates, template_weights

    session = load_session(args.session)
    pack = load_pack(session.pack_dir())
    from lamsim_tui.cli.run import in_session

    selected = list(in_session(session, lambda: template_weights(pack, session.templates)))
    runner = ToolRunner(pack, timeout=session.budget.tool_seconds,
                        observation_chars=session.budget.observation_chars)
    before = pack.seed.fingerprint()
    reports = check_templates(pack, runner, samples=max(1, args.samples), seed=session.seed, only=selected)
    mutated = pack.seed.fingerprint() != before
    fixed = sum(1 for spec in pack.templates.values() if spec.fixed)
    counts = [_plural(len(pack.tools), "tool"), _plural(len(pack.templates) - fixed, "template")]
    if fixed:
        counts.append(_plural(fixed, "fixed task"))
    print(visible(f"pack {pack.name} ({pack.path}) version {pack.version}: {', '.join(counts)}, tables "
                  + ", ".join(f"{t} {len(rows)}" for t, rows in pack.seed.tables.items())))
    from lamsim_tui.agents.prompts import resolve_policy

    policy = resolve_policy(pack, session)
    if policy:
        source = pack.policy_path if policy == pack.policy else f"the session's ({session.policy})"
        print(visible(f"policy {source} ({len(policy)} characters): shown to every agent"))
    width = max([len("template"), *(len(plain(r.template)) for r in reports)])
    header = f"{'template':<{width}} {'tried':>5} {'ok':>4} {'fail':>4} {'distinct':>9} {'calls':>6} {'gold ms':>8}  example"
    print(header)
    print("-" * len(header))
    errors = warnings = 0
    for r in reports:
        distinct = f"{r.distinct}" if r.saturated else f"{r.distinct}+"
        calls = f"{r.gold_calls[0]}-{r.gold_calls[1]}" if r.gold_calls[0] != r.gold_calls[1] else str(r.gold_calls[0])
        example = ""
        if r.examples:
            query, answer = r.examples[0]
            shown = "(no answer: judged on its state)" if answer is None else json.dumps(answer, ensure_ascii=False,
                                                                                          default=str)
            example = f"{query}  => {shown}"
            example = shorten(plain(example), 110, "...")
        print(visible(f"{plain(r.template):<{width}} {r.tried:>5} {r.ok:>4} {len(r.failures):>4} {distinct:>9} {calls:>6} "
                      f"{r.max_gold_s * 1000:>8.1f}  {example}"))
        if r.failures or r.extra_failures:
            errors += 1
            first = (r.failures or r.extra_failures)[0]
            also = "" if r.failures else " (in a further task the check ran; the sampled ones passed)"
            lines = first.reason.splitlines() or [""]
            print(visible(f"    FAIL {first.where}: {shorten(lines[0], 1000)}{also}"))
            for more in lines[1:4]:
                print(visible(f"         {shorten(more, 1000)}"))
        for problem in r.problems:
            _print_problem(problem)
        errors += len(r.errors)
        warnings += len(r.warnings)
    tools = tool_problems(pack, [r.evidence for r in reports if r.evidence is not None])
    if tools:
        print("tools:")
        for problem in tools:
            _print_problem(problem)
        errors += sum(p.severity == "error" for p in tools)
        warnings += sum(p.severity == "warning" for p in tools)
    if mutated:
        from lamsim_tui.simulator.tasks import find_in_place_writers

        errors += 1
        who = find_in_place_writers(load_pack(session.pack_dir()), runner, seed=session.seed, only=selected)
        print("FAIL: seed rows were changed in place (a row from sb.iter_rows written into), so every later "
              "episode would start from changed data; write with sb.update/insert/delete instead")
        for line in who or ["(not found again on a second pass: look for writes into rows from iter_rows)"]:
            print(visible(f"    {line}"))
    print()
    if errors:
        print(f"{errors} problem(s) found" + (f", {_plural(warnings, 'warning')}" if warnings else ""))
        return 1
    noun = "templates and fixed tasks" if fixed else ("template" if len(reports) == 1 else "templates")
    print(f"all {len(reports)} {noun} passed" + (f" ({_plural(warnings, 'warning')})" if warnings else ""))
    return 0
