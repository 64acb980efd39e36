"""Measured importance: on an objective where only the learning rate matters, lr ranks first."""

from __future__ import annotations

import math

import numpy as np
import pytest
from space_toml import hidden, layers, lr, momentum, param, space_toml

from tui_tuner.search import importance as imp_mod
from tui_tuner.search.importance import MIN_TRIALS, Importance, importance
from tui_tuner.search.region import freeze
from tui_tuner.search.sampling import Sampler
from tui_tuner.search.space import parse_space
from tui_tuner.search.state import SearchState

SPACE = parse_space(space_toml({
    "lr": lr(default=None),
    "momentum": momentum(default=None),
    "hidden": hidden(),
    "layers": layers(),
    "act": param("choice", values=["relu", "gelu", True], tier=4),
}), "space.toml")


def lr_only(n: int = 40, seed: int = 0, state: SearchState | None = None, sign: float = 1.0):
    """Trials whose loss depends on lr alone (an optimum at 3e-3 mid-range on log), plus a little noise."""
    rng = np.random.default_rng(seed)
    xs = Sampler(SPACE, seed).random(state or SearchState(), n)
    return [(s, sign * ((math.log10(s["lr"]) + 2.5) ** 2 + rng.normal(0, 0.01))) for s in xs]


def check_scores(imp: Importance, names: set[str]) -> None:
    assert set(imp.scores) == names
    assert sum(imp.scores.values()) == pytest.approx(1.0)
    assert all(0.0 <= v <= 1.0 for v in imp.scores.values())
    assert list(imp.scores) == [k for k, _ in imp.ranked()]  # highest first


ALL = {"lr", "momentum", "hidden", "layers", "act"}


def test_fallback_ranks_lr_first():
    imp = importance(SPACE, lr_only(), maximize=False, method="ranks")
    check_scores(imp, ALL)
    assert imp.method == "ranks (numpy)" and imp.n == 40
    assert imp.ranked()[0][0] == "lr" and imp.scores["lr"] > 0.5


def test_fallback_used_when_optuna_is_missing(monkeypatch):
    monkeypatch.setattr(imp_mod, "optuna_available", lambda: False)
    imp = importance(SPACE, lr_only(), maximize=False)
    assert imp.method == "ranks (numpy)" and imp.ranked()[0][0] == "lr"


def test_ped_anova_ranks_lr_first():
    pytest.importorskip("optuna")
    imp = importance(SPACE, lr_only(), maximize=False)
    assert imp.method == "ped-anova (optuna)"
    check_scores(imp, ALL)
    assert imp.ranked()[0][0] == "lr" and imp.scores["lr"] > 0.5


def test_fanova_ranks_lr_first():
    pytest.importorskip("optuna")
    pytest.importorskip("sklearn")
    imp = importance(SPACE, lr_only(), maximize=False, method="fanova")
    assert imp.method == "fanova (optuna)" and imp.ranked()[0][0] == "lr"


@pytest.mark.parametrize("method", ["ranks", "ped-anova"])
def test_maximize_direction(method):
    if method != "ranks":
        pytest.importorskip("optuna")
    imp = importance(SPACE, lr_only(sign=-1.0), maximize=True, method=method)
    assert imp.ranked()[0][0] == "lr"


@pytest.mark.parametrize("method", ["ranks", "ped-anova"])
def test_params_that_did_not_vary_get_no_score(method):
    if method != "ranks":
        pytest.importorskip("optuna")
    state = freeze(SearchState(stage=2), "momentum", 0.95)
    imp = importance(SPACE, lr_only(state=state), maximize=False, method=method)
    check_scores(imp, {"lr", "hidden"})


def test_too_few_trials_give_empty_scores():
    trials = lr_only(n=MIN_TRIALS - 1)
    imp = importance(SPACE, trials, maximize=False)
    assert imp.scores == {} and "too few trials" in imp.method and imp.n == MIN_TRIALS - 1


def test_non_finite_objectives_are_ignored():
    trials = lr_only(n=MIN_TRIALS)
    trials[0] = (trials[0][0], float("nan"))
    trials[1] = (trials[1][0], None)
    assert importance(SPACE, trials, maximize=False, method="ranks").scores == {}
    more = trials + [(trials[2][0], float("inf"))] + lr_only(n=4, seed=9)
    assert importance(SPACE, more, maximize=False, method="ranks").n == MIN_TRIALS - 2 + 4


def test_noise_only_objective_spreads_the_scores():
    rng = np.random.default_rng(3)
    xs = Sampler(SPACE, 3).random(SearchState(), 60)
    imp = importance(SPACE, [(s, float(rng.normal())) for s in xs], maximize=False, method="ranks")
    check_scores(imp, ALL)
    assert max(imp.scores.values()) < 0.9  # no parameter should look decisive


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method must be one of"):
        importance(SPACE, lr_only(), maximize=False, method="shap")
