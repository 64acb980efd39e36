"""The model worker: GP's asks answered in a process of their own, warm between asks; its errors and
its crash reach the tuner as one line, and a crash leaves the slots to TPE."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from runtime_helpers import make_runner, open_study, toy_space
from test_scheduler import drive

from tui_tuner.errors import SpaceError
from tui_tuner.runtime.model_worker import ModelFailed, ModelWorker, WorkerCrashed
from tui_tuner.runtime.scheduler import Scheduler
from tui_tuner.search.space import parse_space
from tui_tuner.search.state import SearchState
from tui_tuner.study.store import Trial

pytest.importorskip("optuna")
SPACE_TOML = textwrap.dedent("""
    [study]
    command = ["python", "train.py"]
    objective = "loss"
    [params.lr]
    type = "float"
    scale = "log"
    low = 1e-4
    high = 1.0
    default = 1e-2
    [params.units]
    type = "int"
    low = 16
    high = 256
    default = 64
""")
UNIT = str(Path(__file__).resolve().parents[1] / "unit")


def done_trials(n: int) -> list[Trial]:
    """n finished trials on SPACE_TOML, spread over the space, loss smallest near lr 1e-2."""
    import math

    out = []
    for i in range(n):
        lr = 10 ** (-4 + 4 * ((i * 0.618) % 1))
        out.append(Trial(id=i + 1, status="done", params={"lr": lr, "units": 16 + 15 * i},
                         objective=(math.log10(lr) + 2) ** 2, created=float(i + 1)))
    return out


def gp_job(n_done: int = 12) -> dict:
    space = parse_space(SPACE_TOML, "space.toml")
    return {"space": space, "state": SearchState(), "seed": 3, "trials": done_trials(n_done), "strategy": "gp"}


def test_a_gp_ask_is_answered_by_the_worker_and_the_tuner_never_imports_torch(tmp_path):
    """In a fresh interpreter, as the tuner would be: two asks (the second to the same warm process),
    proposals inside the space, a kernel to start the next fit from, and no torch in this process."""
    pytest.importorskip("torch")
    script = tmp_path / "ask.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        sys.path[:0] = [{str(Path(__file__).parent)!r}, {UNIT!r}, {str(Path(__file__).parents[1])!r}]
        from test_model_worker import gp_job
        from tui_tuner.runtime.model_worker import ModelWorker
        w = ModelWorker()
        first = w.submit("k", gp_job(), 2)
        assert first.wait(120)
        settings = first.result()
        pid = w.pid
        second = w.submit("k", {{**gp_job(13), "kernel": first.kernel}}, 1)
        assert second.wait(120)
        print(len(settings), len(second.result()), first.kernel is not None, pid == w.pid,
              pid != os.getpid(), w.starts, "torch" in sys.modules)
        w.close()
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2", "1", "True", "True", "True", "1", "False"]


def test_an_error_of_ours_is_raised_again_in_the_tuner_and_a_broken_job_is_a_failed_model():
    w = ModelWorker()
    try:
        bad = w.submit("k", {**gp_job(), "strategy": "annealing"}, 1)
        assert bad.wait(60)
        with pytest.raises(SpaceError, match=r"^strategy: 'annealing' is not a model-based strategy"):
            bad.result()
        broken = w.submit("k", {**gp_job(), "bogus": 1}, 1)
        assert broken.wait(60)
        with pytest.raises(ModelFailed, match=r"^TypeError: .*bogus"):
            broken.result()
        assert w.starts == 1, "the worker lives on after an error"
    finally:
        w.close()


def test_a_killed_worker_is_one_line_and_the_next_ask_starts_a_new_one():
    w = ModelWorker()
    try:
        job = w.submit("k", gp_job(), 1)    # a GP fit: its imports alone take longer than the kill
        os.kill(w.pid, signal.SIGKILL)
        assert job.wait(30)
        with pytest.raises(WorkerCrashed, match=r"^the model worker was killed by signal 9$"):
            job.result()
        again = w.submit("k", {**gp_job(), "strategy": "tpe"}, 1)
        assert again.wait(60) and len(again.result()) == 1 and w.starts == 2
    finally:
        w.close()


def test_a_worker_crash_mid_study_is_one_line_and_tpe_stands_in(tmp_path, monkeypatch):
    """The scheduler with the real worker: the ask in flight dies with its process, the session is told
    one line, TPE fills the slot, and the study goes on."""
    from tui_tuner.search import optuna_search

    monkeypatch.setattr(optuna_search.OptunaSearch, "fits", lambda self, n=1: self.strategy == "gp")
    study = open_study(tmp_path, toy_space(tmp_path, stage=1, steps=2, delay=0.0))
    runner = make_runner(study)
    sched = Scheduler(study, runner, budget=2, parallel=1, strategy="gp")
    said: list[str] = []
    sched.notify = said.append
    try:
        assert sched.tick() == []
        assert sched._asking is not None
        os.kill(sched.worker.pid, signal.SIGKILL)
        assert sched._asking.wait(30)
        assert len(sched.tick()) == 1
        assert study.trials("id")[0].source == "tpe"
        assert said == ["the model worker was killed by signal 9; TPE proposed these settings, the next "
                        "ask starts a new worker"]
        drive(study, runner, sched, timeout=120)
        assert study.counts().get("done") == 2
    finally:
        sched.close()
        study.close()


def test_importance_measured_in_the_worker_is_the_one_measured_here():
    """The app measures importance in a worker (optuna's importance package brings scikit-learn and
    scipy): the same scores as in this process."""
    from tui_tuner.search.importance import importance

    space = parse_space(SPACE_TOML, "space.toml")
    done = [(t.params, t.objective) for t in done_trials(12)]
    w = ModelWorker()
    try:
        there = w.importance(space, done, False, timeout=120)
    finally:
        w.close()
    here = importance(space, done, False)
    assert there.method == here.method and there.scores == pytest.approx(here.scores)
