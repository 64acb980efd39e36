"""Early stopping carried out by the automation loop on real runs: checkpoint then stop, one record with
its numbers and progress, undone exactly; remembered on reopen; judged only from the rungs it reaches."""

from __future__ import annotations

import json

import pytest
from runtime_helpers import open_study, toy_space, wait_for
from waiting import wait_for as wait_event

from tui_tuner.errors import TunerError
from tui_tuner.runtime.early_stopping import HISTORY_META, KIND, PROMOTE, REASON_PREFIX
from tui_tuner.runtime.session import Session
from tui_tuner.search.early_stop_records import Report
from tui_tuner.study.study import Study

pytest.importorskip("optuna")

RUNNER = {"stop_timeout": 1.0, "term_timeout": 1.0, "checkpoint_timeout": 10.0}
# Trust from the first trial: these tests are about a stop, undo and promotion, not the trusted rungs.
ASHA = {"early_stop": "asha", "early_stop_min_step": 5, "early_stop_factor": 2, "early_stop_trust_after": 0}


def losses(study, trial_id):
    out = {}
    path = study.run_dir(trial_id) / "events.jsonl"
    for line in (path.read_text().splitlines() if path.exists() else []):
        ev = json.loads(line)
        if "metrics" in ev:
            out[ev["step"]] = ev["metrics"]["loss"]
    return out


def ticking(session, cond):
    def polled():
        session.poll()
        session.tick()
        return cond()
    return polled


def test_a_hopeless_run_is_checkpointed_stopped_recorded_once_and_undone_exactly(tmp_path):
    space = toy_space(tmp_path, steps=400, delay=0.02, stage=1, strategy="random", budget=2, parallel=2, **ASHA)
    study = open_study(tmp_path, space)
    good, bad = study.enqueue([{"lr": 0.5}, {"lr": 0.001}], "manual")
    session = Session(study, autostart=False, runner_options={**RUNNER, "cwd": tmp_path})
    runner = session.runner
    try:
        session.run_now(good.id)
        wait_for(runner, ticking(session, lambda: (runner.queries.latest(good.id).get("step") or 0) >= 5), 20, "good at 5")
        session.run_now(bad.id)
        wait_for(runner, ticking(session, lambda: study.trial(bad.id).finished), 30, "the bad run stopped")
        trial = study.trial(bad.id)
        assert trial.status == "stopped"
        assert trial.reason.startswith(REASON_PREFIX) and "cut-off" in trial.reason
        (d,) = [d for d in session.decisions() if d.kind == KIND]
        assert d.trial_id == bad.id and d.state == "done" and d.data["rule"].startswith("asha")
        assert d.data["rung"] == 0 and d.data["step"] >= 5 and d.data["value"] > d.data["cutoff"]
        seq = d.progress["out"]["0"]
        assert isinstance(seq, int) and runner.commands.checkpoint_event(bad.id, seq) is not None, \
            "the checkpoint comes before the stop frees the GPU"
        assert study.trial(good.id).active, "the good run goes on"
        # Its decider history was kept with the decision, in the same transaction.
        assert any(r["kind"] == "report" and r["trial_id"] == bad.id for r in study.meta(HISTORY_META))

        message = session.undo_trial(bad.id)
        child = max((t for t in study.trials("id") if t.parent == bad.id), key=lambda t: t.id)
        assert message == (f"undid the early stop of #{bad.id}: #{child.id} resumes it from the checkpoint "
                           f"taken before the stop")
        assert child.fork_step is not None and child.id in session.pinned()
        wait_for(runner, ticking(session, lambda: len(losses(study, child.id)) >= 5), 30, "the resumed run reports")
        # The toy's loss is (10 (1 - lr)^s)^2: the resumed curve continues the stopped one exactly.
        resumed = losses(study, child.id)
        assert min(resumed) == child.fork_step + 1
        for s, v in resumed.items():
            assert v == pytest.approx((10 * (1 - 0.001) ** s) ** 2, rel=1e-12)
        with pytest.raises(TunerError, match="already undone"):
            session.undo_decision(d.id)
        # Pinned: the resumed run is never stopped automatically, however bad.
        wait_for(runner, ticking(session, lambda: max(losses(study, child.id)) >= 25), 30, "past rung 2")
        assert study.trial(child.id).active
        assert [x.trial_id for x in session.decisions() if x.kind == KIND] == [bad.id]
    finally:
        session.close(stop_runs=True, timeout=10)
        study.close()

    # A restarted tuner keeps the same one record, undone.
    again = Study.open(tmp_path / "study", lock=False)
    from tui_tuner.study.decision_log import DecisionLog

    (kept,) = [x for x in DecisionLog(again.store).all() if x.kind == KIND]
    assert kept.is_undone and kept.undone == message
    again.close()


def test_a_run_read_late_is_judged_at_its_rung_by_the_value_it_reported_there(tmp_path):
    # A poll coalesces what a run wrote since the last one into one event. Read in one go (a fast
    # trainer, a loaded box), a run was judged at its first rung by its latest value, 35 steps past
    # it: a slow starter read on time then ranked below a run read late (the promotion UI test).
    space = toy_space(tmp_path, steps=40, delay=0.0, stage=1, strategy="random", budget=1, parallel=1,
                      early_stop_max_step=40, **ASHA)
    study = open_study(tmp_path, space)
    (trial,) = study.enqueue([{"lr": 0.05}], "manual")
    session = Session(study, autostart=False, runner_options={**RUNNER, "cwd": tmp_path})
    try:
        session.run_now(trial.id)
        wait_event(lambda: (study.run_dir(trial.id) / "exit.json").exists(), 30, 0.01, "the run's end, unread")
        wait_for(session.runner, ticking(session, lambda: study.trial(trial.id).finished), 30, "the run settled")
        fed = [(r.step, r.value) for r in session.automation.early.decider.history
               if isinstance(r, Report) and r.trial_id == trial.id]
        reported = losses(study, trial.id)
        assert fed[0] == (5, pytest.approx(reported[5])), fed
        assert [s for s, _ in fed] == [5, 10, 20, 40]
    finally:
        session.close()
        study.close()


def test_a_trial_that_finished_before_its_stop_cannot_be_undone_into_a_fork(tmp_path):
    # The decision was recorded, but the run finished (done) before the stop was written: the decision
    # is void with the reason, and undo says why rather than "resuming" a finished trial.
    space = toy_space(tmp_path, steps=8, delay=0.0, stage=1, strategy="random", budget=1, **ASHA)
    study = open_study(tmp_path, space)
    (t,) = study.enqueue([{"lr": 0.001}], "manual")
    session = Session(study, autostart=False, runner_options={**RUNNER, "cwd": tmp_path})
    try:
        session.run_now(t.id)
        wait_for(session.runner, ticking(session, lambda: study.trial(t.id).finished), 20, "it finished")
        from tui_tuner.runtime.executor import Action

        d = session.automation.executor.begin(Action(KIND, t.id, "stopped #1 at step 5", [
            {"op": "checkpoint", "trial": t.id},
            {"op": "stop", "trial": t.id, "reason": REASON_PREFIX + "x", "required": True}]))
        assert d.state == "void" and "#1 ended (done) before it was stopped" in d.message
        with pytest.raises(TunerError, match=r"was not carried out \(#1 ended \(done\) before it was stopped\)"):
            session.undo_trial(t.id)
        assert [x.parent for x in study.trials("id")] == [None]
    finally:
        session.close(stop_runs=True, timeout=10)
        study.close()


def promotion_study(tmp_path, delay=0.05, slow=None):
    """One run at a time, by hand: A (lr 0.5) is the best; B (0.05), the slow starter, is stopped at
    rung 0 (step 5) beside A alone; C and D come later, worse, and are stopped there too. Four values
    at rung 0 (eta 2): the best two rank, so B does now. The budget leaves one trial to start."""
    space = toy_space(tmp_path, steps=40, delay=delay, stage=1, strategy="random", budget=5, parallel=1, **ASHA)
    study = open_study(tmp_path, space)
    b = {"lr": 0.05, **({"delay": slow} if slow else {})}    # slow: B (and its fork) take `slow` s a step
    trials = study.enqueue([{"lr": 0.5}, b, {"lr": 0.01}, {"lr": 0.001}], "manual")
    return study, trials


def first_promotion(session):
    """Tick the session until early stopping promotes a trial; that one decision."""
    wait_for(session.runner, ticking(session, lambda: any(x.kind == PROMOTE for x in session.decisions())), 60,
             "a promotion")
    (p,) = [x for x in session.decisions() if x.kind == PROMOTE]
    return p


def test_a_slow_starter_stopped_early_is_promoted_from_its_checkpoint_and_judged_at_its_next_rung(tmp_path):
    study, (a, b, c, d) = promotion_study(tmp_path)
    session = Session(study, runner_options={**RUNNER, "cwd": tmp_path})
    runner = session.runner
    try:
        p = first_promotion(session)
        assert [study.trial(t.id).status for t in (a, b, c, d)] == ["done", "stopped", "stopped", "stopped"]
        assert p.trial_id == b.id and p.state == "done" and p.data["rung"] == 0 and p.data["competitors"] == 4
        child = study.trial(p.progress["out"]["child"])
        # It resumes B from the checkpoint taken before B's stop, and its steps go on from there.
        (stop_b,) = [x for x in session.decisions() if x.kind == KIND and x.trial_id == b.id]
        seq = stop_b.progress["out"]["0"]
        assert child.parent == b.id and child.fork_step == runner.commands.checkpoint_event(b.id, seq)["step"]
        assert p.message.startswith(f"promoted #{b.id}: loss ") and \
            p.message.endswith(f"#{child.id} resumes it from step {child.fork_step}")
        assert child.id not in session.pinned(), "a promoted trial is still judged"
        # Not pinned: judged again at rung 1 (step 10) beside A, at its own steps, and stopped there.
        wait_for(runner, ticking(session, lambda: study.trial(child.id).finished), 30, "the promoted run judged")
        resumed = losses(study, child.id)
        assert min(resumed) == child.fork_step + 1
        for s, v in resumed.items():
            assert v == pytest.approx((10 * (1 - 0.05) ** s) ** 2, rel=1e-12)
        (again,) = [x for x in session.decisions() if x.kind == KIND and x.trial_id == child.id]
        assert (again.data["rung"], again.data["rung_step"], again.data["competitors"]) == (1, 10, 2)
        # Counted as a start: the budget of 5 is spent, and nothing is promoted twice.
        wait_for(runner, ticking(session, session.done), 30, "the study done")
        assert study.budget_used() == 5 and len(study.trials("id")) == 5
        assert [x.trial_id for x in session.decisions() if x.kind == PROMOTE] == [b.id]
        kept = study.meta(HISTORY_META)
    finally:
        session.close(stop_runs=True, timeout=10)
        study.close()

    # A tuner that died after the fork started, before it kept the decider's history (no Promote, none
    # of the fork's values): the next one links the fork to B from the decision log when it opens.
    assert {"kind": "promote", "trial_id": child.id, "parent": b.id} in kept
    reopened = Study.open(tmp_path / "study")
    reopened.set_meta(HISTORY_META, [r for r in kept if r["trial_id"] != child.id])
    session = Session(reopened, autostart=False, runner_options={**RUNNER, "cwd": tmp_path})
    try:
        decider = session.automation.early.decider
        assert decider.promoted() == {child.id: b.id} and decider.promotable() == []
        assert decider.next_check(child.id) == 10, "the fork goes on from B's next rung"
    finally:
        session.close()
        reopened.close()


def test_undoing_a_promotion_stops_the_fork_and_the_trial_is_not_promoted_again(tmp_path):
    study, (a, b, c, d) = promotion_study(tmp_path, slow=1.0)   # the fork takes seconds to its next rung
    session = Session(study, runner_options={**RUNNER, "cwd": tmp_path})
    runner = session.runner
    try:
        p = first_promotion(session)
        child = p.progress["out"]["child"]
        assert PROMOTE in session.undoable_kinds()
        assert session.undo_decision(p.id) == f"stopped #{child}, the promotion of #{b.id}"
        wait_for(runner, ticking(session, lambda: study.trial(child).finished), 30, "the fork stopped")
        assert study.trial(child).status == "stopped" and (study.trial(child).step or 0) < 10, \
            "stopped before rung 1 (a loaded box may stop it before its first report)"
        wait_for(runner, ticking(session, session.done), 30, "the study done")
        (kept,) = [x for x in session.decisions() if x.kind == PROMOTE]
        assert kept.trial_id == b.id and kept.undone == f"stopped #{child}, the promotion of #{b.id}"
    finally:
        session.close(stop_runs=True, timeout=10)
        study.close()
