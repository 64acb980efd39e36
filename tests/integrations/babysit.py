"""One babysitting session on a real example trainer, the same for every framework.

A real Runner on a real study starts the trainer (the launch shim, its own process), then: changes
the lr live, pauses and holds, forks while paused (the checkpoint goes through the framework's own
save), resumes, and stops the child once it has trained past the fork. The test then checks what
the session recorded.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from space_toml import param, space_toml
from study_runs import kill_runs
from waiting import wait_for

from tui_tuner.runtime.runner import RunEvent, Runner
from tui_tuner.search.space import parse_space
from tui_tuner.study.study import Study

REPO = Path(__file__).resolve().parents[2]

# Under load a framework takes a while just to import (Lightning, transformers: seconds of CPU each).
START_TIMEOUT = 180.0


@dataclass
class Session:
    """What a babysitting session saw."""

    study: Study
    runner: Runner
    parent: int
    child: int = 0
    applied_step: int = 0
    new_lr: float = 0.0
    held: int = 0
    held_after: int = 0
    fork_step: int = 0
    events: list[RunEvent] = field(default_factory=list)

    def curve(self, trial: int, metric: str) -> dict[int, float]:
        """The trial's reported values of one metric, by step (tests report far under the series cap)."""
        return dict(self.runner.queries.series(trial, metric))


def start(tmp_path: Path, script: str, lr_name: str, lr: float, objective: str, fixed: dict[str, Any]) -> Session:
    """A study whose space is the lr (live) plus `fixed` settings; its first trial started."""
    params = {lr_name: param("float", scale="log", low=1e-5, high=1.0, default=lr, live=True)}
    for name, value in fixed.items():
        kind = "int" if isinstance(value, int) else "float"
        params[name] = param(kind, low=min(0, value), high=max(10 * value, 1), default=value, tier=4)
    path = tmp_path / "space.toml"
    path.write_text(space_toml(params, name="integ", command=[sys.executable, str(REPO / script)],
                               objective=objective))
    study = Study.open(tmp_path / "study", parse_space(path.read_text(), str(path)), seed=1)
    events: list[RunEvent] = []
    runner = Runner(study, events.append, cwd=REPO, stop_timeout=30.0, term_timeout=5.0,
                    checkpoint_timeout=START_TIMEOUT)
    trial = study.enqueue_manual({})
    runner.start(trial)
    return Session(study, runner, trial.id, events=events)


def poll_until(s: Session, cond, what: str, timeout: float = START_TIMEOUT) -> Any:
    """Poll the runner until cond() holds."""

    def polled():
        s.runner.poll()
        return cond()

    return wait_for(polled, timeout, 0.01, what)


def step_of(s: Session, trial: int) -> int:
    return s.runner.queries.latest(trial)["step"] or 0


def of(s: Session, kind: str, trial: int) -> list[RunEvent]:
    return [e for e in s.events if e.kind == kind and e.trial_id == trial]


def babysit(s: Session, lr_name: str, new_lr: float, *, hold: float = 1.0, past_fork: int = 30) -> Session:
    """Change the lr, pause, fork while paused, resume, and stop the child `past_fork` steps after the fork."""
    p = s.parent
    poll_until(s, lambda: step_of(s, p) >= 3, "the parent's first steps")
    s.new_lr = new_lr
    s.runner.commands.set(p, {lr_name: new_lr})
    applied = poll_until(s, lambda: of(s, "applied", p), "the applied event")[0]
    s.applied_step = applied.data["step"] or 0
    poll_until(s, lambda: step_of(s, p) >= s.applied_step + 4, "steps after the change")

    s.runner.commands.pause(p)
    poll_until(s, lambda: of(s, "paused", p), "the paused event")
    s.held = step_of(s, p)
    end = time.monotonic() + hold
    while time.monotonic() < end:
        s.runner.poll()
        time.sleep(0.02)
    s.held_after = step_of(s, p)

    child = s.runner.commands.fork(p, {})      # checkpoints the paused parent through the framework
    s.child, s.fork_step = child.id, child.fork_step
    s.runner.commands.resume(p)
    poll_until(s, lambda: of(s, "resumed", p), "the resumed event")
    poll_until(s, lambda: step_of(s, s.child) >= s.fork_step + past_fork, "the child's steps past the fork")
    s.runner.commands.stop(s.child)
    poll_until(s, lambda: s.study.trial(s.child).finished, "the child to stop")
    poll_until(s, lambda: s.study.trial(p).finished, "the parent to finish")
    return s


def close(s: Session) -> None:
    """Stop whatever still runs and close the study."""
    s.runner.stop_timeout = s.runner.term_timeout = 0.0
    s.runner.commands.stop_all(timeout=10)
    d = s.study.dir
    s.study.close()
    kill_runs(d)
