"""Runs trials as processes and follows them through their run directories: the runtime's shell.

The runner starts a trial under the launch shim, reads what the trainer writes into each run's
`RunState` (run_state, reader), writes commands to control.jsonl (control), drives stops through
their phases (stopper), settles each run in the study with the verdict of its recorded facts
(verdict), and reads old runs back outside its lock (history). It never imports textual: the app
gives it an `on_event` callback and calls `poll()` from a thread (`start_thread`).

Nothing is swallowed: a failed study write or a listener that raises becomes an "error" RunEvent
(and a line in `errors`), and the runs go on being followed.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui_tuner.errors import RunError, StudyError
from tui_tuner.runtime import devices, process, slurm
from tui_tuner.runtime.control import Commands
from tui_tuner.runtime.events import EventBus, say
from tui_tuner.runtime.poller import FAST_POLL, FAST_WINDOW, PollThread
from tui_tuner.runtime.run_queries import RunQueries
from tui_tuner.runtime.run_state import SERIES_POINTS, Kind, RunEvent, RunState, Series
from tui_tuner.runtime.runs import CHECKPOINT_TIMEOUT, STOP_TIMEOUT, TERM_TIMEOUT, Run, RunTable, Timeouts
from tui_tuner.runtime.stopper import Phase
from tui_tuner.study import rundir, verdict
from tui_tuner.study.store import Trial
from tui_tuner.study.study import Study

__all__ = ["FAST_POLL", "FAST_WINDOW", "SERIES_POINTS", "Kind", "Phase", "RunEvent", "Runner", "Series"]

PROGRESS_EVERY = 1.0       # seconds between step/objective writes to the study per run


class Runner:
    """Starts, follows and settles the runs of one study; its two parts, given its table of runs, send
    commands (`commands`: pause, set, checkpoint, stop, fork) and answer questions (`queries`: live
    runs, curves, latest numbers, output)."""

    def __init__(self, study: Study, on_event: Callable[[RunEvent], None] | None = None, *,
                 cwd: str | Path | None = None, stop_timeout: float = STOP_TIMEOUT,
                 term_timeout: float = TERM_TIMEOUT, checkpoint_timeout: float = CHECKPOINT_TIMEOUT,
                 stall_timeout: float | None = None) -> None:
        self.study = study
        self.space = study.space
        self.config = study.space.config
        self._bus = EventBus(on_event)
        self.errors = self._bus.errors        # every error reported (also sent as "error" events)
        # The directory the tuner was started from: a relative command path resolves there.
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
        self.timeouts = Timeouts(stop_timeout, term_timeout, checkpoint_timeout)
        self.stall_timeout = self.config.stall_timeout if stall_timeout is None else stall_timeout
        self.table = RunTable(study, self._bus)
        self.runs = self.table.runs
        # [study] devices: where each run goes and how many fit (None: no device, as before).
        self.devices = devices.for_config(self.config.devices, self.config.parallel)
        self.table.with_devices = self.config.devices is not None
        self._cancel = threading.Event()   # set by cancel_waits(): a fork stops waiting for its checkpoint
        self._poller = PollThread(self.poll, self._poll_failed)
        self._leftovers = process.Leftovers()
        # Jobs on a Slurm cluster (runtime/slurm.py): submitted with [study.slurm]; any run dir with a job.json is one.
        self.cluster = slurm.Cluster(self.config.slurm if self.config.executor == "slurm" else None, self.config.name)
        self.queries = RunQueries(self.table)
        self.commands = Commands(self.table, self.timeouts, start=self.start, poll=self.poll,
                                 poll_run=self._poll_run, hurry=self._poller.hurry, leftovers=self._leftovers,
                                 cancel=self._cancel)

    # The grace periods, settable by whoever hurries a quit (a second Ctrl-C sets them to 0).
    @property
    def stop_timeout(self) -> float:
        """Seconds after the stop command before SIGTERM."""
        return self.timeouts.stop

    @stop_timeout.setter
    def stop_timeout(self, value: float) -> None:
        self.timeouts.stop = value

    @property
    def term_timeout(self) -> float:
        """Seconds after SIGTERM before SIGKILL."""
        return self.timeouts.term

    @term_timeout.setter
    def term_timeout(self, value: float) -> None:
        self.timeouts.term = value

    @property
    def checkpoint_timeout(self) -> float:
        """Seconds a fork waits for its parent's checkpoint."""
        return self.timeouts.checkpoint

    @property
    def on_event(self) -> Callable[[RunEvent], None] | None:
        """The listener the runner's events go to (None: nobody listens)."""
        return self._bus.on_event

    @on_event.setter
    def on_event(self, callback: Callable[[RunEvent], None] | None) -> None:
        self._bus.on_event = callback

    # -- starting ---------------------------------------------------------------------------------

    def start(self, trial: Trial) -> None:
        """Write params.json, spawn the launch shim with the study command, mark the trial started."""
        with self._bus.locked():
            if trial.id in self.runs and self.runs[trial.id].live:
                raise RunError(f"trial {trial.id} is already running")
            # Checked before spawning: a process the study would refuse to record would be an orphan.
            trial = self.study.trial(trial.id)
            if trial.status != "queued":
                raise RunError(f"trial {trial.id} is {trial.status}; only a queued trial can start")
            run_dir = self.study.run_dir(trial.id)
            if self._job_going(trial, run_dir):
                return
            shim = process.earlier_attempt(trial, run_dir, self._live_names())
            if shim is not None:
                # It ran (or runs) this very setting: starting it again would run the trial twice.
                self.study.mark_started(trial.id, shim[0], started=shim[1])
                self._adopt_one(self.study.trial(trial.id), run_dir)
                return
            resume = str((self.study.dir / trial.resume).resolve()) if trial.resume else None
            device = self._device_for(trial)
            launcher = self.cluster.launcher(trial.id) if self.cluster.config is not None else None
            pid, argv = process.spawn_run(self.space, trial, run_dir, resume, self.cwd, self.study.space_file,
                                          device, launcher=launcher)
            self.study.mark_started(trial.id, pid)
            run = self._new_run(self.study.trial(trial.id), run_dir)
            job = self.cluster.attach(run_dir) if launcher is not None else None
            run.proc = job or process.Process(pid, run_dir, child=True)
            run.live = True
            run.state.status = "running"
            self.runs[trial.id] = run
            self._bus.emit(Kind.STARTED, trial.id, {"pid": pid, "argv": argv, "device": device,
                                                    **({"job": job.job_id} if job is not None else {})})

    def _device_for(self, trial: Trial) -> str | None:
        """The device a trial starts on: a fork, clone or resume near its parent (runtime/devices.py)."""
        if self.devices is None:
            return None
        parent = None
        if trial.parent is not None:
            known = self.runs.get(trial.parent)
            parent = known.device if known is not None else devices.device_of(self.study.run_dir(trial.parent))
        return self.devices.choose(self.runs, parent)

    def _new_run(self, trial: Trial, run_dir: Path) -> Run:
        return self.table.new(trial, run_dir)

    def _live_names(self) -> set[str]:
        return {name for name, p in self.space.params.items() if p.live}

    # -- following --------------------------------------------------------------------------------

    def poll(self) -> None:
        """Read what every live run wrote since the last call, drive stops, settle ended runs."""
        with self._bus.locked():
            for run in list(self.runs.values()):
                if run.live:
                    self._poll_run(run)
            if self._leftovers:
                self._leftovers.reap(time.time())
            for problem in self.cluster.calls.failures():   # a scancel the controller refused
                self._bus.error(problem)

    def _poll_run(self, run: Run) -> None:
        now = time.time()
        alive = run.proc.alive()
        if alive and run.proc.queued():
            run.state.last_activity = now   # waiting in a cluster's queue is not a stall
            if run.proc.take_requeues():
                # The rerun starts the trial over (launch.py keeps the cut-short run's events aside).
                run.state = RunState(run.trial_id, self.table.objective, self.study.trial(run.trial_id).params,
                                     step=None, status="running", now=now)
                self._bus.emit(Kind.REQUEUED, run.trial_id, {"waiting": run.proc.queued()})
        self._read(run, final=not alive)
        if not alive:
            self._settle(run)
            self._leftovers.end(run.proc.pid, now, self.term_timeout)
            return
        state = run.state
        if run.stopper.active:
            self.commands._send(run, run.stopper.escalate(now, self.term_timeout))
        if state.diverged and not run.stopper.active:
            self.commands._begin_stop(run)
        self._bus.emit_all(state.check_stall(now, self.stall_timeout))
        if now - run.progress_written >= PROGRESS_EVERY:
            run.progress_written = now
            self._write_progress(run)

    def _write_progress(self, run: Run) -> None:
        try:
            self.study.update_progress(run.trial_id, run.state.step, _finite(run.state.objective))
        except Exception as e:  # noqa: BLE001 - reported, and the run goes on being followed
            if not run.progress_failed:   # said once until a write succeeds again, not every second
                self._study_failed(run, "its progress", e)
            run.progress_failed = True
        else:
            run.progress_failed = False

    def _read(self, run: Run, final: bool = False) -> None:
        """Apply what the run wrote since the last poll; emit what happened, metrics coalesced into one."""
        before = run.state.reports
        # A poll reads a bounded chunk; settling or replaying reads everything there is.
        events = run.reader.read(run.state, time.time(), final=final, whole=final or not run.live)
        for ev in events:
            self._carry_out(run, ev)
        count = run.state.reports - before
        if count:
            self._bus.emit(Kind.METRICS, run.trial_id, {"step": run.state.step, "t": run.state.reported_at,
                                                        "metrics": dict(run.state.metrics),
                                                    "count": count})

    def _carry_out(self, run: Run, ev: RunEvent) -> None:
        """Record in the study what an event changed, then pass the event on."""
        if ev.kind is Kind.APPLIED and run.live and ev.data["params"]:
            # Persisted so an export or a later fork of a babysat run carries the value it trains with.
            self._study_write(run, "a live change", self.study.apply_live, ev.data["params"])
        elif ev.kind is Kind.INEXACT:
            # Kept in the study, so the app marks the lineage after a restart too.
            self._study_write(run, "that it is not an exact fork", self.study.mark_inexact, ev.data["reason"])
        elif ev.kind in (Kind.PAUSED, Kind.RESUMED) and run.live and not run.stopper.active:
            self._study_write(run, f"its {ev.kind} status", self.study.set_status, run.state.status)
        self._bus.emit(ev.kind, ev.trial_id, ev.data)

    def _study_write(self, run: Run, what: str, write: Callable[..., Any], *args: Any) -> None:
        try:
            write(run.trial_id, *args)
        except Exception as e:  # noqa: BLE001 - reported, and the run goes on being followed
            self._study_failed(run, what, e)

    def _study_failed(self, run: Run, what: str, e: Exception) -> None:
        self._bus.error(f"trial {run.trial_id}: could not record {what} in the study: {say(e)}", run.trial_id)

    # -- settling -----------------------------------------------------------------------------------

    def _settle(self, run: Run, unusable: str | None = None) -> None:
        """The run's processes are gone: decide its status from its recorded facts and record it.

        `unusable` says why the run dir cannot be credited to its trial (then it fails with that).
        """
        facts = self.facts(run, unusable)
        status, reason = verdict.decide(facts, self.config.objective)
        ended = facts.exit.get("ended") if facts.exit else None
        now = time.time()
        # exit.json's time, for a run that ended while no tuner watched; a clock that went wrong is not.
        run.ended = float(ended) if isinstance(ended, (int, float)) and run.started <= ended <= now else now
        objective = _finite(facts.objective)
        run.state.status = status
        try:
            if run.state.step is not None:
                self.study.update_progress(run.trial_id, run.state.step, None)
            self.study.finish(run.trial_id, status, objective=objective, reason=reason, ended=run.ended)
        finally:
            # Its slot frees only once the study has its end: a tick that sees the slot free then sees
            # the failure too (fail fast must not start one trial more on a loaded box).
            run.live = False
        self._bus.emit(Kind.ENDED, run.trial_id, {"status": status, "reason": reason,
                                              "objective": objective, "step": run.state.step})

    def facts(self, run: Run, unusable: str | None = None) -> verdict.Facts:
        """What a run's directory and its replayed events say about how it ended (see verdict.decide)."""
        exit_info, problem = verdict.read_exit(run.run_dir)
        stop = verdict.stop_command(run.run_dir)
        return verdict.Facts(exit=exit_info, exit_problem=problem, done_at=run.state.done_at,
                             diverged=run.state.diverged, objective=run.state.objective,
                             stop_at=verdict.stop_time(stop),
                             stop_reason=verdict.stop_reason(stop),
                             output=verdict.output_tail(run.run_dir), reported=tuple(sorted(run.state.metrics)),
                             unusable=unusable or verdict.not_a_directory(run.run_dir),
                             disk_full=exit_info is None and verdict.disk_full(run.run_dir),
                             cluster=run.proc.ended_how())

    # -- adoption ---------------------------------------------------------------------------------

    def adopt(self) -> list[int]:
        """On open: re-adopt the study's live runs, settle the ones that ended while away.

        Returns the ids re-adopted as live. Each adopted run's events are replayed from the start
        so its curves are whole again; a stop asked for before the tuner went away is carried out.
        A live run whose params.json is not its trial's (id or settings) is refused: StudyError,
        after the others were taken care of; an ended one fails with that reason, its result not
        credited to a trial it does not belong to.
        """
        adopted: list[int] = []
        refused: list[str] = []
        with self._bus.locked():
            active = self.study.active()
            self.cluster.watch(self.study.run_dir(t.id) for t in active)   # one squeue for all their jobs
            for trial in active:
                if trial.id in self.runs and self.runs[trial.id].live:
                    continue
                run_dir = self.study.run_dir(trial.id)
                problem = rundir.params_mismatch(run_dir, trial, self._live_names()) if run_dir.is_dir() else None
                if problem is not None and self._going(trial, run_dir):
                    refused.append(problem)
                elif self._adopt_one(trial, run_dir, problem):
                    adopted.append(trial.id)
        if refused:
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            raise StudyError(f"{refused[0]}{more}: the study's database does not match its run directories, "
                             f"so that run is not re-adopted")
        return adopted

    def settle_ended(self) -> list[int]:
        """Settle the active trials whose runs have ended, leaving live ones alone; returns their ids."""
        settled: list[int] = []
        with self._bus.locked():
            for trial in self.study.active():
                run_dir = self.study.run_dir(trial.id)
                if trial.id not in self.runs and not self._going(trial, run_dir):
                    self._adopt_one(trial, run_dir)
                    settled.append(trial.id)
        return settled

    def _adopt_one(self, trial: Trial, run_dir: Path, unusable: str | None = None) -> bool:
        """Follow an active trial's run again (replaying its events); settle it if it has ended.

        An ended run whose files are `unusable` (not this trial's) fails without being replayed.
        """
        run = self._new_run(trial, run_dir)
        run.proc = self.cluster.attach(run_dir) or run.proc
        run.live = True
        self.runs[trial.id] = run
        if not (run.proc.going() if isinstance(run.proc, slurm.SlurmJob) else process.going(trial.pid, run_dir)):
            if unusable is None:
                self._read(run, final=True)
            self._settle(run, unusable)
            return False
        self._read(run)
        run.state.last_activity = time.time()
        job = {"job": run.proc.job_id} if isinstance(run.proc, slurm.SlurmJob) else {}
        self._bus.emit(Kind.STARTED, trial.id, {"pid": trial.pid, "adopted": True, **job})
        asked = verdict.first_stop(run_dir)
        if asked is not None:
            # A stop the tuner that went away had asked for: it still holds.
            self.commands._carry_out_stop(run, asked if math.isfinite(asked) else time.time())
        return True

    def _job_going(self, trial: Trial, run_dir: Path) -> bool:
        """Adopt the Slurm job a run dir already names, queued or running (a tuner died between its sbatch
        and recording the start): True when adopted; RunError when it runs another setting."""
        job = self.cluster.attach(run_dir) if run_dir.is_dir() else None
        if job is None or not job.going():
            return False
        problem = rundir.params_mismatch(run_dir, trial, self._live_names())
        if problem is not None:
            raise RunError(f"{problem}; its Slurm job {job.job_id} still goes, so trial {trial.id} does not start over it")
        self.study.mark_started(trial.id, 0)
        self._adopt_one(self.study.trial(trial.id), run_dir)
        return True

    def _going(self, trial: Trial, run_dir: Path) -> bool:
        """True while a run found on disk goes: its Slurm job by what Slurm says, else its local shim."""
        job = self.cluster.attach(run_dir)
        return job.going() if job is not None else process.going(trial.pid, run_dir)

    # -- thread and events ------------------------------------------------------------------------

    def start_thread(self, interval: float = 0.05) -> None:
        """Call poll() every `interval` seconds from a daemon thread (for the app).

        For a moment after each command it polls every FAST_POLL seconds instead, so the answer
        (paused, applied, a checkpoint) shows up in milliseconds rather than at the next tick.
        """
        self._poller.start(interval)

    def stop_thread(self) -> None:
        """Stop the poll thread (runs keep going; they are re-adopted next time)."""
        self._poller.stop()

    def cancel_waits(self) -> None:
        """Make a fork waiting for its checkpoint give up at once (the app is quitting)."""
        self._cancel.set()

    def _poll_failed(self, e: Exception) -> None:
        self._bus.error(say(e))
        self._bus.dispatch()


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
