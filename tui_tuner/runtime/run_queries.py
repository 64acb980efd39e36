"""What the runner can tell about a trial's run: live or not, its curves, latest numbers and output.

`RunQueries` is the read-only part of the runner (`runner.queries`), given the runner's table of runs
(runs.py); the session and the app's snapshots ask it. A trial run by an earlier tuner session is
read back from its run directory once (`RunTable.known`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tui_tuner.runtime.runs import RunTable
from tui_tuner.study import verdict


@dataclass(frozen=True)
class Output:
    """A trial's failure reason and the last lines of its output."""

    trial_id: int
    status: str
    reason: str | None
    lines: list[str]


class RunQueries:
    """Read-only questions about runs, answered from the runner's table under its lock."""

    def __init__(self, table: RunTable) -> None:
        self._table = table
        self.study = table.study

    def live_ids(self) -> list[int]:
        """Trial ids whose processes are running or paused now."""
        return self._table.live_ids()

    def is_live(self, trial_id: int) -> bool:
        """True while the trial's processes run (or are paused)."""
        return self._table.is_live(trial_id)

    def series(self, trial_id: int, metric: str) -> list[tuple[int, float]]:
        """The trial's curve for one metric: (step, value), at most ~512 points.

        A trial run by an earlier tuner session is read back from its run directory once.
        """
        run = self._table.known(trial_id)
        if run is None:
            return []
        with self._table.bus.locked():
            s = run.state.series.get(metric)
            return s.get() if s else []

    def metric_names(self, trial_id: int) -> list[str]:
        """The metrics a run has reported, in first-seen order."""
        run = self._table.known(trial_id)
        with self._table.bus.locked():
            return list(run.state.series) if run else []

    def changes(self, trial_id: int) -> list[dict[str, Any]]:
        """The live changes that took effect in a run ({"step", "params", "t"} each), oldest first."""
        run = self._table.known(trial_id)
        with self._table.bus.locked():
            return [dict(a) for a in run.state.applied] if run else []

    def pauses(self, trial_id: int) -> list[int | None]:
        """The step at each pause of a run, oldest first."""
        run = self._table.known(trial_id)
        with self._table.bus.locked():
            return list(run.state.pauses) if run else []

    def latest(self, trial_id: int) -> dict[str, Any]:
        """{"step", "metrics", "elapsed", "status", "stalled", "garbage", "objective", "params"} (+ "ending",
        and "waiting": why a cluster job has not started yet, e.g. "queued on the cluster (Resources)")."""
        run = self._table.known(trial_id)
        with self._table.bus.locked():
            if run is not None and run.live:
                # Asked for every live run at every frame: that is all in memory (no database read).
                started, status = run.started, run.state.status
            else:
                trial = self.study.trial(trial_id)
                if run is None:
                    elapsed = ((trial.ended or time.time()) - trial.started) if trial.started else 0.0
                    return {"step": trial.step, "metrics": {}, "elapsed": elapsed, "status": trial.status,
                            "stalled": False, "garbage": 0, "objective": trial.objective,
                            "params": dict(trial.params)}
                started, status = trial.started or run.started, trial.status
            state = run.state
            return {"step": state.step, "metrics": dict(state.metrics),
                    "elapsed": (run.ended or time.time()) - started, "status": status,
                    "stalled": state.stalled, "garbage": state.garbage, "objective": state.objective,
                    "params": dict(state.params),
                    "ending": state.done_at is not None or run.stopper.active,   # done, or being stopped
                    "waiting": run.proc.queued() if run.live else None}

    def output_tail(self, trial_id: int, n: int = 20) -> list[str]:
        """The last n lines of the run's output.log."""
        return list(verdict.output_tail(self.study.run_dir(trial_id), n))
