"""The session: the one orchestration layer over an open study, shared by the app and headless mode.

It owns the study, the runner and the scheduler, and it is the only place that adopts runs, ticks
the scheduler, changes the search (through core/search.py), controls runs, edits the queue,
exports, stops everything and closes. Whoever watches (the app's back end, the headless printer)
subscribes to one stream of typed events: the runner's RunEvents, Notices for the user, and
Decisions the session makes on its own (early stops, autopilot: the kind is ready for them).
Every notice is also a line in STUDY/tuner.log, so nothing that goes wrong is lost with the screen.

No threads of its own and no textual: the app calls it from its command thread (one command at a
time), headless mode from its loop; `tick()` is where automatic decisions are made for both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from tui_tuner.core import search
from tui_tuner.core.decision_log import DecisionLog, Logged
from tui_tuner.core.formatting import short_value
from tui_tuner.core.pbt import pbt_config
from tui_tuner.core.space import Space, StudyConfig
from tui_tuner.core.study import Study, Trial
from tui_tuner.errors import RunError, StudyError, TunerError
from tui_tuner.protocol import append_line
from tui_tuner.runtime import autopilot as pilot
from tui_tuner.runtime.early_stopping import REASON_PREFIX, EarlyStopping
from tui_tuner.runtime.runner import RunEvent, Runner
from tui_tuner.runtime.scheduler import Scheduler

LOG_FILE = "tuner.log"   # STUDY/tuner.log: one JSON object a line per notice, private like the study

Severity = Literal["information", "warning", "error"]


@dataclass(frozen=True)
class Notice:
    """Something the user should read: a toast in the app, a line in headless mode, a log line."""

    title: str
    message: str
    severity: Severity = "information"


@dataclass(frozen=True)
class Decision:
    """Something the session decided on its own (kind: "early_stop", "autopilot", ...), with its numbers."""

    kind: str
    trial_id: int | None
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None     # its id in the study's decision log, once kept there


SessionEvent = RunEvent | Notice | Decision
Listener = Callable[[SessionEvent], None]
Undo = Callable[[Decision], str]   # undoes one decision of a kind; returns what happened, RunError if it cannot


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


class Session:
    """An open study with its runner and scheduler; every command and automatic decision goes here."""

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
        # --autopilot rides with the scheduler's overrides (like --early-stop) but is the session's.
        self._autopilot_rule: str | None = self._scheduler_options.pop("autopilot", None)
        self._autopilot: pilot.Autopilot | None = None
        self.log = DecisionLog(study.store)
        self.autostart = autostart
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()
        self._said_sched: str | None = None
        self._said_failure: str | None = None
        self._log_failed = False
        self._early: EarlyStopping | None = None
        self._undoers: dict[str, Undo] = {"early_stop": self._undo_early_stop_decision,
                                          pilot.KIND: lambda d: self._pilot().undo(d.data)}
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
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)
        return unsubscribe

    def _publish(self, event: SessionEvent) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception as e:  # noqa: BLE001 - reported below; the others still get the event
                what = type(event).__name__ if not isinstance(event, RunEvent) else f"a {event.kind} event"
                failure = Notice("Listener", f"{_name(listener)} failed on {what}: {type(e).__name__}: {e}", "error")
                self._log(failure)
                if not isinstance(event, Notice):   # a listener failing on notices is only logged
                    self._publish(failure)

    def notice(self, title: str, message: str, severity: Severity = "information") -> None:
        """Tell whoever watches, and write it to the study's log."""
        event = Notice(title, message, severity)
        self._log(event)
        self._publish(event)

    def decide(self, decision: Decision) -> Decision:
        """Keep an automatic decision in the study's decision log (it gets its id), and announce it."""
        if not self.study.readonly:
            try:
                kept = self.log.add(decision.kind, decision.trial_id, decision.message, dict(decision.data))
                decision = replace(decision, id=kept.id)
            except TunerError as e:
                self.notice("Decision log", f"cannot keep the decision in the study: {e.message}", "error")
        self._log(Notice(f"Decision: {decision.kind}", decision.message, "information"))
        self._publish(decision)
        return decision

    def _log(self, notice: Notice) -> None:
        if self.study.readonly:
            return
        path = self.study.dir / LOG_FILE
        try:
            append_line(path, {"t": time.time(), "severity": notice.severity, "title": notice.title,
                               "message": notice.message})
        except (OSError, ValueError) as e:
            if not self._log_failed:   # said once, not once per notice
                self._log_failed = True
                self._publish(Notice("Study log", f"cannot write {path}: {e}", "error"))

    def _on_run_event(self, ev: RunEvent) -> None:
        """The runner's callback (its poll thread, or the caller of a command)."""
        if ev.kind in ("metrics", "ended"):
            self._judge(ev)   # first: an early-stopped run's "ended" then carries the decision as its reason
        self._publish(ev)
        if ev.kind == "error":
            self.notice("Runner", str(ev.data.get("message", "error")), "error")

    # -- early stopping ---------------------------------------------------------------------------

    @property
    def early_stopping(self) -> EarlyStopping | None:
        """The study's early stopping (None when its rule is "none"), built with the scheduler."""
        if self._early is None and self.scheduler.early_stop.rule != "none":
            self._early = EarlyStopping(self.study, self.runner, self.scheduler.early_stop)
        return self._early

    def _judge(self, ev: RunEvent) -> None:
        try:
            es = self.early_stopping
            rec = es.observe(ev) if es is not None else None
        except Exception as e:  # noqa: BLE001 - said and logged; the runs go on unjudged
            self.notice("Early stopping", f"{type(e).__name__}: {e}", "error")
            return
        if rec is not None:
            self.decide(Decision("early_stop", rec.trial_id, rec.text, asdict(rec)))
        if ev.kind == "ended" and es is not None and ev.data.get("status") == "stopped":
            reason = self.study.trial(ev.trial_id).reason
            if reason and reason.startswith(REASON_PREFIX):
                ev.data["reason"] = reason

    def undo_early_stop(self, trial_id: int) -> str:
        """Resume an early-stopped trial exactly from its checkpoint (a zero-code run restarts)."""
        es = self.early_stopping
        if es is None:
            raise RunError("early stopping is off in this study: nothing to undo")
        child = es.undo(trial_id)
        message = f"undid the early stop of #{trial_id}: #{child.id} resumes it at step {child.fork_step}"
        kept = self.log.latest("early_stop", trial_id)   # undone by its trial (the u key): the log says so too
        if kept is not None:
            self.log.mark_undone(kept.id, message)
        self.decide(Decision("undo", child.id, message, {"undone": trial_id}))
        return message

    def _undo_early_stop_decision(self, decision: Decision) -> str:
        if decision.trial_id is None:
            raise RunError("this early-stop decision names no trial")
        return self.undo_early_stop(decision.trial_id)

    # -- undo of any automatic decision -----------------------------------------------------------

    def register_undo(self, kind: str, undo: Undo) -> None:
        """Say how decisions of `kind` are undone (early stop, autopilot, auto-k each register one)."""
        self._undoers[kind] = undo

    def undo(self, decision: Decision) -> str:
        """Undo one automatic decision by its kind; a RunError when that kind cannot be undone.

        A decision from the log (with an id) is undone once: the log then says what the undo did.
        """
        undo = self._undoers.get(decision.kind)
        if undo is None:
            raise RunError(f"a {decision.kind} decision cannot be undone")
        if decision.id is not None:
            self.log.check_undoable(decision.id)
        message = undo(decision)
        if decision.id is not None:
            self.log.mark_undone(decision.id, message)
        return message

    def undo_decision(self, decision_id: int) -> str:
        """Undo the decision of the log with this id (the decision log screen's key)."""
        d = self.log.get(decision_id)
        return self.undo(Decision(d.kind, d.trial_id, d.message, d.data, d.id))

    def decisions(self) -> list[Logged]:
        """Every decision the study keeps, newest first."""
        return self.log.all()

    def undoable_kinds(self) -> frozenset[str]:
        """The kinds of decision that can be undone (each registered its undo)."""
        return frozenset(self._undoers)

    def _pin(self, trial_id: int) -> None:
        """A run the user adjusted or forked by hand is never stopped or replaced automatically."""
        es = self.early_stopping
        if es is not None:
            es.pin(trial_id)
        else:
            pilot.pin(self.study, trial_id)

    # -- the autopilot (PBT: runtime/autopilot.py carries out core/pbt.py's decisions) ------------

    @property
    def autopilot(self) -> pilot.Autopilot:
        """The autopilot, built on first use from the space's [study] autopilot (or --autopilot)."""
        return self._pilot()

    def _pilot(self) -> pilot.Autopilot:
        if self._autopilot is None:
            cfg = self.config.autopilot
            if self._autopilot_rule is not None:
                cfg = pbt_config(self._autopilot_rule, cfg.interval, cfg.fraction, cfg.resample, "autopilot")
            sched = self.scheduler
            self._autopilot = pilot.Autopilot(
                self.study, self.runner, cfg, say=lambda m, sev: self.notice("Autopilot", m, sev),  # type: ignore[arg-type]
                halted=lambda: sched.holding or sched.ended_by is not None)
        return self._autopilot

    def toggle_autopilot(self) -> str:
        """Turn the autopilot on or off (the app's key)."""
        return self._pilot().toggle()

    def autopilot_state(self) -> str:
        """"on (pbt every 100 steps)" or "off", for the app."""
        ap = self._pilot()
        return f"on (pbt every {ap.config.interval} steps)" if ap.enabled else "off"

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
        try:
            sched = self.scheduler
            for carried in self._pilot().tick():   # first: a fork takes its slot before the queue does
                self.decide(Decision(pilot.KIND, carried.trial_id, carried.message, carried.data))
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
        self._pin(trial_id)
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
        self._pin(child.id)
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

    def zoom(self) -> str:
        """Narrow the search around the best done trials, with the scheduler's zoom settings."""
        sched = self.scheduler
        return search.zoom(self.study, top=sched.zoom_top, margin=sched.zoom_margin)

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


def _name(listener: Listener) -> str:
    owner = getattr(listener, "__self__", None)
    name = getattr(listener, "__qualname__", None) or type(listener).__name__
    return f"{type(owner).__name__}.{listener.__name__}" if owner is not None else str(name)
