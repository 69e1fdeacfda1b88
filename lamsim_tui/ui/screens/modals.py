"""Small modal questions. Each only dismisses with a value; the caller decides what happens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, ProgressBar, Select, Static

from lamsim_tui.ui.queue import RowFilter


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
            yield Label("text (query, thoughts, observations, id)")
            yield Input(self.current.text, placeholder="words that must all appear", id="filter-text")
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
        return RowFilter(status=self._value("#filter-status"), template=self._value("#filter-template"),
                         code=self._value("#filter-code"), text=self.query_one("#filter-text", Input).value)

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


class ReasonScreen(ModalScreen[str | None]):
    """Ask for an optional text (a discard reason, a note). Enter confirms (empty is fine), escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="reason.cancel")]

    def __init__(self, title: str, prompt: str, *, placeholder: str = "", required: bool = False):
        super().__init__()
        self.title_text = title
        self.prompt = prompt
        self.placeholder = placeholder
        self.required = required

    def compose(self) -> ComposeResult:
        with Vertical(id="reason-dialog", classes="dialog"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            yield Label(self.prompt, markup=False)
            yield Input(placeholder=self.placeholder, id="reason-input")
            yield Static("enter: confirm · escape: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

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
    clean: bool
    out: str
    statuses: tuple[str, ...]


class ExportScreen(ModalScreen[ExportChoice | None]):
    """Choose the export format, clean or not, statuses and the output file."""

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
            yield Checkbox("clean: leave out steps that feedback rejected", False, id="export-clean")
            yield Checkbox("include discarded trajectories", False, id="export-discarded")
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
        statuses = ("accepted", "discarded") if self.query_one("#export-discarded", Checkbox).value else ("accepted",)
        if fmt and not out.endswith(".jsonl"):
            out += ".jsonl"
        return ExportChoice(fmt=fmt, clean=self.query_one("#export-clean", Checkbox).value, out=out,
                            statuses=statuses)

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
