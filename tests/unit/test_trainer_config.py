"""`python train.py --config best.toml`: a trainer-API script reads a `tui-tuner export` (issue 7, item 12)."""

from __future__ import annotations

import json

import pytest

from tui_tuner.trainer import Run

DEFAULTS = {"lr": 0.1, "hidden": 64, "flag": False, "opt": "sgd", "wd": 0.0}
EXPORT = """\
lr = 0.003
hidden = 80
flag = true
opt = "adam"
wd = 0

[tuner]
study = "mlp"
trial = 7
objective_value = 0.25
"""


@pytest.fixture
def best(tmp_path):
    p = tmp_path / "best.toml"
    p.write_text(EXPORT)
    return str(p)


def params(argv: list[str], run_dir=None, **defaults) -> dict:
    return dict(Run(run_dir, argv=argv).params(defaults or DEFAULTS))


def test_config_sets_every_value_it_holds_typed_like_the_defaults(best, capsys):
    hp = params(["--config", best])
    assert hp == {"lr": 0.003, "hidden": 80, "flag": True, "opt": "adam", "wd": 0.0}
    assert type(hp["wd"]) is float and type(hp["hidden"]) is int
    assert capsys.readouterr().err == ""   # the [tuner] table is metadata, not an unknown setting


@pytest.mark.parametrize(("argv", "lr", "hidden"), [
    (["--config", "BEST", "--lr", "0.5"], 0.5, 80),      # a later flag wins
    (["--lr=0.5", "--config=BEST"], 0.003, 80),          # an earlier one loses
    (["--hidden", "10", "--config", "BEST", "--hidden=20"], 0.003, 20),
])
def test_later_flags_win(best, argv, lr, hidden):
    hp = params([best if a == "BEST" else a.replace("BEST", best) for a in argv])
    assert (hp["lr"], hp["hidden"]) == (lr, hidden)


def test_keys_the_script_does_not_declare_are_warned_about(best, capsys):
    hp = params(["--config", best], lr=1.0)
    assert hp == {"lr": 0.003}
    err = capsys.readouterr().err
    assert f"hidden, flag, opt, wd (in {best})" in err and "tuner " not in err


def test_a_script_with_its_own_config_setting_keeps_it(best):
    assert params(["--config", "model.yaml"], config="default.yaml", lr=0.1) == {"config": "model.yaml", "lr": 0.1}


@pytest.mark.parametrize(("text", "message"), [
    (None, "--config {path}: cannot read: No such file or directory"),
    ("lr = [", "--config {path}: TOML syntax error:"),
    ('lr = "fast"', "--config {path}: lr: expected a number, got 'fast'"),
    ("hidden = 1.5", "--config {path}: hidden: expected an integer, got 1.5"),
])
def test_a_bad_config_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "c.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(SystemExit) as exc:
        params(["--config", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tui-tuner: " + message.format(path=path)), err


def test_under_the_tuner_params_json_still_wins(best, tmp_path):
    run_dir = tmp_path / "runs" / "t0001"
    run_dir.mkdir(parents=True)
    (run_dir / "params.json").write_text(json.dumps({"trial": 1, "params": {"lr": 0.02}, "resume": None}))
    run = Run(run_dir, argv=["--config", best])
    try:
        hp = dict(run.params(DEFAULTS))
    finally:
        run.close()
    assert hp["lr"] == 0.02 and hp["hidden"] == 80


def test_help_names_config(capsys):
    with pytest.raises(SystemExit):
        params(["--help"])
    assert "--config FILE.toml" in capsys.readouterr().out
