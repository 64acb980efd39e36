"""Zero-code, ready for any script (issue 19): trials run in the space's `[study] cwd` with its
`[study.env]`, the run records the interpreter that ran, `export --format command` reruns a trial
exactly through a shell, and a `step` group gives the real step.

Everything runs the way a user does it: `tui-tuner run ... --headless` in a subprocess, started from
another directory than the space file's, then `tui-tuner export`, then bash.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from space_toml import param, space_toml
from study_runs import SCRIPTS, kill_runs

from tui_tuner.core.study import Study

FIXED = SCRIPTS / "fixed_flags.py"
METRICS = {"loss": r"samples (?P<step>\d+): loss ([0-9.]+)", "val_loss": r"val_loss ([0-9.]+)"}
PARAMS = {"lr": param("choice", values=[0.3]), "batch": param("choice", values=[16, 32])}

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def tuner(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_tuner", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def project(root: Path, **study: object) -> Path:
    """A project folder: the space file, and work/data.txt that the script reads from its working directory."""
    home = root / "project"
    (home / "work").mkdir(parents=True)
    (home / "work" / "data.txt").write_text("the data the script trains on\n")
    fields = {"name": "ready", "command": ["python", str(FIXED), "--epochs", "2", "--data", "data.txt"],
              "objective": "val_loss", "strategy": "grid", "cwd": "work",
              "env": {"LOSS_SCALE": "2.5", "RUN_NOTE": "{run_dir}|{trial}"}, "metrics": METRICS, **study}
    (home / "space.toml").write_text(space_toml(PARAMS, **fields))
    return home / "space.toml"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """A study of two trials (batch 16 and 32), run headless from a folder that is not the project's."""
    root = tmp_path_factory.mktemp("ready")
    space = project(root)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    res = tuner("run", str(space), "--headless", "--study", str(root / "study"), cwd=elsewhere)
    try:
        assert res.returncode == 0, res.stdout + res.stderr
        yield root, space, root / "study"
    finally:
        kill_runs(root / "study")


def output(study: Path, trial: int) -> list[str]:
    return (study / "runs" / f"t{trial:04d}" / "output.log").read_text().splitlines()


def test_trials_run_in_the_space_files_cwd_with_its_env(ran):
    root, space, study = ran
    for trial in (1, 2):
        out = output(study, trial)
        assert f"cwd {space.parent / 'work'}" in out, out
        assert f"note {(study / 'runs' / f't{trial:04d}').resolve()}|{trial}" in out, out
        assert f"python {sys.executable}" in out    # a leading python is the tuner's own
    record = json.loads((study / "runs" / "t0001" / "command.json").read_text())
    assert record["executable"] == sys.executable and record["cwd"] == str(space.parent / "work")
    assert record["env"] == {"LOSS_SCALE": "2.5", "RUN_NOTE": f"{(study / 'runs' / 't0001').resolve()}|1"}
    with Study.open(study, lock=False) as s:
        assert [t.status for t in s.trials("id")] == ["done", "done"]


def test_a_step_group_gives_the_real_step_whatever_the_batch(ran):
    """Batch 16 and 32 print 8 and 4 lines over the same 128 samples: both end at step 128."""
    _, _, study = ran
    with Study.open(study, lock=False) as s:
        assert {t.params["batch"]: t.step for t in s.trials("id")} == {16: 128, 32: 128}


@pytest.mark.parametrize("trial", [1, 2])
def test_the_command_export_reruns_the_trial_exactly_through_a_shell(ran, trial):
    root, space, study = ran
    other = root / f"other{trial}"
    other.mkdir()
    res = tuner("export", str(study), "--trial", str(trial), "--format", "command", cwd=other)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    command = res.stdout
    assert command.count("\n") == 1
    assert command.startswith(f"cd {shlex.quote(str(space.parent / 'work'))} && LOSS_SCALE=2.5 ")
    assert f" {shlex.quote(sys.executable)} " in command and "--epochs 2 --data data.txt" in command
    # Another python first on PATH (as another venv would be) and a stray LOSS_SCALE: the command
    # still runs the interpreter, directory and environment the trial had.
    fake = root / f"fakebin{trial}"
    fake.mkdir()
    (fake / "python").write_text("#!/bin/sh\necho 'the wrong python' >&2\nexit 97\n")
    (fake / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "LOSS_SCALE": "999"}
    rerun = subprocess.run(["bash", "-c", command], cwd=other, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.splitlines() == output(study, trial)   # every metric, to the last digit
    assert any(line.startswith("val_loss ") for line in rerun.stdout.splitlines())


def test_python_path_runs_the_python_path_finds_and_the_export_names_it(tmp_path):
    space = project(tmp_path, python="path", parallel=1)
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)   # another interpreter, first on PATH
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    study = tmp_path / "study"
    try:
        res = tuner("run", str(space), "--headless", "--study", str(study), "--trials", "1", cwd=tmp_path, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
    finally:
        kill_runs(study)
    assert f"python {bin_dir / 'python'}" in output(study, 1)
    assert json.loads((study / "runs" / "t0001" / "command.json").read_text())["executable"] == str(bin_dir / "python")
    command = tuner("export", str(study), "--trial", "1", "--format", "command", cwd=tmp_path).stdout
    assert f" {bin_dir / 'python'} " in command


def test_a_cwd_that_does_not_exist_fails_the_trials_and_fail_fast_says_why(tmp_path):
    space = project(tmp_path, cwd="no/such/dir", strategy="random", budget=10)
    study = tmp_path / "study"
    try:
        res = tuner("run", str(space), "--headless", "--study", str(study), cwd=tmp_path)
    finally:
        kill_runs(study)
    assert res.returncode == 1, res.stdout + res.stderr
    missing = space.parent / "no" / "such" / "dir"
    assert f"the same reason: trial 3: [study] cwd {missing}: no such directory" in res.stdout, res.stdout
    with Study.open(study, lock=False) as s:
        assert s.budget_used() == 3
