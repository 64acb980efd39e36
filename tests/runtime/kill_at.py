"""A tuner that SIGKILLs itself in the middle of carrying out a decision (a script the kill-window tests run).

    python kill_at.py STUDY_DIR KIND POINT

It opens the study (its space as kept), runs the session's loop, and dies with SIGKILL at POINT of the
first decision of KIND ("early_stop", "pbt" or "fork"):
- "row": right after the decision is kept in the log, before its first step;
- N: right after step N was taken (its command written, its fork started), before that is recorded;
- "child": right before the fork a step made is started (it is in the study, queued).
For KIND "fork" it asks for the fork itself (as the fork form would), once trial 1 has trained 5 steps.
The trainers live on (their own process groups), as when a tuner is killed for real.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from tui_tuner.runtime.executor import Executor
from tui_tuner.runtime.runner import Runner
from tui_tuner.runtime.session import Session
from tui_tuner.study.decision_log import DecisionLog
from tui_tuner.study.study import Study

RUNNER = {"stop_timeout": 1.0, "term_timeout": 1.0, "checkpoint_timeout": 20.0}


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(kind: str, point: str) -> None:
    if point == "row":
        add = DecisionLog.add

        def add_then_die(self, k, *a, **kw):
            d = add(self, k, *a, **kw)
            if k == kind:
                die()
            return d
        DecisionLog.add = add_then_die   # type: ignore[method-assign]
    elif point == "child":
        start = Runner.start

        def start_or_die(self, trial):
            if trial.source == "fork":
                die()
            return start(self, trial)
        Runner.start = start_or_die   # type: ignore[method-assign]
    else:
        n = int(point)
        record = Executor._record

        def record_or_die(self, d, progress, undo):
            if d.kind == kind and not undo and progress.get("done") == n + 1:
                die()
            return record(self, d, progress, undo)
        Executor._record = record_or_die   # type: ignore[method-assign]


def main() -> int:
    study_dir, kind, point = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    arm(kind, point)
    study = Study.open(study_dir)
    session = Session(study, runner_options={**RUNNER, "cwd": Path.cwd()})
    session.adopt()
    asked = False
    end = time.time() + 60
    while time.time() < end:
        session.poll()
        session.tick()
        if kind == "fork" and not asked and (session.runner.queries.latest(1).get("step") or 0) >= 5:
            session.fork(1, {"lr": 0.2}, None)
            asked = True
        time.sleep(0.02)
    print("the kill point was never reached", flush=True)
    return 3


if __name__ == "__main__":
    sys.exit(main())
