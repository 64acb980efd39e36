"""Early stopping carried out on real runs: checkpoint then stop, recorded with its numbers, undone exactly."""

from __future__ import annotations

import json

import pytest
from runtime_helpers import Events, make_runner, open_study, toy_space, wait_for

from tui_tuner.core.early_stop_records import EarlyStopConfig
from tui_tuner.errors import TunerError
from tui_tuner.runtime.early_stopping import REASON_PREFIX, EarlyStopping

pytest.importorskip("optuna")


def _wire(study, **kw):
    events = Events()
    runner = make_runner(study, **kw)
    es = EarlyStopping(study, runner, EarlyStopConfig("asha", min_step=5, reduction_factor=2))

    def on_event(ev):
        events(ev)
        es.observe(ev)

    runner.on_event = on_event
    return runner, es, events


def _losses(study, trial_id):
    out = {}
    path = study.run_dir(trial_id) / "events.jsonl"
    for line in (path.read_text().splitlines() if path.exists() else []):
        ev = json.loads(line)
        if "metrics" in ev:
            out[ev["step"]] = ev["metrics"]["loss"]
    return out


def test_a_hopeless_run_is_checkpointed_stopped_recorded_and_undone_exactly(tmp_path):
    space = toy_space(tmp_path, steps=400, delay=0.02)
    study = open_study(tmp_path, space)
    runner, es, events = _wire(study)
    try:
        good, bad = study.enqueue([{"lr": 0.5}, {"lr": 0.001}], "manual")
        runner.start(good)
        wait_for(runner, lambda: (study.trial(good.id).step or 0) >= 5 or
                 any(e.data.get("step", 0) >= 5 for e in events.of("metrics", good.id)), 20, "good at step 5")
        runner.start(bad)
        wait_for(runner, lambda: study.trial(bad.id).finished, 30, "the bad run stopped")
        trial = study.trial(bad.id)
        assert trial.status == "stopped"
        assert trial.reason.startswith(REASON_PREFIX) and "cut-off" in trial.reason
        rec = es.record(bad.id)
        assert rec is not None and rec.rule.startswith("asha") and rec.rung == 0 and rec.step >= 5
        assert rec.cutoff is not None and rec.value > rec.cutoff      # minimise: worse than the cut-off
        assert rec.checkpoint_seq is not None
        assert events.of("checkpoint", bad.id), "the checkpoint comes before the stop frees the GPU"
        assert study.trial(good.id).active, "the good run goes on"

        child = es.undo(bad.id)
        assert child.parent == bad.id and child.fork_step is not None
        assert child.id in es.pinned()
        wait_for(runner, lambda: len(_losses(study, child.id)) >= 5, 30, "the resumed run reports")
        # The toy's loss is (10 (1 - lr)^s)^2: the resumed curve continues the stopped one exactly.
        resumed = _losses(study, child.id)
        first = min(resumed)
        assert first == child.fork_step + 1
        for s, v in resumed.items():
            assert v == pytest.approx((10 * (1 - 0.001) ** s) ** 2, rel=1e-12)
        with pytest.raises(TunerError, match="already undone"):
            es.undo(bad.id)
        # Pinned: the resumed run is never stopped automatically, however bad.
        wait_for(runner, lambda: max(_losses(study, child.id)) >= 25, 30, "the resumed run past rung 1")
        assert study.trial(child.id).active
        assert es.record(child.id) is None
    finally:
        runner.stop_all(timeout=10)

    # A restarted tuner rebuilds the same decider and sees the same records.
    again = EarlyStopping(study, runner, EarlyStopConfig("asha", min_step=5, reduction_factor=2))
    assert [r.trial_id for r in again.records()] == [bad.id]
    assert again.records()[0].undone_by == child.id
    assert again.decider.history == es.decider.history
    study.close()


def test_rule_none_never_stops_and_undo_of_a_trial_never_stopped_is_refused(tmp_path):
    study = open_study(tmp_path, toy_space(tmp_path, steps=20))
    runner = make_runner(study)
    es = EarlyStopping(study, runner, EarlyStopConfig("none"))
    assert not es.active
    with pytest.raises(TunerError, match="not stopped early"):
        es.undo(1)
    study.close()
