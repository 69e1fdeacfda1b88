"""Content for steps, tasks and trajectories, shared by the live panes, the review detail and the
edit preview. Every piece of model output or tool result goes through `text.literal`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual.content import Content

from lamsim_tui.record import Action, DemonstrationRef, Finish, GoldCall, Step, Trajectory, demonstrations_line
from lamsim_tui.ui.text import clip, literal, pretty_json, severity_style

if TYPE_CHECKING:
    from lamsim_tui.ui.live import StepLive

OBSERVATION_SHORT = (480, 8)  # characters, lines shown before "expand"
OBSERVATION_LONG = (20_000, 400)  # when expanded; the full text is in the viewer (v)
RAW_SHORT = (600, 10)


class Doc:
    """Accumulates styled pieces; `content()` assembles them into one Content.

    With a ``width``, indented text is wrapped to fit beside its label (a hanging indent), so long
    observations and JSON keep their column instead of wrapping back to the left edge.
    """

    def __init__(self, width: int = 0) -> None:
        self.parts: list[tuple[str, str]] = []
        self.width = width

    def add(self, text: Any, style: str = "") -> Doc:
        self.parts.append((literal(text), style))
        return self

    def line(self, text: Any = "", style: str = "") -> Doc:
        return self.add(text, style).add("\n")

    def label(self, name: str, width: int = 12) -> Doc:
        return self.add(f"{name:<{width}}", "$text-muted")

    def indented(self, text: Any, style: str = "", indent: int = 12) -> Doc:
        pad = " " * indent
        lines = literal(text).split("\n")
        room = self.width - indent
        if room >= 20:
            lines = [piece for line in lines for piece in _hard_wrap(line, room)]
        for i, line in enumerate(lines):
            if i:
                self.parts.append((pad, ""))
            self.parts.append((line, style))
            self.parts.append(("\n", ""))
        return self

    def content(self) -> Content:
        parts = self.parts
        while parts and parts[-1][0] == "\n":
            parts = parts[:-1]
        return Content.assemble(*parts)


def _hard_wrap(line: str, room: int) -> list[str]:
    if len(line) <= room:
        return [line]
    pieces = []
    while len(line) > room:
        cut = line.rfind(" ", room // 2, room + 1)
        cut = room if cut <= 0 else cut + 1
        pieces.append(line[:cut].rstrip(" ") if cut < len(line) else line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


def action_lines(doc: Doc, action: Action | None, raw: str) -> None:
    if action is None:
        doc.label("reply").add("unparseable", "$severity-error").line()
        text, hidden = clip(raw or "(empty)", *RAW_SHORT)
        doc.label("").indented(text, "$stream-text")
        if hidden:
            doc.label("").line(f"… {hidden:,} more characters", "$text-muted")
        return
    if isinstance(action, Finish):
        doc.label("answer").add("finish", "bold $accent").line()
        doc.label("").indented(pretty_json(action.answer) if action.has_answer else "(no answer)")
        return
    doc.label("call").add(str(action.tool), "bold $accent").line()
    doc.label("").indented(pretty_json(action.arguments), "$text-secondary")


def without_findings(observation: str, feedback: Iterable) -> str:
    """The observation less the feedback lines it ends with (`Error: <message>`, as `runner.render_findings`
    writes them): the feedback is shown once, under its code, not twice."""
    told = {f"{'Error' if f.severity == 'error' else 'Note'}: {f.message}" for f in feedback}
    if not told:
        return observation
    return "\n".join(line for line in observation.split("\n") if line not in told)


def step_content(step: Step | StepLive, *, expanded: bool = False, title_suffix: str = "", width: int = 0,
                 changes_state: bool = False) -> Content:
    """A stored step, or a live one (whose observation is None until it is observed).

    ``changes_state``: the step called a tool that changes the sandbox (marked: those are the calls
    that decide a trajectory's worth).
    """
    doc = Doc(width)
    doc.add(f"step {step.index + 1}", "bold $primary")
    if changes_state:
        ran = step.executed and not any(f.severity == "error" for f in step.feedback)
        doc.add("  ◆ changes state" if ran else "  ◇ state-changing call, not run", "bold $warning")
    if title_suffix:
        doc.add(f"  {title_suffix}", "$text-muted")
    doc.line()
    if step.thought:
        doc.label("thought").indented(step.thought)
    action_lines(doc, step.action, step.raw)
    observation = step.observation
    if observation is None:
        doc.label("observation").line("…", "$text-muted")
    else:
        observation = without_findings(observation, step.feedback)
    if observation:
        limit, lines = OBSERVATION_LONG if expanded else OBSERVATION_SHORT
        text, hidden = clip(observation, limit, lines)
        doc.label("observation" if step.executed else "told agent").indented(text)
        if hidden:
            hint = "v: view all" if expanded else "o: expand, v: view all"
            doc.label("").line(f"… {hidden:,} more characters ({hint})", "$text-muted")
    if step.error is not None:
        doc.label("error").line(f"{step.error.code}: {step.error.message}", "$severity-error")
    for finding in step.feedback:
        doc.label("feedback").add(finding.code, severity_style(finding.severity)).line()
        doc.label("").indented(finding.message, "$text-muted")
    return doc.content()


STREAM_LINES = 4


def stream_content(text: str, width: int = 80, lines: int = STREAM_LINES) -> Content:
    """The last few lines of text being generated, wrapped at spaces and cut to fit a fixed-height area."""
    rows: list[str] = []
    for line in literal(text).split("\n"):
        rows.extend(_hard_wrap(line, max(width - 1, 1)))  # one cell stays free for the cursor
    label = "generating… "
    if len(rows) <= lines and len(rows[0]) + len(label) <= width:
        rows[0] = "\0" + rows[0]
    tail = rows[-lines:]
    parts: list[tuple[str, str]] = []
    for i, row in enumerate(tail):
        if i:
            parts.append(("\n", ""))
        if row.startswith("\0"):
            parts.append((label, "italic $text-muted"))
            row = row[1:]
        parts.append((row, "$stream-text"))
    parts.append(("▌", "$accent"))
    return Content.assemble(*parts)


def task_content(query: str, *, template: str, gold_calls: Iterable[GoldCall] = (), gold_answer: Any = None,
                 show_gold: bool = False, header: str = "", width: int = 0,
                 demonstrations: Iterable[DemonstrationRef] = (), compact: bool = False) -> Content:
    """The Task pane. `compact` (a narrow or short terminal): the template is in the header, so that the
    query follows on the next line."""
    doc = Doc(width)
    if header:
        doc.line(header, "$text-muted")
    if not compact:
        doc.label("template").line(template, "bold")
    doc.label("query").indented(query)
    shown = list(demonstrations)
    if shown:
        doc.label("shown").line(demonstrations_line(shown), "$text-muted")
    if show_gold:
        for i, call in enumerate(gold_calls):
            doc.label("gold call" if i == 0 else "").add(call.tool, "$accent").add(" ")
            doc.line(pretty_json(call.arguments).replace("\n", " ").replace("  ", ""), "$text-secondary")
        doc.label("gold answer").line(pretty_json(gold_answer).replace("\n", " "), "bold $verdict-success")
    else:
        doc.label("").line("g: show gold calls and answer", "$text-muted")
    return doc.content()


def verdict_lines(doc: Doc, record: Trajectory) -> None:
    verdict = record.verdict
    ok = verdict.success
    doc.label("verdict").add("success" if ok else "failed", "bold $verdict-success" if ok else "bold $verdict-failure")
    doc.add(f"   answer {_tick(verdict.answer_correct)}  state {_tick(verdict.state_correct)}"
            f"   steps {verdict.steps_used}", "$text-muted")
    doc.line()
    for reason in verdict.reasons:
        doc.label("").line(reason, "$text-muted")
    failed = verdict.filters_failed
    doc.label("filters").line("passed" if not failed else "failed: " + ", ".join(map(str, failed)),
                              "$verdict-success" if not failed else "$status-filtered")
    doc.label("answered").line(pretty_json(record.final_answer).replace("\n", " "))


def _tick(value: Any) -> str:
    return "✓" if value is True else "✗" if value is False else "–"


def state_changing(record: Trajectory, pack: Any = None) -> set[int]:
    """Indexes of the steps that called a tool which changes the sandbox (`changes_state` on the pack's
    tool). Without the pack at hand nothing is marked; the state diff still shows what changed."""
    tools = getattr(pack, "tools", None) or {}
    out = set()
    for step in record.steps:
        action = step.action
        if isinstance(action, Finish) or action is None:
            continue
        spec = tools.get(action.tool)
        if spec is not None and getattr(spec, "changes_state", False):
            out.add(step.index)
    return out


def state_lines(doc: Doc, record: Trajectory) -> None:
    """The final state against the gold state (the judge's comparison): what changed that should not have,
    what should have changed and did not, and what changed differently."""
    from lamsim_tui.simulator.judge import project_state, states_match

    task = record.task
    final = record.final_state or {}
    if not task.judge_state:
        changed = sum(len(rows) for rows in final.values())
        doc.label("state").line("not judged (the task changes nothing)" + (
            f" — but {changed} row(s) changed" if changed else ""), "$severity-warning" if changed else "$text-muted")
        if changed:
            for table, rows in final.items():
                for key in rows:
                    doc.label("").line(f"{table} {key}: changed, but the task did not require it", "$severity-warning")
        return
    ok, reasons = states_match(final, task.gold_state, task.state_fields)
    if ok:
        doc.label("state").line("✓ matches the gold state", "$verdict-success")
        return
    doc.label("state").line("✗ differs from the gold state", "bold $verdict-failure")
    got, want = project_state(final, task.state_fields), project_state(task.gold_state, task.state_fields)
    groups = (("changed, should not have", "changed, but the task did not require it"),
              ("should have changed, did not", "expected a change that was not made"),
              ("changed differently", "differ from the gold state"))
    for title, marker in groups:
        picked = [r for r in reasons if marker in r]
        if not picked:
            continue
        doc.label("").line(title, "$severity-error")
        for reason in picked:
            table, _, rest = reason.partition(" ")
            key = rest.split(":", 1)[0]
            doc.label("").add(f"  {table} {key}", "bold")
            a, b = got.get(table, {}).get(key), want.get(table, {}).get(key)
            if isinstance(a, dict) and isinstance(b, dict):
                diff = [f for f in sorted(set(a) | set(b)) if a.get(f) != b.get(f)]
                doc.line("  " + ", ".join(f"{f} {_short(a.get(f))} (gold {_short(b.get(f))})" for f in diff))
            elif b is None and a is not None and marker.startswith("changed"):
                doc.line("  " + ", ".join(f"{f} {_short(v)}" for f, v in a.items())[:200])
            else:
                doc.line()


def _short(value: Any) -> str:
    return pretty_json(value).replace("\n", " ")[:40]


def review_lines(doc: Doc, record: Trajectory) -> None:
    """The decisions that stand: discard reason, note, edited, forced."""
    review = record.review
    if review is None or not review.history:
        return
    standing = [e for e in review.history if e.live]
    entry = standing[-1] if standing else None
    if entry is not None:
        doc.label("review").add(f"{entry.action} by {entry.user} at {entry.at}", "$text-muted")
        if entry.forced:
            doc.add("  forced", "bold $severity-warning")
        doc.line()
        if entry.tags:
            doc.label("reason" if entry.action == "discard" else "tags").line(", ".join(entry.tags))
        if entry.note:
            doc.label("note").indented(entry.note)
    if review.edited:
        doc.label("edited").line(f"{review.edits or 1} edit(s)" + ("; the latest forced" if review.forced else "")
                                 + " · the original is kept beside it", "$text-muted")
    undone = sum(1 for e in review.history if e.undone_by)
    if undone:
        doc.label("").line(f"{undone} earlier decision(s) undone", "$text-muted")


def record_content(record: Trajectory, *, expanded: bool = False, width: int = 0, number: int = 0,
                   pack: Any = None) -> Content:
    """A trajectory for review: what decides its worth first (verdict, the state against the gold state,
    the calls that changed the sandbox), then every step in order."""
    task = record.task
    doc = Doc(width)
    if number:
        doc.label("number").add(f"#{number}", "bold").add(f"   id {record.id[:12]}", "$text-muted")
    else:
        doc.label("id").add(record.id[:12], "bold")
    doc.add(f"   status {record.status or '(replayed)'}", "$text-muted")
    doc.add(f"   ended {record.end_reason}", "$text-muted").line()
    doc.label("template").line(task.template, "bold")
    doc.label("query").indented(task.query)
    doc.label("gold answer").line(pretty_json(task.gold_answer).replace("\n", " "), "$text-muted")
    if record.demonstrations is not None and record.demonstrations.items:
        doc.label("shown").line(record.demonstrations.summary(), "$text-muted")
    verdict_lines(doc, record)
    review_lines(doc, record)
    state_lines(doc, record)
    changing = state_changing(record, pack)
    for index in sorted(changing):
        step = record.steps[index]
        ran = step.executed and not step.has_error
        doc.label("changed" if index == min(changing) else "").add(f"step {index + 1} ", "bold $warning")
        doc.add(f"{step.action.tool}", "$accent").add(" ")
        doc.add(pretty_json(step.action.arguments).replace("\n", " ").replace("  ", ""), "$text-secondary")
        doc.line("" if ran else "  (refused: not run)", "$text-muted")
    unparsed = [s.index + 1 for s in record.steps if s.action is None]
    if unparsed:
        doc.label("unparsed").indented("step " + ", ".join(map(str, unparsed)) + ": no action could be read "
                                       "(the editor leaves these out; the raw reply is below)", "$severity-warning")
    doc.line()
    parts = [doc.content()]
    for step in record.steps:
        parts.append(step_content(step, expanded=expanded, width=width, changes_state=step.index in changing))
    return Content("\n\n").join(parts)
