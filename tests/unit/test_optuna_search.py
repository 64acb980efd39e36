"""Model-based search through Optuna: distributions in our scales, the box and fixed values kept,
how each kind of trial counts, constant liar, determinism across a restart, and GP / CMA-ES by name."""

from __future__ import annotations

import math

import pytest
from space_toml import HEAD, hidden, layers, lr, momentum, param, space_toml

from tui_tuner.errors import SpaceError
from tui_tuner.search.optuna_search import OptunaSearch
from tui_tuner.search.optuna_space import distribution, distributions, from_optuna, to_optuna
from tui_tuner.search.region import freeze, set_stage, zoom
from tui_tuner.search.sampling import Sampler
from tui_tuner.search.space import parse_space
from tui_tuner.search.state import SearchState, ZoomLevel
from tui_tuner.study.store import Trial
from tui_tuner.study.study import Study

optuna = pytest.importorskip("optuna")
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

SPACE = parse_space(space_toml({
    "lr": lr(),
    "momentum": momentum(tier=1),
    "hidden": hidden(tier=1),
    "layers": layers(tier=1),
    "drop": param("float", low=0.0, high=0.5, step=0.05, default=0.1, tier=3),
    "batch": param("int", scale="log", low=16, high=512, default=64, tier=4),
}), "space.toml")


def one(params: str):
    """A space holding a single parameter `x`."""
    return parse_space(HEAD + "[params.x]\n" + params, "one.toml")


def loss(s: dict) -> float:
    """A smooth surface with its optimum at lr 10^-2.5, 1-β 10^-2, 3 layers, dropout 0.2."""
    return ((math.log10(s["lr"]) + 2.5) ** 2 + (math.log10(1 - s["momentum"]) + 2) ** 2
            + 0.1 * (s.get("layers", 3) != 3) + (s.get("drop", 0.2) - 0.2) ** 2)


def done(settings: list[dict], start: int = 1, f=loss) -> list[Trial]:
    return [Trial(id=start + i, status="done", params=s, objective=f(s), created=float(start + i),
                  ended=start + i + 0.5) for i, s in enumerate(settings)]


def history(n: int, seed: int = 0, state: SearchState | None = None) -> list[Trial]:
    return done(Sampler(SPACE, seed).random(state or SearchState(), n))


def inside(space, state: SearchState, setting: dict) -> bool:
    """True when every searched value lies in the current box (an int or step: its cell reaches in)."""
    for name in state.searched(space):
        p = space[name]
        if p.type == "choice":
            if setting[name] not in state.allowed(space, name):
                return False
            continue
        lo, hi = state.box(space, name)
        if p.type == "int" or p.step:
            tiny = 1e-9 * (hi - lo)
            if not p.from_unit(lo + tiny) <= setting[name] <= p.from_unit(hi - tiny):
                return False
        elif not lo - 1e-9 <= p.to_unit(setting[name]) <= hi + 1e-9:
            return False
    return True


# -- distributions in our scales --------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ('type = "float"\nscale = "log"\nlow = 1e-4\nhigh = 1.0', FloatDistribution(1e-4, 1.0, log=True)),
    ('type = "float"\nlow = -1.0\nhigh = 3.0', FloatDistribution(-1.0, 3.0)),
    ('type = "float"\nlow = 0.0\nhigh = 0.5\nstep = 0.05', FloatDistribution(0.0, 0.5, step=0.05)),
    ('type = "int"\nlow = 50\nhigh = 100', IntDistribution(50, 100)),
    ('type = "int"\nscale = "log"\nlow = 16\nhigh = 512', IntDistribution(16, 512, log=True)),
    ('type = "int"\nlow = 0\nhigh = 100\nstep = 10', IntDistribution(0, 100, step=10)),
    ('type = "choice"\nvalues = ["relu", "gelu"]', CategoricalDistribution(["relu", "gelu"])),
])
def test_each_scale_gets_the_matching_optuna_distribution(text, expected):
    p = one(text)["x"]
    assert distribution(p, SearchState(), one(text)) == expected


def test_one_minus_log_is_a_log_float_on_one_minus_beta():
    d = distribution(SPACE["momentum"], SearchState(), SPACE)
    assert d.log and d.step is None
    assert d.low == pytest.approx(0.001) and d.high == pytest.approx(0.1)
    p = SPACE["momentum"]
    for beta in (0.9, 0.99, 0.995, 0.999):
        x = to_optuna(p, beta, d)
        assert x == pytest.approx(1 - beta)
        assert from_optuna(p, x) == pytest.approx(beta, abs=1e-12)


@pytest.mark.parametrize("name, values", [
    ("lr", [1e-4, 3e-3, 1.0]), ("momentum", [0.9, 0.99, 0.999]), ("hidden", [50, 77, 100]),
    ("layers", [2, 3, 4]), ("drop", [0.0, 0.15, 0.5]), ("batch", [16, 100, 512]),
])
def test_values_go_to_optuna_and_back_unchanged(name, values):
    p = SPACE[name]
    d = distribution(p, SearchState(), SPACE)
    for v in values:
        x = to_optuna(p, v, d)
        assert x is not None and d._contains(d.to_internal_repr(x))
        assert from_optuna(p, x) == pytest.approx(v, rel=1e-12)
        assert type(from_optuna(p, x)) is type(v)


def test_choices_that_compare_equal_are_kept_apart():
    space = one('type = "choice"\nvalues = [1, true, 1.5]')
    p = space["x"]
    d = distribution(p, SearchState(), space)
    for v in (1, True, 1.5):
        back = from_optuna(p, to_optuna(p, v, d))
        assert back == v and type(back) is type(v)


def test_a_zoomed_box_narrows_the_distributions():
    state = SearchState(levels=[ZoomLevel(bounds={"lr": (0.25, 0.5), "hidden": (0.2, 0.4), "drop": (0.3, 0.6)},
                                          choices={"layers": [3, 4]})])
    d = distributions(SPACE, state)
    p = SPACE["lr"]
    assert (d["lr"].low, d["lr"].high) == pytest.approx((p.value_at(0.25), p.value_at(0.5)))
    assert (d["hidden"].low, d["hidden"].high) == (60, 70)    # the ints whose cells reach into the box
    assert (d["drop"].low, d["drop"].high) == pytest.approx((0.15, 0.3))
    assert d["layers"].choices == (3, 4)
    assert d["momentum"] == distribution(SPACE["momentum"], SearchState(), SPACE)


def test_frozen_and_unstaged_parameters_are_not_given_to_optuna():
    state = freeze(SearchState(stage=2), "lr", 0.003, SPACE)
    assert list(distributions(SPACE, state)) == ["momentum", "hidden", "layers"]


# -- asking ---------------------------------------------------------------------------------------


def test_tpe_proposes_inside_the_zoom_box_and_keeps_fixed_values():
    trials = history(30)
    state = zoom(SPACE, SearchState(), [(t.params, t.objective) for t in trials], maximize=False)
    state = freeze(state, "hidden", 77, SPACE)
    state = set_stage(SPACE, state, 3)           # batch (tier 4) stays at its default
    search = OptunaSearch(SPACE, state, 1, trials)
    assert search.outside > 0 and search.used + search.outside == 30
    out = search.ask(12)
    assert len(out) == 12
    for s in out:
        assert list(s) == list(SPACE.params)
        assert SPACE.check_setting(s) == s
        assert s["hidden"] == 77 and s["batch"] == 64
        assert inside(SPACE, state, s), s


def test_trials_outside_the_box_are_left_out_and_edge_values_kept():
    state = SearchState(levels=[ZoomLevel(bounds={"lr": (0.5, 1.0), "momentum": (0.5, 1.0)},
                                          choices={"layers": [3]})])
    base = {"lr": 0.1, "momentum": 0.999, "hidden": 60, "layers": 3, "drop": 0.1, "batch": 64}
    edge_lr = SPACE["lr"].value_at(0.5)            # exactly on the box edge
    trials = done([
        base,                                      # inside (β at the top of its range)
        {**base, "lr": edge_lr},                   # on the edge: inside
        {**base, "lr": 1e-4},                      # below the box
        {**base, "layers": 2},                     # a choice the zoom dropped
        {**base, "momentum": 0.9},                 # 1-β outside the box
    ])
    search = OptunaSearch(SPACE, state, 0, trials)
    assert (search.used, search.outside) == (2, 3)
    study = search.build()
    assert [t.params["lr"] for t in study.trials] == pytest.approx([0.1, edge_lr])
    for s in search.ask(3):
        assert inside(SPACE, state, s)


def test_every_kind_of_trial_counts_as_optuna_would_count_it():
    s = Sampler(SPACE, 3).random(SearchState(), 9)
    trials = [
        Trial(1, "done", s[0], objective=0.5, source="random"),
        Trial(2, "done", s[1], objective=0.4, source="fork", parent=1, fork_step=100),
        Trial(3, "done", s[2], objective=0.3, source="manual"),
        Trial(4, "stopped", s[3], objective=0.9, step=300),
        Trial(5, "stopped", s[4], objective=0.8, step=100),
        Trial(6, "diverged", s[5], objective=2.0, step=40),
        Trial(7, "failed", s[6]),
        Trial(8, "running", s[7]),
        Trial(9, "queued", s[8]),
        Trial(10, "done", s[0], objective=None),
    ]
    curves = {5: {50: 1.0, 100: 0.8}}
    study = OptunaSearch(SPACE, SearchState(), 0, trials, curves=curves).build()
    got = {round(t.value, 6) if t.value is not None else None: t for t in study.trials
           if t.state == TrialState.COMPLETE}
    assert set(got) == {0.5, 0.4, 0.3}              # forks and manual trials count like any other
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert [t.intermediate_values for t in pruned[:2]] == [{300: 0.9}, {50: 1.0, 100: 0.8}]
    assert math.isnan(pruned[2].intermediate_values[40])     # diverged: the worst at its depth
    assert len([t for t in study.trials if t.state == TrialState.RUNNING]) == 2
    assert len(study.trials) == 8                   # the failed one and the one without a result: left out
    assert study.trials[0].params["lr"] == pytest.approx(s[0]["lr"])


def test_gp_is_told_every_trial_as_complete_pending_and_diverged_at_the_worst_stopped_at_its_last():
    """GP learns from COMPLETE trials alone: the others get a value once a trial has finished."""
    pytest.importorskip("torch")
    s = Sampler(SPACE, 3).random(SearchState(), 8)
    trials = [
        Trial(1, "done", s[0], objective=0.5),
        Trial(2, "done", s[1], objective=0.3),
        Trial(3, "stopped", s[2], objective=0.9, step=300),
        Trial(4, "stopped", s[3], objective=0.8, step=100),
        Trial(5, "diverged", s[4], objective=2.0, step=40),
        Trial(6, "running", s[5]),
        Trial(7, "queued", s[6]),
        Trial(8, "failed", s[7]),
    ]
    search = OptunaSearch(SPACE, SearchState(), 0, trials, strategy="gp", curves={4: {50: 1.0, 100: 0.7}})
    study = search.build()
    assert all(t.state == TrialState.COMPLETE for t in study.trials) and len(study.trials) == 7
    assert [round(t.value, 6) for t in study.trials] == [0.5, 0.3, 0.9, 0.7, 0.5, 0.5, 0.5]   # minimize: worst 0.5
    assert search.finished == 2 and search.lie == 0.5
    # Before any trial finished there is nothing to lie with: GP draws at random then anyway.
    early = OptunaSearch(SPACE, SearchState(), 0, trials[5:7], strategy="gp").build()
    assert [t.state for t in early.trials] == [TrialState.RUNNING] * 2
    # A batch: each proposal is told the lie before the next is asked, so none repeats another.
    out = OptunaSearch(SPACE, SearchState(), 0, history(12), strategy="gp").ask(3)
    assert len({s["lr"] for s in out}) == 3


def test_tpe_learns_from_the_history():
    space = parse_space(space_toml({"lr": lr(), "momentum": momentum(tier=1), "layers": layers(tier=1)}), "s.toml")
    trials = done(Sampler(space, 5).random(SearchState(), 40))
    tpe = OptunaSearch(space, SearchState(), 11, trials).ask(20)
    rnd = Sampler(space, 11).random(SearchState(), 20)
    mean = lambda xs: sum(loss(s) for s in xs) / len(xs)  # noqa: E731
    assert mean(tpe) < 0.5 * mean(rnd)


def test_pending_trials_are_not_proposed_again():
    """Constant liar: a batch of asks, and asks with trials still queued or running, spread out."""
    space = one('type = "int"\nlow = 0\nhigh = 40')
    f = lambda s: abs(s["x"] - 20)  # noqa: E731
    trials = done([{"x": x} for x in (0, 5, 10, 15, 19, 21, 25, 30, 35, 40, 18, 22)], f=f)
    batch = OptunaSearch(space, SearchState(), 3, trials).ask(6)
    assert len({s["x"] for s in batch}) >= 5
    # The same proposals again when those six are pending: the model must not repeat itself.
    pending = trials + [Trial(100 + i, "running" if i % 2 else "queued", s) for i, s in enumerate(batch)]
    nxt = OptunaSearch(space, SearchState(), 3, pending).ask(6)
    assert len({s["x"] for s in nxt} - {s["x"] for s in batch}) >= 3


def test_the_same_history_and_seed_give_the_same_proposals():
    trials = history(25)
    a = OptunaSearch(SPACE, SearchState(), 42, trials).ask(5)
    assert OptunaSearch(SPACE, SearchState(), 42, list(reversed(trials))).ask(5) == a
    assert OptunaSearch(SPACE, SearchState(), 43, trials).ask(5) != a
    # A grown history draws afresh (the random startup phase too).
    assert OptunaSearch(SPACE, SearchState(), 42, history(3)).ask(2) != \
        OptunaSearch(SPACE, SearchState(), 42, history(4)).ask(2)


@pytest.mark.parametrize("strategy", ["tpe", "gp"])
def test_a_restarted_tuner_continues_the_same_search(tmp_path, strategy):
    """Ask, queue, run, finish, ask again: a study closed and reopened between rounds proposes what
    one left open does (past the random startup: the model's proposals)."""
    if strategy == "gp":
        pytest.importorskip("torch")
        pytest.importorskip("scipy")
    text = space_toml({"lr": lr(), "momentum": momentum(tier=1), "layers": layers(tier=1)}, seed=9)

    def rounds(directory, reopen: bool) -> list[dict]:
        space = parse_space(text, "s.toml")
        study = Study.open(directory, space)
        proposals = []
        for _ in range(4):
            if reopen:
                study.close()
                study = Study.open(directory)
            settings = OptunaSearch(study.space, study.search_state, study.seed, study.trials("id"),
                                    strategy=strategy, startup=4).ask(3)
            proposals += settings
            for t in study.enqueue(settings, strategy):
                study.mark_started(t.id, pid=1)
                study.finish(t.id, "done", objective=loss(t.params))
        study.close()
        return proposals

    assert rounds(tmp_path / "a", reopen=False) == rounds(tmp_path / "b", reopen=True)


def test_everything_fixed_gives_the_fixed_setting():
    state = SearchState(stage=1)
    for name in ("lr", "momentum", "hidden", "layers"):
        state = freeze(state, name, SPACE[name].default, SPACE)
    assert OptunaSearch(SPACE, state, 0, history(5)).ask(2) == [SPACE.defaults()] * 2


@pytest.mark.parametrize("kwargs, message", [
    ({"strategy": "bayes"}, "strategy: 'bayes' is not a model-based strategy (allowed: tpe, gp, cmaes)"),
    ({"startup": -1}, "startup trials must be an integer >= 0, got -1"),
])
def test_bad_arguments_are_one_line_errors(kwargs, message):
    with pytest.raises(SpaceError) as e:
        OptunaSearch(SPACE, SearchState(), 0, [], **kwargs)
    assert str(e.value) == message


@pytest.mark.parametrize("strategy, missing, message", [
    ("cmaes", "cmaes", "strategy 'cmaes' needs the cmaes package: pip install cmaes"),
    ("gp", "torch", "strategy 'gp' needs torch and scipy: pip install torch scipy"),
])
def test_a_missing_optional_package_is_named(monkeypatch, strategy, missing, message):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))
    with pytest.raises(SpaceError) as e:
        OptunaSearch(SPACE, SearchState(), 0, [], strategy=strategy)
    assert str(e.value) == message


def test_a_bad_count_is_refused():
    with pytest.raises(SpaceError, match="ask needs a count >= 0, got -2"):
        OptunaSearch(SPACE, SearchState(), 0, []).ask(-2)


# -- GP and CMA-ES by name -------------------------------------------------------------------------


def test_cmaes_replays_the_history_into_generations():
    pytest.importorskip("cmaes")
    space = parse_space(space_toml({"lr": lr(), "momentum": momentum(tier=1), "hidden": hidden(tier=1)}), "s.toml")
    trials: list[Trial] = []
    for _ in range(6):
        out = OptunaSearch(space, SearchState(), 7, trials, strategy="cmaes").ask(4)
        trials += done(out, start=len(trials) + 1)
        assert all(inside(space, SearchState(), s) for s in out)
    search = OptunaSearch(space, SearchState(), 7, trials, strategy="cmaes")
    gens = [t.system_attrs.get("cma:generation") for t in search.build().trials]
    # The first is its random startup trial; then generations of 7 (popsize 4 + 3 ln 3).
    assert gens[:9] == [None, 0, 0, 0, 0, 0, 0, 0, 1] and gens[-1] == 3
    assert search.ask(3) == OptunaSearch(space, SearchState(), 7, trials, strategy="cmaes").ask(3)


def test_gp_proposes_inside_the_box():
    pytest.importorskip("torch")
    space = parse_space(space_toml({"lr": lr(), "layers": layers(tier=1)}), "s.toml")
    trials = done(Sampler(space, 1).random(SearchState(), 6), f=lambda s: (math.log10(s["lr"]) + 2.5) ** 2)
    state = SearchState(levels=[ZoomLevel(bounds={"lr": (0.2, 0.6)})])
    out = OptunaSearch(space, state, 0, trials, strategy="gp", startup=3).ask(2)
    assert len(out) == 2 and all(inside(space, state, s) for s in out)
    assert out[0] != out[1]                          # the first is a pending point for the second



def pending_trials(n: int, start: int = 100, status: str = "running") -> list[Trial]:
    return [Trial(id=start + i, status=status, params=s, step=3, objective=None if status == "running" else 0.5)
            for i, s in enumerate(Sampler(SPACE, 1).random(SearchState(), n))]


@pytest.mark.parametrize("done_n, pending_n, stopped_n, n, fits", [
    (9, 0, 0, 1, False),
    (10, 0, 0, 1, True),
    (9, 1, 0, 1, True),     # GP is told the pending one as COMPLETE (the lie): it fits
    (8, 0, 1, 1, False),
    (8, 0, 1, 2, True),     # the batch's first setting is told as the lie before the second is asked
    (8, 0, 0, 2, False),
    (0, 12, 0, 3, False),   # nothing finished: no lie, GP sees no COMPLETE trial
])
def test_fits_says_exactly_whether_the_ask_fits_a_gp(done_n, pending_n, stopped_n, n, fits):
    """One definition of "enough trials to fit", shared with whoever runs the ask: GPSampler counts
    every trial it is told as COMPLETE, pending and stopped ones included (issue 17: an ask with
    stopped or pending trials before ten had finished fitted on the tick's thread)."""
    pytest.importorskip("torch")
    pytest.importorskip("scipy")
    trials = history(done_n) + pending_trials(pending_n) + pending_trials(stopped_n, 200, "stopped")
    model = OptunaSearch(SPACE, SearchState(), 0, trials, strategy="gp")
    assert model.fits(n) is fits and model.in_startup(n) is not fits
    model.ask(n)
    assert (model.kernel is not None) is fits, "the ask fitted a GP exactly when fits() said so"


def test_only_gp_is_costly_and_the_startup_can_be_set():
    nine = history(9)
    assert OptunaSearch(SPACE, SearchState(), 0, nine, strategy="gp", startup=3).costly
    assert not OptunaSearch(SPACE, SearchState(), 0, history(10), strategy="tpe").costly


@pytest.mark.parametrize("strategy", ["tpe", "gp"])
@pytest.mark.parametrize("n_done, n_pending, n_stopped, n", [(0, 0, 0, 3), (0, 30, 0, 2), (5, 3, 1, 1), (8, 0, 0, 1)])
def test_a_startup_ask_draws_the_same_without_building_the_history(strategy, n_done, n_pending, n_stopped, n):
    """In the random startup the history changes nothing but the seed, so `ask` skips building it
    (what keeps `sample -n 2000` linear): the settings are the ones the full build gives."""
    if strategy == "gp":
        pytest.importorskip("torch")
        pytest.importorskip("scipy")
    trials = history(n_done) + pending_trials(n_pending) + pending_trials(n_stopped, 200, "stopped")
    def model():
        return OptunaSearch(SPACE, SearchState(), 7, trials, strategy=strategy)

    assert model().in_startup(n)
    seed = model()._ask_seed()
    assert model().ask(n) == model()._draw(seed, n, history=False) == model()._draw(seed, n, history=True)


def test_gp_asked_one_trial_at_a_time_proposes_what_gpsampler_run_directly_does():
    """Issue 20: the wrapper seeded each ask afresh from the history, and its runs on the LCBench bench
    differed from GPSampler's, with a worse tail. Handed the stream the last ask left (the scheduler
    keeps it in the study), sequential asks draw what one GPSampler(seed) asked and told directly
    draws: the startup and the fits alike."""
    pytest.importorskip("torch")
    pytest.importorskip("scipy")
    state = SearchState()
    dists = distributions(SPACE, state)
    direct = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=5))
    trials: list[Trial] = []
    stream = kernel = None
    for i in range(13):
        model = OptunaSearch(SPACE, state, 5, trials, strategy="gp", stream=stream, kernel=kernel)
        (ours,) = model.ask(1)
        stream, kernel = model.stream, model.kernel or kernel
        t = direct.ask(dict(dists))
        theirs = dict(state.fixed(SPACE))
        theirs.update({name: from_optuna(SPACE[name], t.params[name]) for name in dists})
        assert ours == pytest.approx(SPACE.check_setting(theirs), rel=1e-9), f"ask {i + 1}"
        direct.tell(t, loss(ours))
        trials.append(Trial(id=i + 1, status="done", params=ours, objective=loss(ours), created=float(i + 1)))
