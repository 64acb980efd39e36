"""The app's back end: the threads that serve a session to the screen, and the screen's snapshots.

It is given the session (runtime/session.py), which owns the study, runner and scheduler and does
every command; screens call the session's commands through one path, `TunerApp.command` / `call`,
which run them on this back end's command thread (`submit`). This adds what only a screen needs,
off the event loop (no textual here):
- the runner's poll thread delivers session events to `_on_event`, which only records and sets a flag;
- one command thread runs what the user asks for and the session's ticks, one at a time, so they
  never race each other;
- one view thread turns the study and runner into an immutable `Snapshot` when something changed,
  at most every `frame` seconds, and calls `on_snapshot` (the app posts itself one replaceable
  message and draws the latest snapshot on its loop).

So a trainer reporting thousands of steps a second costs one flag write per poll, and a frame is
built at a bounded rate from bounded, downsampled series.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tui_tuner.runtime.run_queries import Output
from tui_tuner.runtime.runner import RunEvent
from tui_tuner.runtime.session import Session
from tui_tuner.runtime.session_events import Decision, Notice, SessionEvent
from tui_tuner.ui.gpu import GpuProbe
from tui_tuner.ui.model import Snapshot
from tui_tuner.ui.snapshot import CHART_POINTS, CURVE_BUDGET, ORDERS, SnapshotBuilder
from tui_tuner.ui.toasts import Burst

__all__ = ["CHART_POINTS", "Backend", "Output"]


class Backend:
    """Serves snapshots of a session to the UI, and its commands off the event loop."""

    def __init__(self, session: Session, *, frame: float = 0.1, poll: float = 0.05, tick: float = 0.5,
                 gpu: bool = True) -> None:
        self.session = session
        self.session.subscribe(self._on_event)
        self.frame = frame
        self.poll = poll
        self.tick = tick
        self._gpu = GpuProbe() if gpu else None
        self._dirty = threading.Event()
        self._view_of = SnapshotBuilder(self.session, self._dirty.set, self._gpu)

        self.on_snapshot: Callable[[], None] | None = None
        self._snapshot: Snapshot | None = None
        self._halt = threading.Event()
        self._notices: list[tuple[str, str, str]] = []
        self._burst = Burst()
        self._notice_lock = threading.Lock()
        self._commands = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tui-tuner-cmd")
        self._view: threading.Thread | None = None
        self._tick_pending = False
        self.decision_count = 0
        self.started = False
        self.closed = False

    # -- what it serves -------------------------------------------------------------------------

    @property
    def focus(self) -> int | None:
        """The focused run's id as last resolved."""
        return self._view_of.focus

    @property
    def order(self) -> str:
        """The trials table's order: "best" or "start"."""
        return self._view_of.order

    @order.setter
    def order(self, order: str) -> None:
        self.set_order(order)

    def set_order(self, order: str) -> None:
        """Order the trials best first or by start; a new frame follows."""
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self._view_of.order = order
        self.poke()

    def toggle_order(self) -> None:
        """Switch the trials order between best first and by start."""
        self.set_order("start" if self.order == "best" else "best")

    def follow(self, trial_id: int) -> None:
        """Make a trial the focused run (it stays focused after it ends); a new frame follows."""
        self._view_of.focus, self._view_of.focus_explicit = trial_id, True
        self.poke()

    # -- life -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Adopt runs left by an earlier tuner, then start polling, ticking and building frames."""
        if self.started:
            return
        self.started = True
        self.submit(self._adopt)
        self.session.start_polling(self.poll)
        self._view = threading.Thread(target=self._view_loop, name="tui-tuner-view", daemon=True)
        self._view.start()

    def _adopt(self) -> None:
        try:
            self.session.adopt()
        except Exception as e:  # noqa: BLE001 - shown, and the app goes on with what it has
            self.session.notice("Runs", f"re-adopting the live runs failed: {getattr(e, 'message', e)}", "error")

    def close(self, *, stop_runs: bool = False, timeout: float | None = None) -> None:
        """Stop the threads; runs keep going (re-adopted next time) unless stop_runs."""
        if self.closed:
            return
        self.closed = True
        self._halt.set()
        # A fork waiting (up to a minute) for a silent trainer's checkpoint would hold up the quit.
        self.session.cancel_waits()
        self._commands.shutdown(wait=True, cancel_futures=True)
        self.session.close(stop_runs=stop_runs, timeout=timeout)
        if self._view is not None:
            self._view.join(timeout=5)
        if self._gpu is not None:
            self._gpu.close()
        self._view_of.close()

    # -- commands (each runs on the command thread through submit) --------------------------------

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Run fn on the command thread; the future carries its result or its exception."""
        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                self._view_of.study_stale = True
                self._dirty.set()
        return self._commands.submit(run)

    def fork_step(self, trial_id: int, prepared: Future | None) -> int | None:
        """The step of the checkpoint `session.prepare_fork` asked for, once it is written (None until then).

        A fork starts from that state, so that is the step to show: the run may have gone on a few
        steps between the key press and the checkpoint. Non-blocking, for a UI timer.
        """
        if prepared is None or not prepared.done() or prepared.exception() is not None:
            return None
        return self.session.fork_step(trial_id, prepared.result())

    def _tick(self) -> None:
        try:
            if not self._halt.is_set():
                self.session.tick()
        finally:
            self._tick_pending = False

    # -- events -----------------------------------------------------------------------------------

    def _on_event(self, ev: SessionEvent) -> None:
        """Called from the runner's poll thread or the command thread: record, never render."""
        if isinstance(ev, Notice):
            self._notice(ev.title, ev.message, ev.severity)
            return
        if isinstance(ev, Decision):
            self.decision_count += 1   # the decision log screen reloads when this moves
            self._view_of.study_stale = True
            self._dirty.set()
            if ev.is_undone:
                # An undo is said by the command that asked for it; the run it resumed is focused.
                resumed = ((ev.undo_progress or {}).get("out") or {}).get("child")
                if isinstance(resumed, int):
                    self._view_of.focus, self._view_of.focus_explicit = resumed, True
                return
            if ev.pending:
                return   # said once it has ended
            if ev.automatic:
                with self._notice_lock:
                    self._burst.add(ev)
            elif ev.kind == "fork":
                # The fork command returned at once: this is the one toast the fork gets.
                child = (ev.progress.get("out") or {}).get("child")
                if isinstance(child, int) and ev.state == "done":
                    self._view_of.focus, self._view_of.focus_explicit = child, True
                self._notice("Fork", ev.message, "information" if ev.state == "done" else "warning")
            return
        self._run_event(ev)

    def _run_event(self, ev: RunEvent) -> None:
        self._view_of.paused.event(ev.trial_id, ev.kind, ev.data.get("t"))
        if ev.kind == "ended":
            status = ev.data.get("status")
            if status in ("failed", "diverged"):
                reason = (ev.data.get("reason") or "").splitlines()
                first = reason[0] if reason else status
                self._notice(f"Trial #{ev.trial_id} {status}",
                             f"{first} (its output: select #{ev.trial_id} in Trials, press v)", "warning")
        if ev.kind != "metrics":
            self._view_of.study_stale = True   # a status or a setting changed: read the study again
        self._dirty.set()

    def _notice(self, title: str, message: str, severity: str) -> None:
        with self._notice_lock:
            self._notices.append((title, message, severity))
        self._dirty.set()

    def take_notices(self) -> list[tuple[str, str, str]]:
        """The (title, message, severity) notices not yet shown; each is handed out once.

        Kept apart from snapshots: a snapshot may be superseded before it is drawn, a notice must not be.
        """
        with self._notice_lock:
            out, self._notices = self._notices, []
            out.extend(self._burst.take(time.monotonic()))
        return out

    def poke(self) -> None:
        """Ask for a new snapshot soon (the UI changed what it looks at)."""
        self._view_of.study_stale = True
        self._dirty.set()

    # -- view thread --------------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest snapshot (replaced whole, so reading it from the loop is safe)."""
        return self._snapshot

    def _view_loop(self) -> None:
        last_build = 0.0
        last_tick = 0.0
        said_view = ""
        while not self._halt.is_set():
            self._dirty.wait(self.frame)
            if self._halt.is_set():
                break
            now = time.monotonic()
            # Always ticked: without automatic starts too, the automation loop hands on the runs' ends.
            if now - last_tick >= self.tick and not self._tick_pending:
                last_tick = now
                self._tick_pending = True
                try:
                    # Not through submit(): a tick that starts nothing must not force a study re-read
                    # (a start is a runner event, which does).
                    self._commands.submit(self._tick)
                except RuntimeError:  # the executor shut down: closing
                    break
            # Active runs' clocks tick even without events: at least once a second.
            stale = now - last_build >= 1.0
            if not (self._dirty.is_set() or stale):
                continue
            wait = self.frame - (now - last_build)
            if wait > 0:
                # Bounded frame rate: coalesce everything that arrives in the meantime.
                self._halt.wait(wait)
            self._dirty.clear()
            last_build = time.monotonic()
            try:
                self.refresh()
            except Exception as e:  # noqa: BLE001 - the view must keep going; show (and log) what broke
                message = f"{type(e).__name__}: {e}"
                if message != said_view:   # once, not ten times a second
                    said_view = message
                    self.session.notice("View", message, "error")

    def refresh(self, *, curve_budget: float = CURVE_BUDGET, light: bool = False) -> Snapshot:
        """Build a new snapshot now (on the calling thread) and publish it (see build)."""
        snap = self.build(curve_budget=curve_budget, light=light)
        self._snapshot = snap
        cb = self.on_snapshot
        if cb is not None:
            cb()
        return snap

    @property
    def view(self) -> str | None:
        """The picture on screen ("curves", "search" or None): its data is gathered only while open."""
        return self._view_of.view

    @view.setter
    def view(self, view: str | None) -> None:
        self._view_of.view = view
        self.poke()

    @property
    def curve_metric(self) -> str | None:
        """The metric the curves view draws (None: the objective)."""
        return self._view_of.curve_metric

    @curve_metric.setter
    def curve_metric(self, metric: str | None) -> None:
        self._view_of.curve_metric = metric
        self.poke()

    def build(self, *, curve_budget: float = CURVE_BUDGET, light: bool = False) -> Snapshot:
        """Read the study and the runner into one immutable Snapshot (see SnapshotBuilder.build)."""
        return self._view_of.build(curve_budget=curve_budget, light=light)

    def compute_importance_now(self) -> None:
        """Compute measured importance on the calling thread (deterministic first frames in tests)."""
        self._view_of.compute_importance_now()

