"""Modal dialogs: parameter forms (adjust, fork, edit), one-line prompts, confirmation, run output.

A dialog checks what it can itself (each value through `Param.parse`), then hands the result to an
`apply` coroutine; a TunerError from it is shown inside the dialog with the rule that was broken,
and the dialog stays open so the user can fix the value. Success closes it with a message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from tui_tuner.core.formatting import short_value
from tui_tuner.core.param import Param
from tui_tuner.core.printable import printable
from tui_tuner.errors import InputError, SpaceError, TunerError
from tui_tuner.ui.format import fmt_value

Apply = Callable[[Any], Awaitable[str | None]]


class Scroll(VerticalScroll, can_focus=False):
    """A scrolling area that never takes the focus from the fields inside it."""


def edit_text(value: Any) -> str:
    """A value as the text a field starts with: short (0.01257, not 0.012565746794364216).

    Only fields whose text the user changed are applied, so an untouched field keeps its full value.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return short_value(value)
    return str(value)


class Dialog(ModalScreen[str | None]):
    """A titled box with a body, an error line and a hint; Enter applies, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "Input"

    def __init__(self, title: str, apply: Apply | None = None, *, intro: str = "",
                 hint: str = "enter apply · esc cancel", id: str | None = None) -> None:
        super().__init__(id=id)
        self.title_text = title
        self.intro = intro
        self.apply = apply
        self.hint = hint
        self.busy = False

    def compose(self) -> ComposeResult:
        """Box with title, intro, body, error and hint."""
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", id="dialog-title", markup=False)
            if self.intro:
                # Not markup: "[tuner]" or a value like "[0.1, 1]" must show as typed.
                yield Static(self.intro, classes="dialog-intro", markup=False)
            yield from self.body()
            yield Static("", classes="dialog-error", id="dialog-error")
            yield Static(self.hint, classes="dialog-hint", markup=False)

    def body(self) -> ComposeResult:
        """The dialog's own widgets."""
        return iter(())

    def retitle(self, title: str) -> None:
        """Change the title while open (the fork form, once it knows the step it forks at)."""
        self.title_text = title   # what compose shows, if it has not run yet
        for label in self.query("#dialog-title").results(Label):
            label.update(title)

    def show_error(self, message: str) -> None:
        """Show why the input was refused (the dialog stays open)."""
        self.query_one("#dialog-error", Static).update(Text(message, style="bold red"))

    @property
    def error_text(self) -> str:
        """The error line as plain text ('' when none), for tests and screen readers."""
        content = self.query_one("#dialog-error", Static).content
        return content.plain if isinstance(content, Text) else str(content)

    def submit(self, value: Any) -> None:
        """Hand value to `apply` off the handler; close on success, show the error otherwise."""
        if self.busy:
            return
        if self.apply is None:
            self.dismiss(value)
            return
        self.busy = True
        self.query_one("#dialog-error", Static).update(Text("working…", style="dim"))
        self.run_worker(self._apply(value), exclusive=True)

    async def _apply(self, value: Any) -> None:
        try:
            assert self.apply is not None
            result = await self.apply(value)
        except TunerError as e:
            self.busy = False
            self.show_error(e.message)
            return
        except Exception as e:  # noqa: BLE001 - a bug must not kill the app; show it
            self.busy = False
            self.show_error(f"{type(e).__name__}: {e}")
            return
        self.busy = False
        self.dismiss(result)

    def action_cancel(self) -> None:
        """Close without applying (not while applying: the command is already on its way, and
        closing would only hide its result)."""
        if self.busy:
            self.query_one("#dialog-error", Static).update(
                Text("still applying… this closes when it is done", style="dim"))
            return
        self.dismiss(None)


class ParamForm(Dialog):
    """One field per parameter, prefilled; only fields whose text changed are applied."""

    def __init__(self, title: str, fields: list[tuple[Param, Any]], apply: Apply, *, intro: str = "",
                 allow_empty: bool = False, id: str | None = None) -> None:
        super().__init__(title, apply, intro=intro, id=id)
        self.fields = fields
        self.initial = [edit_text(v) for _, v in fields]
        self.allow_empty = allow_empty

    def body(self) -> ComposeResult:
        """A grid of name, range and value field."""
        with Scroll(classes="form-scroll"), Grid(classes="form-grid"):
            for i, (p, _) in enumerate(self.fields):
                yield Label(p.name, classes="form-name", markup=False)
                yield Label(f"{p.scale_label} {p.range_label()}", classes="form-range", markup=False)
                yield Input(self.initial[i], id=f"field-{i}", classes="form-input")

    def field(self, name: str) -> Input:
        """The input of a parameter (for tests)."""
        for i, (p, _) in enumerate(self.fields):
            if p.name == name:
                return self.query_one(f"#field-{i}", Input)
        raise KeyError(name)

    def changes(self) -> dict[str, Any]:
        """The parsed values of the changed fields; InputError names the first bad one."""
        out: dict[str, Any] = {}
        for i, (p, _) in enumerate(self.fields):
            text = self.query_one(f"#field-{i}", Input).value
            if text.strip() == self.initial[i]:
                continue
            try:
                out[p.name] = p.parse(text)
            except SpaceError as e:   # the space's rule, broken by what was typed
                raise InputError(e.message) from None
        return out

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            changes = self.changes()
        except InputError as e:
            self.show_error(e.message)
            return
        if not changes and not self.allow_empty:
            self.show_error("nothing changed: edit a value, or esc to cancel")
            return
        self.submit(changes)


class Prompt(Dialog):
    """One line of input, checked by `parse` (a TunerError is shown in the dialog)."""

    def __init__(self, title: str, label: str, value: str, apply: Apply,
                 parse: Callable[[str], Any] = str, *, intro: str = "", id: str | None = None) -> None:
        super().__init__(title, apply, intro=intro, id=id)
        self.label = label
        self.value = value
        self.parse = parse

    def body(self) -> ComposeResult:
        """Label and field."""
        yield Label(self.label, classes="prompt-label", markup=False)
        yield Input(self.value, id="prompt-input")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            value = self.parse(event.value)
        except TunerError as e:
            self.show_error(e.message)
            return
        self.submit(value)


class Confirm(Dialog):
    """A yes/no question: y or Enter says yes, n or Escape says no."""

    BINDINGS = [Binding("y,enter", "yes", "Yes"), Binding("n,escape", "cancel", "No")]

    def __init__(self, title: str, question: str, *, hint: str = "y yes · n no", id: str | None = None) -> None:
        super().__init__(title, None, intro=question, hint=hint, id=id)

    def action_yes(self) -> None:
        """Answer yes."""
        self.dismiss("yes")


class OutputView(Dialog):
    """A trial's status, reason and the last lines of its output."""

    BINDINGS = [Binding("escape,q,v", "cancel", "Close")]

    def __init__(self, trial_id: int, status: str, reason: str | None, lines: list[str]) -> None:
        intro = f"status {status}" + (f": {printable(reason.splitlines()[0])}" if reason else "")
        super().__init__(f"Trial #{trial_id} output", None, intro=intro, hint="esc close", id="output")
        self.lines = lines

    def body(self) -> ComposeResult:
        """The output lines, scrollable."""
        # The trainer's own output: its escape sequences must not reach the terminal (retitle, wipe it).
        text = printable("\n".join(self.lines), newlines=True) if self.lines else "(no output)"
        with VerticalScroll(classes="output-scroll"):
            yield Static(Text(text), id="output-text")


def parse_count(text: str) -> int:
    """A number of settings to sample: 1..1000."""
    try:
        n = int(text.strip())
    except ValueError:
        raise InputError(f"how many: must be a whole number, got {text.strip()!r}") from None
    if not 1 <= n <= 1000:
        raise InputError(f"how many: must be between 1 and 1000, got {n}")
    return n


def parse_stage(text: str) -> int:
    """A priority stage: 1..4."""
    try:
        n = int(text.strip())
    except ValueError:
        raise InputError(f"stage: must be 1, 2, 3 or 4, got {text.strip()!r}") from None
    if not 1 <= n <= 4:
        raise InputError(f"stage: must be 1, 2, 3 or 4 (search tiers <= stage), got {n}")
    return n


def parse_path(text: str) -> str:
    """An export path: not empty."""
    s = text.strip()
    if not s:
        raise InputError("path: give a file name, e.g. best.toml")
    return s


__all__ = ["Confirm", "Dialog", "OutputView", "ParamForm", "Prompt", "edit_text", "fmt_value",
           "parse_count", "parse_path", "parse_stage"]
