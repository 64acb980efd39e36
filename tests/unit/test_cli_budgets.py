"""--early-stop, --step-budget and --time-budget on `run --headless` and the app; `sample --strategy tpe`."""

from __future__ import annotations

import json

import pytest
from space_toml import lr, momentum, space_toml
from test_cli import one_error_line

from tui_tuner import cli

SPACE = space_toml({"lr": lr(), "momentum": momentum()}, name="budgets", early_stop_min_step=2)


@pytest.fixture
def space_file(tmp_path):
    p = tmp_path / "space.toml"
    p.write_text(SPACE)
    return p


def test_run_headless_passes_the_budget_options_down(monkeypatch, space_file):
    import tui_tuner.runtime.headless as headless

    seen = {}
    monkeypatch.setattr(headless, "run_headless", lambda *a, **kw: seen.update(args=a, **kw) or 0)
    assert cli.main(["run", str(space_file), "--headless", "--early-stop", "asha", "--step-budget", "1040",
                     "--time-budget", "8h"]) == 0
    assert (seen["early_stop"], seen["step_budget"], seen["time_budget"]) == ("asha", 1040, "8h")


@pytest.mark.parametrize("argv", [["tune", "{space}"], ["{space}"], ["run", "{space}"]])
def test_the_app_gets_them_as_overrides(monkeypatch, space_file, tmp_path, argv):
    import tui_tuner.ui.app as app

    seen = {}

    def fake_app(study, overrides=None, **kw):
        seen.update({k: v for k, v in overrides.items() if v is not None})
        study.close()
        return 0

    monkeypatch.setattr(app, "run_app", fake_app)
    args = [a.format(space=space_file) for a in argv]
    assert cli.main([*args, "--study", str(tmp_path / "s"), "--strategy", "tpe", "--early-stop", "median",
                     "--step-budget", "50", "--time-budget", "90m"]) == 0
    assert seen == {"strategy": "tpe", "early_stop": "median", "step_budget": 50, "time_budget": "90m"}


@pytest.mark.parametrize("args, message", [
    (["--time-budget", "soon"], "argument --time-budget: must be a time like \"8h\""),
    (["--time-budget=-1h"], "argument --time-budget: must be a time like \"8h\""),
    (["--step-budget", "-5"], "argument --step-budget: must be >= 1, got -5"),
    (["--step-budget", "0"], "argument --step-budget: must be >= 1, got 0"),
    (["--early-stop", "fast"], "argument --early-stop: invalid choice: 'fast'"),
])
def test_bad_budget_options_are_one_line(space_file, capsys, args, message):
    assert cli.main(["run", str(space_file), "--headless", *args]) == 2
    assert message in one_error_line(capsys.readouterr().err)


def test_the_app_refuses_early_stop_steps_that_cannot_work_before_it_starts(tmp_path, capsys):
    bare = tmp_path / "bare.toml"
    bare.write_text(space_toml({"lr": lr()}, name="bare"))
    bad = ["--early-stop", "hyperband", "--early-stop-min-step", "100", "--early-stop-max-step", "50"]
    assert cli.main([str(bare), "--study", str(tmp_path / "s"), *bad]) == 2
    assert "study.early_stop_min_step: must be <= early_stop_max_step (50) for hyperband, got 100" in \
        one_error_line(capsys.readouterr().err)
    # The study was released: a second try is refused for the same reason, not for a lock.
    assert cli.main([str(bare), "--study", str(tmp_path / "s"), *bad]) == 2
    assert "must be <= early_stop_max_step" in capsys.readouterr().err


def test_sample_tpe_matches_what_the_scheduler_asks_first(space_file, capsys):
    from tui_tuner.search.optuna_search import OptunaSearch
    from tui_tuner.search.space import load_space
    from tui_tuner.search.state import SearchState

    assert cli.main(["sample", str(space_file), "-n", "3", "--seed", "4", "--strategy", "tpe", "--parallel", "3"]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    space = load_space(space_file)
    assert got == OptunaSearch(space, SearchState(stage=space.config.stage), 4, []).ask(3)
    assert cli.main(["sample", str(space_file), "-n", "5", "--seed", "4", "--strategy", "tpe", "--parallel", "3"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line) for line in captured.out.splitlines()][:3] == got
    assert "settings after the first 3 assume trials end one at a time" in captured.err
