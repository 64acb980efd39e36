"""A run the runner did not follow in this session, read back from its run directory.

Reading a long run's events.jsonl takes a while, so this runs without the runner's lock (it touches
nothing the runner shares); the runner inserts the result under its lock afterwards.
"""

from __future__ import annotations

import time
from pathlib import Path

from tui_tuner.runtime.reader import RunReader
from tui_tuner.runtime.run_state import Objective, RunState
from tui_tuner.study.store import Trial


def replay(trial: Trial, run_dir: Path, objective: Objective,
           patterns: dict[str, str] | None = None) -> tuple[RunState, RunReader]:
    """The state a run's files give (curves, objective, checkpoints), read to their end, and its reader.

    `trial` is the study's record (id, params, step, status); `patterns` the zero-code metric patterns.
    The events the replay produces are dropped: an old run must not fire events at the UI.
    """
    state = RunState(trial.id, objective, trial.params, step=trial.step, status=trial.status,
                     now=time.time())
    reader = RunReader(run_dir, patterns)
    reader.read(state, time.time(), final=True, whole=True)
    return state, reader
