"""Export, ready to run: never over the study, to stdout with `-o -`, the argv of a zero-code trial,
and just the flags with `--format args` (issue 7, items 6 and 12)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import textwrap

import pytest
from space_toml import lr, param, space_toml

from tui_tuner import cli
from tui_tuner.errors import StudyError
from tui_tuner.search.space import load_space
from tui_tuner.study.export import export_text, export_trial, trial_args
from tui_tuner.study.study import Study

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PARAMS = {
    "lr": lr(flag="--trainer.lr"),
    "layers": param("int", low=1, high=8, default=2),
    "cuda": param("choice", values=[True, False], flag_style="space"),
    "amp": param("choice", values=[True, False]),
    "opt": param("choice", values=["adam", "sgd w/ momentum"]),
    "save": param("choice", values=["{run_dir}/model.pt"]),
}
CHOSEN = {"lr": 0.003, "layers": 3, "cuda": True, "amp": False, "opt": "sgd w/ momentum", "save": "{run_dir}/model.pt"}
COMMAND = ["python", "train.py", "--out_dir", "{run_dir}/out"]


def make_study(tmp_path, zero_code: bool, params: dict = PARAMS, chosen: dict = CHOSEN) -> Study:
    extra = {"flag_style": "equals", "metrics": {"val_loss": r"val_loss ([0-9.]+)"}} if zero_code else {}
    text = space_toml(params, name="ready", command=COMMAND, **extra)
    (tmp_path / "space.toml").write_text(text)
    study = Study.open(tmp_path / "st", load_space(tmp_path / "space.toml"))
    t = study.enqueue_manual(chosen)
    study.mark_started(t.id, 1)
    study.run_dir(t.id).mkdir(parents=True)
    (study.run_dir(t.id) / "params.json").write_text(json.dumps({"trial": t.id, "params": chosen}))
    study.finish(t.id, "done", 0.25)
    return study


@pytest.fixture
def zc(tmp_path):
    s = make_study(tmp_path, zero_code=True)
    yield s
    s.close()


@pytest.fixture
def plain(tmp_path):
    """A study any version of the space file reads (for the -o tests)."""
    s = make_study(tmp_path, zero_code=False, params={"lr": lr()}, chosen={"lr": 0.003})
    yield s
    s.close()


@pytest.fixture
def api(tmp_path):
    s = make_study(tmp_path, zero_code=False)
    yield s
    s.close()


# -- -o never overwrites the study ------------------------------------------------------------------


@pytest.mark.parametrize("target", ["study.db", "space.toml", "runs/t0001/params.json", "runs/t0001/x.toml",
                                    "best.toml", "."])
def test_a_target_inside_the_study_is_refused_and_the_study_survives(plain, target, capsys):
    before = (plain.dir / "study.db").read_bytes()
    assert cli.main(["export", str(plain.dir), "-o", str(plain.dir / target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tui-tuner: ") and "is inside the study directory" in err, err
    assert (plain.dir / "study.db").read_bytes() == before
    with Study.open(plain.dir, lock=False) as again:
        assert again.trial(1).objective == 0.25


def test_symlinks_into_the_study_are_resolved(plain, tmp_path, capsys):
    (tmp_path / "link").symlink_to(plain.dir, target_is_directory=True)
    (tmp_path / "best.toml").symlink_to(plain.dir / "space.toml")
    for target in (tmp_path / "link" / "study.db", tmp_path / "best.toml"):
        assert cli.main(["export", str(plain.dir), "-o", str(target)]) == 2
        assert "inside the study directory" in capsys.readouterr().err
    assert (tmp_path / "best.toml").is_symlink()
    load_space(plain.dir / "space.toml")   # still the space


def test_the_default_and_the_apps_export_names_inside_the_study_still_work(plain):
    assert export_trial(plain) == plain.dir / "export-t0001.toml"
    assert export_trial(plain, path=plain.dir / "export.toml") == plain.dir / "export.toml"


def test_the_space_file_is_refused(plain, tmp_path):
    with pytest.raises(StudyError, match="is the study's space file"):
        export_trial(plain, path=tmp_path / "space.toml")


# -- -o - ---------------------------------------------------------------------------------------------


def test_dash_writes_to_stdout_and_creates_no_file(plain, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["export", str(plain.dir), "--best", "-o", "-"]) == 0
    doc = tomllib.loads(capsys.readouterr().out)
    assert doc["lr"] == 0.003 and doc["tuner"]["trial"] == 1
    assert not (tmp_path / "-").exists()


# -- the argv of a zero-code trial, and --format args ------------------------------------------------


def test_a_zero_code_export_holds_the_argv_the_trial_ran(zc):
    doc = tomllib.loads(export_trial(zc).read_text())
    run_dir = str((zc.dir / "runs" / "t0001").resolve())
    # The command as the space writes it; the study's "equals" style, cuda's own "space" style
    # (store_true: present when true); {run_dir} as it was for this trial.
    assert doc["tuner"]["argv"] == ["python", "train.py", "--out_dir", f"{run_dir}/out", "--trainer.lr=0.003",
                                    "--layers=3", "--cuda", "--amp=False", "--opt=sgd w/ momentum",
                                    f"--save={run_dir}/model.pt"]
    assert doc["save"] == "{run_dir}/model.pt"   # the setting itself stays as the space has it


def test_an_api_study_has_no_argv(api):
    assert "argv" not in tomllib.loads(export_trial(api).read_text())["tuner"]


def test_format_args_prints_just_the_flags_shell_quoted(zc, capsys):
    assert cli.main(["export", str(zc.dir), "--best", "--format", "args"]) == 0
    line = capsys.readouterr().out
    assert line.endswith("\n") and line.count("\n") == 1
    assert line.startswith("--trainer.lr=0.003 --layers=3 --cuda --amp=False '--opt=sgd w/ momentum' ")
    assert shlex.split(line) == trial_args(zc, zc.trial(1))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("zero_code", [True, False])
def test_args_reach_a_script_through_the_shell(tmp_path, zero_code):
    study = make_study(tmp_path, zero_code)
    try:
        args = export_text(study, study.trial(1), "args")
        expected = trial_args(study, study.trial(1))
    finally:
        study.close()
    show = tmp_path / "show.py"
    show.write_text("import json, sys; print(json.dumps(sys.argv[1:]))")
    export = f"{shlex.quote(sys.executable)} -m tui_tuner export st --format args"
    res = subprocess.run(["bash", "-c", f'eval "{shlex.quote(sys.executable)} show.py $({export})"'],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == expected == shlex.split(args)
    if not zero_code:
        assert expected[:2] == ["--lr=0.003", "--layers=3"] and "--cuda=True" in expected


def test_an_api_trainer_reads_the_args_and_the_export(api, tmp_path):
    """`python train.py $(... --format args)` and `python train.py --config best.toml` give the same values."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import json
        from tui_tuner import trainer
        hp = trainer.params(lr=0.1, layers=1, cuda=False, amp=True, opt="adam", save="x")
        print(json.dumps(hp))
    """))
    best = export_trial(api, path=tmp_path / "best.toml")
    runs = [[*trial_args(api, api.trial(1))], ["--config", str(best)]]
    outs = [subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, timeout=60,
                           check=True) for argv in runs]
    assert [json.loads(o.stdout) for o in outs] == [CHOSEN, CHOSEN]
    assert all(o.stderr == "" for o in outs)
