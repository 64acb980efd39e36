"""`[study] executor` and `[study.slurm]`: what a Slurm job asks for, and every refusal as one line."""

from __future__ import annotations

import pytest
from space_toml import lr, space_toml

from tui_tuner.errors import SpaceError
from tui_tuner.search.slurm_config import SlurmConfig
from tui_tuner.search.space import parse_space


def study(**keys):
    return parse_space(space_toml({"lr": lr()}, **keys), "spaces/x.toml").config


def test_local_is_the_default_and_has_no_slurm_table():
    cfg = study()
    assert (cfg.executor, cfg.slurm) == ("local", None)


def test_a_slurm_table_is_read_with_its_defaults():
    cfg = study(executor="slurm", slurm={"time": "4:00:00", "partition": "gpu", "mem": "32G", "account": "p1",
                                         "cpus_per_trial": 8, "extra": ["--qos=high", "--exclusive"]})
    assert cfg.executor == "slurm"
    assert cfg.slurm == SlurmConfig(time=240, partition="gpu", gpus_per_trial=1, cpus_per_trial=8, mem="32G",
                                    account="p1", extra=("--qos=high", "--exclusive"))
    assert cfg.slurm.extra_options() == {"qos": "high", "exclusive": True}


@pytest.mark.parametrize(("time", "minutes"), [
    (90, 90), ("90", 90), ("1:30", 2), ("2:00:00", 120), ("1-0", 1440), ("1-2:30", 1590), ("1-00:00:01", 1441),
])
def test_time_in_slurms_formats_is_whole_minutes(time, minutes):
    assert study(executor="slurm", slurm={"time": time}).slurm.time == minutes


@pytest.mark.parametrize(("keys", "message"), [
    ({"executor": "kubernetes"}, "study.executor: must be one of local, slurm, got 'kubernetes'"),
    ({"slurm": {"time": 5}}, 'study.slurm: is only read with executor = "slurm" in [study]'),
    ({"executor": "slurm"}, "study.slurm: missing: executor = \"slurm\" needs a [study.slurm] table"),
    ({"executor": "slurm", "slurm": {"partition": "gpu"}}, "study.slurm.time: missing: each job's time limit"),
    ({"executor": "slurm", "slurm": {"time": 0}}, "study.slurm.time: must be minutes (240)"),
    ({"executor": "slurm", "slurm": {"time": "0:30"}}, "of at least a minute, got '0:30'"),
    ({"executor": "slurm", "slurm": {"time": "soon"}}, "study.slurm.time: must be minutes"),
    ({"executor": "slurm", "slurm": {"time": 5, "nodes": 2}}, "study.slurm: unknown key 'nodes'"),
    ({"executor": "slurm", "slurm": {"time": 5, "mem": "lots"}}, 'study.slurm.mem: must be a size as sbatch'),
    ({"executor": "slurm", "slurm": {"time": 5, "gpus_per_trial": -1}}, "study.slurm.gpus_per_trial: must be an integer >= 0"),
    ({"executor": "slurm", "slurm": {"time": 5, "cpus_per_trial": 0}}, "study.slurm.cpus_per_trial: must be an integer >= 1"),
    ({"executor": "slurm", "slurm": {"time": 5, "partition": ""}}, "study.slurm.partition: must be a non-empty string"),
    ({"executor": "slurm", "slurm": {"time": 5, "extra": "--qos=high"}}, "study.slurm.extra: must be a list"),
    ({"executor": "slurm", "slurm": {"time": 5, "extra": ["-q high"]}}, "study.slurm.extra: write each sbatch option in long form"),
    ({"executor": "slurm", "slurm": {"time": 5, "extra": ["--signal=USR2@90"]}}, "--signal is set by tui-tuner"),
    ({"executor": "slurm", "slurm": {"time": 5, "extra": ["--time=5"]}}, "--time has its own key in [study.slurm]"),
    ({"executor": "slurm", "slurm": {"time": 5}, "devices": [0, 1]},
     "study.devices: is for the local executor: on Slurm each job gets its GPUs from [study.slurm] gpus_per_trial"),
])
def test_refusals_name_the_file_the_key_and_the_rule(keys, message):
    with pytest.raises(SpaceError) as e:
        study(**keys)
    text = str(e.value)
    assert text.startswith("spaces/x.toml: ") and message in text and "\n" not in text, text


def test_a_slurm_study_without_submitit_is_one_line_saying_to_install_the_extra(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['submitit'] = None\n")
    space = tmp_path / "space.toml"
    space.write_text(space_toml({"lr": lr()}, name="s", executor="slurm", slurm={"time": 5}))
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo)])}
    r = subprocess.run([sys.executable, "-m", "tui_tuner", "run", str(space), "--headless", "--study",
                        str(tmp_path / "study")], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr == "tui-tuner: executor = \"slurm\" needs submitit: pip install 'tui-tuner[slurm]'\n"
