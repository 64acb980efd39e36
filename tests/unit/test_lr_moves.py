"""Which parameter the lr ×0.5/×2 keys move, and how (runtime/hand_moves.py's pure parts)."""

from __future__ import annotations

import pytest
from space_toml import lr, momentum, param, space_toml

from tui_tuner.errors import RunError
from tui_tuner.runtime.hand_moves import lr_param, scaled_lr
from tui_tuner.search.space import parse_space


def space(**params):
    return parse_space(space_toml(params), "x.toml")


@pytest.mark.parametrize("params,name", [
    ({"lr": lr(live=True)}, "lr"),
    ({"learning_rate": lr(live=True), "momentum": momentum(live=True)}, "learning_rate"),
    ({"lr": lr(live=False), "learning_rate": lr(live=True)}, "learning_rate"),   # the live one wins
])
def test_the_live_log_learning_rate_is_chosen(params, name):
    assert lr_param(space(**params)).name == name


@pytest.mark.parametrize("params,rule", [
    ({"momentum": momentum(live=True)}, "no live learning rate"),
    ({"lr": lr(live=False)}, "params.lr is not live"),
    ({"lr": param("float", low=0.0, high=1.0, live=True)}, "params.lr is not a float on a log scale"),
    ({"step_size": lr(live=True)}, "named lr or learning_rate"),
])
def test_a_space_without_one_is_refused_clearly(params, rule):
    with pytest.raises(RunError, match=rule):
        lr_param(space(**params))


def test_scaling_doubles_halves_and_clips_to_the_range():
    s = space(lr=lr(live=True, low=1e-4, high=1.0))
    assert scaled_lr(s, 0.01, 2.0) == ("lr", 0.02, "")
    assert scaled_lr(s, 0.01, 0.5) == ("lr", 0.005, "")
    assert scaled_lr(s, 0.7, 2.0) == ("lr", 1.0, " (clipped to the range's top)")
    assert scaled_lr(s, 1.5e-4, 0.5) == ("lr", 1e-4, " (clipped to the range's bottom)")
    with pytest.raises(RunError, match=r"lr is 1 now: ×2 would go past the top of its range \[0.0001, 1\]"):
        scaled_lr(s, 1.0, 2.0)
    # A scheduler decayed it below the range: halving must not raise it to the bottom of the range.
    with pytest.raises(RunError, match="×0.5 would go past the bottom of its range"):
        scaled_lr(s, 5e-5, 0.5)
    assert scaled_lr(s, 5e-5, 2.0) == ("lr", 1e-4, "")


@pytest.mark.parametrize("metrics, params, want", [
    ({"lr": 0.0021, "loss": 1.0}, {"lr": 0.003}, 0.0021),          # the lr its scheduler decayed to
    ({"learning_rate": 0.0015}, {"lr": 0.003}, 0.0015),            # HF's name for it
    ({"loss": 1.0}, {"lr": 0.003}, 0.003),                         # not reported: the setting
    ({"lr": float("nan")}, {"lr": 0.003}, 0.003),                  # not a number: the setting
])
def test_the_lr_a_run_uses_now_is_what_it_reports(metrics, params, want):
    from tui_tuner.runtime.hand_moves import current_values

    s = space(lr=lr(live=True, low=1e-4, high=1.0))
    assert current_values(s, {"params": params, "metrics": metrics})["lr"] == want
