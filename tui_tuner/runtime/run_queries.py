"""What the runner can tell about a trial's run: live or not, its curves, latest numbers and output.

`RunQueries` is the read-only part of `Runner` (runner.py), used by the session and the app's
snapshots; it reads the runner's runs under its lock, named in the annotations below. A trial run
by an earlier tuner session is read back from its run directory once (`Runner._known`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tui_tuner.study import verdict

if TYPE_CHECKING:
    from tui_tuner.runtime.events import EventBus
    from tui_tuner.runtime.runner import _Run
    from tui_tuner.study.study import Study


class RunQueries:
    """Read-only questions about runs (mixed into Runner)."""

    study: Study
    runs: dict[int, _Run]
    _bus: EventBus
    _known: Callable[[int], _Run | None]

    def live_ids(self) -> list[int]:
        """Trial ids whose processes are running or paused now."""
        with self._bus.locked():
            return [i for i, r in self.runs.items() if r.live]

    def is_live(self, trial_id: int) -> bool:
        """True while the trial's processes run (or are paused)."""
        run = self.runs.get(trial_id)
        return bool(run and run.live)

    def series(self, trial_id: int, metric: str) -> list[tuple[int, float]]:
        """The trial's curve for one metric: (step, value), at most ~512 points.

        A trial run by an earlier tuner session is read back from its run directory once.
        """
        run = self._known(trial_id)
        if run is None:
            return []
        with self._bus.locked():
            s = run.state.series.get(metric)
            return s.get() if s else []

    def metric_names(self, trial_id: int) -> list[str]:
        """The metrics a run has reported, in first-seen order."""
        run = self._known(trial_id)
        with self._bus.locked():
            return list(run.state.series) if run else []

    def changes(self, trial_id: int) -> list[dict[str, Any]]:
        """The live changes that took effect in a run ({"step", "params", "t"} each), oldest first."""
        run = self._known(trial_id)
        with self._bus.locked():
            return [dict(a) for a in run.state.applied] if run else []

    def pauses(self, trial_id: int) -> list[int | None]:
        """The step at each pause of a run, oldest first."""
        run = self._known(trial_id)
        with self._bus.locked():
            return list(run.state.pauses) if run else []

    def latest(self, trial_id: int) -> dict[str, Any]:
        """{"step", "metrics", "elapsed", "status", "stalled", "garbage", "objective", "params"} (+ "ending")."""
        run = self._known(trial_id)
        with self._bus.locked():
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
                    "ending": state.done_at is not None or run.stopper.active}   # done, or being stopped

    def output_tail(self, trial_id: int, n: int = 20) -> list[str]:
        """The last n lines of the run's output.log."""
        return list(verdict.output_tail(self.study.run_dir(trial_id), n))
