"""The three tables of the main screen: hyperparameters by priority, trials, and the queue.

Each takes plain rows from a Snapshot (attributes down) and turns its keys into small messages
(messages up); none of them calls the study or the runner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from tui_tuner.ui.format import SHORT_SCALES, bar, fmt_short, fmt_value, short_range, spark
from tui_tuner.ui.model import ParamRow, QueueRow, TrialRow

# Plain ANSI colour names, so a 16-colour terminal shows the same distinctions.
STATUS_STYLE = {
    "running": "bold green",
    "paused": "bold yellow",
    "done": "",
    "failed": "bold red",
    "diverged": "magenta",
    "stopped": "dim",
    "queued": "dim",
}
PIN_MARK = "⚑"   # a pinned run: no automatic decision touches it
STATUS_SHORT = {"running": "run", "paused": "pause", "done": "done", "failed": "FAIL",
                "diverged": "diverg", "stopped": "stop", "queued": "queue"}


class SyncTable(DataTable):
    """A row-cursor table updated in place from keyed rows, keeping the cursor on the same row.

    `compact` (narrow terminals) drops the cell padding for one trailing space per cell, which
    saves a column per column; subclasses give COLUMNS and build rows in `rows_for`.
    """

    DEFAULT_CSS = """
    SyncTable { height: 1fr; }
    """
    COLUMNS: tuple[tuple[str, str], ...] = ()   # (label, key)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self._rows: list[tuple[str, tuple[Any, ...]]] = []
        self.compact: bool | None = None
        self._source: Any = None

    def set_compact(self, compact: bool) -> None:
        """Switch between the narrow and the wide form (rebuilds the columns)."""
        if compact == self.compact:
            return
        self.compact = compact
        self.clear(columns=True)
        self._rows = []
        self.cell_padding = 0 if compact else 1
        for label, key in self.COLUMNS:
            self.add_column(label + (" " if compact else ""), key=key)
        if self._source is not None:
            self.sync(self.rows_for(self._source))

    def show(self, data: Any) -> None:
        """Show this part of a snapshot."""
        self._source = data
        if self.compact is None:
            return  # not laid out yet: set_compact draws it
        self.sync(self.rows_for(data))

    def rows_for(self, data: Any) -> list[tuple[str, tuple[Any, ...]]]:
        """The (key, cells) rows for this data."""
        raise NotImplementedError

    def sync(self, rows: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Show exactly these rows (key, cells): changed cells are updated, a new order rebuilds."""
        if self.compact:
            rows = [(k, tuple(_pad(c) for c in cells)) for k, cells in rows]
        if rows == self._rows:
            return
        old_keys = [k for k, _ in self._rows]
        new_keys = [k for k, _ in rows]
        if old_keys == new_keys:
            columns = self.ordered_columns
            for (key, cells), (_, before) in zip(rows, self._rows, strict=True):
                for col, new, old in zip(columns, cells, before, strict=True):
                    if new != old:
                        # Re-measuring columns means a new layout: only when the cell got wider.
                        wider = _width(new) > col.content_width
                        self.update_cell(key, col.key, new, update_width=wider)
        else:
            current = self.selected_key
            self.clear()
            for key, cells in rows:
                self.add_row(*cells, key=key)
            if current in new_keys:
                self.move_cursor(row=new_keys.index(current), animate=False)
        self._rows = list(rows)

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor, or None when empty."""
        if not self._rows or not self.is_valid_row_index(self.cursor_row):
            return None
        return self._rows[self.cursor_row][0]

    def select_key(self, key: str) -> None:
        """Put the cursor on the row with this key, if it is shown."""
        keys = [k for k, _ in self._rows]
        if key in keys:
            self.move_cursor(row=keys.index(key), animate=False)


def _width(cell: Any) -> int:
    """Cells a table cell's text takes."""
    return cell.cell_len if isinstance(cell, Text) else cell_len(str(cell))


def _pad(cell: Any) -> Any:
    """A cell with one trailing space (the compact form's column gap)."""
    if isinstance(cell, Text):
        out = cell.copy()
        out.append(" ")
        return out
    return f"{cell} "


class ParamsTable(SyncTable):
    """Every hyperparameter in tier order: scale, current range, focused-run and best values, importance.

    Compact, it abbreviates scales and fixed ranges so all seven columns fit next to the run panel
    at 80 columns.
    """

    BINDINGS = [Binding("F", "freeze", "Freeze/unfreeze")]
    COLUMNS = (("param", "name"), ("T", "tier"), ("scale", "scale"), ("range", "range"), ("run", "run"),
               ("best", "best"), ("imp", "imp"))

    @dataclass
    class Freeze(Message):
        """Freeze or unfreeze this parameter."""

        name: str

    def rows_for(self, data: tuple[ParamRow, ...]) -> list[tuple[str, tuple[Any, ...]]]:
        """One row per parameter."""
        c = bool(self.compact)
        num = fmt_short if c else fmt_value
        out = []
        for p in data:
            name = Text(p.name, style="bold" if p.searched else "dim")
            if p.live:
                name.append("~", style="cyan")
            rng = Text(short_range(p.range) if c else p.range, style="" if p.searched else "dim")
            scale = SHORT_SCALES.get(p.scale, p.scale) if c else p.scale
            imp = Text(bar(p.importance, 4 if c else 8), style="cyan")
            if not c and p.importance is not None:
                imp.append(f" {p.importance:4.0%}")
            out.append((p.name, (name, str(p.tier), scale, rng, num(p.run), num(p.best), imp)))
        return out

    def action_freeze(self) -> None:
        """Ask the screen to freeze or unfreeze the selected parameter."""
        if self.selected_key is not None:
            self.post_message(self.Freeze(self.selected_key))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Freeze needs a selected parameter."""
        if action == "freeze" and self.selected_key is None:
            return None
        return True


class TrialsTable(SyncTable):
    """Every trial, best first or by start, with status, objective, a tiny curve and lineage.

    `chosen` turns True once the user moves its cursor (keys or mouse): until then the row under
    the cursor is where the table put it, not a choice (export then takes the best trial).
    """

    chosen = False

    def action_cursor_up(self) -> None:
        """Up a row: the user chose."""
        self.chosen = True
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        """Down a row: the user chose."""
        self.chosen = True
        super().action_cursor_down()

    def action_page_up(self) -> None:
        """Up a page: the user chose."""
        self.chosen = True
        super().action_page_up()

    def action_page_down(self) -> None:
        """Down a page: the user chose."""
        self.chosen = True
        super().action_page_down()

    def action_scroll_top(self) -> None:
        """To the first row: the user chose."""
        self.chosen = True
        super().action_scroll_top()

    def action_scroll_bottom(self) -> None:
        """To the last row: the user chose."""
        self.chosen = True
        super().action_scroll_bottom()

    async def _on_click(self, event: Any) -> None:
        self.chosen = True
        await super()._on_click(event)

    COLUMNS = (("#", "id"), ("status", "status"), ("objective", "objective"), ("step", "step"),
               ("curve", "curve"), ("from", "from"))
    DEVICE_COLUMN = ("dev", "device")   # after status, only with [study] devices

    def show_devices(self, on: bool) -> None:
        """Show the device column (the study gives runs devices) or not; rebuilds the columns on a change."""
        columns = TrialsTable.COLUMNS[:2] + ((self.DEVICE_COLUMN,) if on else ()) + TrialsTable.COLUMNS[2:]
        if columns == self.COLUMNS:
            return
        self.COLUMNS = columns
        if self.compact is not None:
            compact, self.compact = self.compact, None
            self.set_compact(compact)

    @dataclass
    class Watch(Message):
        """Show this trial in the run panel."""

        trial_id: int

    def rows_for(self, data: tuple[tuple[TrialRow, ...], int | None, int | None]) -> list:
        """One row per trial: data is (rows, best id, focused id)."""
        rows, best_id, focus_id = data
        width = 8 if self.compact else 12
        num = fmt_short if self.compact else fmt_value
        out = []
        for t in rows:
            ident = Text(f"{'▶' if t.id == focus_id else ' '}{t.id}")
            if t.id == best_id:
                ident.append("★", style="bold yellow")
            if t.pinned:
                ident.append(PIN_MARK, style="bold cyan")
            status = Text(STATUS_SHORT.get(t.status, t.status), style=STATUS_STYLE.get(t.status, ""))
            if t.waiting:   # a cluster job in Slurm's queue: submitted, not started
                status = Text("wait", style="yellow")
            # A stopped trial ranks by its value too, marked: its value is where it was cut short.
            obj = Text(fmt_value(t.objective) + ("·" if t.status == "stopped" and t.objective is not None else ""),
                       style="bold" if t.id == best_id else "dim" if t.status == "stopped" else "")
            device = (t.device or "",) if self.DEVICE_COLUMN in self.COLUMNS else ()
            out.append((str(t.id), (ident, status, *device, obj, num(t.step),
                                    Text(spark(t.curve, width), style="green"), t.lineage)))
        return out

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a trial: watch it."""
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Watch(int(event.row_key.value)))


class QueueTable(SyncTable):
    """The sampled settings waiting to run, in the order they will start."""

    BINDINGS = [
        Binding("enter", "request('edit')", "Edit"),
        Binding("r", "request('run')", "Run now"),
        Binding("d,delete", "request('drop')", "Drop", key_display="d"),
        Binding("K", "request('up')", "Move up"),
        Binding("J", "request('down')", "Move down"),
    ]
    COLUMNS = (("#", "id"), ("src", "src"), ("setting", "setting"))

    @dataclass
    class Request(Message):
        """Do something with a queued setting: edit, run, drop, up, down."""

        action: str
        trial_id: int

    def rows_for(self, data: tuple[QueueRow, ...]) -> list:
        """One row per queued setting, in queue order."""
        num = fmt_short if self.compact else fmt_value
        out = []
        for q in data:
            src = q.source if q.parent is None else f"#{q.parent}"
            setting = " ".join(f"{k}={num(v)}" for k, v in q.params.items())
            out.append((str(q.id), (str(q.id), src, setting)))
        return out

    def action_request(self, action: str) -> None:
        """Post the request for the selected queued setting."""
        key = self.selected_key
        if key is not None:
            self.post_message(self.Request(action, int(key)))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Queue keys need a selected setting."""
        if action == "request" and self.selected_key is None:
            return None
        return True
