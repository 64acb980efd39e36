"""The session: the one orchestration layer over an open study, shared by the app and headless mode.

It owns the study, the runner and the scheduler, and it is the only place that adopts runs, ticks
the scheduler, changes the search (through core/search.py), controls runs, edits the queue,
exports, stops everything and closes. Whoever watches (the app's back end, the headless printer)
subscribes to one stream of typed events (runtime/session_events.py): the runner's RunEvents,
Notices for the user, and Decisions the session makes on its own (early stops, autopilot), each
also a line in STUDY/tuner.log.

No threads of its own and no textual: the app calls it from its command thread (one command at a
time), headless mode from its loop; `tick()` is where automatic decisions are made for both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_tuner.core import search
from tui_tuner.core.decision_log import Logged
from tui_tuner.core.formatting import short_value
from tui_tuner.core.space import Space
from tui_tuner.core.study import Study, Trial
from tui_tuner.core.study_config import StudyConfig
from tui_tuner.errors import RunError, StudyError, TunerError
from tui_tuner.runtime.autok import AutoKCommands
from tui_tuner.runtime.autopilot import Autopilot
from tui_tuner.runtime.decisions import Decisions
from tui_tuner.runtime.early_stopping import EarlyStopping
from tui_tuner.runtime.hand_moves import HandMoves
from tui_tuner.runtime.runner import RunEvent, Runner
from tui_tuner.runtime.scheduler import Scheduler
from tui_tuner.runtime.session_events import Decision, EventStream, Listener, Severity, Undo


@dataclass(frozen=True)
class Output:
    """A trial's failure reason and the last lines of its output."""

    trial_id: int
    status: str
    reason: str | None
    lines: list[str]


@dataclass(frozen=True)
class Forked:
    """A fork's child and the message that says what happened."""

    child_id: int
    fork_step: int | None
    message: str


class Session(AutoKCommands, HandMoves):
    """An open study with its runner and scheduler; every command and automatic decision goes here.

    Auto-k (runtime/autok.py: `autok`, `toggle_k`, `bump_k`) and the hand moves (runtime/hand_moves.py:
    `scale_lr`, `train_longer`) are its parts too.
    """

    def __init__(self, study: Study, *, runner: Runner | None = None, scheduler: Scheduler | None = None,
                 autostart: bool = True, runner_options: Mapping[str, Any] | None = None,
                 scheduler_options: Mapping[str, Any] | None = None) -> None:
        self.study = study
        if runner is None:
            runner = Runner(study, on_event=self._on_run_event, **dict(runner_options or {}))
        else:
            runner.on_event = self._on_run_event
        self.runner = runner
        self._scheduler = scheduler
        self._scheduler_options = dict(scheduler_options or {})
        self.autostart = autostart
        self._events = EventStream(study)
        self._said_sched: str | None = None
        self._said_failure: str | None = None
        self._said_fallback = False
        # --autopilot rides with the scheduler's overrides (like --early-stop) but is the session's.
        self._decisions = Decisions(study, runner, lambda: self.scheduler, self._events,
                                    autopilot=self._scheduler_options.pop("autopilot", None))
        self.closed = False

    # -- what it is -------------------------------------------------------------------------------

    @property
    def space(self) -> Space:
        """The study's search space."""
        return self.study.space

    @property
    def config(self) -> StudyConfig:
        """The study's [study] settings."""
        return self.study.space.config

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler that keeps `parallel` runs going (built on first use)."""
        if self._scheduler is None:
            self._scheduler = Scheduler(self.study, self.runner, self.study.sampler(), **self._scheduler_options)
        if self._scheduler.notify is None:   # a model worker's crash or a failed fit: one line
            self._scheduler.notify = lambda line: self.notice("Search", line, "warning")
        return self._scheduler

    @property
    def budget(self) -> int:
        """The budget in force: the scheduler's once built (options, raises), else the space's."""
        return self._scheduler.budget if self._scheduler is not None else self.config.budget

    def trial(self, trial_id: int) -> Trial:
        """One trial as the study records it (StudyError for an unknown id)."""
        return self.study.trial(trial_id)

    # -- the event stream -----------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every session event from now on; returns the function that unsubscribes.

        Listeners are called on the thread the event happens on (the runner's poll thread for run
        events): they should record, not work. One that raises is reported, never dropped silently.
        """
        return self._events.subscribe(listener)

    def notice(self, title: str, message: str, severity: Severity = "information") -> None:
        """Tell whoever watches, and write it to the study's log."""
        self._events.notice(title, message, severity)

    def decide(self, decision: Decision) -> Decision:
        """Keep an automatic decision in the study's decision log (it gets its id), and announce it."""
        return self._events.decide(decision)

    def _on_run_event(self, ev: RunEvent) -> None:
        """The runner's callback (its poll thread, or the caller of a command)."""
        if ev.kind in ("metrics", "ended"):
            self._decisions.judge(ev)   # first: an early-stopped run's "ended" then carries the decision as its reason
            self._observe_k(ev)          # and an out-of-memory failure re-queued by auto-k says so
        self._events.publish(ev)
        if ev.kind == "error":
            self.notice("Runner", str(ev.data.get("message", "error")), "error")

    # -- automatic decisions (runtime/decisions.py) ---------------------------------------------

    @property
    def early_stopping(self) -> EarlyStopping | None:
        """The study's early stopping (None when its rule is "none"), built with the scheduler."""
        return self._decisions.early_stopping

    def undo_early_stop(self, trial_id: int) -> str:
        """Resume an early-stopped trial exactly from its checkpoint (a zero-code run restarts)."""
        return self._decisions.undo_early_stop(trial_id)

    def register_undo(self, kind: str, undo: Undo) -> None:
        """Say how decisions of `kind` are undone (early stop, autopilot, auto-k each register one)."""
        self._decisions.register_undo(kind, undo)

    def undo(self, decision: Decision) -> str:
        """Undo one automatic decision by its kind (once, for one from the log); RunError when it cannot."""
        return self._decisions.undo(decision)

    def undo_decision(self, decision_id: int) -> str:
        """Undo the decision of the study's log with this id (the decision log screen's key)."""
        return self._decisions.undo_logged(decision_id)

    def decisions(self) -> list[Logged]:
        """Every decision the study keeps, newest first."""
        return self._decisions.logged()

    def undoable_kinds(self) -> frozenset[str]:
        """The kinds of decision that can be undone."""
        return self._decisions.undoable_kinds()

    @property
    def autopilot(self) -> Autopilot:
        """The autopilot (PBT), built on first use."""
        return self._decisions.autopilot

    def toggle_autopilot(self) -> str:
        """Turn the autopilot on or off (the app's key)."""
        return self._decisions.autopilot.toggle()

    def autopilot_state(self) -> str:
        """"on (pbt every N steps)" or "off"."""
        return self._decisions.autopilot_state()

    # -- life -------------------------------------------------------------------------------------

    def adopt(self) -> list[int]:
        """Re-adopt runs left going by an earlier tuner and settle those that ended meanwhile."""
        adopted = self.runner.adopt()
        if adopted:
            self.notice("Runs", f"re-adopted {len(adopted)} live run(s): " + ", ".join(f"#{i}" for i in adopted))
        return adopted

    def poll(self) -> None:
        """Read what the runs reported since the last poll (headless; the app polls on a thread)."""
        self.runner.poll()

    def start_polling(self, interval: float) -> None:
        """Poll the runs from the runner's own thread every `interval` seconds (the app)."""
        self.runner.start_thread(interval)

    def tick(self, *, strict: bool = False) -> list[int]:
        """One step of the session's own work: start trials while `parallel` and the budget allow.

        A TunerError (a bad setting, a study that cannot start more) is said once and stops
        automatic starts; with `strict` it is raised instead (headless: the CLI prints it). Any
        other failure (a study write that failed) is said and logged, and the next tick tries again.
        """
        if not self.autostart or self.closed:
            return []
        if self.config.strategy_fallback and not self._said_fallback:
            self._said_fallback = True
            self.notice("Strategy", self.config.strategy_fallback, "warning")
        try:
            sched = self.scheduler
            self._tick_k()   # auto-k sets sched.parallel from what it measured
            self._decisions.tick()   # first: a fork takes its slot before the queue does
            started = sched.tick()
        except TunerError as e:
            if strict:
                raise
            self.notice(e.title, e.message, "error")
            self.autostart = False
            return []
        except Exception as e:  # noqa: BLE001 - said and logged; a later tick may succeed
            if strict:
                raise
            message = f"starting trials failed: {type(e).__name__}: {e}"
            if message != self._said_failure:
                self._said_failure = message
                self.notice("Study", message, "error")
            return []
        self._said_failure = None
        if sched.message and sched.message != self._said_sched:
            self._said_sched = sched.message
            self.notice("Study", sched.message)
        return started

    def done(self) -> bool:
        """True when no run is live and the scheduler will start nothing more."""
        return self.scheduler.done()

    def stop_all(self, timeout: float | None = None) -> bool:
        """Stop every run and wait until they have ended; True when all did.

        Starting stops first: a tick queued behind this command would otherwise fill the freed
        slots from the queue, and those runs would outlive a "stop all and quit".
        """
        self.autostart = False
        if self._scheduler is not None:
            self._scheduler.holding = True
        return self.runner.stop_all(timeout)

    def hurry(self) -> None:
        """Skip the grace periods of the stops under way (a second Ctrl-C)."""
        self.runner.stop_timeout = self.runner.term_timeout = 0.0
        self.runner.hurry_stops()

    def cancel_waits(self) -> None:
        """Make a fork waiting for its checkpoint give up at once (quitting)."""
        self.runner.cancel_waits()

    def close(self, *, stop_runs: bool = False, timeout: float | None = None) -> None:
        """Stop polling; runs keep going (re-adopted next time) unless stop_runs. The study stays open."""
        if self.closed:
            return
        self.closed = True
        self.runner.cancel_waits()
        if stop_runs:
            try:
                self.stop_all(timeout)
            except TunerError as e:
                self.notice(e.title, e.message, "error")
        self.runner.stop_thread()
        if self._scheduler is not None:
            self._scheduler.close()   # the model worker process, if one was started

    # -- runs -----------------------------------------------------------------------------------

    def pause_toggle(self, trial_id: int) -> str:
        """Pause a running trial or resume a paused one."""
        status = self.study.trial(trial_id).status
        if status == "paused":
            self.runner.resume(trial_id)
            return f"resuming #{trial_id}"
        if status != "running":
            raise RunError(f"trial {trial_id} is {status}, not running")
        self.runner.pause(trial_id)
        return f"pausing #{trial_id}"

    def adjust(self, trial_id: int, changes: Mapping[str, Any]) -> str:
        """Change live parameters of a running trial."""
        if not changes:
            raise RunError("nothing changed")
        self.runner.set(trial_id, dict(changes))
        self._decisions.pin(trial_id)
        return f"#{trial_id}: " + ", ".join(f"{k} → {short_value(v)}" for k, v in changes.items())

    def prepare_fork(self, trial_id: int) -> int | None:
        """Checkpoint a running trial now (its seq), so a fork is of this moment; None for zero-code."""
        if self.runner.is_live(trial_id) and self.runner.can_adjust(trial_id):
            return self.runner.checkpoint(trial_id)
        return None

    def fork_step(self, trial_id: int, seq: int | None) -> int | None:
        """The step of the checkpoint `prepare_fork` asked for, once written (None until then)."""
        ev = self.runner.checkpoint_event(trial_id, seq) if seq is not None else None
        step = ev.get("step") if ev and not ev.get("error") else None
        return step if isinstance(step, int) else None

    def fork(self, trial_id: int, changes: Mapping[str, Any], checkpoint: int | None = None) -> Forked:
        """Fork a trial with some settings changed, from the checkpoint `prepare_fork` took if any."""
        child = self.runner.fork(trial_id, dict(changes), checkpoint=checkpoint)
        self._decisions.pin(child.id)
        at = f" at step {child.fork_step}" if child.fork_step is not None else ""
        return Forked(child.id, child.fork_step, f"forked #{trial_id}{at} into #{child.id}")

    def stop(self, trial_id: int) -> str:
        """Stop a running or paused trial."""
        self.runner.stop(trial_id)
        return f"stopping #{trial_id}"

    def run_now(self, trial_id: int) -> str:
        """Start a queued trial now, whatever `parallel` says."""
        trial = self.study.trial(trial_id)
        if trial.status != "queued":
            raise StudyError(f"trial {trial_id} is {trial.status}, not queued")
        self.runner.start(trial)
        return f"started #{trial_id}"

    def output(self, trial_id: int, n: int = 40) -> Output:
        """A trial's status, reason and the last n lines of its output."""
        trial = self.study.trial(trial_id)
        return Output(trial_id, trial.status, trial.reason, self.runner.output_tail(trial_id, n))

    # -- the queue ------------------------------------------------------------------------------

    def sample(self, n: int) -> str:
        """Queue n random settings from the current search state.

        Asking for more trials is asking for them to run: when the budget would not reach them, the
        scheduler's budget grows to cover the queue (for this session; the space file keeps its own).
        """
        trials = self.study.sample(n)
        msg = f"queued {len(trials)} setting(s)"
        if self.autostart:
            sched = self.scheduler
            need = self.study.budget_used() + len(self.study.queue())
            if need > sched.budget:
                sched.budget = need
                msg += f"; budget raised to {need} so they run"
        return msg

    def drop(self, trial_id: int) -> str:
        """Remove a queued setting."""
        self.study.drop(trial_id)
        return f"dropped #{trial_id}"

    def move(self, trial_id: int, delta: int) -> None:
        """Move a queued setting up (negative) or down."""
        self.study.move(trial_id, delta)

    def edit(self, trial_id: int, changes: Mapping[str, Any]) -> str:
        """Change settings of a queued trial."""
        if not changes:
            raise StudyError("nothing changed")
        self.study.edit(trial_id, dict(changes))
        return f"#{trial_id}: " + ", ".join(f"{k} = {short_value(v)}" for k, v in changes.items())

    # -- the search (core/search.py: the same moves the scheduler makes) ------------------------

    def zoom(self, force: bool = False) -> str:
        """Narrow the search around the best done trials, with the scheduler's zoom settings.

        Too few done trials raise ZoomTooFewError (its numbers let the app ask) unless `force`.
        """
        sched = self.scheduler
        return search.zoom(self.study, top=sched.zoom_top, margin=sched.zoom_margin, force=force)

    def unzoom(self) -> str:
        """Undo the last zoom."""
        return search.unzoom(self.study)

    def set_stage(self, stage: int) -> str:
        """Search tiers <= stage."""
        return search.set_stage(self.study, stage)

    def toggle_freeze(self, name: str) -> str:
        """Freeze a parameter at the best trial's value, or search it again."""
        return search.toggle_freeze(self.study, name)

    # -- export ---------------------------------------------------------------------------------

    def export(self, trial_id: int | None, path: str | None) -> Path:
        """Write a trial's setting as TOML; returns the absolute path written."""
        from tui_tuner.core.export import export_trial

        out = export_trial(self.study, trial_id, Path(path).expanduser() if path else None)
        return out.resolve()

    def default_export_path(self, trial_id: int | None) -> str:
        """The path an export prompt offers first."""
        from tui_tuner.core.export import choose_trial, default_path

        try:
            return str(default_path(self.study, choose_trial(self.study, trial_id)))
        except TunerError:
            return str(self.study.dir / "export.toml")

