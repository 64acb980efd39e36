"""The session: the one orchestration layer over an open study, shared by the app and headless mode.

It owns the study, the runner, the scheduler, the automation loop (runtime/automation.py) and the
queue and search-region commands (runtime/search_commands.py, `session.search`), and
it is the only place that adopts runs, ticks, changes the search (through study/moves.py), controls
runs, edits the queue, exports, stops everything and closes. Whoever watches (the app's back end,
the headless printer) subscribes to one stream of typed events (runtime/session_events.py): the
runner's RunEvents, Notices for the user, and Decisions (automatic or by a key), each also a line in
STUDY/tuner.log.

Threads: the runner's poll thread calls `_on_run_event` (it publishes and queues, nothing more); every
other method runs on one command thread (the app's) or headless mode's loop, one call at a time.
What the user turned on by flag is applied to the study's configuration once, here, and kept in
the study (study/settings.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tui_tuner.errors import RunError, StudyError, TunerError
from tui_tuner.runtime import hand_moves as moves
from tui_tuner.runtime.autok import FIXED_BY_SPACE, Status
from tui_tuner.runtime.automation import Automation
from tui_tuner.runtime.devices import DeviceLoad
from tui_tuner.runtime.run_queries import Output
from tui_tuner.runtime.runner import RunEvent, Runner
from tui_tuner.runtime.scheduler import Scheduler
from tui_tuner.runtime.search_commands import SearchCommands
from tui_tuner.runtime.session_events import EventStream, Listener, Severity
from tui_tuner.search.config import StudyConfig
from tui_tuner.search.space import Space
from tui_tuner.study import settings as study_settings
from tui_tuner.study.decision_log import Decision
from tui_tuner.study.study import Study, Trial


class Session:
    """An open study with its runner, scheduler and automation; every command and decision goes here.

    `overrides` are the settings given by flag (budget, parallel, strategy, early_stop,
    early_stop_min_step, early_stop_max_step, autopilot, step_budget, time_budget): kept in the
    study, they win over the space file now and on every later open.
    """

    def __init__(self, study: Study, *, runner: Runner | None = None, scheduler: Scheduler | None = None,
                 autostart: bool = True, runner_options: Mapping[str, Any] | None = None,
                 overrides: Mapping[str, Any] | None = None) -> None:
        self.study = study
        self._events = EventStream(study)
        self._opening = study_settings.apply(study, overrides)   # before anything reads the configuration
        if runner is None:
            runner = Runner(study, on_event=self._on_run_event, **dict(runner_options or {}))
        else:
            runner.on_event = self._on_run_event
        self.runner = runner
        self.scheduler = scheduler if scheduler is not None else Scheduler(study, runner, study.sampler())
        if self.scheduler.notify is None:   # a model worker's crash or a failed fit: one line
            self.scheduler.notify = lambda line: self.notice("Search", line, "warning")
        self.automation = Automation(study, runner, self.scheduler, publish=self._publish, notice=self.notice)
        self.search = SearchCommands(study, self.scheduler, lambda: self.autostart)   # the queue, the region
        self.autostart = autostart
        self._said_sched: str | None = None
        self._said_failure: str | None = None
        self._said_opening = False
        self._stopping = False    # stop all: no decision starts any more
        self.closed = False

    # -- what it is -------------------------------------------------------------------------------

    @property
    def space(self) -> Space:
        """The study's search space."""
        return self.study.space

    @property
    def config(self) -> StudyConfig:
        """The study's [study] settings, with what the user turned on applied."""
        return self.study.space.config

    @property
    def budget(self) -> int:
        """The trial budget in force."""
        return self.scheduler.budget

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

    def _publish(self, event: Any) -> None:
        if isinstance(event, Decision):
            self._events.decided(event)
        else:
            self._events.publish(event)

    def _on_run_event(self, ev: RunEvent) -> None:
        """The runner's callback (its poll thread, or the caller of a command): publish and queue only.

        An "ended" event is published by the automation loop once its policies have seen it."""
        if ev.kind != "ended":
            self._events.publish(ev)
        self.automation.observe(ev)
        if ev.kind == "error":
            self.notice("Runner", str(ev.data.get("message", "error")), "error")
        elif ev.kind == "requeued":
            self.notice("Cluster", f"#{ev.trial_id} was preempted and is back in Slurm's queue: it runs again "
                                   f"when Slurm starts it (not failed, not counted against the budget)", "warning")

    # -- decisions --------------------------------------------------------------------------------

    def decisions(self) -> list[Decision]:
        """Every decision the study keeps, newest first."""
        return self.automation.decisions()

    def undoable_kinds(self) -> frozenset[str]:
        """The kinds of decision that can be undone."""
        from tui_tuner.runtime.automation import UNDOABLE

        return frozenset(UNDOABLE)

    def undo_decision(self, decision_id: int) -> str:
        """Undo the decision of the study's log with this id (the decision log screen's key)."""
        return self.automation.undo(decision_id)

    def undo_trial(self, trial_id: int) -> str:
        """Undo the automatic stop of a trial (an early stop, or its replacement by the autopilot)."""
        return self.automation.undo_trial(trial_id)

    def toggle_autopilot(self) -> str:
        """Turn the autopilot (PBT) on or off: a decision in the log, kept in the study."""
        return self.automation.toggle_autopilot().message

    def autopilot_state(self) -> str:
        """"PBT every N steps, bottom 25% replaced by forks of the top" or "off"."""
        return self.automation.pilot.describe()

    def early_stop_state(self) -> str:
        """'asha (rungs at steps 11, 33, 100)' or 'off'."""
        return self.automation.early.describe()

    def pinned(self) -> set[int]:
        """The trials no automatic decision touches."""
        return self.automation.pinned()

    def pending_forks(self) -> list[Decision]:
        """Forks waiting for their parent's checkpoint."""
        return self.automation.pending_forks()

    # -- auto-k -----------------------------------------------------------------------------------

    def k_status(self) -> Status | None:
        """What the status line shows of k (None while the space's fixed k is untouched)."""
        status = self.automation.autok.status()
        return None if status.note == FIXED_BY_SPACE else status

    def toggle_k(self) -> str:
        """The override key: fix k where it is, or return to auto."""
        return self.automation.autok.toggle()

    def bump_k(self, delta: int) -> str:
        """Fix k one higher or lower (never below 1)."""
        ak = self.automation.autok
        return ak.fix(max(1, ak.status().k + delta))

    def device_loads(self) -> list[DeviceLoad] | None:
        """Each device's runs, k and memory (None: the study gives runs no device)."""
        devices = self.runner.devices
        return devices.loads(self.runner.runs) if devices is not None else None

    # -- life -------------------------------------------------------------------------------------

    def adopt(self) -> list[int]:
        """Re-adopt runs left going by an earlier tuner and settle those that ended meanwhile."""
        adopted = self.runner.adopt()
        if adopted:
            self.notice("Runs", f"re-adopted {len(adopted)} live run(s): " + ", ".join(f"#{i}" for i in adopted))
        return adopted

    def poll(self) -> None:
        """Read what the runs reported since the last poll, and let the policies see it (headless, on
        its one thread; the app polls on the runner's thread and the policies see it at its ticks)."""
        self.runner.poll()
        self.automation.tick(act=False)

    def start_polling(self, interval: float) -> None:
        """Poll the runs from the runner's own thread every `interval` seconds (the app)."""
        self.runner.start_thread(interval)

    def _say_opening(self) -> None:
        """Once: the settings kept from an earlier session or changed by flag, and early stopping's rungs."""
        if self._said_opening:
            return
        self._said_opening = True
        for line in self._opening:
            self.notice("Settings", line)
        if self.automation.early.active:
            self.notice("Early stopping", self.automation.early.describe())
        if self.config.strategy_fallback:
            self.notice("Strategy", self.config.strategy_fallback, "warning")
        if self.runner.devices is not None and self.runner.devices.warning:
            self.notice("Devices", self.runner.devices.warning, "warning")

    def tick(self, *, strict: bool = False) -> list[int]:
        """One step of the session's own work: the automation loop, then trials started while
        `parallel` and the budget allow.

        A TunerError (a bad setting, a study that cannot start more) is said once and stops
        automatic starts; with `strict` it is raised instead (headless: the CLI prints it). Any
        other failure (a study write that failed) is said and logged, and the next tick tries again.
        """
        if self.closed:
            return []
        self._say_opening()
        sched = self.scheduler
        try:
            # First: auto-k sets parallel, a fork takes its slot before the queue does. The policies act
            # without automatic starts too (an app opened to watch), not once everything is stopping.
            self.automation.tick(act=not self._stopping)
            if not self.autostart:
                return []
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
        self._stopping = True
        self.scheduler.holding = True
        try:
            return self.runner.commands.stop_all(timeout)
        finally:
            self.automation.tick(act=False)   # the runs' ends reach whoever watches

    def hurry(self) -> None:
        """Skip the grace periods of the stops under way (a second Ctrl-C)."""
        self.runner.stop_timeout = self.runner.term_timeout = 0.0
        self.runner.commands.hurry_stops()

    def cancel_waits(self) -> None:
        """Make a blocking fork (the runner's own, outside the session) give up at once (quitting)."""
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
        self.automation.tick(act=False)
        self.scheduler.close()   # the model worker process, if one was started

    # -- runs -----------------------------------------------------------------------------------

    def pause_toggle(self, trial_id: int) -> str:
        """Pause a running trial or resume a paused one."""
        status = self.study.trial(trial_id).status
        if status == "paused":
            self.runner.commands.resume(trial_id)
            return f"resuming #{trial_id}"
        if status != "running":
            raise RunError(f"trial {trial_id} is {status}, not running")
        self.runner.commands.pause(trial_id)
        return f"pausing #{trial_id}"

    def adjust(self, trial_id: int, changes: Mapping[str, Any]) -> str:
        """Change live parameters of a running trial (a decision: undoable; the run is pinned)."""
        return self.automation.carry_out(moves.adjust_move(self.study, self.runner, trial_id, changes)).message

    def scale_lr(self, trial_id: int, factor: float) -> str:
        """The learning rate the run uses now ×factor (×0.5, ×2), without a form."""
        return self.automation.carry_out(moves.lr_move(self.study, self.runner, trial_id, factor)).message

    def train_longer(self, trial_id: int, factor: float = moves.LONGER) -> str:
        """Extend a running trial's step limit (its trainer reads trainer.max_steps)."""
        return self.automation.carry_out(moves.longer_move(self.study, self.runner, trial_id, factor)).message

    def toggle_pin(self, trial_id: int) -> str:
        """Pin a run (no automatic decision touches it), or unpin it."""
        return self.automation.carry_out(moves.pin_move(self.study, trial_id)).message

    def current_values(self, trial_id: int) -> dict[str, Any]:
        """The settings a run trains with now (its reported lr over its setting)."""
        return moves.current_values(self.space, self.runner.queries.latest(trial_id), self.runner.queries.changes(trial_id))

    def prepare_fork(self, trial_id: int) -> int | None:
        """Checkpoint a running trial now (its seq), so a fork is of this moment; None for zero-code."""
        if self.runner.queries.is_live(trial_id) and self.runner.commands.can_adjust(trial_id):
            return self.runner.commands.checkpoint(trial_id)
        return None

    def fork_step(self, trial_id: int, seq: int | None) -> int | None:
        """The step of the checkpoint `prepare_fork` asked for, once written (None until then)."""
        ev = self.runner.commands.checkpoint_event(trial_id, seq) if seq is not None else None
        step = ev.get("step") if ev and not ev.get("error") else None
        return step if isinstance(step, int) else None

    def fork(self, trial_id: int, changes: Mapping[str, Any], checkpoint: int | None = None) -> Decision:
        """Fork a trial with some settings changed, from the checkpoint `prepare_fork` took if any.

        Never waits: the fork starts once its checkpoint is written (a later tick); the decision says
        when (its state), and the screen shows it pending meanwhile."""
        return self.automation.fork(trial_id, dict(changes), checkpoint)

    def stop(self, trial_id: int) -> str:
        """Stop a running or paused trial."""
        self.runner.commands.stop(trial_id)
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
        return Output(trial_id, trial.status, trial.reason, self.runner.queries.output_tail(trial_id, n))

    # -- export ---------------------------------------------------------------------------------

    def export(self, trial_id: int | None, path: str | None) -> Path:
        """Write a trial's setting as TOML; returns the absolute path written."""
        from tui_tuner.study.export import export_trial

        out = export_trial(self.study, trial_id, Path(path).expanduser() if path else None)
        return out.resolve()

    def default_export_path(self, trial_id: int | None) -> str:
        """The path an export prompt offers first."""
        from tui_tuner.study.export import choose_trial, default_path

        try:
            return str(default_path(self.study, choose_trial(self.study, trial_id)))
        except TunerError:
            return str(self.study.dir / "export.toml")

