"""The key table, built from the bindings themselves so it never disagrees with them."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from tui_tuner.ui.screens.dialogs import Dialog
from tui_tuner.ui.widgets.tables import ParamsTable, QueueTable

NOTES = (
    "Tab moves between the tables. A parameter marked ~ is live (adjustable while it trains); a dim one is "
    "not searched now. Zero-code runs cannot be adjusted live: fork them."
)


def help_sections(main: list[Binding]) -> list[tuple[str, list[Binding]]]:
    """The key table's sections, from the main screen's bindings and the tables' and dialogs' own."""
    from tui_tuner.ui.screens.main_keys import BINDINGS as HAND_KEYS

    return [
        ("Main screen", [b for b in main if b.show and b not in HAND_KEYS]),
        ("Hand moves, auto-k", [b for b in HAND_KEYS if b.show]),
        ("Params table", list(ParamsTable.BINDINGS)),
        ("Trials table", [Binding("enter", "watch", "Watch this trial")]),
        ("Queue table", list(QueueTable.BINDINGS)),
        ("Dialogs", [Binding("enter", "apply", "Apply"), *Dialog.BINDINGS,
                     Binding("tab", "next", "Next field")]),
        ("Anywhere", [Binding("tab", "focus", "Next table"), Binding("ctrl+q", "quit", "Quit")]),
    ]


def key_text(binding: Binding) -> str:
    """How a binding's keys read in the table."""
    if binding.key_display:
        return binding.key_display
    names = {"question_mark": "?", "right_square_bracket": "]", "left_square_bracket": "[",
             "enter": "enter", "delete": "del"}
    return " ".join(names.get(k, k) for k in binding.key.split(","))


def key_table(sections: list[tuple[str, list[Binding]]]) -> Table:
    """The sections as key/description pairs: the first section on the left, the others on the right
    (so the whole table fits an 80x24 terminal)."""

    def column(parts: list[tuple[str, list[Binding]]]) -> Table:
        t = Table(box=None, show_header=False, padding=(0, 1, 0, 0), expand=False)
        t.add_column("key", style="bold", no_wrap=True)
        t.add_column("does", no_wrap=True)
        for title, bindings in parts:
            t.add_row(Text(title, style="bold underline"), "")
            for b in bindings:
                t.add_row(key_text(b), b.description)
        return t

    grid = Table.grid(padding=(0, 3))
    grid.add_row(column(sections[:1]), column(sections[1:]))
    return grid


class HelpScreen(ModalScreen[None]):
    """Every key of the app, by where it works."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, sections: list[tuple[str, list[Binding]]]) -> None:
        super().__init__(id="help")
        self.sections = sections

    def compose(self) -> ComposeResult:
        """Title, key table, notes."""
        with Vertical(classes="dialog help"):
            yield Label("Keys (esc closes)", classes="dialog-title")
            with VerticalScroll(classes="help-scroll"):
                yield Static(key_table(self.sections), id="help-table")
                yield Static(NOTES, classes="dialog-intro", markup=False)

    def action_close(self) -> None:
        """Close the help."""
        self.dismiss(None)
