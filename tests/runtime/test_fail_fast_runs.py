"""Fail fast the way a user meets it (issue 19, item 5): `tui-tuner run SPACE --headless` on a command
that cannot run, or on an objective nobody reports, pauses after the first trials and says why once;
running the same command again once it is fixed goes on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from space_toml import lr, param, space_toml
from study_runs import TOY, kill_runs

from tui_tuner.core.study import Study

# Takes --learning_rate; the space hands it --lr: argparse exits 2 at once, every time.
BROKEN = """
import argparse
p = argparse.ArgumentParser()
p.add_argument("--learning_rate", type=float)
a = p.parse_args()
print(f"val_loss {a.learning_rate}")
"""
FIXED = BROKEN.replace("--learning_rate", "--lr").replace("a.learning_rate", "a.lr")


def headless(space: Path, study: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_tuner", "run", str(space), "--headless", "--study", str(study)],
                          cwd=space.parent, capture_output=True, text=True, timeout=300)


def test_a_command_that_fails_at_once_pauses_after_three_trials_then_goes_on_once_fixed(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(BROKEN)
    space = tmp_path / "space.toml"
    space.write_text(space_toml({"lr": lr()}, name="broken", command=["python", str(script)], budget=6,
                                strategy="random", metrics={"val_loss": r"val_loss ([0-9.e-]+)"}))
    study = tmp_path / "study"
    try:
        res = headless(space, study)
        assert res.returncode == 1, res.stdout + res.stderr
        lines = res.stdout.splitlines()
        paused = [ln for ln in lines if "queue paused" in ln]
        assert len(paused) == 1, res.stdout            # said once
        assert paused[0].startswith("queue paused: trials #1, #2, #3 all failed within ")
        assert "with the same reason: exit code 2: train.py: error: unrecognized arguments: --lr " in paused[0]
        with Study.open(study, lock=False) as s:
            assert s.budget_used() == 3 and [t.status for t in s.trials("id")] == ["failed"] * 3
        # Fixed: the same command again goes on and spends the rest of the budget.
        script.write_text(FIXED)
        res = headless(space, study)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "queue paused" not in res.stdout
        with Study.open(study, lock=False) as s:
            assert [t.status for t in s.trials("id")] == ["failed"] * 3 + ["done"] * 3
    finally:
        kill_runs(study)


def test_a_first_trial_without_the_objective_pauses_and_names_what_it_reported(tmp_path):
    space = tmp_path / "space.toml"
    # The toy trainer reports loss, val_loss and lr: "val_los" is a typo nobody reports.
    space.write_text(space_toml({"lr": lr(), "steps": param("choice", values=[20]),
                                 "delay": param("choice", values=[0.0])},
                                name="typo", command=["python", str(TOY)], objective="val_los", budget=5,
                                strategy="random"))
    study = tmp_path / "study"
    try:
        res = headless(space, study)
    finally:
        kill_runs(study)
    assert res.returncode == 1, res.stdout + res.stderr
    paused = [ln for ln in res.stdout.splitlines() if "queue paused" in ln]
    assert len(paused) == 1, res.stdout
    assert paused[0].startswith("queue paused: trial 1 exited without reporting the objective 'val_los' "
                                "(it reported loss, lr, val_loss)"), paused[0]
    with Study.open(study, lock=False) as s:
        assert s.budget_used() == 1
