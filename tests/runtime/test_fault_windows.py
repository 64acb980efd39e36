"""The runtime's fault windows (issue 7): the tuner dying at any moment, a lost database, corrupt files.

Real processes throughout: the headless tuner as a subprocess killed with SIGKILL where the item is
about the tuner's death, the launch shim and the toy trainer for every run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from runtime_helpers import Events, make_runner, open_study, toy_space, wait_for
from space_toml import param, space_toml
from study_runs import TOY
from waiting import wait_for as wait_until

from tui_tuner.errors import StudyError
from tui_tuner.runtime import pids
from tui_tuner.search.space import parse_space
from tui_tuner.study.study import Study
from tui_tuner.trainer import protocol

# -- helpers ------------------------------------------------------------------------------------------


def tuner(space_file: str | Path, study: Path, *args: str) -> subprocess.Popen:
    """The headless tuner as its own process (so it can be killed like a real one)."""
    cmd = [sys.executable, "-m", "tui_tuner", "run", str(space_file), "--headless", "--study", str(study),
           *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`tui-tuner ARGS` in a subprocess: (returncode, stdout, stderr)."""
    return subprocess.run([sys.executable, "-m", "tui_tuner", *args], capture_output=True, text=True,
                          timeout=timeout)


def steps_in(run_dir: Path) -> list[int]:
    p = run_dir / protocol.EVENTS
    if not p.exists():
        return []
    return [ev["step"] for ev in map(json.loads, p.read_text().splitlines()) if "step" in ev]


def kill_runs_of(study_dir: Path) -> None:
    """SIGKILL every run group a test left going, found through the run dirs (the db may be gone)."""
    for launched in (study_dir / "runs").glob("t*/launch.json"):
        info = protocol.read_json(launched)
        pid = info.get("pid") if info else None
        if isinstance(pid, int):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def kill_trial(study: Study, tid: int) -> None:
    """SIGKILL a trial's run if it is still recorded as going (never group 0: that is our own)."""
    pid = study.trial(tid).pid
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def files_of(directory: Path) -> dict[str, bytes]:
    """Every file under a directory and its bytes (to show nothing was overwritten or deleted)."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def loss_at(step: int, lr: float) -> float:
    return (10.0 * (1 - lr) ** step) ** 2


@pytest.fixture
def study_dir(tmp_path):
    d = tmp_path / "study"
    yield d
    kill_runs_of(d)


# -- 1. study.db missing or empty while runs/ holds runs --------------------------------------------


def test_a_lost_db_is_refused_then_recovered_and_the_live_runs_readopted(tmp_path, study_dir):
    # The repro: kill -9 the tuner mid-study, delete study.db*, run the same command again.
    space = toy_space(tmp_path, stage=1, strategy="random", steps=300, delay=0.02)
    args = ("--trials", "2", "--parallel", "2", "--seed", "7")
    first = tuner(space.path, study_dir, *args)
    try:
        wait_until(lambda: all(len(steps_in(study_dir / "runs" / f"t000{i}")) >= 3 for i in (1, 2)),
                   timeout=30, interval=0.02, what="two runs under way")
    finally:
        first.kill()
        first.wait()
    for p in study_dir.glob("study.db*"):
        p.unlink()
    runs_before = {i: json.loads((study_dir / "runs" / f"t000{i}" / "params.json").read_text()) for i in (1, 2)}
    # The runs held (SIGSTOP) until recover has seen them live: on a loaded box the refused start and
    # recover could otherwise outlast them.
    groups = [json.loads((study_dir / "runs" / f"t000{i}" / protocol.LAUNCH).read_text())["pid"] for i in (1, 2)]
    for g in groups:
        os.killpg(g, signal.SIGSTOP)
    try:
        again = tuner(space.path, study_dir, *args)
        out, _ = again.communicate(timeout=60)
        assert again.returncode == 2, out
        assert out.strip().splitlines() == [
            f"tui-tuner: {study_dir}: runs/ holds 2 runs but study.db is missing or empty; "
            f"run `tui-tuner recover {study_dir}` to rebuild it"]
        assert not (study_dir / "study.db").exists(), "a fresh database was created over the runs"

        rec = cli("recover", str(study_dir))
        assert rec.returncode == 0, rec.stderr
        assert "recovered 2 runs" in rec.stdout and "2 running" in rec.stdout
    finally:
        for g in groups:
            os.killpg(g, signal.SIGCONT)

    again = tuner(space.path, study_dir, *args)
    out, _ = again.communicate(timeout=90)
    assert again.returncode == 0, out
    with Study.open(study_dir, lock=False) as s:
        trials = s.trials("id")
        assert [t.id for t in trials] == [1, 2]
        for t in trials:
            # Credited with its own run's settings and curve, not another trial's.
            assert t.params == runs_before[t.id]["params"]
            assert t.status == "done", (t.status, t.reason)
            assert t.objective == pytest.approx(loss_at(300, t.params["lr"]), rel=1e-9)
            assert steps_in(s.run_dir(t.id)) == list(range(1, 301))


def test_an_emptied_db_of_a_finished_study_is_refused_and_its_runs_are_kept(tmp_path, study_dir):
    space = toy_space(tmp_path, stage=1, strategy="random", steps=3, delay=0.0)
    args = ("--trials", "2", "--parallel", "1", "--seed", "3")
    done = tuner(space.path, study_dir, *args)
    out, _ = done.communicate(timeout=60)
    assert done.returncode == 0, out
    before = files_of(study_dir / "runs")
    (study_dir / "study.db").write_bytes(b"")      # `: > study.db`
    again = tuner(space.path, study_dir, *args)
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 2, out
    assert "runs/ holds 2 runs but study.db is missing or empty" in out
    assert f"tui-tuner recover {study_dir}" in out
    assert files_of(study_dir / "runs") == before, "the finished runs' files were touched"


def test_readoption_refuses_a_run_whose_params_json_is_not_the_trials(tmp_path):
    study = open_study(tmp_path, toy_space(tmp_path))
    first = make_runner(study)
    tid = study.enqueue_manual({"lr": 0.1, "steps": 100000, "delay": 0.01}).id
    first.start(study.trial(tid))
    try:
        wait_for(first, lambda: (first.queries.latest(tid)["step"] or 0) >= 2)
        first.stop_thread()
        params = study.run_dir(tid) / protocol.PARAMS
        doc = json.loads(params.read_text())
        # The run dir holds another setting than the row that claims it.
        protocol.write_json_atomic(params, {**doc, "params": {**doc["params"], "lr": 0.7}})
        second = make_runner(study)
        with pytest.raises(StudyError, match=r"t0001/params\.json.*lr=0\.7.*lr=0\.1"):
            second.adopt()
        assert not second.queries.is_live(tid)
        protocol.write_json_atomic(params, {**doc, "trial": 9})
        with pytest.raises(StudyError, match=r"t0001/params\.json.*trial 9"):
            make_runner(study).adopt()
    finally:
        kill_trial(study, tid)
        study.close()


def test_a_previous_attempts_files_are_moved_aside_not_deleted(tmp_path):
    # A tuner died after writing params.json and output.log but before the shim started: nothing ran.
    study = open_study(tmp_path, toy_space(tmp_path))
    runner = make_runner(study)
    trial = study.enqueue_manual({"steps": 3, "delay": 0.0})
    run_dir = study.run_dir(trial.id)
    run_dir.mkdir(parents=True)
    old = {protocol.PARAMS: b'{"trial": 1, "params": {}, "resume": null}\n', protocol.OUTPUT: b"old output\n",
           protocol.EVENTS: b'{"t": 1, "step": 1, "metrics": {"loss": 0.0}}\n', protocol.CONTROL: b'{"seq": 1}\n'}
    for name, data in old.items():
        (run_dir / name).write_bytes(data)
    runner.start(trial)
    wait_for(runner, lambda: study.trial(trial.id).finished)
    assert study.trial(trial.id).status == "done"
    aside = study.dir / "runs" / "t0001.attempt-1"
    assert files_of(aside) == old
    assert steps_in(run_dir) == [1, 2, 3]
    study.close()


# -- 2. a stop survives the tuner's death -----------------------------------------------------------


def test_a_stop_survives_the_tuners_death(tmp_path, study_dir):
    # The repro: SIGINT the headless tuner, SIGKILL it once it has written the stop (0.1 s later in the
    # report; waiting for the stop itself keeps a loaded box in the same window), rerun.
    space = toy_space(tmp_path, stage=1, strategy="random", steps=2000, delay=0.02)
    args = ("--trials", "1", "--seed", "2")
    run_dir = study_dir / "runs" / "t0001"
    first = tuner(space.path, study_dir, *args)
    try:
        wait_until(lambda: len(steps_in(run_dir)) >= 3, timeout=30, interval=0.01, what="a few steps")
        first.send_signal(signal.SIGINT)
        wait_until(lambda: b'"stop"' in _read(run_dir / protocol.CONTROL), timeout=20, interval=0.005,
                   what="the stop written")
    finally:
        first.kill()
        first.wait()
    wait_until(lambda: (run_dir / protocol.EXIT).exists(), timeout=10, what="the trainer to stop")
    again = tuner(space.path, study_dir, *args)
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 0, out
    with Study.open(study_dir, lock=False) as s:
        t = s.trial(1)
        assert t.status == "stopped", (t.status, t.reason, out)
        assert t.step < 2000
        assert s.best() == []     # a stopped run never becomes the exported best


def test_a_readopted_run_with_a_stop_pending_is_stopped(tmp_path):
    # The app's `s` then `q`: the stop is written, the tuner goes away before the run has ended.
    study = open_study(tmp_path, toy_space(tmp_path))
    first = make_runner(study)
    tid = study.enqueue_manual({"mode": "slowstop", "steps": 100000, "delay": 0.01}).id
    first.start(study.trial(tid))
    wait_for(first, lambda: (first.queries.latest(tid)["step"] or 0) >= 2)
    first.commands.stop(tid)
    first.stop_thread()
    second = make_runner(study, Events(), stop_timeout=0.3, term_timeout=0.3)
    try:
        assert second.adopt() == [tid]
        wait_for(second, lambda: study.trial(tid).finished, timeout=8, what="the pending stop to be carried out")
        t = study.trial(tid)
        assert (t.status, t.reason) == ("stopped", "stopped (SIGKILL)")
    finally:
        kill_trial(study, tid)
        study.close()


def test_a_stop_the_trainer_obeyed_while_no_tuner_watched_is_a_stop(tmp_path):
    study = open_study(tmp_path, toy_space(tmp_path))
    first = make_runner(study)
    tid = study.enqueue_manual({"steps": 100000, "delay": 0.01}).id
    first.start(study.trial(tid))
    wait_for(first, lambda: (first.queries.latest(tid)["step"] or 0) >= 2)
    first.commands.stop(tid)
    first.stop_thread()
    wait_until(lambda: (study.run_dir(tid) / protocol.EXIT).exists(), timeout=10, what="the trainer to stop")
    second = make_runner(study)
    assert second.adopt() == []
    t = study.trial(tid)
    assert (t.status, t.reason) == ("stopped", "stopped")
    study.close()


# -- 3. the spawn/record window ------------------------------------------------------------------------


def test_a_run_that_ended_between_spawn_and_record_is_settled_not_run_again(tmp_path):
    study = open_study(tmp_path, toy_space(tmp_path))
    runner = make_runner(study)
    trial = study.enqueue_manual({"steps": 3, "delay": 0.0})
    run_dir = study.run_dir(trial.id)
    run_dir.mkdir(parents=True)
    protocol.write_json_atomic(run_dir / protocol.PARAMS, {"trial": trial.id, "params": trial.params, "resume": None})
    # The tuner spawned it and died before recording it; the run ended before the next tuner came.
    shim = pids.spawn(run_dir, [sys.executable, str(TOY)])
    # Its shim gone too: it removes the space it set aside for exit.json after writing it.
    wait_until(lambda: (run_dir / protocol.EXIT).exists() and not pids.pid_alive(shim), timeout=10,
               what="the orphan to end")
    before = files_of(run_dir)
    runner.start(trial)
    t = study.trial(trial.id)
    assert (t.status, t.reason) == ("done", None)
    assert t.objective == pytest.approx(loss_at(3, trial.params["lr"]))
    assert t.started == json.loads((run_dir / protocol.LAUNCH).read_text())["started"]
    assert files_of(run_dir) == before, "the first run's files were replaced"
    assert not list(study.dir.glob("runs/t0001.attempt-*"))
    study.close()


# -- 4. the launch shim killed, the trainer completed --------------------------------------------------


@pytest.mark.parametrize("watched", [True, False], ids=["tuner-alive", "tuner-restarted"])
def test_a_killed_shim_does_not_fail_a_trainer_that_completed(tmp_path, watched):
    study = open_study(tmp_path, toy_space(tmp_path))
    first = make_runner(study)
    tid = study.enqueue_manual({"steps": 40, "delay": 0.02}).id
    first.start(study.trial(tid))
    wait_for(first, lambda: (first.queries.latest(tid)["step"] or 0) >= 3)
    os.kill(study.trial(tid).pid, signal.SIGKILL)    # the shim only; the trainer goes on
    runner = first
    if not watched:
        first.stop_thread()
        wait_until(lambda: steps_in(study.run_dir(tid))[-1:] == [40], timeout=10, what="the trainer to finish")
        wait_until(lambda: not pids.group_alive(study.trial(tid).pid), timeout=5, what="the trainer to exit")
        runner = make_runner(study)
        runner.adopt()
    wait_for(runner, lambda: study.trial(tid).finished, timeout=10)
    t = study.trial(tid)
    assert (t.status, t.reason) == ("done", None)
    assert t.objective == pytest.approx(loss_at(40, t.params["lr"]))
    study.close()


# -- 9. corrupt files are errors, not crashes ------------------------------------------------------------


def _active(study, pid: int = 999_999_999, params_json: bool = True) -> Path:
    """An active trial 1 as a dead tuner left it: running at `pid`, its params.json written."""
    t = study.enqueue_manual({})
    study.mark_started(t.id, pid)
    run_dir = study.run_dir(t.id)
    run_dir.mkdir(parents=True)
    if params_json:
        protocol.write_json_atomic(run_dir / protocol.PARAMS, {"trial": t.id, "params": t.params, "resume": None})
    return run_dir


def _corrupt_exit_json(study):
    (_active(study) / protocol.EXIT).write_text("[" * 100000)


def _run_dir_is_a_file(study):
    run_dir = _active(study)
    for p in run_dir.iterdir():
        p.unlink()
    run_dir.rmdir()
    run_dir.write_text("not a directory")


def _huge_pid(study):
    _active(study, pid=2**62)


def _no_params_json(study):
    (_active(study, params_json=False) / protocol.EVENTS).write_text('{"step": 1, "metrics": {"loss": 0.5}}\n')


@pytest.mark.parametrize(("corrupt", "why"), [
    (_corrupt_exit_json, "exit.json is unreadable"),
    (_run_dir_is_a_file, "t0001 is not a directory"),
    (_huge_pid, "ended without an exit status"),
    (_no_params_json, "t0001/params.json is missing"),
], ids=["exit.json-nesting", "run-dir-is-a-file", "pid-2**62", "no-params.json"])
def test_corrupt_files_of_an_active_run_are_a_failure_not_a_crash(tmp_path, study_dir, corrupt, why):
    space = toy_space(tmp_path, stage=1, strategy="random", steps=2, delay=0.0)
    with Study.open(study_dir, space, seed=1) as s:
        corrupt(s)
    run = tuner(space.path, study_dir, "--trials", "2")
    out, _ = run.communicate(timeout=60)
    assert run.returncode == 0, out
    assert "unexpected error" not in out
    with Study.open(study_dir, lock=False) as s:
        t = s.trial(1)
        assert t.status == "failed" and why in t.reason.splitlines()[0], (t.reason, out)
        assert t.objective is None    # nothing credited from files it cannot trust
        assert s.trial(2).status == "done"


def test_a_regular_file_in_place_of_a_queued_trials_run_dir_is_moved_aside(tmp_path, study_dir):
    space = toy_space(tmp_path, stage=1, strategy="random", steps=2, delay=0.0)
    with Study.open(study_dir, space, seed=1) as s:
        s.enqueue_manual({})
        (study_dir / "runs" / "t0001").write_text("not a directory")
    run = tuner(space.path, study_dir, "--trials", "1")
    out, _ = run.communicate(timeout=60)
    assert run.returncode == 0, out
    with Study.open(study_dir, lock=False) as s:
        assert s.trial(1).status == "done", s.trial(1).reason
    assert (study_dir / "runs" / "t0001.attempt-1").read_text() == "not a directory"


def test_pids_no_process_can_have_are_dead_not_an_overflow():
    for pid in (2**62, 2**31, -(2**62)):
        assert not pids.pid_alive(pid)
        assert not pids.group_alive(pid)
        assert not pids.send_signal(pid, signal.SIGTERM)
        assert not pids.signal_group(pid, signal.SIGKILL)
        assert pids.reap(pid) is None


# -- 15. the headline of a failure is the exception line ----------------------------------------------

NOISY_CRASH = """
import atexit, sys
from tui_tuner import trainer
hp = trainer.params(lr=0.1, steps=3, delay=0.0, mode="ok")
trainer.report(1, loss=0.5)
atexit.register(lambda: print("wandb: Synced 5 W&B file(s)", flush=True))
def load():
    raise ValueError("batch 3 has 0 rows")
load()
"""


def test_a_failed_runs_reason_leads_with_the_exception_line(tmp_path):
    script = tmp_path / "noisy_crash.py"
    script.write_text(NOISY_CRASH)
    study = open_study(tmp_path, toy_space(tmp_path, script=script))
    runner = make_runner(study)
    tid = study.enqueue_manual({}).id
    runner.start(study.trial(tid))
    wait_for(runner, lambda: study.trial(tid).finished)
    reason = study.trial(tid).reason
    assert reason.splitlines()[0] == "exit code 1: noisy_crash.py:8: ValueError: batch 3 has 0 rows", reason
    assert "wandb: Synced" in reason      # the last lines still follow
    study.close()


# -- 16. a zero-code fork is a restart -------------------------------------------------------------------


def test_a_zero_code_fork_is_recorded_as_a_restart(tmp_path):
    from study_runs import ZERO_CODE

    params = {"lr": param("float", low=0.01, high=0.9, default=0.1, flag="--trainer.learning_rate"),
              "steps": param("int", low=1, high=100000, default=12),
              "delay": param("float", low=0.0, high=1.0, default=0.0)}
    text = space_toml(params, name="zc", command=["python", str(ZERO_CODE)], objective="loss",
                      metrics={"step": r"^step (\d+) \|", "loss": r"\|\s*loss\s+([-+0-9.eE]+|nan|inf)"})
    study = open_study(tmp_path, parse_space(text, str(tmp_path / "zc.toml")))
    runner = make_runner(study)
    parent = study.enqueue_manual({"steps": 100000, "delay": 0.01}).id
    runner.start(study.trial(parent))
    try:
        wait_for(runner, lambda: (runner.queries.latest(parent)["step"] or 0) >= 3)
        child = runner.commands.fork(parent, {"lr": 0.5, "steps": 4})
        assert (child.parent, child.fork_step, child.resume, child.source) == (parent, None, None, "fork")
        wait_for(runner, lambda: study.trial(child.id).finished)
        assert runner.queries.series(child.id, "loss")[0][0] == 1
    finally:
        runner.stop_timeout = runner.term_timeout = 0.0
        runner.commands.stop_all(timeout=5)
        study.close()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
