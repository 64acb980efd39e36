"""Export: TOML a training script reads back with tomllib, types kept, written atomically."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap

import pytest
from space_toml import lr, param, space_toml

from tui_tuner.errors import StudyError
from tui_tuner.search.space import parse_space
from tui_tuner.study.export import default_path, export_document, export_trial
from tui_tuner.study.study import Study

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PARAMS = {
    "lr": lr(low=1e-5, default=1e-3),
    "batch": param("int", low=16, high=256, default=64, tier=2),
    "width": param("float", low=1.0, high=4.0, default=2.0, tier=2),
    "nesterov": param("choice", values=[True, False], tier=3),
    "act": param("choice", values=["relu", "gelu"], tier=3),
    "optim.beta2": param("float", scale="one_minus_log", low=0.9, high=0.9999, default=0.999, tier=4),
}


def export_space(**params: dict) -> str:
    """The export tests' space (maximizing val_acc), with parameters added."""
    return space_toml({**PARAMS, **params}, name="exp", command=["python", "train.py", "--epochs", "3"],
                      objective="val_acc", direction="maximize")


SPACE = export_space()

CHOSEN = {"lr": 0.003, "batch": 128, "width": 3.0, "nesterov": False, "act": "gelu", "optim.beta2": 0.99}


@pytest.fixture
def study(tmp_path):
    space_file = tmp_path / "exp.toml"
    space_file.write_text(SPACE)
    s = Study.open(tmp_path / "st", parse_space(SPACE, str(space_file)))
    yield s
    s.close()


def finish(study, setting, objective, status="done"):
    t = study.enqueue_manual(setting)
    study.mark_started(t.id, 1)
    study.update_progress(t.id, 40, None)
    return study.finish(t.id, status, objective)


def test_export_keeps_types_and_reads_back_with_tomllib(study):
    t = finish(study, CHOSEN, 0.91)
    path = export_trial(study, t.id)
    assert path == study.dir / "export-t0001.toml" == default_path(study, t)
    data = tomllib.loads(path.read_text())
    tuner = data.pop("tuner")
    assert data == CHOSEN
    assert [type(data[k]) for k in CHOSEN] == [float, int, float, bool, str, float]
    assert tuner["study"] == "exp" and tuner["trial"] == 1 and tuner["run"] == "t0001"
    assert tuner["objective"] == "val_acc" and tuner["objective_value"] == 0.91
    assert tuner["direction"] == "maximize" and tuner["status"] == "done" and tuner["step"] == 40
    assert tuner["command"] == ["python", "train.py", "--epochs", "3"]
    assert tuner["space"].endswith("exp.toml")
    assert isinstance(tuner["time"], dt.datetime) and tuner["time"].tzinfo is not None
    assert "parent" not in tuner


def test_best_is_the_default_and_follows_the_direction(study):
    finish(study, {**CHOSEN, "lr": 0.001}, 0.5)
    best = finish(study, {**CHOSEN, "lr": 0.002}, 0.9)
    finish(study, {**CHOSEN, "lr": 0.004}, 0.99, status="stopped")  # not done: not the best
    out = export_trial(study, path=study.dir.parent / "best.toml")
    data = tomllib.loads(out.read_text())
    assert data["lr"] == 0.002 and data["tuner"]["trial"] == best.id


def test_fork_records_its_parent(study):
    p = finish(study, CHOSEN, 0.8)
    f = study.add_fork(p.id, {"lr": 0.0005}, fork_step=30, resume="runs/t0001/ckpt/a.pt")
    study.mark_started(f.id, 2)
    study.finish(f.id, "done", 0.85)
    tuner = tomllib.loads(export_trial(study).read_text())["tuner"]
    assert (tuner["trial"], tuner["parent"], tuner["fork_step"]) == (f.id, p.id, 30)


def test_a_babysat_run_exports_what_it_trained_with_and_says_what_it_started_with(study):
    t = study.enqueue_manual(CHOSEN)
    study.mark_started(t.id, 1)
    # What the runner writes before launch: the setting the run starts with.
    run_dir = study.run_dir(t.id)
    run_dir.mkdir(parents=True)
    (run_dir / "params.json").write_text(json.dumps({"trial": t.id, "params": CHOSEN, "resume": None}))
    study.apply_live(t.id, {"lr": 0.0007})
    study.finish(t.id, "done", 0.93)
    data = tomllib.loads(export_trial(study, t.id).read_text())
    assert data["lr"] == 0.0007
    assert data["tuner"]["started_with"] == {"lr": 0.003}
    # A trial nobody adjusted has no such table.
    plain = finish(study, CHOSEN, 0.5)
    assert "started_with" not in tomllib.loads(export_trial(study, plain.id).read_text())["tuner"]

def test_queued_trial_exports_without_objective(study):
    t = study.enqueue_manual({"lr": 0.01})
    data = tomllib.loads(export_trial(study, t.id).read_text())
    assert "objective_value" not in data["tuner"] and data["tuner"]["status"] == "queued"
    assert data["batch"] == 64


@pytest.mark.parametrize("case, pattern", [
    ("no best", r"no finished trial with an objective yet"),
    ("unknown id", r"no trial 42"),
    ("no settings", r"trial 1 has no settings"),
    ("bad dir", r"no such directory"),
    ("dir target", r"is a directory"),
])
def test_refusals_are_clear_study_errors(study, tmp_path, case, pattern):
    t = finish(study, CHOSEN, None)  # done but without an objective: never "best"
    with pytest.raises(StudyError, match=pattern):
        if case == "no best":
            export_trial(study)
        elif case == "unknown id":
            export_trial(study, 42)
        elif case == "no settings":
            t.params = {}
            export_document(study, t)
        elif case == "bad dir":
            export_trial(study, t.id, tmp_path / "missing" / "x.toml")
        else:
            export_trial(study, t.id, tmp_path)


def test_param_named_tuner_is_refused(study):
    # The space file refuses the name (tests/unit/test_space.py); a trial from an older study that
    # holds it is still refused here rather than written over the [tuner] table.
    t = finish(study, CHOSEN, 0.5)
    t.params = {**t.params, "tuner": 1}
    with pytest.raises(StudyError, match=r"params\.tuner: .*collide"):
        export_document(study, t)


def test_write_is_atomic(study, monkeypatch):
    t = finish(study, CHOSEN, 0.7)
    out = export_trial(study, t.id)
    before = out.read_text()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    finish(study, {**CHOSEN, "lr": 0.1}, 0.95)
    with pytest.raises(StudyError, match="cannot write: No space left"):
        export_trial(study, path=out)
    assert out.read_text() == before  # the old file is whole
    assert not [p for p in study.dir.iterdir() if p.name.endswith(".tmp")]


def test_a_training_script_reads_the_export(study, tmp_path):
    t = finish(study, CHOSEN, 0.9)
    out = export_trial(study, t.id, tmp_path / "chosen.toml")
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import sys, tomllib
        with open(sys.argv[1], "rb") as f:
            cfg = tomllib.load(f)
        cfg.pop("tuner")
        print(repr(sorted((k, type(v).__name__, v) for k, v in cfg.items())))
    """))
    res = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == repr(sorted((k, type(v).__name__, v) for k, v in CHOSEN.items()))
