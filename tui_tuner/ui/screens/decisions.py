"""The decision log: every automatic decision (early stop, autopilot, auto-k), newest first, undoable.

The screen lists what the study keeps (the back end reads it on its command thread, never on the
loop) and reloads when a new decision comes. `u` undoes the selected one through the session,
whatever its kind: each kind's undo is registered with the session by whoever makes such decisions.
An undone decision says what its undo did, and cannot be undone twice.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

if TYPE_CHECKING:
    from tui_tuner.study.decision_log import Decision
    from tui_tuner.ui.tuner import Tuner

RELOAD = 0.25   # seconds between checks for new decisions
WIDTH = 90      # a decision's message in the table is cut here (the line below shows it whole)


def when(t: float) -> str:
    """A decision's time: HH:MM:SS today, else the date too."""
    lt = time.localtime(t)
    today = time.localtime()
    return time.strftime("%H:%M:%S" if lt[:3] == today[:3] else "%m-%d %H:%M", lt)


def cut(text: str, width: int) -> str:
    """One line of text, cut with an ellipsis."""
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[: width - 1] + "…"


class DecisionsScreen(Screen):
    """The study's automatic decisions with their numbers; u undoes the selected one."""

    CSS_PATH = "decisions.tcss"
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("u", "undo", "Undo"),
        Binding("A", "autopilot", "Autopilot on/off"),
        Binding("escape,D", "back", "Back", key_display="esc"),
    ]

    def __init__(self) -> None:
        super().__init__(id="decisions")
        self.decisions: list[Decision] = []
        self.undoable: frozenset[str] = frozenset()
        self._seen = -1
        self._loading = False

    @property
    def tuner(self) -> Tuner:
        """The app (typed)."""
        return self.app  # type: ignore[return-value]

    @property
    def table(self) -> DataTable:
        """The decisions table."""
        return self.query_one("#decisions-table", DataTable)

    def compose(self) -> ComposeResult:
        """Title line, the table, the selected decision in full, footer."""
        yield Static("", id="decisions-title", markup=False)
        yield DataTable(id="decisions-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="decisions-detail", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Columns, the first load, and a timer that reloads when a decision comes."""
        self.table.add_columns("#", "time", "kind", "trial", "decision", "undo")
        self.table.focus()
        self.reload()
        self.set_interval(RELOAD, self._maybe_reload)

    def _maybe_reload(self) -> None:
        if self.tuner.backend.decision_count != self._seen:
            self.reload()

    def reload(self) -> None:
        """Read the decisions again (on the back end's command thread)."""
        if not self._loading:
            self._loading = True
            self.run_worker(self._load(), group="decisions", exclusive=True)

    async def _load(self) -> None:
        try:
            seen = self.tuner.backend.decision_count
            got = await self.tuner.call_or_say(self._read)
            if got is not None:
                self._seen = seen
                self.show(*got)
        finally:
            self._loading = False

    def _read(self) -> tuple[list[Decision], frozenset[str], str]:
        """On the command thread: the decisions newest first, the kinds that undo, the autopilot's state."""
        session = self.tuner.session
        return session.decisions(), session.undoable_kinds(), session.autopilot_state()

    def show(self, decisions: list[Decision], undoable: frozenset[str], autopilot: str) -> None:
        """Draw the decisions (newest first), keeping the cursor on the same decision."""
        self.decisions, self.undoable = decisions, frozenset(undoable)
        n = len(decisions)
        undone = sum(d.is_undone for d in decisions)
        self.query_one("#decisions-title", Static).update(
            f"Decisions · {n} ({undone} undone) · newest first · autopilot {autopilot}")
        table = self.table
        keep = self.selected.id if self.selected is not None else None
        table.clear()
        for d in decisions:
            state = "undone" if d.is_undone else ("" if d.kind in self.undoable else "-")
            table.add_row(str(d.id), when(d.t), d.kind, f"#{d.trial_id}" if d.trial_id is not None else "",
                          cut(d.message, WIDTH), state, key=str(d.id))
        if keep is not None and str(keep) in [str(k.value) for k in table.rows]:
            table.move_cursor(row=table.get_row_index(str(keep)))
        self._detail()
        self.refresh_bindings()

    @property
    def selected(self) -> Decision | None:
        """The decision under the cursor."""
        table = self.table
        if not self.decisions or table.row_count == 0:
            return None
        row = table.cursor_row
        return self.decisions[row] if 0 <= row < len(self.decisions) else None

    @on(DataTable.RowHighlighted, "#decisions-table")
    def _moved(self) -> None:
        self._detail()
        self.refresh_bindings()

    def _detail(self) -> None:
        d = self.selected
        if d is None:
            text = "No automatic decision yet."
        else:
            text = f"#{d.id} {d.kind}: {d.message}"
            if d.is_undone:
                text += f"\nundone: {d.undone}"
        self.query_one("#decisions-detail", Static).update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Undo is greyed on an undone decision and on a kind nothing can undo."""
        if action == "undo":
            d = self.selected
            return True if d is not None and not d.is_undone and d.kind in self.undoable else None
        return True

    def action_undo(self) -> None:
        """Undo the selected decision (a stopped run resumes, a fork stops, k goes back)."""
        d = self.selected
        if d is None:
            return
        if d.is_undone:
            self.tuner.say(f"decision #{d.id} was already undone: {d.undone}", title="Undo", severity="warning")
            return
        self.run_worker(self._undo(d.id), group="undo")

    async def _undo(self, decision_id: int) -> None:
        message = await self.tuner.call_or_say(self.tuner.session.undo_decision, decision_id)
        if message:
            self.tuner.say(message, title="Undo")
        self.reload()

    async def action_autopilot(self) -> None:
        """Turn the autopilot on or off (as on the main screen)."""
        message = await self.tuner.call_or_say(self.tuner.session.toggle_autopilot)
        if message:
            self.tuner.say(message, title="Autopilot")
        self.reload()

    def action_back(self) -> None:
        """Back to the main screen."""
        self.app.pop_screen()


def rows(screen: DecisionsScreen) -> list[dict[str, Any]]:
    """The table as the user reads it (for tests): one dict per row, newest first."""
    table = screen.table
    names = [str(c.label) for c in table.columns.values()]
    return [dict(zip(names, (str(c) for c in table.get_row_at(i)), strict=True)) for i in range(table.row_count)]
