"""The [study] keys of issue 19: cwd, [study.env], python, step_pattern (and a metric's `step` group),
fail_fast; each refusal one line naming the file and the key. And where a trial runs, pure."""

from __future__ import annotations

from pathlib import Path

import pytest
from space_toml import lr, space_toml

from tui_tuner.core.run_setup import trial_cwd, trial_env
from tui_tuner.core.space import parse_space
from tui_tuner.errors import SpaceError

METRICS = {"val_loss": r"val_loss ([0-9.]+)"}


def study(**keys):
    return parse_space(space_toml({"lr": lr()}, **keys), "spaces/x.toml").config


def test_defaults():
    cfg = study()
    assert cfg.cwd is None and cfg.env == {} and cfg.python == "tuner" and cfg.fail_fast


def test_the_keys_are_read():
    cfg = study(cwd="../nanoGPT", env={"PYTHONPATH": "src", "OUT": "{run_dir}/out"}, python="path",
                fail_fast=False, metrics=METRICS, step_pattern=r"iter (\d+)")
    assert cfg.cwd == "../nanoGPT" and cfg.env == {"PYTHONPATH": "src", "OUT": "{run_dir}/out"}
    assert cfg.python == "path" and not cfg.fail_fast
    assert cfg.metrics == {**METRICS, "step": r"iter (\d+)"}


def test_a_metric_may_name_its_step_group():
    cfg = study(metrics={"loss": r"iter (?P<step>\d+): loss ([0-9.]+)", **METRICS})
    assert cfg.metrics["loss"].startswith("iter (?P<step>")


@pytest.mark.parametrize(("keys", "message"), [
    ({"cwd": ""}, "spaces/x.toml: study.cwd: must be a directory path (relative to the space file), got ''"),
    ({"cwd": 3}, "spaces/x.toml: study.cwd: must be a directory path (relative to the space file), got 3"),
    ({"env": {"A": 1}}, 'spaces/x.toml: study.env.A: must be a string (quote numbers: "1"), got 1'),
    ({"env": {"1A": "x"}}, "spaces/x.toml: study.env.1A: a variable name is letters, digits and _"),
    ({"env": {"TUI_TUNER_RUN_DIR": "x"}}, "spaces/x.toml: study.env.TUI_TUNER_RUN_DIR: is set by the tuner"),
    ({"python": "venv"}, "spaces/x.toml: study.python: must be one of tuner, path, got 'venv'"),
    ({"fail_fast": "no"}, "spaces/x.toml: study.fail_fast: must be true or false, got 'no'"),
    ({"step_pattern": r"iter (\d+)"}, "spaces/x.toml: study.step_pattern: reads the step from a zero-code script's "
                                      "output: it needs [study.metrics]"),
    ({"step_pattern": r"iter \d+", "metrics": METRICS},
     "spaces/x.toml: study.step_pattern: the pattern needs exactly one capture group, got 0"),
    ({"step_pattern": r"iter (\d+)", "metrics": {**METRICS, "step": r"s (\d+)"}},
     "spaces/x.toml: study.step_pattern: and study.metrics.step both give the step: keep one"),
    ({"metrics": {"val_loss": r"(?P<epoch>\d+) val_loss ([0-9.]+)"}},
     "spaces/x.toml: study.metrics.val_loss: the pattern needs exactly one capture group (and optionally one "
     "named (?P<step>...)), got 2"),
    ({"cwdd": "x"}, "spaces/x.toml: study: unknown key 'cwdd'"),
])
def test_bad_keys_are_refused_with_one_line(keys, message):
    with pytest.raises(SpaceError) as e:
        study(**keys)
    assert str(e.value).startswith(message) and "\n" not in str(e.value), str(e.value)


def test_where_a_trial_runs(tmp_path):
    space_file = tmp_path / "proj" / "spaces" / "x.toml"
    run = tmp_path / "st" / "runs" / "t0007"
    assert trial_cwd(None, space_file, tmp_path, run, 7) == tmp_path.resolve()
    assert trial_cwd("..", space_file, Path("/"), run, 7) == (tmp_path / "proj").resolve()
    assert trial_cwd("{run_dir}/w", space_file, Path("/"), run, 7) == (run / "w").resolve()
    assert trial_cwd("/abs/x{trial}", space_file, Path("/"), run, 7) == Path("/abs/x7")
    assert trial_env({"OUT": "{run_dir}/o", "T": "{trial}", "J": '{"a": 1}'}, run, 7) == {
        "OUT": f"{run}/o", "T": "7", "J": '{"a": 1}'}
