"""Sampling: every scale samples uniformly in its unit space; grid, zoom, stages and freezing behave.

Statistical checks use fixed seeds and 20,000 draws: a share's standard error is then at most
0.0035, so a tolerance of 0.02 is over five standard errors and never flaky.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from space_toml import HEAD, hidden, layers, lr, momentum, param, space_toml

from tui_tuner.errors import SpaceError, ZoomTooFewError
from tui_tuner.search.region import MIN_WIDTH, freeze, set_stage, unfreeze, unzoom, zoom, zoom_minimum
from tui_tuner.search.sampling import Sampler, auto_round_size, coarse_to_fine_rounds, grid_values
from tui_tuner.search.space import parse_space
from tui_tuner.search.state import SearchState, ZoomLevel

N = 20_000
TOL = 0.02

SPACE = parse_space(space_toml({
    "lr": lr(tier=1),
    "momentum": momentum(),
    "hidden": hidden(default=64),
    "layers": layers(default=2),
    "eps": param("float", scale="log", low=1e-9, high=1e-6, default=1e-8, tier=4),
}), "space.toml")


def one(params: str):
    """A space holding a single parameter `x`."""
    return parse_space(HEAD + "[params.x]\n" + params, "one.toml")


def draws(space, n: int = N, seed: int = 0, state: SearchState | None = None, **kw) -> list:
    return [s["x"] for s in Sampler(space, seed).random(state or SearchState(), n, **kw)]


def share(values, pred) -> float:
    return sum(1 for v in values if pred(v)) / len(values)


# -- the right scale --------------------------------------------------------------------------------


@pytest.mark.parametrize("decade", [(1e-4, 1e-3), (1e-3, 1e-2), (1e-2, 1e-1), (1e-1, 1.0)])
def test_log_lr_each_decade_equally_likely(decade):
    lo, hi = decade
    xs = draws(one('type = "float"\nscale = "log"\nlow = 1e-4\nhigh = 1.0'))
    assert share(xs, lambda v: lo <= v < hi or (hi == 1.0 and v == 1.0)) == pytest.approx(0.25, abs=TOL)


def test_one_minus_log_beta_above_0_99_half_the_time():
    xs = draws(one('type = "float"\nscale = "one_minus_log"\nlow = 0.9\nhigh = 0.999'))
    assert all(0.9 <= v <= 0.999 for v in xs)
    assert share(xs, lambda v: v >= 0.99) == pytest.approx(0.5, abs=TOL)


def _cell(p, v: int) -> float:
    """Probability of int value v: the share of the (scaled) range its unit cell owns."""
    f = math.log if p.scale == "log" else (lambda x: x)
    return (f(v + 0.5) - f(v - 0.5)) / (f(p.high + 0.5) - f(p.low - 0.5))


# Every scale: values stay in range, and the unit-space coordinate is uniform (quarters for the
# continuous ones; each value's expected probability for ints and choices).
SCALES = [
    ("float linear", 'type = "float"\nlow = -2.0\nhigh = 3.0'),
    ("float log", 'type = "float"\nscale = "log"\nlow = 1e-5\nhigh = 10.0'),
    ("float 1-β log", 'type = "float"\nscale = "one_minus_log"\nlow = 0.5\nhigh = 0.9999'),
    ("float step", 'type = "float"\nlow = 0.0\nhigh = 1.0\nstep = 0.25'),
    ("int linear", 'type = "int"\nlow = 1\nhigh = 5'),
    ("int log", 'type = "int"\nscale = "log"\nlow = 1\nhigh = 20'),
    ("int step", 'type = "int"\nlow = 0\nhigh = 40\nstep = 10'),
    ("choice", 'type = "choice"\nvalues = ["relu", "gelu", true, 3]'),
]


@pytest.mark.parametrize("label, text", SCALES, ids=[s[0] for s in SCALES])
def test_every_scale_is_uniform_in_unit_space(label, text):
    space = one(text)
    p = space["x"]
    xs = draws(space)
    if p.type == "choice":
        for v in p.values:
            assert share(xs, lambda x, v=v: type(x) is type(v) and x == v) == pytest.approx(
                1 / len(p.values), abs=TOL)
        return
    assert all(p.low <= x <= p.high for x in xs)
    assert all(isinstance(x, int) for x in xs) if p.type == "int" else all(isinstance(x, float) for x in xs)
    if p.step:
        lattice = [p.low + k * p.step for k in range(round((p.high - p.low) / p.step) + 1)]
        assert set(xs) == set(lattice)  # quantised, both ends reached
        return
    if p.type == "int":
        for v in range(p.low, p.high + 1):
            assert share(xs, lambda x, v=v: x == v) == pytest.approx(_cell(p, v), abs=TOL)
        return
    us = [p.to_unit(x) for x in xs]
    for q in range(4):
        assert share(us, lambda u, q=q: q / 4 <= u < (q + 1) / 4) == pytest.approx(0.25, abs=TOL)


def test_int_bounds_inclusive_and_uniform():
    xs = draws(one('type = "int"\nlow = 1\nhigh = 5'))
    assert set(xs) == {1, 2, 3, 4, 5}
    for v in range(1, 6):
        assert share(xs, lambda x, v=v: x == v) == pytest.approx(0.2, abs=TOL)


def test_int_log_favours_small_values_and_hits_both_ends():
    xs = draws(one('type = "int"\nscale = "log"\nlow = 1\nhigh = 100'))
    assert min(xs) == 1 and max(xs) == 100
    expected = math.log(9.5 / 0.5) / math.log(100.5 / 0.5)  # cells of 1..9 in log space
    assert share(xs, lambda x: x <= 9) == pytest.approx(expected, abs=TOL)


def test_float_step_is_quantised_without_float_noise():
    xs = draws(one('type = "float"\nlow = 0.0\nhigh = 1.0\nstep = 0.1'), n=2000)
    assert set(xs) <= {round(k / 10, 10) for k in range(11)}
    assert 0.0 in xs and 1.0 in xs and 0.3 in xs  # 0.3, not 0.30000000000000004


# -- reproducibility -------------------------------------------------------------------------------


def test_same_seed_same_settings_and_other_seed_differs():
    a = Sampler(SPACE, 7).random(SearchState(), 50)
    b = Sampler(SPACE, 7).random(SearchState(), 50)
    c = Sampler(SPACE, 8).random(SearchState(), 50)
    assert a == b and a != c
    assert all(list(s) == list(SPACE.params) for s in a)  # full settings, space order


def test_generator_state_round_trips_through_json():
    s = Sampler(SPACE, 3)
    s.random(SearchState(), 5)
    saved = json.loads(json.dumps(s.get_state()))
    expected = s.random(SearchState(), 10)
    fresh = Sampler(SPACE, None)
    fresh.set_state(saved)
    assert fresh.random(SearchState(), 10) == expected


def test_stratified_round_covers_each_slice_once():
    space = one('type = "float"\nlow = 0.0\nhigh = 1.0')
    xs = draws(space, n=10, stratified=True)
    assert sorted(int(x * 10) for x in xs) == list(range(10))
    ys = draws(one('type = "choice"\nvalues = ["a", "b", "c"]'), n=9, stratified=True)
    assert sorted(ys) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    # still uniform over many draws
    zs = draws(space, stratified=True)
    assert share(zs, lambda x: x < 0.5) == pytest.approx(0.5, abs=TOL)


# -- stages, freezing, fixed values ------------------------------------------------------------


def test_unsearched_params_take_frozen_then_anchor_then_default():
    st = SearchState(stage=1, frozen={"lr": 0.003}, anchor={"momentum": 0.99})
    assert st.searched(SPACE) == []
    for s in Sampler(SPACE, 0).random(st, 5):
        assert s == {"lr": 0.003, "momentum": 0.99, "hidden": 64, "layers": 2, "eps": 1e-8}


def test_stage_searches_only_tiers_up_to_it():
    st = SearchState(stage=2)
    assert st.searched(SPACE) == ["lr", "momentum", "hidden"]
    xs = Sampler(SPACE, 0).random(st, 200)
    assert {s["layers"] for s in xs} == {2} and {s["eps"] for s in xs} == {1e-8}
    assert len({s["lr"] for s in xs}) == 200 and len({s["hidden"] for s in xs}) > 10


def test_freeze_and_unfreeze_one_param():
    st = freeze(SearchState(), "momentum", 0.95, SPACE)
    assert "momentum" not in st.searched(SPACE)
    assert {s["momentum"] for s in Sampler(SPACE, 0).random(st, 50)} == {0.95}
    back = unfreeze(st, "momentum")
    assert "momentum" in back.searched(SPACE) and back.frozen == {}
    assert st.frozen == {"momentum": 0.95}  # states are values: the old one is unchanged


@pytest.mark.parametrize("name, value, rule", [
    ("lr", 5.0, "params.lr: 5 is outside"),
    ("layers", 7, "params.layers: 7 is not among"),
    ("nope", 1, "params.nope: no such parameter"),
])
def test_freeze_refuses_bad_values(name, value, rule):
    with pytest.raises(SpaceError, match=rule):
        freeze(SearchState(), name, value, SPACE)


def test_raising_the_stage_keeps_what_was_learned():
    best = {"lr": 3e-3, "momentum": 0.95, "hidden": 70, "layers": 4, "eps": 2e-8}
    st = set_stage(SPACE, SearchState(stage=1), 2, best)
    assert st.stage == 2 and st.levels[-1].kind == "stage"
    # previously searched: boxed around best, half as wide as before
    lo, hi = st.box(SPACE, "lr")
    assert lo < SPACE["lr"].to_unit(3e-3) < hi and hi - lo == pytest.approx(0.5)
    # newly searched: the whole range again
    assert st.box(SPACE, "momentum") == (0.0, 1.0) and st.box(SPACE, "hidden") == (0.0, 1.0)
    # still not searched: anchored at the best trial's values
    assert st.anchor == {"layers": 4, "eps": 2e-8}
    xs = Sampler(SPACE, 0).random(st, 100)
    assert {s["layers"] for s in xs} == {4} and {s["eps"] for s in xs} == {2e-8}
    assert all(SPACE["lr"].value_at(lo) <= s["lr"] <= SPACE["lr"].value_at(hi) for s in xs)
    # undoing the stage's box gives the full lr range back
    assert unzoom(st).box(SPACE, "lr") == (0.0, 1.0)


def test_lowering_the_stage_anchors_the_dropped_params():
    best = {"lr": 3e-3, "momentum": 0.95, "hidden": 70, "layers": 4, "eps": 2e-8}
    st = set_stage(SPACE, SearchState(stage=4), 1, best)
    assert st.searched(SPACE) == ["lr"] and st.levels == []
    assert st.anchor == {"momentum": 0.95, "hidden": 70, "layers": 4, "eps": 2e-8}


@pytest.mark.parametrize("stage", [0, 5, "2", True])
def test_set_stage_refuses_bad_stage(stage):
    with pytest.raises(SpaceError, match="stage must be 1, 2, 3 or 4"):
        set_stage(SPACE, SearchState(), stage, None)


# -- grid -------------------------------------------------------------------------------------------


def test_grid_enumerates_choices_and_small_ints():
    space = parse_space(space_toml({
        "layers": layers(tier=None),
        "heads": param("int", low=1, high=3),
        "lr": lr(default=0.01, tier=2),
    }), "g.toml")
    g = Sampler(space, 0).grid(SearchState(stage=1))
    assert len(g) == 9
    assert {(s["layers"], s["heads"]) for s in g} == {(a, b) for a in (2, 3, 4) for b in (1, 2, 3)}
    assert {s["lr"] for s in g} == {0.01}  # tier 2 is not searched at stage 1


def test_grid_float_with_step_and_zoom_box():
    space = one('type = "float"\nlow = 0.0\nhigh = 1.0\nstep = 0.25')
    assert [s["x"] for s in Sampler(space, 0).grid(SearchState())] == [0.0, 0.25, 0.5, 0.75, 1.0]
    p = space["x"]
    st = SearchState(levels=[ZoomLevel(bounds={"x": (p.to_unit(0.2), p.to_unit(0.8))})])
    assert grid_values(p, st) == [0.25, 0.5, 0.75]


def test_grid_respects_zoom_of_ints_and_choices():
    space = parse_space(HEAD + """
[params.n]
type = "int"
low = 1
high = 10
[params.act]
type = "choice"
values = ["relu", "gelu", "tanh"]
""", "g.toml")
    n = space["n"]
    st = SearchState(levels=[ZoomLevel(bounds={"n": (n.to_unit(3), n.to_unit(6))}, choices={"act": ["gelu"]})])
    g = Sampler(space, 0).grid(st)
    assert [s["n"] for s in g] == [3, 4, 5, 6] and {s["act"] for s in g} == {"gelu"}


@pytest.mark.parametrize("params, limit, rule", [
    ('[params.lr]\ntype = "float"\nscale = "log"\nlow = 1e-4\nhigh = 1.0', 1000,
     r"params\.lr: a grid needs a step for a float parameter"),
    ('[params.n]\ntype = "int"\nlow = 1\nhigh = 5000', 1000, r"params\.n: .*over the limit of 1000"),
    ('[params.a]\ntype = "int"\nlow = 1\nhigh = 20\n[params.b]\ntype = "int"\nlow = 1\nhigh = 30', 500,
     r"params\.b: the grid would hold 600 settings, over the limit of 500"),
    ('[params.x]\ntype = "float"\nlow = 0.0\nhigh = 1.0\nstep = 1e-9', 1000,
     r"params\.x: .*over the limit of 1000"),
])
def test_grid_refusals_name_the_param_and_rule(params, limit, rule):
    space = parse_space(HEAD + params, "g.toml")
    with pytest.raises(SpaceError, match=rule):
        Sampler(space, 0).grid(SearchState(), limit=limit)


def test_grid_skips_frozen_floats():
    st = freeze(SearchState(stage=3), "lr", 0.01)
    st = freeze(st, "momentum", 0.9)
    g = Sampler(SPACE, 0).grid(st)
    assert len(g) == 51 * 3
    assert {s["lr"] for s in g} == {0.01}


# -- zoom -------------------------------------------------------------------------------------------


def finished_lr(space, n: int = 40, seed: int = 0, centre: float = 3e-3):
    """Random trials scored by distance from `centre` in log10(lr): the best lie around it."""
    xs = Sampler(space, seed).random(SearchState(), n)
    return [(s, abs(math.log10(s["lr"]) - math.log10(centre))) for s in xs]


def test_zoom_box_contains_the_best_and_stays_inside():
    fin = finished_lr(SPACE)
    st = zoom(SPACE, SearchState(), fin, maximize=False, top=0.25, ids=list(range(len(fin))))
    best = sorted(range(len(fin)), key=lambda i: fin[i][1])[:10]
    assert sorted(st.levels[-1].trials) == sorted(best)
    for name in ("lr", "momentum", "hidden", "eps"):
        lo, hi = st.box(SPACE, name)
        assert 0.0 <= lo < hi <= 1.0
        for i in best:
            assert lo <= SPACE[name].to_unit(fin[i][0][name]) <= hi
    # lr is what mattered: its box shrank most (best 10 of 40 lie within about a decade of 3e-3,
    # a quarter of the range, plus the margins)
    width = {n: st.box(SPACE, n)[1] - st.box(SPACE, n)[0] for n in ("lr", "momentum", "hidden", "eps")}
    assert width["lr"] < 0.7 and width["lr"] == min(width.values())


def test_zoom_keeps_the_log_scale():
    # The best two trials straddle 3e-3 evenly in log space; the box must too.
    fin = [({"lr": 1e-3}, 0.1), ({"lr": 9e-3}, 0.1), ({"lr": 0.5}, 1.0), ({"lr": 1e-4}, 1.0)]
    st = zoom(SPACE, SearchState(), fin, maximize=False, top=2, force=True)
    lo, hi = (SPACE["lr"].value_at(u) for u in st.box(SPACE, "lr"))
    assert lo < 1e-3 and hi > 9e-3
    assert math.log10(hi / 3e-3) == pytest.approx(math.log10(3e-3 / lo), rel=1e-9)
    # and samples in the box are log-uniform around 3e-3: half of them below it
    xs = [s["lr"] for s in Sampler(SPACE, 0).random(st, N)]
    assert share(xs, lambda v: v < 3e-3) == pytest.approx(0.5, abs=TOL)


def test_zoom_around_one_point_never_collapses():
    fin = [({"lr": 3e-3}, 0.1), ({"lr": 3e-3}, 0.1), ({"lr": 0.5}, 1.0)]
    st = zoom(SPACE, SearchState(), fin, maximize=False, top=2, margin=0.0, force=True)
    lo, hi = st.box(SPACE, "lr")
    assert hi - lo == pytest.approx(MIN_WIDTH)
    v_lo, v_hi = SPACE["lr"].value_at(lo), SPACE["lr"].value_at(hi)
    assert math.log10(v_hi / 3e-3) == pytest.approx(math.log10(3e-3 / v_lo))


def test_zoom_keeps_each_best_integer_reachable():
    fin = [({"hidden": 70}, 0.0), ({"hidden": 70}, 0.0), ({"hidden": 99}, 1.0)]
    st = zoom(SPACE, SearchState(), fin, maximize=False, top=2, margin=0.0, force=True)
    xs = {s["hidden"] for s in Sampler(SPACE, 0).random(st, 2000)}
    assert 70 in xs and xs <= {68, 69, 70, 71, 72}
    lo, hi = (int(v) for v in st.ranges(SPACE)["hidden"].strip("[]").split(", "))
    assert lo == min(xs) and hi == max(xs)  # the display names exactly what can be drawn


def test_zoom_keeps_the_choices_the_best_used():
    fin = [({"layers": 3}, 0.1), ({"layers": 4}, 0.2), ({"layers": 2}, 0.9), ({"layers": 2}, 0.8)]
    st = zoom(SPACE, SearchState(), fin, maximize=False, top=0.5, force=True)
    assert st.allowed(SPACE, "layers") == [3, 4]
    assert {s["layers"] for s in Sampler(SPACE, 0).random(st, 200)} == {3, 4}
    up = zoom(SPACE, SearchState(), fin, maximize=True, top=0.5, force=True)
    assert up.allowed(SPACE, "layers") == [2]


def test_unzoom_restores_and_refuses_at_the_top():
    st0 = SearchState(stage=3, frozen={"eps": 1e-8})
    st1 = zoom(SPACE, st0, finished_lr(SPACE), maximize=False)
    assert unzoom(st1) == st0
    with pytest.raises(SpaceError, match="nothing to unzoom"):
        unzoom(st0)


def test_repeated_zoom_nests():
    st = SearchState()
    sampler = Sampler(SPACE, 1)
    fin = finished_lr(SPACE, seed=1)
    widths = []
    for _ in range(4):
        outer = st
        st = zoom(SPACE, st, fin, maximize=False, top=0.3)
        for name in ("lr", "momentum", "hidden", "eps"):
            (olo, ohi), (lo, hi) = outer.box(SPACE, name), st.box(SPACE, name)
            assert olo <= lo < hi <= ohi
        assert set(st.allowed(SPACE, "layers")) <= set(outer.allowed(SPACE, "layers"))
        widths.append(st.box(SPACE, "lr")[1] - st.box(SPACE, "lr")[0])
        new = sampler.random(st, 20)
        fin += [(s, abs(math.log10(s["lr"]) - math.log10(3e-3))) for s in new]
    assert len(st.levels) == 4 and widths == sorted(widths, reverse=True)
    lo, hi = (SPACE["lr"].value_at(u) for u in st.box(SPACE, "lr"))
    assert lo < 3e-3 < hi and hi / lo < 10


def test_zoom_needs_two_finite_objectives_even_forced():
    fin = [({"lr": 1e-3}, 0.1), ({"lr": 1e-2}, float("nan")), ({"lr": 1e-1}, None)]
    with pytest.raises(SpaceError, match="at least 2 finished trials with an objective, got 1"):
        zoom(SPACE, SearchState(), fin, maximize=False, force=True)


def test_zoom_on_fewer_than_twice_the_searched_parameters_is_refused_unless_forced():
    # Stage 4: lr, momentum, hidden, layers and eps are searched, so a zoom needs 10 trials.
    fin = finished_lr(SPACE, n=9)
    assert zoom_minimum(SPACE, SearchState()) == 10
    with pytest.raises(SpaceError) as e:
        zoom(SPACE, SearchState(), fin, maximize=False)
    assert e.value.message.startswith("zoom needs at least 10 finished trials with an objective (twice the 5 "
                                      "searched parameters), got 9")
    # The numbers the app's "zoom anyway?" question is built from.
    assert isinstance(e.value, ZoomTooFewError)
    assert (e.value.have, e.value.need, e.value.searched) == (9, 10, 5)
    assert len(zoom(SPACE, SearchState(), fin, maximize=False, force=True).levels) == 1
    assert len(zoom(SPACE, SearchState(), finished_lr(SPACE, n=10), maximize=False).levels) == 1
    # Fewer searched parameters (a lower stage, a frozen one) need fewer trials.
    staged = set_stage(SPACE, SearchState(), 1)
    assert zoom_minimum(SPACE, staged) == 2
    assert zoom_minimum(SPACE, freeze(staged, "lr", 1e-2, SPACE)) == 2
    assert len(zoom(SPACE, staged, fin[:2], maximize=False).levels) == 1


def test_zoom_top_rules():
    fin = finished_lr(SPACE, n=10)
    ids = list(range(10))
    assert len(zoom(SPACE, SearchState(), fin, maximize=False, top=0.01, ids=ids).levels[-1].trials) == 2
    assert len(zoom(SPACE, SearchState(), fin, maximize=False, top=3, ids=ids).levels[-1].trials) == 3
    assert len(zoom(SPACE, SearchState(), fin, maximize=False, top=50, ids=ids).levels[-1].trials) == 10
    with pytest.raises(SpaceError, match="zoom top"):
        zoom(SPACE, SearchState(), fin, maximize=False, top=1.5)


def test_zoom_leaves_unsearched_params_alone():
    st = freeze(SearchState(stage=2), "momentum", 0.99)
    st = zoom(SPACE, st, finished_lr(SPACE), maximize=False)
    assert set(st.levels[-1].bounds) == {"lr", "hidden"} and st.levels[-1].choices == {}


# -- display and persistence ------------------------------------------------------------------------


def test_ranges_text():
    lr = SPACE["lr"]
    st = SearchState(stage=3, frozen={"momentum": 0.9},
                     levels=[ZoomLevel(bounds={"lr": (lr.to_unit(0.0012), lr.to_unit(0.0087))},
                                       choices={"layers": [2, 3]})])
    assert st.ranges(SPACE) == {
        "lr": "[0.0012, 0.0087]",
        "momentum": "= 0.9 (frozen)",
        "hidden": "[50, 100]",
        "layers": "{2, 3}",
        "eps": "= 1e-08 (default)",
    }
    assert SearchState(stage=1, anchor={"hidden": 70}).ranges(SPACE)["hidden"] == "= 70 (anchored)"


def test_ranges_show_enough_digits_near_one():
    m = SPACE["momentum"]
    st = SearchState(levels=[ZoomLevel(bounds={"momentum": (m.to_unit(0.9901), m.to_unit(0.9904))})])
    assert st.ranges(SPACE)["momentum"] == "[0.9901, 0.9904]"
    # The top end of a 1-β range must not round to 1, which is off the scale (1-β = 0).
    st = SearchState(levels=[ZoomLevel(bounds={"momentum": (m.to_unit(0.983), 1.0)})])
    assert st.ranges(SPACE)["momentum"] == "[0.983, 0.999]"


def test_search_state_json_round_trip():
    st = SearchState(stage=2, frozen={"momentum": 0.95, "flag": True}, anchor={"layers": 3, "act": "gelu"},
                     levels=[ZoomLevel(bounds={"lr": (0.25, 0.5)}, choices={"layers": [2, 3]}, trials=[4, 9]),
                             ZoomLevel(bounds={"lr": (0.3, 0.4)}, kind="stage")])
    text = st.to_json()
    assert json.loads(text)["levels"][0]["bounds"]["lr"] == [0.25, 0.5]
    back = SearchState.from_json(text)
    assert back == st and isinstance(back.levels[0].bounds["lr"], tuple)
    assert SearchState.from_json(SearchState().to_json()) == SearchState()


def test_round_plan():
    assert auto_round_size(20) >= 2
    for budget in (1, 7, 20, 50, 200):
        rounds = coarse_to_fine_rounds(budget)
        assert sum(rounds) == budget and all(r > 0 for r in rounds)
    assert coarse_to_fine_rounds(20, 5) == [10, 5, 5]


def test_zoom_round_trip_of_rng_and_state_is_reproducible():
    """A study reopened mid-way (state and generator from JSON) continues exactly."""
    def run(split: bool) -> list[dict]:
        sampler = Sampler(SPACE, 11)
        st = SearchState()
        out = []
        for _ in range(3):
            batch = sampler.random(st, 10, stratified=True)   # a zoom needs 2 x 5 searched
            out += batch
            fin = [(s, abs(math.log10(s["lr"]) + 2.5)) for s in out]
            st = zoom(SPACE, st, fin, maximize=False)
            if split:
                saved, rng = st.to_json(), json.dumps(sampler.get_state())
                sampler = Sampler(SPACE)
                sampler.set_state(json.loads(rng))
                st = SearchState.from_json(saved)
        return out

    assert run(False) == run(True)


def test_samples_inside_zoom_box_for_every_scale():
    st = zoom(SPACE, SearchState(), finished_lr(SPACE), maximize=False)
    for s in Sampler(SPACE, 5).random(st, 500):
        for name in ("lr", "momentum", "hidden", "eps"):
            p = SPACE[name]
            lo, hi = st.box(SPACE, name)
            if p.type == "int":
                assert p.from_unit(lo) <= s[name] <= p.from_unit(hi)
            else:
                assert p.value_at(lo) * (1 - 1e-12) <= s[name] <= p.value_at(hi) * (1 + 1e-12)


def test_sampler_uses_no_global_rng():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    Sampler(SPACE, 0).random(SearchState(), 100)
    assert (np.random.get_state()[1] == before).all()
