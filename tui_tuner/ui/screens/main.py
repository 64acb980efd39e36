"""The main screen: parameters by priority, the focused run, runs side by side, trials and the queue.

It renders snapshots and turns keys into back-end commands; it never touches the study, the runner
or a file itself. Every key is a Binding (the footer shows it), greyed by `check_action` when it
does not apply to what is focused.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from tui_tuner.ui.model import Snapshot
from tui_tuner.ui.screens import main_dialogs, main_keys
from tui_tuner.ui.screens.help import HelpScreen, help_sections
from tui_tuner.ui.screens.main_keys import HandMoveKeys, SearchKeys
from tui_tuner.ui.widgets.run import RunPanel, set_if_changed
from tui_tuner.ui.widgets.status import StatusLine
from tui_tuner.ui.widgets.strip import RunStrip
from tui_tuner.ui.widgets.tables import ParamsTable, QueueTable, SyncTable, TrialsTable

if TYPE_CHECKING:
    from tui_tuner.ui.tuner import Tuner

WIDE = 120   # columns from which the wide layout is used
RUN_MIN = 26  # narrow layout: the run panel's least width; the parameters table gets the rest at most
SLOW, TABLE_SLOW = 0.5, 1.0   # seconds between refreshes of the strip, the trials table, when only numbers change


class MainScreen(HandMoveKeys, SearchKeys, Screen):
    """Everything about the study on one screen, driven from the keyboard."""

    BINDINGS = [
        # Footer order: what babysitting needs most comes first (an 80-column footer cuts the rest).
        Binding("p", "pause", "Pause"),
        Binding("a", "adjust", "Adjust"),
        # The same key once adjust is greyed: Textual then tries the next binding of the key, so the
        # footer still shows Adjust greyed while the key says why and what to do instead.
        Binding("a", "adjust_why", "Why adjust is off", show=False),
        Binding("f", "fork", "Fork"),
        Binding("s", "stop", "Stop"),
        Binding("n", "sample", "Sample"),
        Binding("z", "zoom", "Zoom"),
        Binding("e", "export", "Export"),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding("q", "quit_keep", "Quit"),
        Binding("right_square_bracket", "next_run", "Next run", key_display="]"),
        Binding("left_square_bracket", "prev_run", "Prev run", key_display="["),
        Binding("Z", "unzoom", "Unzoom"),
        Binding("t", "stage", "Stage"),
        Binding("v", "output", "Output"),
        Binding("l", "log_scale", "Log y"),
        Binding("o", "order", "Order"),
        Binding("Q", "quit_stop", "Stop all+quit"),
        Binding("c", "curves", "Curves"),
        Binding("x", "search_view", "Search view"),
        Binding("u", "undo_stop", "Undo stop"),
        Binding("P", "pin", "Pin/unpin"),
        Binding("D", "decisions", "Decisions"),
        Binding("A", "autopilot", "Autopilot on/off"),
        *main_keys.BINDINGS,
    ]

    class Ready(Message):
        """The screen is mounted: the app may draw the first frame and start the back end."""

    def __init__(self) -> None:
        super().__init__(id="main")
        self.snap: Snapshot | None = None
        self.log_scale = False
        self._binding_state: Any = None
        self._shape: Any = None
        self._slow_at = self._table_at = 0.0
        self.marked: set[int] = set()   # trials marked in the curves view (kept while it is closed)

    @property
    def tuner(self) -> Tuner:
        """The app (typed)."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        """Status, parameters + run, strip, trials + queue, footer."""
        yield StatusLine(id="status")
        with Horizontal(id="top"):
            yield ParamsTable(id="params")
            yield RunPanel(id="run")
        yield RunStrip(id="strip")
        with Horizontal(id="bottom"):
            yield TrialsTable(id="trials")
            yield QueueTable(id="queue")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Titles, and the layout for the terminal's size."""
        self.query_one("#params").border_title = "Hyperparameters (by priority)"
        self.query_one("#trials").border_title = "Trials (best first)"
        self.query_one("#queue").border_title = "Queue"
        self.query_one("#strip").border_title = "Running"
        self._layout(self.size.width)
        self.query_one("#trials", TrialsTable).focus()
        self.post_message(self.Ready())

    def on_resize(self, event: Any) -> None:
        """Switch between the narrow and wide layouts."""
        self._layout(event.size.width)

    def _layout(self, width: int) -> None:
        wide = width >= WIDE
        self.set_class(wide, "-wide")
        # Narrow, the table is as wide as its columns (the run panel gets the room it leaves), up
        # to what leaves the run panel RUN_MIN columns; wide, the stylesheet sizes both.
        self.query_one("#params").styles.max_width = None if wide else max(width - RUN_MIN, 0)
        for table in self.query(SyncTable):
            table.set_compact(not wide)

    # -- rendering ----------------------------------------------------------------------------------

    def show(self, snap: Snapshot) -> None:
        """Draw a snapshot (each widget redraws only what changed).

        The focused run and the status line follow every frame; the trials table and the strip of
        runs only change shape at once (a trial added, a status changed) and otherwise refresh their
        numbers and curves at most every SLOW (strip) and TABLE_SLOW (table) seconds: eight fast runs
        must not cost a full redraw of every row ten times a second.
        """
        self.snap = snap
        view = self.picture_view()
        if view is not None:
            # A picture covers this screen: draw that instead (this one redraws when it is back).
            view.show(snap)
            self._refresh_bindings_if_changed()
            return
        if snap.view is not None:
            return   # built for a view just closed, without this screen's curves: a full one follows
        focus_id = snap.focused.id if snap.focused else None
        now = time.monotonic()
        shape = (tuple((t.id, t.status) for t in snap.trials), snap.best_id, focus_id, snap.order,
                 self.log_scale)
        reshaped, self._shape = shape != self._shape, shape
        self.query_one(StatusLine).show(snap)
        self.query_one(ParamsTable).show(snap.params)
        self.query_one(RunPanel).show(snap.focused, self.log_scale)
        if reshaped or now - self._slow_at >= SLOW:
            self._slow_at = now
            self.query_one(RunStrip).show(snap.cards, focus_id, snap.maximize, self.log_scale)
        if reshaped or now - self._table_at >= TABLE_SLOW:
            self._table_at = now
            trials = self.query_one(TrialsTable)
            set_if_changed(trials, "border_title",
                           f"Trials ({'best first' if snap.order == 'best' else 'by start'}) · {snap.objective}")
            trials.show_devices(bool(snap.devices) or any(t.device for t in snap.trials))
            trials.show((snap.trials, snap.best_id, focus_id))
        queue = self.query_one(QueueTable)
        set_if_changed(queue, "border_title", f"Queue ({len(snap.queue)})")
        queue.show(snap.queue)
        self._refresh_bindings_if_changed()

    def picture_view(self) -> Any:
        """The open picture view (curves or search), if one is on the screen stack."""
        from tui_tuner.ui.screens.picture import PictureScreen

        for screen in reversed(self.app.screen_stack):
            if isinstance(screen, PictureScreen):
                return screen
        return None

    def on_screen_resume(self) -> None:
        """Back from a picture view: draw the latest snapshot at once."""
        if self.snap is not None and self.is_mounted:
            self._shape = None
            self.show(self.snap)

    def _refresh_bindings_if_changed(self) -> None:
        """Re-check which keys apply (the footer greys the others), only when what decides it changed."""
        state = self._bindings_key()
        if state != self._binding_state:
            self._binding_state = state
            self.refresh_bindings()

    def _bindings_key(self) -> Any:
        # Which keys apply, not the state behind it: run ids change at every start and end, and each
        # re-check recomposes the footer (tens of milliseconds of the event loop).
        return tuple(self.check_action(b.action, ()) for b in self.BINDINGS)

    # -- what keys act on ---------------------------------------------------------------------------

    @property
    def focused_run(self) -> Any:
        """The focused run's view, if it is running or paused."""
        run = self.snap.focused if self.snap else None
        return run if run is not None and run.active else None

    def selected_trial(self) -> int | None:
        """The trial under the trials table's cursor."""
        key = self.query_one(TrialsTable).selected_key
        return int(key) if key is not None else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out what does not apply now."""
        snap = self.snap
        if snap is None:
            return True if action in ("help", "quit_keep", "quit_stop", "log_scale") else None
        run = self.focused_run
        if action in ("pause", "stop", "fork"):
            return True if run is not None else None
        if action == "adjust":
            return True if run is not None and run.can_adjust else None
        if action in main_keys.RUN_ACTIONS:
            return self.hand_move_allowed(action)
        if action == "adjust_why":
            return False if run is not None and run.can_adjust else True
        if action in ("next_run", "prev_run"):
            active = snap.active_ids
            return True if active and (len(active) > 1 or run is None) else None
        if action == "zoom":
            return True if snap.count("done") >= 2 else None
        if action == "unzoom":
            return True if snap.zoom > 0 else None
        if action == "output":
            return True if self.selected_trial() is not None else None
        if action == "export":
            return True if self.selected_trial() is not None or snap.best_id is not None else None
        if action == "pin":
            return True if snap.focused is not None and snap.focused.active else None
        if action == "quit_stop":
            return True
        return True

    @on(DataTable.RowHighlighted, "#trials")
    def _trial_moved(self) -> None:
        self._refresh_bindings_if_changed()

    # -- run keys -------------------------------------------------------------------------------

    def action_pause(self) -> None:
        """Pause the focused run, or resume it."""
        run = self.focused_run
        if run is not None:
            self.tuner.command(self.tuner.session.pause_toggle, run.id)

    def action_adjust(self) -> None:
        """Change the focused run's live parameters while it trains."""
        run = self.focused_run
        if run is None or not run.can_adjust:
            self.action_adjust_why()
            return
        self.run_worker(main_dialogs.adjust(self, run), group="adjust")

    def action_adjust_why(self) -> None:
        """Say why adjust is greyed, and what to do instead."""
        main_dialogs.adjust_why(self, self.focused_run)

    def action_fork(self) -> None:
        """Fork the focused run from its current state with changed settings."""
        run = self.focused_run
        if run is not None:
            main_dialogs.fork(self, run)

    def action_stop(self) -> None:
        """Stop the focused run."""
        run = self.focused_run
        if run is not None:
            self.tuner.command(self.tuner.session.stop, run.id)

    def _cycle(self, delta: int) -> None:
        snap = self.snap
        if snap is None or not snap.active_ids:
            return
        ids = snap.active_ids
        current = snap.focused.id if snap.focused else None
        if current in ids:
            nxt = ids[(ids.index(current) + delta) % len(ids)]
        else:
            nxt = ids[0] if delta > 0 else ids[-1]
        self.follow(nxt)

    def follow(self, trial_id: int) -> None:
        """Make a trial the focused run."""
        self.tuner.backend.follow(trial_id)

    def action_next_run(self) -> None:
        """Focus the next running trial."""
        self._cycle(1)

    def action_prev_run(self) -> None:
        """Focus the previous running trial."""
        self._cycle(-1)

    @on(TrialsTable.Watch)
    def _trial_chosen(self, event: TrialsTable.Watch) -> None:
        self.follow(event.trial_id)

    # -- search keys (sample, zoom, unzoom, stage: main_keys.SearchKeys) --------------------------

    @on(ParamsTable.Freeze)
    def _freeze(self, event: ParamsTable.Freeze) -> None:
        self.tuner.command(self.tuner.session.search.toggle_freeze, event.name)

    # -- queue keys -----------------------------------------------------------------------------

    @on(QueueTable.Request)
    def _queue(self, event: QueueTable.Request) -> None:
        session = self.tuner.session
        tid = event.trial_id
        if event.action == "drop":
            self.tuner.command(session.search.drop, tid)
        elif event.action in ("up", "down"):
            self.tuner.command(session.search.move, tid, -1 if event.action == "up" else 1)
        elif event.action == "run":
            self.run_worker(self._run_now(tid), group="run-now")
        elif event.action == "edit":
            self.run_worker(main_dialogs.edit(self, tid), group="edit")

    async def _run_now(self, trial_id: int) -> None:
        said = await self.tuner.call_or_say(self.tuner.session.run_now, trial_id)
        if said:
            self.follow(trial_id)   # the run started now is the one watched
            self.tuner.say(said)

    # -- trial keys -----------------------------------------------------------------------------

    def action_export(self) -> None:
        """Export the best trial's setting to TOML, or the row the user chose in Trials."""
        chosen = self.query_one(TrialsTable).chosen
        tid = self.selected_trial() if chosen else None
        self.run_worker(main_dialogs.export(self, tid), group="export")

    def action_pin(self) -> None:
        """Pin the focused run (no early stop or autopilot decision touches it), or unpin it."""
        run = self.focused_run
        if run is not None:
            self.tuner.command(self.tuner.session.toggle_pin, run.id)

    def action_undo_stop(self) -> None:
        """Undo the automatic stop (early stop, autopilot) of the selected trial: it resumes exactly."""
        tid = self.selected_trial()
        if tid is not None:
            self.tuner.command(self.tuner.session.undo_trial, tid)

    def action_output(self) -> None:
        """Show the selected trial's reason and last output lines."""
        tid = self.selected_trial()
        if tid is not None:
            self.run_worker(main_dialogs.output(self, tid), group="output")

    # -- view keys ------------------------------------------------------------------------------

    def action_log_scale(self) -> None:
        """Toggle a log y axis for the curves."""
        self.log_scale = not self.log_scale
        if self.snap is not None:
            self.show(self.snap)

    def action_order(self) -> None:
        """Toggle the trials order: best first / by start."""
        self.tuner.backend.toggle_order()

    def action_curves(self) -> None:
        """Open the curves view: every trial's learning curve overlaid."""
        from tui_tuner.ui.screens.curves import CurvesScreen

        self.app.push_screen(CurvesScreen(self.marked))

    def action_search_view(self) -> None:
        """Open the search view: trials over two parameters, with the zoom boxes."""
        from tui_tuner.ui.screens.search_view import SearchScreen

        self.app.push_screen(SearchScreen())

    def action_decisions(self) -> None:
        """Open the decision log: every automatic decision, newest first, undoable."""
        from tui_tuner.ui.screens.decisions import DecisionsScreen

        self.app.push_screen(DecisionsScreen())

    def action_autopilot(self) -> None:
        """Turn the autopilot (PBT) on or off."""
        self.tuner.command(self.tuner.session.toggle_autopilot)

    def action_help(self) -> None:
        """Show the key table."""
        self.app.push_screen(HelpScreen(help_sections(self.BINDINGS)))

    def action_quit_keep(self) -> None:
        """Quit; runs keep going and are re-adopted next time."""
        self.tuner.quit(stop_runs=False)

    def action_quit_stop(self) -> None:
        """Stop every run and quit, after a confirmation."""
        main_dialogs.quit_stop(self)

