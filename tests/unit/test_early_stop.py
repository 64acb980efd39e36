"""Early stopping: the decider reaches Optuna's own verdicts while consulting it only at rungs, its
cut-offs agree with those verdicts, pinned trials are never stopped, and a rebuilt decider agrees."""

from __future__ import annotations

import math
import random

import pytest

from tui_tuner.errors import SpaceError
from tui_tuner.search.early_stop import Decider, build_decider
from tui_tuner.search.early_stop_numbers import bracket_of, median_cutoff, promotion_cutoff
from tui_tuner.search.early_stop_records import (
    EarlyStopConfig,
    End,
    Forget,
    Report,
    record_from_dict,
    record_to_dict,
)

optuna = pytest.importorskip("optuna")
from optuna.trial import TrialState  # noqa: E402

STUDY_NAME = "tui-tuner"


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"rule": "sha"}, "early_stop: unknown rule 'sha' (allowed: asha, median, hyperband, none)"),
    ({"rule": "asha", "min_step": 0}, "early_stop: min_step must be an integer >= 1, got 0"),
    ({"rule": "asha", "min_step": 1.5}, "early_stop: min_step must be an integer >= 1, got 1.5"),
    ({"rule": "asha", "min_step": 10, "reduction_factor": 1},
     "early_stop: reduction_factor must be an integer >= 2, got 1"),
    ({"rule": "asha", "min_step": 10, "reduction_factor": True},
     "early_stop: reduction_factor must be an integer >= 2, got True"),
    ({"rule": "asha", "max_step": -5},
     "early_stop: max_step (the most steps a trial runs) must be an integer >= 1, got -5"),
    ({"rule": "hyperband", "min_step": 100, "max_step": 50},
     "early_stop: hyperband needs min_step <= the most steps a trial runs, got min_step=100, most steps 50"),
])
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(SpaceError) as e:
        EarlyStopConfig(**kwargs)
    assert str(e.value) == message


def test_the_builder_names_where_the_settings_came_from():
    with pytest.raises(SpaceError, match=r"^study.early_stop: unknown rule 'x'"):
        build_decider("x", 10, 3, "minimize", where="study.early_stop")
    with pytest.raises(SpaceError, match="direction must be minimize or maximize, got 'up'"):
        build_decider("asha", 10, 3, "up")


def test_min_step_defaults_to_max_step_over_eta_squared():
    assert EarlyStopConfig("asha", max_step=3000).first_step == 333
    assert EarlyStopConfig("asha", max_step=52).first_step == 5       # rungs 5, 15, 45
    assert EarlyStopConfig("asha", max_step=3000, reduction_factor=2).first_step == 750
    assert EarlyStopConfig("asha", max_step=5).first_step == 1
    assert EarlyStopConfig("asha", min_step=7, max_step=3000).first_step == 7


def test_none_never_decides():
    d = build_decider("none", None, 3, "minimize")
    assert all(d.report(1, s, 9.0) is None for s in range(0, 5000, 7))
    assert d.next_check(1) is None and d.history == []


# -- the numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("values, eta, maximize, cutoff", [
    ([0.5], 3, False, 0.5),                    # alone at the rung: it is the best
    ([0.5, 0.4], 3, False, 0.4),               # fewer than eta: only the best goes on
    ([0.5, 0.4, 0.3, 0.9, 0.8, 0.7], 3, False, 0.4),   # 6 // 3 = 2 go on: the 2nd best
    ([0.5, 0.4, 0.3, 0.9, 0.8, 0.7], 3, True, 0.8),
    ([1, 2, 3, 4, 5, 6, 7, 8], 2, False, 4),
])
def test_promotion_cutoff(values, eta, maximize, cutoff):
    assert promotion_cutoff(values, eta, maximize) == cutoff


def test_median_cutoff_ignores_nan():
    assert median_cutoff([1.0, math.nan, 3.0, 2.0]) == 2.0
    assert median_cutoff([math.nan]) is None and median_cutoff([]) is None


# -- the same verdicts as Optuna asked at every report ----------------------------------------------


def pruner_for(cfg: EarlyStopConfig):
    if cfg.rule == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=cfg.first_step,
                                                      reduction_factor=cfg.reduction_factor)
    if cfg.rule == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=cfg.first_step, max_resource=cfg.max_step,
                                              reduction_factor=cfg.reduction_factor)
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=cfg.first_step,
                                       interval_steps=cfg.first_step)


class Reference:
    """Optuna used the plain way: every report goes to trial.report and trial.should_prune."""

    def __init__(self, cfg: EarlyStopConfig, direction: str, n: int) -> None:
        self.study = optuna.create_study(study_name=STUDY_NAME, direction=direction, pruner=pruner_for(cfg))
        self.trials = [self.study.ask() for _ in range(n + 1)]   # numbered like the trial ids

    def report(self, tid: int, step: int, value: float) -> bool:
        t = self.trials[tid]
        t.report(value, step)
        return t.should_prune()

    def end(self, tid: int, status: str, value: float) -> None:
        if status == "done":
            self.study.tell(self.trials[tid], value)
        else:
            self.study.tell(self.trials[tid], state=TrialState.PRUNED)


def simulate(decider: Decider, n: int, seed: int, max_step: int, *, aligned: int = 0,
             pinned=(), reference: Reference | None = None, maximize: bool = False):
    """n trials with noisy learning curves, each reporting at its own cadence (every `aligned` steps
    when given), interleaved at random; a stopped trial ends. Yields (report, decision, reference verdict)."""
    rng = random.Random(seed)
    for tid in pinned:
        decider.pin(tid)
    curves = {tid: (rng.uniform(0.1, 1.0), rng.uniform(0.5, 3.0), aligned or rng.choice([1, 3, 7, 10, 25]))
              for tid in range(1, n + 1)}
    step = dict.fromkeys(curves, 0)
    started = [1, 2, 3]
    waiting = list(range(4, n + 1))
    while started:
        tid = rng.choice(started)
        floor, scale, every = curves[tid]
        step[tid] += every
        s = step[tid]
        value = floor + scale / math.sqrt(s) + rng.gauss(0, 0.02)
        if rng.random() < 0.01:
            value = math.nan
        if maximize:
            value = -value
        d = decider.report(tid, s, value)
        ref = reference.report(tid, s, value) if reference else None
        yield Report(tid, s, value), d, ref
        if (d is not None and d.stop) or s >= max_step:
            status = "done" if s >= max_step else "stopped"
            decider.end(tid, status, s, value)
            if reference:
                reference.end(tid, status, value)
            started.remove(tid)
            if waiting:
                started.append(waiting.pop(0))


CASES = [
    ("asha", 10, 3, None, "minimize", 0),
    ("asha", 5, 2, None, "maximize", 0),
    ("asha", 4, 4, None, "minimize", 0),
    ("hyperband", 5, 3, 400, "minimize", 0),
    ("hyperband", 3, 2, 300, "maximize", 0),
    ("median", 20, 3, None, "minimize", 20),
    ("median", 10, 3, None, "maximize", 10),
]


@pytest.mark.filterwarnings("ignore:All-NaN slice")   # Optuna's own median, on a trial that only saw NaN
@pytest.mark.parametrize("rule, min_step, eta, max_step, direction, aligned", CASES)
def test_verdicts_match_optuna_asked_at_every_report(rule, min_step, eta, max_step, direction, aligned):
    cfg = EarlyStopConfig(rule, min_step, eta, max_step)
    n = 24
    decider = Decider(cfg, direction, metric="val")
    ref = Reference(cfg, direction, n)
    pinned = {5}
    judged = stops = 0
    for rep, d, ref_verdict in simulate(decider, n, seed=sum(map(ord, rule)) + eta, max_step=max_step or 300,
                                        aligned=aligned, pinned=pinned, reference=ref,
                                        maximize=direction == "maximize"):
        assert (d is not None and d.pruned) == ref_verdict, (rep, d)
        if d is not None:
            judged += 1
            stops += d.stop
            assert d.stop == (d.pruned and rep.trial_id not in pinned and d.held is None)
    assert judged > 20 and stops >= 3


@pytest.mark.parametrize("rule, min_step, eta, max_step, direction, aligned", CASES)
def test_the_cutoff_agrees_with_the_verdict(rule, min_step, eta, max_step, direction, aligned):
    cfg = EarlyStopConfig(rule, min_step, eta, max_step)
    maximize = direction == "maximize"
    decisions = [d for _, d, _ in simulate(Decider(cfg, direction, metric="val"), 30, seed=7,
                                           max_step=max_step or 300, aligned=aligned, maximize=maximize)
                 if d is not None]
    with_cutoff = [d for d in decisions if d.cutoff is not None]
    assert len(with_cutoff) > 20
    for d in with_cutoff:
        worse = d.value < d.cutoff if maximize else d.value > d.cutoff
        assert d.pruned == worse, d
        assert d.rung_step <= d.step
    for d in decisions:
        if d.cutoff is None:
            assert d.pruned and math.isnan(d.value)


def test_a_decision_reads_as_its_numbers():
    d = build_decider("asha", 100, 3, "maximize", metric="val_accuracy", trust_after=0)
    assert d.report(1, 100, 0.74).text == "kept #1 at step 100: val_accuracy 0.74 ≥ cut-off 0.74 at rung 0 " \
                                          "(step 100) (asha, eta 3)"
    stop = d.report(2, 110, 0.61)
    assert (stop.stop, stop.rung, stop.rung_step, stop.cutoff, stop.competitors) == (True, 0, 100, 0.74, 2)
    assert stop.text == "stopped #2 at step 110: val_accuracy 0.61 < cut-off 0.74 at rung 0 (step 100) " \
                        "(asha, eta 3)"
    d.pin(3)
    kept = d.report(3, 100, 0.5)
    assert (kept.pruned, kept.stop, kept.pinned) == (True, False, True)
    assert kept.text.startswith("kept (pinned) #3 at step 100: val_accuracy 0.5 < cut-off 0.74")
    nan = d.report(4, 100, math.nan)
    assert nan.stop and nan.cutoff is None and "val_accuracy is nan" in nan.text


def test_a_pinned_trial_goes_on_and_still_counts():
    d = build_decider("asha", 10, 2, "minimize", trust_after=0)
    d.report(1, 10, 0.1)
    d.pin(2)
    assert d.report(2, 10, 0.9).pinned
    assert d.next_check(2) == 20                    # judged again at the next rung
    assert d.report(3, 10, 0.5).competitors == 3     # the pinned one's value counts at rung 0
    d.pin(2, False)
    at_rung_1 = d.report(2, 20, 0.9)                 # first to reach rung 1: judged the usual way
    assert (at_rung_1.rung, at_rung_1.competitors, at_rung_1.stop) == (1, 1, False)


def test_between_rungs_no_pruner_is_asked():
    d = build_decider("asha", 10, 3, "minimize", trust_after=0)
    calls = []
    original = d.pruner.prune
    d.pruner.prune = lambda study, trial: calls.append(trial.last_step) or original(study, trial)
    for s in range(1, 400):
        d.report(1, s, 1.0 / s)
    assert calls == [10, 30, 90, 270]
    m = build_decider("median", 50, 3, "minimize")
    calls.clear()
    original_m = m.pruner.prune
    m.pruner.prune = lambda study, trial: calls.append(trial.last_step) or original_m(study, trial)
    for s in range(1, 260, 3):
        m.report(1, s, 1.0 / s)
    assert calls == [50, 100, 150, 200, 250]        # each at the checkpoint its report stands for


def test_hyperband_brackets_are_optunas():
    d = build_decider("hyperband", 3, 3, "minimize", max_step=500)
    d.report(1, 3, 1.0)
    study = d.study
    for number in range(300):
        frozen = optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.0)
        frozen.number = number
        assert bracket_of(number, d._brackets) == d.pruner._get_bracket_id(study, frozen)


# -- determinism and rebuilding -------------------------------------------------------------------


@pytest.mark.parametrize("rule, min_step, eta, max_step, direction, aligned", CASES)
def test_a_rebuilt_decider_reaches_the_same_verdicts(rule, min_step, eta, max_step, direction, aligned):
    cfg = EarlyStopConfig(rule, min_step, eta, max_step)
    first = Decider(cfg, direction)
    made = [d for _, d, _ in simulate(first, 16, seed=3, max_step=max_step or 300, aligned=aligned, pinned={2})
            if d is not None]
    saved = [record_to_dict(r) for r in first.history]          # as the study would store it
    again = Decider(cfg, direction)
    again.pin(2)
    assert again.rebuild(saved) == made
    # ...and both go on alike.
    rng = random.Random(1)
    for k in range(400):
        tid, step, value = 100 + k % 7, 1 + k // 7 * 3, rng.uniform(0, 1)
        assert first.report(tid, step, value) == again.report(tid, step, value)


def test_the_same_reports_give_the_same_decisions():
    cfg = EarlyStopConfig("asha", 5, 3, trust_after=0)
    runs = [[d for _, d, _ in simulate(Decider(cfg), 20, seed=11, max_step=300)] for _ in range(2)]
    assert runs[0] == runs[1] and any(d is not None and d.stop for d in runs[0])


def test_history_is_compact_and_round_trips():
    d = build_decider("asha", 10, 3, "minimize", trust_after=0)
    for s in range(1, 101):
        d.report(1, s, 1.0)
    d.end(1, "done", 100, 1.0)
    assert d.history == [Report(1, 10, 1.0), Report(1, 30, 1.0), Report(1, 90, 1.0), End(1, "done", 100, 1.0)]
    assert [record_from_dict(record_to_dict(r)) for r in d.history] == d.history
    assert d.report(1, 270, 0.5) is None            # an ended trial is not judged


def test_curves_hold_the_values_the_pruner_judged():
    d = build_decider("asha", 10, 3, "minimize", trust_after=0)
    for s in range(1, 40):
        d.report(1, s, 1.0 / s)
        d.report(2, s, 2.0 / s)
    d.forget(2)
    assert d.curves() == {1: {10: 0.1, 30: 1 / 30}}


def test_forget_takes_a_trials_values_out():
    d = build_decider("asha", 10, 2, "minimize", trust_after=0)
    d.report(1, 10, 0.1)
    assert d.report(2, 10, 0.5).stop                 # worse than trial 1's 0.1
    d.forget(1)
    assert d.report(3, 10, 0.5).competitors == 2     # trial 2 and itself: 1's value no longer counts
    assert d.report(1, 10, 0.3).competitors == 3     # run again from the start, it competes afresh
    assert Forget(1) in d.history
    again = build_decider("asha", 10, 2, "minimize", trust_after=0)
    again.rebuild(d.history)
    assert again.report(4, 10, 0.4) == d.report(4, 10, 0.4)


def test_median_waits_for_finished_trials():
    d = build_decider("median", 10, 3, "minimize")
    for tid in range(1, 5):
        for s in (10, 20):
            assert d.report(tid, s, 1.0) is None
        d.end(tid, "done", 20, 1.0)
    assert d.report(5, 10, 2.0) is None              # 4 finished: fewer than the 5 median waits for
    d.end(5, "done", 10, 2.0)
    dec = d.report(6, 10, 3.0)
    assert (dec.stop, dec.cutoff, dec.competitors) == (True, 1.0, 5)
    assert dec.text == "stopped #6 at step 10: best objective 3 > cut-off 1 (median of 5 finished trials)"


def test_bad_end_status_is_refused():
    with pytest.raises(SpaceError, match="unknown end status 'gone'"):
        build_decider("asha", 10, 3, "minimize", trust_after=0).end(1, "gone")


# -- cost -------------------------------------------------------------------------------------------


def test_reports_between_rungs_are_cheap():
    import time

    d = build_decider("asha", 100, 3, "minimize", trust_after=0)
    t0 = time.perf_counter()
    for s in range(1, 20_001):
        d.report(1 + s % 20, s, 1.0)
    per = (time.perf_counter() - t0) / 20_000
    assert per < 100e-6, f"{per * 1e6:.1f} µs a report"


# -- promotion (asha) ------------------------------------------------------------------------------


def _slow_starter(maximize: bool = False) -> Decider:
    """eta 2, rungs at 5, 10, 20: #1 is the best at rung 0, #2 is second and stopped (alone with #1,
    only the best goes on); #3 and #4 come later, worse, and are stopped too."""
    d = build_decider("asha", 5, 2, "maximize" if maximize else "minimize", trust_after=0)
    sign = -1 if maximize else 1
    for tid, value in [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]:
        v = d.report(tid, 5, sign * value)
        assert v is not None and v.stop == (tid != 1), v.text
        if tid != 1:
            d.end(tid, "stopped", 6, sign * value)
    return d


@pytest.mark.parametrize("maximize", [False, True])
def test_a_stopped_trial_becomes_promotable_once_enough_trials_rank_below_it(maximize):
    d = build_decider("asha", 5, 2, "maximize" if maximize else "minimize", trust_after=0)
    sign = -1 if maximize else 1
    d.report(1, 5, sign * 1.0)
    d.report(2, 5, sign * 2.0)
    d.end(2, "stopped", 6, sign * 2.0)
    assert d.promotable() == [], "with two at the rung only the best goes on"
    d.report(3, 5, sign * 3.0)
    d.end(3, "stopped", 5)
    assert d.promotable() == [], "three at the rung: 3 // 2 = 1 goes on, still only the best"
    d.report(4, 5, sign * 4.0)
    d.end(4, "stopped", 5)
    (c,) = d.promotable()
    assert (c.trial_id, c.rung, c.rung_step, c.value, c.cutoff, c.competitors) == (2, 0, 5, sign * 2.0,
                                                                                  sign * 2.0, 4)


def test_only_trials_it_stopped_that_ended_stopped_are_promotable():
    d = build_decider("asha", 5, 2, "minimize", trust_after=0)
    d.report(1, 5, 1.0)
    d.report(2, 5, 2.0)        # condemned, but still running (its stop not carried out yet)
    for tid, v in [(3, 3.0), (4, 4.0)]:
        d.report(tid, 5, v)
        d.end(tid, "stopped", 5)
    assert d.promotable() == []
    d.end(2, "failed", 5)       # it ended another way first: nothing to resume
    assert d.promotable() == []
    d.pin(5)
    d.report(5, 5, 1.5)         # pinned: judged "stop", kept; a user stop later is not the decider's
    d.end(5, "stopped", 7)
    assert d.promotable() == []


def test_promotable_ranks_the_highest_rung_first_then_the_best_value():
    d = _slow_starter()
    d.report(1, 10, 0.5)                    # #1 goes on to rung 1 alone
    d.report(5, 5, 0.9)                     # #5 passes rung 0, fails rung 1 behind #1
    assert d.report(5, 10, 0.8).stop
    d.end(5, "stopped", 10)
    for tid, v in [(6, 5.0), (7, 6.0), (8, 7.0), (12, 8.0), (13, 9.0)]:
        d.report(tid, 5, v)
        d.end(tid, "stopped", 5)
    for tid, v in [(9, 0.9), (11, 0.95)]:   # two more pass rung 0 and fail rung 1, worse than #5
        d.report(tid, 5, 0.1 * (tid - 8))
        assert d.report(tid, 10, v).stop
    # Rung 1: 0.5, 0.8, 0.9, 0.95: 4 // 2 = 2 go on, so #5 (0.8) ranks now; rung 0 holds 12 values,
    # the best 6 (up to 3.0) rank: #2 and #3. #9 and #11 have not ended yet.
    assert [(c.trial_id, c.rung) for c in d.promotable()] == [(5, 1), (2, 0), (3, 0)]


def test_a_promoted_fork_continues_its_parent_and_is_judged_from_the_next_rung_at_its_steps():
    d = _slow_starter()
    d.report(1, 10, 0.5)
    d.promote(2, 10)
    assert d.promotable() == [], "the parent is promoted once: it is the fork now"
    d2 = _slow_starter()
    d2.promote(2, 10)
    d2.end(10, "stopped", 6)
    assert d2.promotable() == [], "a fork stopped (by hand) before its next rung did not fail a rung"
    assert d.next_check(10) == 10, "the fork's next rung is the parent's next (step 10), not its first"
    assert d.report(10, 7, 1.9) is None, "a report between rungs is not judged"
    v = d.report(10, 10, 1.8)
    assert v is not None and v.rung == 1 and v.competitors == 2 and v.stop, v.text
    # Nothing counts twice: rung 0 still holds 4 values (the fork's is the parent's), rung 1 two.
    trials = d.study.get_trials(deepcopy=False)
    assert sorted(t.system_attrs["completed_rung_0"] for t in trials if "completed_rung_0" in t.system_attrs) \
        == [1.0, 2.0, 3.0, 4.0]
    assert d.curves()[2] == {5: 2.0} and d.curves()[10] == {10: 1.8}


def test_promotable_and_promotions_survive_a_rebuild_from_the_kept_history():
    d = _slow_starter()
    before = d.promotable()
    kept = [record_to_dict(r) for r in d.history]
    again = build_decider("asha", 5, 2, "minimize", trust_after=0)
    again.rebuild(kept)
    assert again.promotable() == before and [c.trial_id for c in before] == [2]

    d.promote(2, 10)
    d.report(10, 10, 0.2)       # the fork beats #1 at rung 1
    kept = [record_to_dict(r) for r in d.history]
    assert {"kind": "promote", "trial_id": 10, "parent": 2} in kept
    again = build_decider("asha", 5, 2, "minimize", trust_after=0)
    again.rebuild(kept)
    assert again.promotable() == [] and again.promoted() == {10: 2}
    assert again.next_check(10) == d.next_check(10) == 20
    v = again.report(10, 20, 0.1)
    assert v is not None and v.rung == 2 and not v.stop


def test_a_fork_stopped_again_is_promotable_from_its_new_rung_only():
    d = _slow_starter()
    d.report(1, 10, 0.5)
    d.promote(2, 10)
    assert d.report(10, 10, 0.7).stop        # two at rung 1: only the best goes on
    d.end(10, "stopped", 10)
    for tid, v in [(11, 0.9), (12, 0.95)]:
        d.report(tid, 5, 0.1)
        d.report(tid, 10, v)
    assert [(c.trial_id, c.rung) for c in d.promotable()] == [(10, 1)], \
        "the fork ranks at rung 1 now; its parent, promoted from rung 0 once, is not listed again"


@pytest.mark.parametrize("rule", ["median", "hyperband"])
def test_only_asha_promotes(rule):
    d = build_decider(rule, 5, 2, "minimize", max_step=40)
    for tid in range(1, 9):
        for s in (5, 10):
            d.report(tid, s, float(tid))
        d.end(tid, "stopped", 10)
    assert d.promotable() == []


def test_a_fork_that_already_reported_cannot_take_over_a_parent():
    d = _slow_starter()
    d.report(10, 5, 3.0)
    with pytest.raises(SpaceError, match="#10 already has values of its own; it cannot continue #2"):
        d.promote(2, 10)


# -- the rungs asha trusts ----------------------------------------------------------------------------


def run_to_end(d, tid, curve, end=100):
    """Report `curve` ({step: value}) in order, then end the trial done at `end` with its last value."""
    verdicts = [d.report(tid, s, v) for s, v in sorted(curve.items())]
    d.end(tid, "done", end, curve[max(curve)])
    return verdicts


def test_asha_stops_no_trial_before_three_finished_then_stops_by_its_rungs():
    d = build_decider("asha", 10, 3, "maximize", metric="acc", trust_after=3)
    run_to_end(d, 1, {10: 0.5, 30: 0.6, 90: 0.7})
    held = run_to_end(d, 2, {10: 0.4, 30: 0.5, 90: 0.6})
    assert [(v.pruned, v.stop) for v in held] == [(True, False)] * 3
    assert held[0].held == "no rung stops a trial before 3 finished (1 have)"
    assert held[0].text == ("kept (no rung stops a trial before 3 finished (1 have)) #2 at step 10: acc 0.4 < "
                            "cut-off 0.5 at rung 0 (step 10) (asha, eta 3)")
    run_to_end(d, 3, {10: 0.3, 30: 0.4, 90: 0.5})
    stop = d.report(4, 10, 0.1)
    assert (stop.pruned, stop.stop, stop.held) == (True, True, None)
    assert d.untrusted() == {}


def test_a_rung_that_would_stop_the_best_finished_trial_stops_no_more():
    d = build_decider("asha", 10, 3, "maximize", metric="acc", trust_after=3)
    run_to_end(d, 1, {10: 0.5, 30: 0.6, 90: 0.65})
    run_to_end(d, 2, {10: 0.45, 30: 0.55, 90: 0.6})
    run_to_end(d, 3, {10: 0.1, 30: 0.62, 90: 0.8})       # a slow starter: the best at the end
    kept = d.report(4, 10, 0.05)
    why = "it would stop #3, the best finished trial (0.1 there)"
    assert (kept.pruned, kept.stop) == (True, False)
    assert kept.held == f"the rung at step 10 stops no more: {why}"
    assert d.untrusted() == {10: why}
    assert d.next_check(4) == 30
    # The next rung ranked #3 right: it still stops.
    stop = d.report(4, 30, 0.2)
    assert (stop.stop, stop.rung) == (True, 1)
    # For good: a later trial worse than every other at step 10 goes on too.
    assert not d.report(5, 10, 0.01).stop
    assert d.untrusted() == {10: why}


def test_a_rebuilt_decider_trusts_the_same_rungs():
    d = build_decider("asha", 10, 3, "maximize", trust_after=3)
    run_to_end(d, 1, {10: 0.5, 30: 0.6, 90: 0.65})
    run_to_end(d, 2, {10: 0.45, 30: 0.55, 90: 0.6})
    run_to_end(d, 3, {10: 0.1, 30: 0.62, 90: 0.8})
    made = [d.report(4, 10, 0.05), d.report(4, 30, 0.2)]
    again = build_decider("asha", 10, 3, "maximize", trust_after=3)
    assert again.rebuild([record_to_dict(r) for r in d.history])[-2:] == made
    assert again.untrusted() == d.untrusted() and list(again.untrusted()) == [10]
    assert not again.report(5, 10, 0.01).stop


def test_trust_after_zero_is_asha_as_optuna_has_it_and_bad_values_are_one_line_errors():
    d = build_decider("asha", 10, 3, "maximize", trust_after=0)
    run_to_end(d, 1, {10: 0.5, 30: 0.6, 90: 0.65})
    run_to_end(d, 2, {10: 0.1, 30: 0.62, 90: 0.8})       # a slow starter that ended best anyway
    stop = d.report(3, 10, 0.05)
    assert (stop.stop, stop.held) == (True, None) and d.untrusted() == {}
    with pytest.raises(SpaceError) as e:
        EarlyStopConfig("asha", trust_after=-1)
    assert str(e.value) == "early_stop: trust_after must be an integer >= 0, got -1"


def test_with_a_step_budget_the_startup_spends_at_most_a_fourth_of_it():
    # Four trials of 80 steps side by side on a budget of four (rungs 10, 30; 320 steps): waiting for
    # three to finish would spend it all. Once they reached 80 steps together, the rungs judge.
    d = Decider(EarlyStopConfig("asha", 10, 3, trust_after=3, step_budget=320), "minimize")
    held = [d.report(tid, 10, 0.1 * tid) for tid in (1, 2, 3, 4)]
    assert [v.stop for v in held] == [False] * 4
    assert held[3].held == "no rung stops a trial before 3 finished (0 have)"
    assert not d.report(1, 30, 0.1).pruned             # 60 steps so far
    stop = d.report(2, 30, 0.2)                        # 80: a fourth of the budget
    assert (stop.pruned, stop.stop, stop.held) == (True, True, None)
    # With no step budget it waits for three to finish.
    d = Decider(EarlyStopConfig("asha", 10, 3, trust_after=3), "minimize")
    for tid in (1, 2, 3, 4):
        d.report(tid, 10, 0.1 * tid)
    d.report(1, 30, 0.1)
    assert d.report(2, 30, 0.2).held == "no rung stops a trial before 3 finished (0 have)"


@pytest.mark.parametrize("keys, trust", [
    ({}, 3),                                                         # no step budget: the startup costs no trials
    ({"trust_after": 0}, 0), ({"trust_after": 5, "step_budget": 10}, 5),   # given: as given
    ({"max_step": 52, "step_budget": 1040, "parallel": 2}, 3),      # 4 full trials of 20: a fifth
    ({"max_step": 52, "step_budget": 800, "parallel": 2}, 0),       # of 15: over a fourth
    ({"max_step": 1200, "step_budget": 4800, "parallel": 4}, 0),    # 6 of 4 (tests/bench/autopilot.py)
    ({"min_step": 50, "step_budget": 4800, "parallel": 4}, 0),      # a full trial's steps unknown
    ({"rule": "hyperband", "max_step": 52}, 0), ({"rule": "median"}, 0),
])
def test_auto_trusts_rungs_where_the_step_budget_has_room_for_the_startup(keys, trust):
    assert EarlyStopConfig(**{"rule": "asha", **keys}).trust == trust
