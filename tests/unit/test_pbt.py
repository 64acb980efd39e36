"""The autopilot's pure decisions (search/pbt.py): who is bottom and top, how a fork's settings move."""

from __future__ import annotations

import math

import numpy as np
import pytest
from space_toml import hidden, layers, lr, momentum, param, space_toml

from tui_tuner.errors import SpaceError
from tui_tuner.search.pbt import (
    Member,
    PbtConfig,
    explore,
    judge,
    pbt_config,
    perturb,
    quantile_size,
    rank,
)
from tui_tuner.search.sampling import SearchState
from tui_tuner.search.space import parse_space

SPACE = parse_space(space_toml({
    "lr": lr(live=True),
    "momentum": momentum(live=True, tier=1),
    "hidden": hidden(live=True, tier=1),
    "layers": layers(live=True, tier=1),
    "width": param("float", low=0.0, high=10.0, live=True),
    "dropout": param("float", low=0.0, high=0.5, default=0.1),   # not live: never changed
}))
STATE = SearchState()
CFG = PbtConfig("pbt", interval=100, fraction=0.25, resample=0.0)
PARAMS = {"lr": 0.01, "momentum": 0.9, "hidden": 60, "layers": 3, "width": 5.0, "dropout": 0.1}


def members(values, *, step=300, **kw):
    return [Member(i + 1, step, v, PARAMS, **kw) for i, v in enumerate(values)]


@pytest.mark.parametrize("n, fraction, q", [
    (0, 0.25, 0), (1, 0.5, 0), (2, 0.25, 1), (3, 0.25, 1), (4, 0.25, 1), (5, 0.25, 2), (8, 0.25, 2),
    (9, 0.25, 3), (4, 0.5, 2), (5, 0.5, 2), (10, 0.1, 1),
])
def test_quantile_size_is_at_least_one_and_at_most_half(n, fraction, q):
    assert quantile_size(n, fraction) == q


def test_rank_bottom_top_and_cut_minimize_and_maximize():
    ms = members([0.5, 0.9, 0.1, 0.7, 0.3, 0.8, 0.2, 0.6])   # ids 1..8
    r = rank(ms, 100, 0.25, maximize=False)
    assert r.order == (3, 7, 5, 1, 8, 4, 6, 2)
    assert r.bottom == (6, 2) and r.top == (3, 7)
    assert r.cut == 0.7          # the worst value outside the bottom
    r = rank(ms, 100, 0.25, maximize=True)
    assert r.top == (2, 6) and r.bottom == (7, 3) and r.cut == 0.3


def test_rank_leaves_out_runs_not_yet_interval_steps_in_and_runs_without_a_value():
    ms = [Member(1, 300, 0.1, PARAMS), Member(2, 300, 0.9, PARAMS),
          Member(3, 350, 5.0, PARAMS, start=300),        # a fresh fork: 50 steps of its own
          Member(4, 300, None, PARAMS), Member(5, 300, math.nan, PARAMS)]
    r = rank(ms, 100, 0.25, maximize=False)
    assert r.order == (1, 2) and r.bottom == (2,) and r.top == (1,)


def test_a_bottom_run_is_replaced_by_a_fork_of_a_top_run_with_numbers():
    ms = members([0.5, 0.91, 0.1, 0.74])
    ex = judge(ms[1], ms, CFG, False, SPACE, STATE, np.random.default_rng(0))
    assert ex is not None
    assert (ex.loser, ex.loser_step, ex.loser_value) == (2, 300, 0.91)
    assert (ex.winner, ex.winner_value, ex.cut) == (3, 0.1, 0.74)
    assert ex.summary("val_loss") == "stopped #2 at step 300: val_loss 0.91, bottom 25% (cut 0.74)"
    assert set(ex.moves) == {"lr", "momentum", "hidden", "layers", "width"}   # live ones only
    assert "dropout" not in ex.changes


def test_a_run_outside_the_bottom_is_left_alone():
    ms = members([0.5, 0.91, 0.1, 0.74])
    for m in (ms[0], ms[2], ms[3]):
        assert judge(m, ms, CFG, False, SPACE, STATE, np.random.default_rng(0)) is None


def test_too_few_runs_or_autopilot_none_decide_nothing():
    ms = members([0.9])
    assert judge(ms[0], ms, CFG, False, SPACE, STATE, np.random.default_rng(0)) is None
    ms = members([0.1, 0.9])
    off = PbtConfig("none")
    assert judge(ms[1], ms, off, False, SPACE, STATE, np.random.default_rng(0)) is None
    assert judge(ms[1], ms, CFG, False, SPACE, STATE, np.random.default_rng(0)) is not None


def test_pinned_runs_are_never_stopped_nor_forked_from():
    ms = members([0.1, 0.9])
    pinned_loser = [ms[0], Member(2, 300, 0.9, PARAMS, pinned=True)]
    assert judge(pinned_loser[1], pinned_loser, CFG, False, SPACE, STATE, np.random.default_rng(0)) is None
    pinned_winner = [Member(1, 300, 0.1, PARAMS, pinned=True), ms[1]]
    assert judge(ms[1], pinned_winner, CFG, False, SPACE, STATE, np.random.default_rng(0)) is None
    # A pinned run still counts in the ranking: here it is best, so #2 and #3 are not bottom.
    ms = [Member(1, 300, 0.05, PARAMS, pinned=True), Member(2, 300, 0.1, PARAMS), Member(3, 300, 0.2, PARAMS),
          Member(4, 300, 0.9, PARAMS)]
    ex = judge(ms[3], ms, CFG, False, SPACE, STATE, np.random.default_rng(0))
    assert ex is None   # the only top run is pinned: nothing to fork
    cfg = PbtConfig("pbt", interval=100, fraction=0.5, resample=0.0)
    ex = judge(ms[3], ms, cfg, False, SPACE, STATE, np.random.default_rng(0))
    assert ex is not None and ex.winner == 2


def test_zero_code_runs_cannot_be_exploited():
    ms = [Member(1, 300, 0.1, PARAMS, zero_code=True), Member(2, 300, 0.9, PARAMS, zero_code=True)]
    assert judge(ms[1], ms, CFG, False, SPACE, STATE, np.random.default_rng(0)) is None


def test_the_winner_is_drawn_among_the_top_runs():
    ms = members([0.1, 0.2, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9])   # top: #1, #2
    winners = {judge(ms[7], ms, CFG, False, SPACE, STATE, np.random.default_rng(s)).winner for s in range(20)}
    assert winners == {1, 2}


@pytest.mark.parametrize("name, value, factor, expected", [
    ("lr", 0.01, 1.25, 0.0125),               # log: multiplied
    ("lr", 0.01, 0.8, 0.008),
    ("lr", 0.9, 1.25, 1.0),                   # clipped to high
    ("lr", 1.2e-4, 0.8, 1e-4),                # clipped to low
    ("momentum", 0.96, 1.25, 0.95),           # one_minus_log: 1 - β multiplied (0.04 -> 0.05)
    ("momentum", 0.9, 1.25, 0.9),             # 0.1 -> 0.125 is below low: clipped
    ("momentum", 0.99, 0.8, 0.992),           # 0.01 -> 0.008
    ("momentum", 0.9989, 0.8, 0.999),         # 0.0011 -> 0.00088 is above high: clipped
    ("width", 5.0, 1.25, 7.5),                # linear: a quarter of the range up
    ("width", 5.0, 0.8, 3.0),                 # a fifth of it down
    ("width", 9.0, 1.25, 10.0),               # clipped
    ("width", 1.0, 0.8, 0.0),
    ("hidden", 60, 1.25, 72),                 # int linear: +12.5 of the range 50..100, rounded
    ("hidden", 60, 0.8, 50),                  # -10, at the low end
    ("hidden", 50, 0.8, 50),                  # clipped
    ("layers", 3, 1.25, 4),                   # choice: the next value
    ("layers", 3, 0.8, 2),
    ("layers", 4, 1.25, 4),                   # clipped at the end
])
def test_perturb_moves_on_each_parameters_own_scale(name, value, factor, expected):
    got = perturb(SPACE[name], value, factor)
    assert got == pytest.approx(expected, rel=1e-12)
    assert type(got) is type(expected)


def test_perturb_moves_an_int_at_least_one():
    small = parse_space(space_toml({"k": param("int", scale="log", low=1, high=64, live=True)}))["k"]
    assert perturb(small, 2, 1.25) == 3       # 2.5 would round back to 2
    assert perturb(small, 2, 0.8) == 1
    assert perturb(small, 1, 0.8) == 1        # and stays in range


def test_perturb_keeps_a_stepped_parameter_on_its_grid():
    stepped = parse_space(space_toml({"wd": param("float", low=0.0, high=1.0, step=0.1, live=True)}))["wd"]
    assert perturb(stepped, 0.5, 1.25) == pytest.approx(0.8)
    assert perturb(stepped, 0.5, 0.8) == pytest.approx(0.3)


def test_explore_changes_only_live_searched_parameters():
    frozen = SearchState(frozen={"width": 5.0})
    changes, moves = explore(SPACE, frozen, PARAMS, np.random.default_rng(1), 0.0)
    assert set(moves) == {"lr", "momentum", "hidden", "layers"}
    assert "dropout" not in changes and "width" not in changes
    for name, text in moves.items():
        assert text in (f"{name}×0.8", f"{name}×1.25")
    staged = SearchState(stage=1)
    space = parse_space(space_toml({"lr": lr(live=True), "momentum": momentum(live=True)}))
    _, moves = explore(space, staged, {"lr": 0.01, "momentum": 0.9}, np.random.default_rng(1), 0.0)
    assert set(moves) == {"lr"}   # momentum (tier 2) is not searched at stage 1


def test_explore_resamples_with_its_probability_on_the_log_scale():
    rng = np.random.default_rng(7)
    space = parse_space(space_toml({"lr": lr(live=True)}))
    resampled = []
    n = 4000
    for _ in range(n):
        changes, moves = explore(space, STATE, {"lr": 0.01}, rng, 0.25)
        if "resampled" in moves["lr"]:
            resampled.append(changes.get("lr", 0.01))
    assert len(resampled) / n == pytest.approx(0.25, abs=0.025)
    # Log-uniform over 1e-4..1: a quarter of the draws below 1e-3.
    below = sum(v < 1e-3 for v in resampled) / len(resampled)
    assert below == pytest.approx(0.25, abs=0.05)
    assert all(1e-4 <= v <= 1.0 for v in resampled)


def test_explore_is_reproducible_with_the_same_seed():
    a = explore(SPACE, STATE, PARAMS, np.random.default_rng(42), 0.25)
    b = explore(SPACE, STATE, PARAMS, np.random.default_rng(42), 0.25)
    assert a == b


@pytest.mark.parametrize("kw, message", [
    ({"rule": "pbtx"}, "study.autopilot: must be one of pbt, none, got 'pbtx'"),
    ({"rule": "pbt", "interval": 0}, "study.autopilot_interval: must be an integer >= 1"),
    ({"rule": "pbt", "interval": 2.5}, "study.autopilot_interval: must be an integer >= 1"),
    ({"rule": "pbt", "fraction": 0.0}, "study.autopilot_fraction: must be a number in (0, 0.5]"),
    ({"rule": "pbt", "fraction": 0.6}, "study.autopilot_fraction: must be a number in (0, 0.5]"),
    ({"rule": "pbt", "fraction": -0.1}, "study.autopilot_fraction: must be a number in (0, 0.5]"),
    ({"rule": "pbt", "resample": 1.5}, "study.autopilot_resample: must be a probability in [0, 1]"),
])
def test_bad_settings_are_refused_naming_the_key(kw, message):
    with pytest.raises(SpaceError) as e:
        pbt_config(**kw)
    assert str(e.value.message).startswith(message)


def test_defaults():
    cfg = pbt_config("pbt")
    assert (cfg.interval, cfg.fraction, cfg.resample) == (100, 0.25, 0.25)
    assert cfg.active and not pbt_config("none").active
