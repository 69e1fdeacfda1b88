"""Small modal questions. Each only dismisses with a value; the caller decides what happens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, ProgressBar, Select, Static
from textual.widgets.option_list import Option

from lamsim_tui.ui.queue import RowFilter
from lamsim_tui.ui.text import literal


class FilterScreen(ModalScreen[RowFilter | None]):
    """Narrow a list by status, template, feedback code and text. Enter applies, escape cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="filter.cancel"),
        Binding("ctrl+r", "reset", "Clear all", id="filter.reset"),
    ]

    def __init__(self, current: RowFilter, *, statuses: Iterable[str], templates: Iterable[str], codes: Iterable[str]):
        super().__init__()
        self.current = current
        self.statuses = list(statuses)
        self.templates = sorted(set(templates))
        self.codes = sorted(set(codes))

    def compose(self) -> ComposeResult:
        with Vertical(id="filter-dialog", classes="dialog"):
            yield Static("Filter / search", classes="dialog-title")
            yield Label("words (query, thoughts, observations, id), or code:… template:… status:…")
            yield Input(self.current.text, placeholder="e.g. refund code:loop.repeat template:case_status",
                        id="filter-text")
            yield Label("status")
            yield Select([(s, s) for s in self.statuses], value=self.current.status or Select.NULL,
                         prompt="any status", id="filter-status")
            yield Label("template")
            yield Select([(t, t) for t in self.templates], value=self.current.template or Select.NULL,
                         prompt="any template", id="filter-template")
            yield Label("feedback code")
            yield Select([(c, c) for c in self.codes], value=self.current.code or Select.NULL,
                         prompt="any code", id="filter-code")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply", variant="primary", id="filter-apply")
                yield Button("Clear", id="filter-clear")
                yield Button("Cancel", id="filter-cancel")

    def on_mount(self) -> None:
        self.query_one("#filter-text", Input).focus()

    def _value(self, selector: str) -> str | None:
        value = self.query_one(selector, Select).value
        return None if value is Select.NULL or value is None else str(value)

    def _result(self) -> RowFilter:
        picked = RowFilter(status=self._value("#filter-status"), template=self._value("#filter-template"),
                           code=self._value("#filter-code"))
        return RowFilter.parse(self.query_one("#filter-text", Input).value, base=picked)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(self._result())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "filter-apply":
            self.dismiss(self._result())
        elif event.button.id == "filter-clear":
            self.dismiss(RowFilter())
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_reset(self) -> None:
        self.dismiss(RowFilter())


class ReasonInput(Input):
    """The reason box: while it is empty, a digit that names an offered reason is not typed but picks it."""

    def __init__(self, *args, choices: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.choices = choices

    def check_consume_key(self, key: str, character: str | None) -> bool:
        if not self.value and character is not None and character in "123456789" and int(character) <= self.choices:
            return False  # left to the dialog's 1-9 keys
        return super().check_consume_key(key, character)


class ReasonScreen(ModalScreen[str | None]):
    """Ask for an optional text (a discard reason, a note). Enter confirms (empty is fine), escape cancels.

    With ``choices`` (configured and recent reasons), `1`-`9` pick one in a single key while the box is empty.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="reason.cancel"),
        *(Binding(str(n), f"choose({n})", f"reason {n}", show=False, priority=True, id=f"reason.choose{n}")
          for n in range(1, 10)),
    ]

    def __init__(self, title: str, prompt: str, *, placeholder: str = "", required: bool = False,
                 choices: Iterable[str] = ()):
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.placeholder = placeholder
        self.required = required
        self.choices = list(choices)[:9]

    def compose(self) -> ComposeResult:
        with Vertical(id="reason-dialog", classes="dialog"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            if self.choices:
                doc = Content("\n").join(
                    Content.assemble((f" {n} ", "bold $accent"), " ", literal(choice))
                    for n, choice in enumerate(self.choices, start=1))
                yield Static(doc, id="reason-choices")
            yield Label(self.prompt, markup=False)
            yield ReasonInput(placeholder=self.placeholder, id="reason-input", choices=len(self.choices))
            hint = "1-9: that reason (while the box is empty) · " if self.choices else ""
            yield Static(f"{hint}enter: confirm · escape: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "choose":
            # A digit picks a reason only while nothing is typed; otherwise it is text.
            n = int(parameters[0])
            return n <= len(self.choices) and not self.query_one("#reason-input", Input).value
        return True

    def action_choose(self, n: int) -> None:
        self.dismiss(self.choices[n - 1])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if self.required and not value:
            self.notify("a note is required here", severity="warning", markup=False)
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class ExportChoice:
    fmt: str
    out: str
    kind: str = "sft"
    keep_rejected: bool = False
    statuses: tuple[str, ...] | None = None  # None: the kind's default (sft, pairs: accepted; kto: both)


EXPORT_KINDS = (
    ("sft: whole conversations", "sft"),
    ("pairs: step-level preference pairs (re-verified edits)", "pairs"),
    ("kto: trajectories labelled good or bad", "kto"),
)


class ExportScreen(ModalScreen[ExportChoice | None]):
    """Choose the export format and kind, what to do with rejected steps, statuses and the output file
    (the same choices as `lamsim export`; see docs/export.md)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="export.cancel")]

    def __init__(self, default_out: str, formats: Iterable[str]):
        super().__init__()
        self.default_out = default_out
        self.formats = list(formats)

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog", classes="dialog"):
            yield Static("Export trajectories", classes="dialog-title")
            yield Label("file (enter exports)")
            yield Input(self.default_out, id="export-out")
            yield Label("format")
            yield Select([(f, f) for f in self.formats], value=self.formats[0], allow_blank=False, id="export-format")
            yield Label("kind")
            yield Select(list(EXPORT_KINDS), value="sft", allow_blank=False, id="export-kind")
            yield Checkbox("keep rejected steps as context (chat: weight 0)", False,
                           id="export-keep-rejected")
            yield Checkbox("include discarded trajectories (kto always does)", False, id="export-discarded")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="export-go")
                yield Button("Cancel", id="export-cancel")

    def on_mount(self) -> None:
        self.query_one("#export-out", Input).focus()
        self._format = self.formats[0]

    def on_select_changed(self, event: Select.Changed) -> None:
        """Keep the file name's format part in step with the format, unless the operator renamed it."""
        if event.select.id != "export-format" or event.value is Select.NULL:
            return
        out = self.query_one("#export-out", Input)
        old, new = f"-{self._format}.jsonl", f"-{event.value}.jsonl"
        if out.value.endswith(old):
            out.value = out.value[: -len(old)] + new
        self._format = str(event.value)

    def _choice(self) -> ExportChoice | None:
        out = self.query_one("#export-out", Input).value.strip()
        if not out:
            self.notify("name the output file", severity="warning", markup=False)
            return None
        fmt = str(self.query_one("#export-format", Select).value)
        kind = str(self.query_one("#export-kind", Select).value)
        statuses = ("accepted", "discarded") if self.query_one("#export-discarded", Checkbox).value else None
        if fmt and not out.endswith(".jsonl"):
            out += ".jsonl"
        return ExportChoice(fmt=fmt, out=out, kind=kind, statuses=statuses,
                            keep_rejected=self.query_one("#export-keep-rejected", Checkbox).value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        choice = self._choice()
        if choice:
            self.dismiss(choice)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export-go":
            choice = self._choice()
            if choice:
                self.dismiss(choice)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ProgressDialog(ModalScreen[None]):
    """Shows a running job's progress; the job closes it."""

    def __init__(self, title: str):
        super().__init__()
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="progress-dialog", classes="dialog"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            yield ProgressBar(total=None, show_eta=False, id="job-progress")
            yield Static("", id="job-status", markup=False)

    def advance(self, done: int, total: int | None) -> None:
        self.query_one("#job-progress", ProgressBar).update(total=total, progress=done)


class PickScreen(ModalScreen[str | None]):
    """Pick one value (a feedback code, a template, a status) from those listed, with how many have it.

    Enter applies it; the first line clears that part of the filter; escape cancels.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="pick.cancel")]

    def __init__(self, what: str, counts: dict[str, int], *, current: str | None = None):
        super().__init__()
        self.what = what
        self.counts = counts
        self.current = current

    def compose(self) -> ComposeResult:
        ordered = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        options = [Option(Content.styled(f"any {self.what}", "$text-muted"), id="\0")]
        options += [Option(Content.assemble((f"{n:>5}  ", "$text-muted"), literal(value)), id=value)
                    for value, n in ordered]
        with Vertical(id="pick-dialog", classes="dialog"):
            yield Static(f"Filter by {self.what}", classes="dialog-title", markup=False)
            yield OptionList(*options, id="pick-list")
            yield Static("↑↓ then enter: filter · escape: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        options.highlighted = ids.index(self.current) if self.current in ids else (1 if len(ids) > 1 else 0)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss("" if event.option.id == "\0" else event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class BulkChoice:
    action: str  # "accept" | "discard"
    reason: str = ""
    note: str | None = None


class BulkScreen(ModalScreen[BulkChoice | None]):
    """One decision over what is listed: accept those that passed with no findings, or discard all of it."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="bulk.cancel"),
        Binding("ctrl+a", "accept", "Accept clean", id="bulk.accept", priority=True),
        Binding("ctrl+d", "discard", "Discard all", id="bulk.discard", priority=True),
    ]

    def __init__(self, *, clean: int, listed: int, filter_text: str, reasons: Iterable[str] = ()):
        super().__init__()
        self.clean = clean
        self.listed = listed
        self.filter_text = filter_text
        self.reasons = list(reasons)[:9]

    def compose(self) -> ComposeResult:
        with Vertical(id="bulk-dialog", classes="dialog"):
            yield Static("Decide all listed at once", classes="dialog-title")
            yield Static(Content.assemble(("listed ", "$text-muted"), (f"{self.listed}", "bold"),
                                          ("   filter ", "$text-muted"), literal(self.filter_text)), id="bulk-scope")
            yield Label("reason for a discard (comma-separated tags; the recent ones:"
                        + (" " + "; ".join(self.reasons) if self.reasons else " none yet") + ")", markup=False)
            yield Input(placeholder="e.g. wrong-answer, loop", id="bulk-reason")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"Accept {self.clean} that passed with no findings", variant="success",
                             id="bulk-accept", disabled=not self.clean)
                yield Button(f"Discard all {self.listed}", variant="error", id="bulk-discard")
                yield Button("Cancel", id="bulk-cancel")
            yield Static("ctrl+a: accept the clean ones · ctrl+d: discard all listed · escape: cancel · "
                         "either is one decision: u undoes all of it", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#bulk-accept" if self.clean else "#bulk-reason").focus()

    def _reason(self) -> str:
        return self.query_one("#bulk-reason", Input).value.strip()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "bulk-accept":
            self.action_accept()
        elif event.button.id == "bulk-discard":
            self.action_discard()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_discard()

    def action_accept(self) -> None:
        if self.clean:
            self.dismiss(BulkChoice("accept"))

    def action_discard(self) -> None:
        self.dismiss(BulkChoice("discard", reason=self._reason()))

    def action_cancel(self) -> None:
        self.dismiss(None)
