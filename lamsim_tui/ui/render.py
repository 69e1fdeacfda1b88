"""Content for steps, tasks and trajectories, shared by the live panes, the review detail and the
edit preview. Every piece of model output or tool result goes through `text.literal`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual.content import Content

from lamsim_tui.record import Action, Finish, GoldCall, Step, Trajectory
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


def step_content(step: Step | StepLive, *, expanded: bool = False, title_suffix: str = "", width: int = 0) -> Content:
    """A stored step, or a live one (whose observation is None until it is observed)."""
    doc = Doc(width)
    doc.add(f"step {step.index + 1}", "bold $primary")
    if title_suffix:
        doc.add(f"  {title_suffix}", "$text-muted")
    doc.line()
    if step.thought:
        doc.label("thought").indented(step.thought)
    action_lines(doc, step.action, step.raw)
    observation = step.observation
    if observation is None:
        doc.label("observation").line("…", "$text-muted")
    elif observation != "":
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
    """The last few lines of text being generated, cut to fit a fixed-height area."""
    rows: list[str] = []
    for line in literal(text).split("\n"):
        rows.extend(line[i:i + width] for i in range(0, max(len(line), 1), width))
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
                 show_gold: bool = False, header: str = "", width: int = 0) -> Content:
    doc = Doc(width)
    if header:
        doc.line(header, "$text-muted")
    doc.label("template").line(template, "bold")
    doc.label("query").indented(query)
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


def record_content(record: Trajectory, *, expanded: bool = False, width: int = 0) -> Content:
    task = record.task
    doc = Doc(width)
    doc.label("id").add(record.id[:12], "bold").add(f"   status {record.status or '(replayed)'}", "$text-muted")
    doc.add(f"   ended {record.end_reason}", "$text-muted").line()
    doc.label("template").line(task.template, "bold")
    doc.label("query").indented(task.query)
    doc.label("gold answer").line(pretty_json(task.gold_answer).replace("\n", " "), "$text-muted")
    verdict_lines(doc, record)
    doc.line()
    parts = [doc.content()]
    for step in record.steps:
        parts.append(step_content(step, expanded=expanded, width=width))
    return Content("\n\n").join(parts)
