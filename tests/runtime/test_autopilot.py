"""The autopilot (PBT) on real runs: a bottom run is replaced by a fork of a top run that continues
its curve exactly, the decision is kept in the study and printed headless, and undone exactly."""

from __future__ import annotations

import io
import json

import pytest
from runtime_helpers import open_study, toy_space, wait_for
from study_runs import ZERO_CODE, kill_runs

from tui_tuner.runtime.autopilot import REASON_PREFIX
from tui_tuner.runtime.headless import run_headless
from tui_tuner.runtime.session import Session
from tui_tuner.study.decision_log import Decision, DecisionLog
from tui_tuner.study.pins import pinned
from tui_tuner.study.study import Study

RUNNER = {"stop_timeout": 1.0, "term_timeout": 1.0, "checkpoint_timeout": 10.0}
PBT = {"autopilot": "pbt", "autopilot_interval": 20, "autopilot_fraction": 0.5, "autopilot_resample": 0.0}


def losses(study, trial_id):
    out = {}
    path = study.run_dir(trial_id) / "events.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        ev = json.loads(line)
        if "metrics" in ev:
            out[ev["step"]] = ev["metrics"]["loss"]
    return out


def continues(study, parent_lr, child):
    """The child's losses continue the parent's curve from the fork step with the child's lr: the
    toy's x is 10 (1 - lr)^step up to the fork, then shrinks by the new lr."""
    k, lr = child.fork_step, child.params["lr"]
    got = losses(study, child.id)
    assert got and min(got) == k + 1
    x_k = 10 * (1 - parent_lr) ** k
    for s, v in got.items():
        assert v == pytest.approx((x_k * (1 - lr) ** (s - k)) ** 2, rel=1e-12)


def test_headless_a_bottom_run_is_replaced_by_a_fork_that_continues_its_parent_exactly(tmp_path):
    space = toy_space(tmp_path, steps=70, delay=0.02, stage=1, strategy="random", parallel=2, budget=2, **PBT)
    study = open_study(tmp_path, space)
    top, bottom = study.enqueue([{"lr": 0.05}, {"lr": 0.002}], "manual")
    study.close()
    out = io.StringIO()
    try:
        rc = run_headless(space.path, tmp_path / "study", out=out, runner_options=RUNNER)
    finally:
        kill_runs(tmp_path / "study")
    text = out.getvalue()
    assert rc == 0, text
    study = Study.open(tmp_path / "study", lock=False)
    try:
        forks = [t for t in study.trials("id") if t.parent == top.id]
        assert forks, text
        child = forks[0]
        assert child.source == "fork" and child.fork_step is not None and child.fork_step >= 20
        # Explored on lr's log scale: x0.8 or x1.25 of the parent's, nothing else changed.
        assert child.params["lr"] == pytest.approx(0.05 * 1.25) or child.params["lr"] == pytest.approx(0.05 * 0.8)
        assert {k: v for k, v in child.params.items() if k != "lr"} == \
            {k: v for k, v in study.trial(top.id).params.items() if k != "lr"}
        continues(study, 0.05, child)
        replaced = study.trial(bottom.id)
        assert replaced.status == "stopped" and replaced.reason.startswith(REASON_PREFIX), replaced.reason
        logged = [d for d in DecisionLog(study.store).all(newest_first=False) if d.kind == "pbt"]
        first = logged[0]
        assert first.trial_id == bottom.id and first.progress["out"]["child"] == child.id
        assert first.state == "done" and first.progress["out"]["2"] is not None   # the loser's checkpoint
        assert first.message.startswith(f"stopped #{bottom.id} at step ")
        assert "val_loss" not in first.message and ": loss " in first.message   # the study's objective
        assert "bottom 50% (cut " in first.message
        assert f"slot given to #{child.id} = fork of #{top.id}@{child.fork_step} with lr×" in first.message
        # Headless prints each decision as a line.
        assert f"trial {bottom.id:>4}  pbt: {first.message}" in text
    finally:
        study.close()


def test_undo_resumes_the_replaced_run_exactly_and_stops_the_fork(tmp_path):
    space = toy_space(tmp_path, steps=100000, delay=0.02, stage=1, strategy="random", parallel=2, budget=2,
                      **PBT)
    study = open_study(tmp_path, space)
    top, bottom = study.enqueue([{"lr": 0.05}, {"lr": 0.002}], "manual")
    session = Session(study, runner_options={**RUNNER, "cwd": tmp_path})
    decisions = []
    session.subscribe(lambda ev: decisions.append(ev) if isinstance(ev, Decision) and not ev.pending else None)
    runner = session.runner

    def ticking():
        session.tick()
        return [d for d in decisions if d.kind == "pbt"]

    try:
        wait_for(runner, ticking, 30, "a pbt decision")
        decision = [d for d in decisions if d.kind == "pbt"][0]
        assert decision.id is not None
        child_id = decision.progress["out"]["child"]
        wait_for(runner, lambda: study.trial(bottom.id).finished, 20, "the replaced run ended")
        assert runner.queries.is_live(child_id)

        session.toggle_autopilot()   # off: nothing else moves while the undo is checked
        message = session.undo_decision(decision.id)
        assert f"#{bottom.id}" in message and f"stopping the fork #{child_id}" in message
        wait_for(runner, lambda: study.trial(child_id).finished, 20, "the fork stopped")
        resumed = max((t for t in study.trials("id") if t.parent == bottom.id), key=lambda t: t.id)
        assert resumed.id in pinned(study)   # an undone replacement is not replaced again
        wait_for(runner, lambda: len(losses(study, resumed.id)) >= 5, 20, "the resumed run reports")
        k = resumed.fork_step
        assert k is not None and k >= 20
        for s, v in losses(study, resumed.id).items():
            assert v == pytest.approx((10 * (1 - 0.002) ** s) ** 2, rel=1e-12)
        assert min(losses(study, resumed.id)) == k + 1

        logged = session.decisions()
        mine = [d for d in logged if d.id == decision.id][0]
        assert mine.is_undone and mine.undone == message
        with pytest.raises(Exception, match="already undone"):
            session.undo_decision(decision.id)
    finally:
        session.close(stop_runs=True, timeout=10)
        study.close()
        kill_runs(tmp_path / "study")


def test_zero_code_studies_say_once_that_they_cannot_be_exploited(tmp_path):
    space = toy_space(tmp_path, script=ZERO_CODE, stage=1, strategy="random", parallel=2, budget=2,
                      metrics={"loss": r"loss ([0-9.eE+-]+)"}, **PBT)
    study = open_study(tmp_path, space)
    session = Session(study, autostart=False)
    notices = []
    session.subscribe(notices.append)
    try:
        session.tick()
        session.tick()
        said = [n for n in notices if "zero-code runs cannot be exploited" in getattr(n, "message", "")]
        assert len(said) == 1 and said[0].severity == "warning"
        session.toggle_autopilot()   # off
        with pytest.raises(Exception, match="zero-code runs cannot be exploited"):
            session.toggle_autopilot()   # the app's key says so too
        assert session.autopilot_state() == "off"
    finally:
        session.close()
        study.close()
