"""The scheduler: parallel runs, budget, failures, and the random / grid / coarse-to-fine strategies."""

from __future__ import annotations

import threading

import pytest
from runtime_helpers import make_runner, open_study, toy_space, wait_for
from space_toml import param

from tui_tuner.errors import SpaceError
from tui_tuner.runtime.scheduler import Scheduler
from tui_tuner.study.study import Study


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
    runner.commands.stop_all(timeout=5)
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
    second.commands.stop_all(timeout=5)
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


# -- model-based strategies (Optuna) --------------------------------------------------------------


def test_tpe_fills_the_queue_with_its_own_proposals(tmp_path):
    study, runner, sched = scheduled(tmp_path, budget=4, parallel=2, strategy="tpe", steps=3, delay=0.0)
    assert len(sched.tick()) == 2
    drive(study, runner, sched)
    trials = study.trials("id")
    assert [t.source for t in trials] == ["tpe"] * 4 and all(t.status == "done" for t in trials)
    assert len({t.params["lr"] for t in trials}) == 4
    assert sched.message == "trial budget reached: 4 trials started; the study ends"
    study.close()


def spy_on_asks(monkeypatch) -> list:
    """Record, for each OptunaSearch.ask: (n, [(trial id, status)] it was built from, used, outside)."""
    from tui_tuner.search import optuna_search

    seen = []
    ask = optuna_search.OptunaSearch.ask

    def spy(self, n):
        seen.append((n, [(t.id, t.status) for t in self.trials], self.used, self.outside))
        return ask(self, n)

    monkeypatch.setattr(optuna_search.OptunaSearch, "ask", spy)
    return seen


def test_tpe_sees_running_trials_as_pending(tmp_path, monkeypatch):
    seen = spy_on_asks(monkeypatch)
    study, runner, sched = scheduled(tmp_path, budget=3, parallel=2, strategy="tpe", steps=100000, delay=0.01)
    assert len(sched.tick()) == 2
    runner.stop_timeout = 0.0
    runner.commands.stop(1)
    wait_for(runner, lambda: not runner.queries.is_live(1), 10, "trial 1 to stop")
    assert len(sched.tick()) == 1
    assert seen[0][:2] == (2, [])
    n, trials, used, _ = seen[1]
    assert n == 1 and (2, "running") in trials and (1, "stopped") in trials and used == 2
    t3, t2 = study.trial(3), study.trial(2)
    assert t3.source == "tpe" and t3.params != t2.params
    runner.commands.stop_all(timeout=5)
    study.close()


def test_tpe_after_a_zoom_proposes_inside_it_and_the_trials_from_before_still_count(tmp_path, monkeypatch):
    from tui_tuner.search.region import zoom

    seen = spy_on_asks(monkeypatch)
    study, runner, sched = scheduled(tmp_path, budget=4, parallel=2, strategy="random", steps=2, delay=0.0)
    drive(study, runner, sched)
    done = study.trials("id")
    study.search_state = zoom(study.space, study.search_state, [(t.params, t.objective) for t in done],
                              maximize=False, top=2, margin=0.0, ids=[t.id for t in done])
    p = study.space["lr"]
    lo, hi = study.search_state.box(study.space, "lr")
    inside = sum(lo - 1e-9 <= p.to_unit(t.params["lr"]) <= hi + 1e-9 for t in done)
    assert inside >= 2
    tpe = Scheduler(study, runner, budget=6, parallel=2, strategy="tpe")
    drive(study, runner, tpe)
    n, trials, used, outside = seen[0]
    assert n == 2 and [s for _, s in trials] == ["done"] * 4
    assert used == inside and outside == 4 - inside
    for t in study.trials("id")[4:]:
        assert t.source == "tpe" and t.zoom_level == 1
        assert lo - 1e-9 <= p.to_unit(t.params["lr"]) <= hi + 1e-9
    study.close()


class ThreadAsk:
    """Stands in for the model worker in the tests of the scheduler's two phases: it runs the ask
    (OptunaSearch rebuilt from the job, as the worker does) on a thread of the test process, so a
    monkeypatched `ask` can hold it or break it. The worker process itself: test_model_worker.py."""

    def __init__(self, key, job, n):
        from tui_tuner.search.optuna_search import OptunaSearch

        self.key, self.kernel, self.stream, self._error, self._result = key, None, None, None, []

        def run():
            try:
                model = OptunaSearch(**job)
                self._result = model.ask(n)
                self.kernel, self.stream = model.kernel, model.stream
            except BaseException as e:   # noqa: BLE001 - handed to the tick by result()
                self._error = e

        self._thread = threading.Thread(target=run, name="tui-tuner-ask")
        self._thread.start()

    def done(self):
        return not self._thread.is_alive()

    def wait(self, timeout=None):
        self._thread.join(timeout)
        return self.done()

    def result(self):
        if self._error is not None:
            raise self._error
        return self._result


def worker_in_threads(monkeypatch, fits=lambda self, n=1: True):
    """Every ask the scheduler would send to the worker runs in a ThreadAsk instead; `fits` says which."""
    from tui_tuner.runtime import model_worker
    from tui_tuner.search import optuna_search

    monkeypatch.setattr(optuna_search.OptunaSearch, "fits", fits)
    monkeypatch.setattr(model_worker.ModelWorker, "submit", lambda self, key, job, n: ThreadAsk(key, job, n))


def held_costly_asks(monkeypatch) -> tuple[threading.Event, list]:
    """Make every OptunaSearch fit (so the scheduler hands it off) and its ask wait for the returned
    event; the list records the names of the threads the asks ran on."""
    from tui_tuner.search import optuna_search

    release, threads = threading.Event(), []
    ask = optuna_search.OptunaSearch.ask

    def held(self, n):
        threads.append(threading.current_thread().name)
        assert release.wait(20), "the test never released the ask"
        return ask(self, n)

    worker_in_threads(monkeypatch)
    monkeypatch.setattr(optuna_search.OptunaSearch, "ask", held)
    return release, threads


def test_a_costly_ask_runs_off_the_ticks_thread_and_its_proposals_are_queued_by_a_later_tick(tmp_path, monkeypatch):

    release, threads = held_costly_asks(monkeypatch)
    study, runner, sched = scheduled(tmp_path, budget=2, parallel=2, strategy="tpe", steps=2, delay=0.0)
    # The ask is held until released below: were the tick to wait for it, this would never return.
    assert sched.tick() == [] and sched.tick() == []
    # The ask's thread records itself once it runs, a moment after the tick that started it.
    wait_for(runner, lambda: threads == ["tui-tuner-ask"], 10, "the ask on its own thread")
    assert not study.queue() and not sched.done()
    release.set()
    assert sched._asking.wait(10)
    assert len(sched.tick()) == 2 and [t.source for t in study.trials("id")] == ["tpe", "tpe"]
    drive(study, runner, sched)
    assert threads == ["tui-tuner-ask"], "one ask for both slots"
    study.close()


def test_a_costly_ask_whose_region_moved_meanwhile_is_asked_again(tmp_path, monkeypatch):
    from tui_tuner.search.region import set_stage

    release, threads = held_costly_asks(monkeypatch)
    study, runner, sched = scheduled(tmp_path, budget=1, parallel=1, strategy="tpe", steps=2, delay=0.0)
    assert sched.tick() == []
    study.search_state = set_stage(study.space, study.search_state, 2)   # the user widened the search
    release.set()
    assert sched._asking.wait(10)
    assert sched.tick() == [], "the stale proposal was dropped"
    # ... and asked again: the new ask's thread records itself once it runs, a moment after the tick.
    wait_for(runner, lambda: len(threads) == 2, 10, "the ask made again")
    assert sched._asking.wait(10)
    assert len(sched.tick()) == 1
    drive(study, runner, sched)
    study.close()


def test_an_error_of_ours_in_a_costly_ask_reaches_the_tick(tmp_path, monkeypatch):
    from tui_tuner.search import optuna_search

    def broken(self, n):
        raise SpaceError("params.lr: Optuna proposed 'x', not among the values")

    worker_in_threads(monkeypatch)
    monkeypatch.setattr(optuna_search.OptunaSearch, "ask", broken)
    study, runner, sched = scheduled(tmp_path, budget=1, parallel=1, strategy="gp")
    assert sched.tick() == []
    assert sched._asking.wait(10)
    with pytest.raises(SpaceError, match="not among the values"):
        sched.tick()
    study.close()


def test_a_costly_model_that_fails_to_fit_leaves_its_slots_to_tpe_and_says_so(tmp_path, monkeypatch):
    from tui_tuner.runtime.model_worker import ModelFailed
    from tui_tuner.search import optuna_search

    ask = optuna_search.OptunaSearch.ask

    def gp_breaks(self, n):
        if self.strategy == "gp":
            raise ModelFailed("RuntimeError: cholesky: the matrix is not positive definite")
        return ask(self, n)

    worker_in_threads(monkeypatch, fits=lambda self, n=1: self.strategy == "gp")
    monkeypatch.setattr(optuna_search.OptunaSearch, "ask", gp_breaks)
    study, runner, sched = scheduled(tmp_path, budget=2, parallel=2, strategy="gp", steps=2, delay=0.0)
    said = []
    sched.notify = said.append
    assert sched.tick() == []
    assert sched._asking.wait(10)
    assert len(sched.tick()) == 2
    drive(study, runner, sched)
    assert [t.source for t in study.trials("id")] == ["tpe", "tpe"]
    assert said == ["the gp model failed to fit (RuntimeError: cholesky: the matrix is not positive definite); "
                    "TPE proposed the next 2 settings"]
    study.close()


def test_a_gp_ask_that_fits_never_runs_on_the_ticks_thread(tmp_path, monkeypatch):
    """Issue 17: before ten trials had finished, a GP ask told stopped or pending trials fitted on the
    tick's thread. Now every ask that fits goes to the worker (here a thread), and any GP fit on the
    tick's thread fails the test."""
    import optuna

    pytest.importorskip("torch")
    pytest.importorskip("scipy")
    from tui_tuner.runtime import model_worker

    tick_thread = threading.current_thread()
    fit = optuna.samplers.GPSampler._sample_relative_impl

    def guarded(self, *a, **k):
        assert threading.current_thread() is not tick_thread, "a GP fit ran on the tick's thread"
        return fit(self, *a, **k)

    monkeypatch.setattr(optuna.samplers.GPSampler, "_sample_relative_impl", guarded)
    monkeypatch.setattr(model_worker.ModelWorker, "submit", lambda self, key, job, n: ThreadAsk(key, job, n))
    study, runner, sched = scheduled(tmp_path, budget=14, parallel=3, strategy="gp", steps=2, delay=0.0)
    drive(study, runner, sched, timeout=120)
    assert study.counts().get("done") == 14
    assert sum(t.source == "gp" for t in study.trials("id")) == 14
    study.close()


def test_a_model_strategy_without_optuna_is_one_line_naming_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)    # import optuna now raises ImportError
    study = open_study(tmp_path, toy_space(tmp_path))
    with pytest.raises(SpaceError, match=r"^strategy 'tpe' needs optuna: pip install optuna$"):
        Scheduler(study, make_runner(study), strategy="tpe")
    study.close()


# -- budgets --------------------------------------------------------------------------------------


def test_step_budget_ends_the_study_and_stops_the_running_trial(tmp_path):
    study, runner, sched = scheduled(tmp_path, budget=10, parallel=1, strategy="random", steps=40, delay=0.01)
    sched.step_budget = 60
    drive(study, runner, sched)
    trials = study.trials("id")
    assert [t.status for t in trials] == ["done", "stopped"]
    assert trials[0].step == 40 and 20 <= trials[1].step < 40
    assert sched.ended_by == "steps" and sched.message.startswith("step budget reached: ")
    usage = sched.usage()
    assert usage.steps == trials[0].step + trials[1].step >= 60 and usage.trials == 2
    assert usage.text().startswith("trials 2/10 · steps ")
    study.close()


def test_time_budget_counts_from_the_first_start_across_sessions(tmp_path):
    import time

    from tui_tuner.search.budget import STARTED_META

    study, runner, sched = scheduled(tmp_path, budget=10, parallel=2, strategy="random", steps=100000, delay=0.01,
                                     time_budget=0.8)
    assert sched.time_budget == 0.8
    t0 = time.time()
    drive(study, runner, sched)
    assert time.time() - t0 >= 0.8
    assert [t.status for t in study.trials("id")] == ["stopped", "stopped"]
    assert sched.ended_by == "time" and sched.message.startswith("time budget reached: ")
    started = study.meta(STARTED_META)
    assert started is not None and started <= study.trial(1).started
    # A later session on the same study: the clock did not restart, so nothing more starts.
    again = Scheduler(study, make_runner(study), budget=10, parallel=2, strategy="random", time_budget="0.8s")
    assert again.tick() == [] and again.done() and again.ended_by == "time"
    assert study.meta(STARTED_META) == started and study.budget_used() == 2
    study.close()


def test_budget_overrides_are_checked(tmp_path):
    from tui_tuner.errors import StudyError

    study = open_study(tmp_path, toy_space(tmp_path))
    runner = make_runner(study)
    with pytest.raises(StudyError, match="step budget must be an integer >= 1, got -5"):
        Scheduler(study, runner, step_budget=-5)
    with pytest.raises(StudyError, match="time budget must be a time like"):
        Scheduler(study, runner, time_budget="soon")
    study.close()


# -- coarse to fine never zooms on too little ------------------------------------------------------


def test_coarse_to_fine_waits_for_twice_the_searched_parameters_before_zooming(tmp_path):
    from space_toml import space_toml
    from study_runs import TOY

    from tui_tuner.search.space import parse_space

    params = {
        "lr": param("float", scale="log", low=1e-3, high=0.9, default=0.1),
        "width": param("int", low=1, high=64, default=8),     # searched; the toy trainer ignores it
        "steps": param("int", low=1, high=100, default=2, tier=4),
        "delay": param("float", low=0.0, high=1.0, default=0.0, tier=4),
    }
    text = space_toml(params, name="toy", command=["python", str(TOY)], objective="loss", stage=1)
    (tmp_path / "space.toml").write_text(text)
    study = open_study(tmp_path, parse_space(text, str(tmp_path / "space.toml")))
    runner = make_runner(study)
    sched = Scheduler(study, runner, budget=6, parallel=1, strategy="coarse_to_fine")
    sched.round_size = 1
    drive(study, runner, sched)
    trials = study.trials("id")
    # Two searched parameters: no zoom before 4 finished trials (rounds of 2, 1, 1 stay unzoomed).
    assert [t.source for t in trials] == ["random"] * 4 + ["zoom"] * 2
    assert [t.zoom_level for t in trials] == [0, 0, 0, 0, 1, 2]
    study.close()
