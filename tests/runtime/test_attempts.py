"""A run directory belongs to one attempt: a launch shim that was slow to start never writes into
the run directory of the attempt that replaced its own."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime_helpers import make_runner, open_study, toy_space, wait_for

from tui_tuner import launch
from tui_tuner.errors import RunError
from tui_tuner.runtime import pids, process
from tui_tuner.study import rundir
from tui_tuner.trainer import protocol

PY = sys.executable


def step_events(run: Path) -> list[int]:
    out = []
    for line in (run / protocol.EVENTS).read_text().splitlines():
        ev = json.loads(line)
        if "metrics" in ev:
            out.append(ev["step"])
    return out


def test_a_slow_shim_never_writes_into_the_next_attempts_run(tmp_path):
    # The tuner dies right after spawning trial 1's shim, which is stopped before it gets going.
    study = open_study(tmp_path, toy_space(tmp_path, steps=32, delay=0.005))
    (trial,) = study.enqueue([{"lr": 0.1}])
    run_dir = study.run_dir(trial.id)
    old, _argv = process.spawn_run(study.space, trial, run_dir, None, Path.cwd())
    os.kill(old, signal.SIGSTOP)
    try:
        if (run_dir / protocol.LAUNCH).exists():
            pytest.skip("the shim started before it could be stopped (the window is a few milliseconds)")
        # The rerun: trial 1 is still queued, its run dir has no launch.json, so it is set aside and
        # the trial starts afresh; then the old shim wakes up.
        runner = make_runner(study)
        runner.start(study.trial(trial.id))
        assert (run_dir.parent / f"{run_dir.name}.attempt-1").is_dir()
    finally:
        os.kill(old, signal.SIGCONT)
    wait_for(runner, lambda: study.trial(trial.id).status == "done", timeout=60, what="the new attempt to finish")
    deadline = time.monotonic() + 30
    while pids.reap(old) is None:   # the old shim has gone, quietly
        assert time.monotonic() < deadline, "the old shim did not exit"
        time.sleep(0.02)
    # One trainer in the run: 32 steps of a 32-step trial, in order, and the step recorded is 32.
    assert step_events(run_dir) == list(range(1, 33))
    assert study.trial(trial.id).step == 32
    assert json.loads((run_dir / protocol.LAUNCH).read_text())["pid"] != old
    # The set-aside dir got nothing from the old shim either: it wrote nowhere.
    aside = run_dir.parent / f"{run_dir.name}.attempt-1"
    assert not (aside / protocol.LAUNCH).exists() and not (aside / protocol.EVENTS).exists()
    study.close()


def test_a_shim_of_another_attempt_exits_quietly_and_writes_nothing(tmp_path):
    run = tmp_path / "runs" / "t0001"
    run.mkdir(parents=True)
    mine = launch.new_attempt(run)
    rundir.set_aside(run)
    run.mkdir()
    launch.new_attempt(run)
    (run / protocol.OUTPUT).write_text("the new attempt's output\n")
    before = sorted(p.name for p in run.iterdir())
    child = "import os; open(os.path.join(os.environ['TUI_TUNER_RUN_DIR'], 'events.jsonl'), 'a').write('x')"
    done = subprocess.run([PY, "-m", "tui_tuner.launch", str(run), launch.ATTEMPT_FLAG, mine, "--", PY, "-c", child],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert sorted(p.name for p in run.iterdir()) == before
    assert (run / protocol.OUTPUT).read_text() == "the new attempt's output\n"


def test_the_tuner_waits_for_a_shim_claiming_the_dir_and_then_adopts_it(tmp_path, monkeypatch):
    study = open_study(tmp_path, toy_space(tmp_path))
    (trial,) = study.enqueue([{"lr": 0.1}])
    run = study.run_dir(trial.id)
    run.mkdir(parents=True)
    protocol.write_json_atomic(run / protocol.PARAMS, {"trial": trial.id, "params": trial.params, "resume": None})
    launch.new_attempt(run)
    fd = os.open(run / protocol.ATTEMPT, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)   # a shim in the middle of its claim
    monkeypatch.setattr(launch, "LOCK_WAIT", 0.2)
    try:
        with pytest.raises(RunError, match="its launch shim is starting right now"):
            process.earlier_attempt(trial, run, set())
        assert run.is_dir() and not (run.parent / "t0001.attempt-1").exists()   # not moved meanwhile
        # The shim finishes its claim: the tuner then takes the run over instead of starting it twice.
        protocol.write_json_atomic(run / protocol.LAUNCH, {"pid": os.getpid(), "started": 1.0})
    finally:
        os.close(fd)
    assert process.earlier_attempt(trial, run, set()) == (os.getpid(), 1.0)
    study.close()
