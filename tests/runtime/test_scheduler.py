"""The scheduler: parallel runs, budget, failures, and the random / grid / coarse-to-fine strategies."""

from __future__ import annotations

import pytest
from runtime_helpers import make_runner, open_study, toy_space
from space_toml import param

from tui_tuner.core.study import Study
from tui_tuner.errors import SpaceError
from tui_tuner.runtime.scheduler import Scheduler


def scheduled(tmp_path, *, budget: int, strategy: str, parallel: int | None = None, **space):
    """(study, runner, scheduler) on the toy space at stage 1 (lr searched, the rest at `space`'s defaults)."""
    study = open_study(tmp_path, toy_space(tmp_path, stage=1, **space))
    runner = make_runner(study)
    return study, runner, Scheduler(study, runner, budget=budget, parallel=parallel, strategy=strategy)


def drive(study, runner, sched, timeout=20.0):
    """The headless loop in miniature: poll and tick until done."""
    import time

    end = time.time() + timeout
    while not sched.done():
        assert time.time() < end, f"study not done after {timeout}s: {study.counts()}"
        runner.poll()
        sched.tick()
        time.sleep(0.01)


def test_parallel_three_really_run_at_once(tmp_path):
    study, runner, sched = scheduled(tmp_path, budget=3, parallel=3, strategy="random", steps=25, delay=0.02)
    assert len(sched.tick()) == 3
    drive(study, runner, sched)
    trials = study.trials("id")
    assert [t.status for t in trials] == ["done"] * 3
    assert max(t.started for t in trials) < min(t.ended for t in trials), "the three runs overlapped"
    study.close()


def test_budget_and_failures_do_not_stop_the_study(tmp_path):
    study, runner, sched = scheduled(tmp_path, budget=4, parallel=2, strategy="random", mode="crash", delay=0.0)
    drive(study, runner, sched)
    assert study.counts()["failed"] == 4
    assert study.budget_used() == 4 and not study.queue()
    study.close()


def test_grid_ends_when_exhausted_and_says_so(tmp_path):
    grid = param("choice", values=[0.1, 0.2, 0.3], live=True)
    study = Study.open(tmp_path / "study", toy_space(tmp_path, steps=3, delay=0.0, stage=1, lr=grid))
    runner = make_runner(study)
    sched = Scheduler(study, runner, budget=10, parallel=2, strategy="grid")
    drive(study, runner, sched)
    assert sorted(t.params["lr"] for t in study.trials("id")) == [0.1, 0.2, 0.3]
    assert all(t.source == "grid" for t in study.trials("id"))
    assert sched.exhausted and "grid exhausted: all 3 settings were tried" in sched.message
    study.close()


def test_grid_of_a_continuous_float_is_refused(tmp_path):
    study, _, sched = scheduled(tmp_path, budget=3, strategy="grid")
    with pytest.raises(SpaceError, match="params.lr"):
        sched.tick()
    study.close()


def test_coarse_to_fine_zooms_after_each_round(tmp_path):
    study, runner, sched = scheduled(tmp_path, budget=12, parallel=4, strategy="coarse_to_fine", round_size=4,
                                     steps=4, delay=0.0)
    sched.tick()
    assert sched.round == 1
    drive(study, runner, sched)
    trials = study.trials("id")
    # The first, coarse round is twice the round size; then one zoom per round.
    assert [t.source for t in trials] == ["random"] * 8 + ["zoom"] * 4
    assert sched.round == 2
    state = study.search_state
    assert len(state.levels) == 1
    lo, hi = state.box(study.space, "lr")
    assert (lo, hi) != (0.0, 1.0)
    p = study.space["lr"]
    for t in trials[8:]:
        assert lo - 1e-9 <= p.to_unit(t.params["lr"]) <= hi + 1e-9
        assert t.zoom_level == 1
    study.close()


def test_coarse_to_fine_waits_for_the_round(tmp_path):
    study, runner, sched = scheduled(tmp_path, budget=8, parallel=5, strategy="coarse_to_fine", round_size=2,
                                     steps=100000, delay=0.01)
    assert len(sched.tick()) == 4    # round 1 holds 2 x 2 trials; the fifth slot waits for the zoom
    assert sched.tick() == []
    runner.stop_timeout = 0.0
    runner.stop_all(timeout=5)
    study.close()


def test_restarted_study_continues_the_sampler_stream(tmp_path):
    def settings(directory, budgets):
        space = toy_space(tmp_path, stage=1, steps=1, delay=0.0)
        for budget in budgets:
            study = Study.open(tmp_path / directory, space, seed=7)
            runner = make_runner(study)
            drive(study, runner, Scheduler(study, runner, budget=budget, parallel=1, strategy="random"))
            study.close()
        study = Study.open(tmp_path / directory, space)
        out = [t.params["lr"] for t in study.trials("id")]
        study.close()
        return out

    once = settings("once", [4])
    twice = settings("twice", [2, 4])
    assert len(once) == 4 and once == twice


def test_adopted_runs_count_toward_parallel_and_budget(tmp_path):
    study = open_study(tmp_path, toy_space(tmp_path, stage=1, steps=100000, delay=0.01))
    first = make_runner(study)
    Scheduler(study, first, budget=3, parallel=1, strategy="random").tick()
    assert len(study.active()) == 1
    second = make_runner(study)
    assert len(second.adopt()) == 1
    sched = Scheduler(study, second, budget=3, parallel=1, strategy="random")
    assert sched.tick() == []            # the adopted run holds the one slot
    assert sched.remaining() == 2
    sched.parallel = 2
    assert len(sched.tick()) == 1
    second.stop_timeout = 0.0
    second.stop_all(timeout=5)
    study.close()


def test_holding_starts_nothing(tmp_path):
    study, _, sched = scheduled(tmp_path, budget=3, strategy="random")
    sched.holding = True
    assert sched.tick() == [] and study.budget_used() == 0
    study.close()


def test_unknown_strategy(tmp_path):
    study = open_study(tmp_path, toy_space(tmp_path))
    from tui_tuner.errors import StudyError
    with pytest.raises(StudyError, match="unknown strategy"):
        Scheduler(study, make_runner(study), strategy="bayes")
    study.close()


def test_a_start_error_after_the_trial_left_the_queue_does_not_fail_it(tmp_path, monkeypatch):
    from tui_tuner.errors import RunError

    study, runner, sched = scheduled(tmp_path, budget=2, parallel=1, strategy="random")
    taken = []

    def start_then_fail(trial):
        # Someone else started it (or it was spawned) before the error came.
        study.mark_started(trial.id, 2 ** 22 + 7)
        taken.append(trial.id)
        raise RunError(f"trial {trial.id}: lost a race")

    monkeypatch.setattr(runner, "start", start_then_fail)
    assert sched.tick() == []
    assert taken and all(study.trial(t).status == "running" for t in taken)
    assert not any(t.status == "failed" for t in study.trials("id"))
    study.close()


def test_a_start_error_of_a_queued_trial_fails_it(tmp_path, monkeypatch):
    from tui_tuner.errors import RunError

    study, runner, sched = scheduled(tmp_path, budget=1, parallel=1, strategy="random")

    def refuse(trial):
        raise RunError(f"trial {trial.id}: cannot start")

    monkeypatch.setattr(runner, "start", refuse)
    assert sched.tick() == []
    [t] = study.trials("id")
    assert t.status == "failed" and "cannot start" in t.reason
    study.close()
