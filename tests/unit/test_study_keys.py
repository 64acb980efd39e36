"""The [study] keys of issue 12: strategy (model-based), early_stop and its steps, step_budget, time_budget."""

from __future__ import annotations

import pytest
from space_toml import lr, space_toml

from tui_tuner.errors import SpaceError
from tui_tuner.search.config import early_stop_config
from tui_tuner.search.early_stop_records import EarlyStopConfig
from tui_tuner.search.space import parse_space


def study(**keys):
    return parse_space(space_toml({"lr": lr()}, **keys), "spaces/x.toml").config


def test_defaults_stop_nothing_and_set_no_step_or_time_budget():
    cfg = study()
    assert cfg.strategy == "gp" and not cfg.strategy_fallback   # torch and scipy are installed here
    assert cfg.early_stop == EarlyStopConfig("none", None, 3, None, where="study.early_stop")
    assert cfg.step_budget is None and cfg.time_budget is None


@pytest.mark.parametrize("strategy", ["random", "grid", "coarse_to_fine", "tpe", "gp", "cmaes"])
def test_strategies(strategy):
    assert study(strategy=strategy).strategy == strategy


def _without(monkeypatch, *modules):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in modules else real(name, *a))


@pytest.mark.parametrize("missing", [("torch",), ("scipy",), ("torch", "scipy")])
def test_without_torch_or_scipy_the_default_falls_back_to_tpe_and_says_why(monkeypatch, missing):
    _without(monkeypatch, *missing)
    cfg = study()
    assert cfg.strategy == "tpe"
    assert cfg.strategy_fallback.startswith(" and ".join(missing) + (" is" if len(missing) == 1 else " are"))
    assert "instead of the default gp" in cfg.strategy_fallback and "tui-tuner[torch]" in cfg.strategy_fallback
    assert study(strategy="gp").strategy == "gp"   # named: kept (the sampler says what it lacks)


def test_without_optuna_the_default_falls_back_to_coarse_to_fine_and_says_so(monkeypatch):
    _without(monkeypatch, "optuna", "torch")
    cfg = study()
    assert cfg.strategy == "coarse_to_fine"
    # The registry names what the default (gp) lacks, and how to get it: the torch extra brings optuna too.
    assert cfg.strategy_fallback.startswith("optuna and torch are not installed: searching with coarse_to_fine")
    assert "(pip install 'tui-tuner[torch]')" in cfg.strategy_fallback
    named = study(strategy="random")    # a strategy the space names is never replaced
    assert named.strategy == "random" and not named.strategy_fallback


def test_early_stop_keys_make_the_decider_config():
    cfg = study(early_stop="hyperband", early_stop_min_step=2, early_stop_factor=4, early_stop_max_step=52)
    assert cfg.early_stop == EarlyStopConfig("hyperband", 2, 4, 52, where="study.early_stop")
    assert study(early_stop="asha", early_stop_max_step=1000).early_stop.first_step == 111   # 1000 // 3²
    assert study(early_stop="median", early_stop_min_step=5).early_stop.first_step == 5


def test_budgets():
    cfg = study(step_budget=1040, time_budget="8h")
    assert cfg.step_budget == 1040 and cfg.time_budget == 8 * 3600
    assert study(time_budget=90).time_budget == 90
    assert study(time_budget="1h30m").time_budget == 5400


@pytest.mark.parametrize("keys, line", [
    ({"strategy": "bayes"}, "spaces/x.toml: study.strategy: must be one of random, grid, coarse_to_fine, tpe, gp, "
                            "cmaes, got 'bayes'"),
    ({"early_stop": "fast"}, "spaces/x.toml: study.early_stop: must be one of asha, median, hyperband, none, "
                             "got 'fast'"),
    ({"early_stop": "hyperband", "early_stop_min_step": 60, "early_stop_max_step": 52},
     "spaces/x.toml: study.early_stop_min_step: must be <= early_stop_max_step (52) for hyperband, got 60"),
    ({"early_stop": "asha", "early_stop_min_step": 0}, "spaces/x.toml: study.early_stop_min_step: must be an "
                                                       "integer >= 1, got 0"),
    ({"early_stop_factor": 1}, "spaces/x.toml: study.early_stop_factor: must be an integer >= 2, got 1"),
    ({"early_stop_factor": 2.5}, "spaces/x.toml: study.early_stop_factor: must be an integer >= 2, got 2.5"),
    ({"early_stop_max_step": -3}, "spaces/x.toml: study.early_stop_max_step: must be an integer >= 1, got -3"),
    ({"early_stop_trust_after": -1}, "spaces/x.toml: study.early_stop_trust_after: must be an integer >= 0, got -1"),
    ({"step_budget": -1040}, "spaces/x.toml: study.step_budget: must be an integer >= 1, got -1040"),
    ({"step_budget": 0}, "spaces/x.toml: study.step_budget: must be an integer >= 1, got 0"),
    ({"step_budget": "1040"}, "spaces/x.toml: study.step_budget: must be an integer >= 1, got '1040'"),
    ({"time_budget": "soon"}, "spaces/x.toml: study.time_budget: must be a time like \"8h\", \"90m\", \"1h30m\" "
                              "or \"3600s\", or a number of seconds > 0, got 'soon'"),
    ({"time_budget": -60}, "spaces/x.toml: study.time_budget: must be a time like"),
    ({"time_budget": "-1h"}, "spaces/x.toml: study.time_budget: must be a time like"),
    ({"time_budget": True}, "spaces/x.toml: study.time_budget: must be a time like"),
])
def test_bad_keys_are_one_line_naming_file_key_and_rule(keys, line):
    with pytest.raises(SpaceError) as e:
        study(**keys)
    assert e.value.message.startswith(line)
    assert "\n" not in e.value.message


def test_an_early_stop_rule_without_steps_takes_them_at_run_time():
    # asha and hyperband with no extra keys: the most steps come from the trainer or the first trial.
    for rule in ("asha", "hyperband", "median"):
        es = early_stop_config(rule)
        assert not es.resolved and es.rungs() == []
        assert es.with_max_step(100).resolved
    assert early_stop_config("asha").with_max_step(100).rungs() == [11, 33, 99]
    assert early_stop_config("median").with_max_step(100).rungs()[:3] == [11, 22, 33]
    with pytest.raises(SpaceError, match="study.early_stop: must be one of"):
        early_stop_config("sometimes")
    assert early_stop_config("asha", 4).first_step == 4
