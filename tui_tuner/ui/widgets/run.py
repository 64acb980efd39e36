"""The focused run: status, step, latest metrics, elapsed time and its live curves."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from tui_tuner.printable import printable
from tui_tuner.ui.format import fmt_duration, fmt_value
from tui_tuner.ui.model import RunView
from tui_tuner.ui.widgets.chart import Chart
from tui_tuner.ui.widgets.tables import PIN_MARK, STATUS_STYLE


def set_if_changed(widget: Any, attribute: str, value: Any) -> None:
    """Set a widget attribute only when it differs: setting it at all repaints (or re-lays out) it."""
    if getattr(widget, attribute) != value:
        setattr(widget, attribute, value)


def run_title(run: RunView | None) -> str:
    """The panel's border title: 'Run #12', its device ('Run #12 · GPU 1') and its lineage for a fork
    ('Run #12 · fork of #3@400').

    The lineage is up there rather than in the header line, which it pushed past the edge at 80
    columns.
    """
    if run is None:
        return "Run"
    on = f" · GPU {run.device}" if run.device is not None else ""
    if run.parent is None:
        return f"Run #{run.id}{on}"
    at = f"@{run.fork_step}" if run.fork_step is not None else ""
    return f"Run #{run.id}{on} · fork of #{run.parent}{at}{' (inexact)' if run.inexact else ''}"


def run_header(run: RunView | None) -> Text:
    """'#12 running  step 1200  42s' (or a hint when there is no run)."""
    if run is None:
        return Text("no run yet: n samples settings, the queue starts them", style="dim")
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"#{run.id} ", style="bold")
    text.append(run.status, style=STATUS_STYLE.get(run.status, ""))
    if run.pinned:
        text.append(f" {PIN_MARK}pinned", style="bold cyan")
    if run.stalled:
        text.append(" (stalled)", style="bold red")
    if run.waiting:
        text.append(f" {run.waiting}", style="yellow")
    text.append(f"  step {fmt_value(run.step)}  {fmt_duration(run.elapsed)}")
    if not run.can_adjust and run.active:
        text.append("  (no live adjust)", style="dim")
    return text


def run_metrics(run: RunView | None) -> Text:
    """Latest values of every metric the run reported, or why it ended."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if run is None:
        return text
    for i, (name, value) in enumerate(run.metrics):
        if i:
            text.append("  ")
        text.append(f"{printable(name)} ", style="dim")
        text.append(fmt_value(value))
    if run.reason and not run.active:
        first = printable(run.reason.splitlines()[0])
        if run.metrics:
            text.append("  ")
        text.append(first, style="red" if run.status in ("failed", "diverged") else "dim")
    return text


class RunPanel(Vertical):
    """Header lines and one chart per curve (loss, and the objective when it differs)."""

    # What is shown: the focused run and the log-y switch, replaced together each frame (an equal
    # pair draws nothing); the border title and the objective chart's visibility follow from them.
    # No repaint of the panel itself: its children repaint what changed (the header, metrics and
    # charts change every frame; the border only with the title, which repaints it).
    shown: reactive[tuple[RunView | None, bool] | None] = reactive(None, init=False, repaint=False)
    heading: reactive[str] = reactive("", init=False)
    objective_shown: reactive[bool] = reactive(True, init=False)

    def compose(self) -> ComposeResult:
        """Header, metrics line, charts."""
        yield Static(run_header(None), id="run-header")
        yield Static("", id="run-metrics")
        yield Chart(id="chart-loss")
        yield Chart(id="chart-objective")

    def show(self, run: RunView | None, log: bool) -> None:
        """Draw the focused run."""
        self.shown = (run, log)

    def watch_shown(self, shown: tuple[RunView | None, bool] | None) -> None:
        """Redraw the header lines and the charts."""
        if shown is None:
            return
        run, log = shown
        self.heading = run_title(run)
        # One line each, always: no new layout for a new text.
        self.query_one("#run-header", Static).update(run_header(run), layout=False)
        self.query_one("#run-metrics", Static).update(run_metrics(run), layout=False)
        loss = self.query_one("#chart-loss", Chart)
        obj = self.query_one("#chart-objective", Chart)
        if run is None:
            loss.show("loss", (), log)
            self.objective_shown = False
            return
        loss.show(run.loss_name, run.loss, log, run.marks)
        self.objective_shown = bool(run.objective) or run.objective_name != run.loss_name
        obj.show(run.objective_name, run.objective, log, run.marks)

    def watch_heading(self, heading: str) -> None:
        """The border title: the run and its lineage."""
        self.border_title = heading

    def watch_objective_shown(self, shown: bool) -> None:
        """The objective's own chart, only when it is not the loss chart's metric."""
        self.query_one("#chart-objective", Chart).display = shown
