"""The runner's table of runs: what it knows of each run, under one lock, shared by its parts.

The Runner (runner.py: starting, following, settling, adopting) and its two parts, the commands
(control.py) and the queries (run_queries.py), are each given this table rather than inheriting one
another's state: one place holds the runs and the lock that guards them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_tuner.errors import RunError, TunerError
from tui_tuner.runtime import devices, history, process
from tui_tuner.runtime.events import EventBus
from tui_tuner.runtime.reader import RunReader
from tui_tuner.runtime.run_state import Objective, RunState
from tui_tuner.runtime.stopper import Stopper
from tui_tuner.search.trials import Trial

# Polled per run; the defaults suit a person pressing keys, tests shrink them.
STOP_TIMEOUT = 10.0        # after the stop command, before SIGTERM
TERM_TIMEOUT = 5.0         # after SIGTERM, before SIGKILL of the process group
CHECKPOINT_TIMEOUT = 60.0  # a fork waits this long for the parent's checkpoint


@dataclass
class Timeouts:
    """The grace periods of a stop and a fork's wait for its checkpoint (seconds; 0 hurries a quit)."""

    stop: float = STOP_TIMEOUT
    term: float = TERM_TIMEOUT
    checkpoint: float = CHECKPOINT_TIMEOUT


class Run:
    """What the runner knows about one run (live, settled in this session, or read back)."""

    def __init__(self, trial: Trial, run_dir: Path, state: RunState, reader: RunReader, zero_code: bool) -> None:
        self.trial_id: int = trial.id
        self.run_dir = run_dir
        self.zero_code = zero_code
        self.state = state
        self.reader = reader
        self.proc = process.Process(trial.pid, run_dir)
        self.device: str | None = None        # its GPU ([study] devices), from its params.json
        self.stopper = Stopper()
        self.started: float = trial.started or time.time()
        self.ended: float | None = trial.ended
        self.live = False
        self.seq = 0                          # last control seq written
        self.progress_written = 0.0
        self.progress_failed = False          # the last progress write failed (said once, not every second)

    def __getattr__(self, name: str) -> Any:
        # What the run's reports say reads as the run's own (runs[id].step, .checkpoints, .status).
        state = self.__dict__.get("state")
        if state is None or name.startswith("_"):
            raise AttributeError(name)
        return getattr(state, name)

    @property
    def pid(self) -> int | None:
        """The run's shim (and process group)."""
        return self.proc.pid


class RunTable:
    """The runs of one study by trial id, the lock (and event queue) that guards them, and reading an
    old run back from its directory."""

    def __init__(self, study: Any, bus: EventBus) -> None:
        self.study = study
        self.bus = bus
        cfg = study.space.config
        self.zero_code = cfg.zero_code
        self.objective = Objective(cfg.objective, cfg.better, cfg.reduce)
        self.patterns = cfg.metrics if cfg.zero_code else None
        self.runs: dict[int, Run] = {}
        self.with_devices = False   # the study gives runs devices: each run's is read from its params.json

    def new(self, trial: Trial, run_dir: Path) -> Run:
        """A run to follow for this trial (not yet in the table)."""
        status = trial.status if trial.status in ("running", "paused") else "running"
        state = RunState(trial.id, self.objective, trial.params, step=trial.step, status=status, now=time.time())
        return self._device(Run(trial, run_dir, state, RunReader(run_dir, self.patterns), self.zero_code))

    def _device(self, run: Run) -> Run:
        if self.with_devices:
            run.device = devices.device_of(run.run_dir)
        return run

    def live(self, trial_id: int) -> Run:
        """The live run of a trial; RunError when it is not running."""
        run = self.runs.get(trial_id)
        if run is None or not run.live:
            raise RunError(f"trial {trial_id} is not running")
        return run

    def live_ids(self) -> list[int]:
        """Trial ids whose processes are running or paused now."""
        with self.bus.locked():
            return [i for i, r in self.runs.items() if r.live]

    def is_live(self, trial_id: int) -> bool:
        """True while the trial's processes run (or are paused)."""
        run = self.runs.get(trial_id)
        return bool(run and run.live)

    def known(self, trial_id: int) -> Run | None:
        """The run of a trial that ever ran: followed in this session, else read back from its run
        directory once. The reading happens outside the lock, so polls and commands go on meanwhile."""
        with self.bus.locked():
            run = self.runs.get(trial_id)
        if run is not None:
            return run
        try:
            trial = self.study.trial(trial_id)
        except TunerError:   # an unknown id simply has no curve
            return None
        if trial.status == "queued":
            return None
        run_dir = self.study.run_dir(trial_id)
        state, reader = history.replay(trial, run_dir, self.objective, self.patterns)
        old = self._device(Run(trial, run_dir, state, reader, self.zero_code))
        with self.bus.locked():
            # A run started or read back by another thread meanwhile wins: it is the one followed.
            return self.runs.setdefault(trial_id, old)
