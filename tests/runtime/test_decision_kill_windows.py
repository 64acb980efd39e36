"""A tuner SIGKILLed at each step of carrying out each kind of decision (early stop, autopilot replacement,
fork): the tuner that opens the study next finishes what was half done, keeps exactly one record of the
decision, sends no command twice, and the decision can be undone (from the checkpoint on disk)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from runtime_helpers import open_study, toy_space, wait_for
from study_runs import kill_runs

from tui_tuner.runtime.session import Session
from tui_tuner.study.study import Study

pytest.importorskip("optuna")

HERE = Path(__file__).resolve().parent
RUNNER = {"stop_timeout": 1.0, "term_timeout": 1.0, "checkpoint_timeout": 20.0}
LONG = {"steps": 100000, "delay": 0.02}
SPACES = {
    # One at a time: the short good run has reported every rung before the long bad one reaches the first.
    # Side by side on a loaded box the bad one could pass rungs alone (promoted) and never be stopped.
    "early_stop": {"early_stop": "asha", "early_stop_min_step": 5, "early_stop_factor": 2, "early_stop_trust_after": 0,
                   "parallel": 1},
    "pbt": {"autopilot": "pbt", "autopilot_interval": 10, "autopilot_fraction": 0.5, "autopilot_resample": 0.0,
            "parallel": 2},
    "fork": {"parallel": 1},
}
TRIALS = {
    "early_stop": [{"lr": 0.5, "steps": 12, "delay": 0.0}, {"lr": 0.001, **LONG}],
    "pbt": [{"lr": 0.05, **LONG}, {"lr": 0.002, **LONG}],
    "fork": [{"lr": 0.05, **LONG}],
}
CASES = [("early_stop", p) for p in ("row", "0", "1")] + \
        [("pbt", p) for p in ("row", "0", "child", "1", "2", "3")] + \
        [("fork", p) for p in ("row", "0", "child", "1", "2")]


def commands(study: Study, trial_id: int, cmd: str) -> list[dict]:
    path = study.run_dir(trial_id) / "control.jsonl"
    return [c for c in map(json.loads, path.read_text().splitlines()) if c.get("cmd") == cmd]


@pytest.mark.parametrize("kind, point", CASES)
def test_a_tuner_killed_mid_decision_leaves_one_record_that_is_finished_and_undoes(tmp_path, kind, point):
    space = toy_space(tmp_path, stage=1, strategy="random", budget=len(TRIALS[kind]), **SPACES[kind])
    study = open_study(tmp_path, space)
    study.enqueue(TRIALS[kind], "manual")
    study.close()
    study_dir = tmp_path / "study"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    try:
        proc = subprocess.run([sys.executable, str(HERE / "kill_at.py"), str(study_dir), kind, point],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == -9, proc.stdout + proc.stderr   # it died at the point, by SIGKILL

        study = Study.open(study_dir)
        session = Session(study, runner_options={**RUNNER, "cwd": tmp_path})
        session.adopt()
        log = session.automation.log

        def first():
            mine = sorted((d for d in log.all() if d.kind == kind), key=lambda d: d.id)
            return mine[0] if mine else None

        def settled() -> bool:
            session.tick()
            return first() is not None and not first().pending
        wait_for(session.runner, settled, 40, f"the {kind} decision finished after the restart")
        if kind == "pbt":
            session.toggle_autopilot()   # off: nothing else is replaced while this one is checked
        d = first()
        assert d.state == "done", (d.message, d.progress)
        twins = [x for x in log.all() if x.kind == kind and x.trial_id == d.trial_id
                 and x.data.get("step", x.data.get("loser_step")) == d.data.get("step", d.data.get("loser_step"))]
        assert [x.id for x in twins] == [d.id], "one record of the decision"
        steps = d.data["steps"]
        sent = {}
        for s in steps:
            if s["op"] in ("checkpoint", "stop"):
                sent.setdefault((s["trial"], s["op"]), 0)
                sent[(s["trial"], s["op"])] += 1
        for (tid, op), n in sent.items():   # each command went out once, however the tuner died
            tagged = [c for c in commands(study, tid, op) if c.get("decision") == d.id]
            assert len(tagged) == n, (tid, op, tagged)
        child = d.progress["out"].get("child")
        if kind != "early_stop":
            forks = [t for t in study.trials("id") if t.source == "fork" and t.parent == d.data.get("winner", 1)
                     and t.id <= child]
            assert [t.id for t in forks] == [child], "exactly one fork"
            wait_for(session.runner, lambda: (session.tick(), study.trial(child).status in ("running", "done"))[1],
                     20, "the fork running")

        # Undo works, also from a decision a tuner that died left half done.
        if kind != "fork":
            wait_for(session.runner, lambda: (session.tick(), study.trial(d.trial_id).finished)[1], 20,
                     "the stopped run ended")
        said = session.undo_decision(d.id)
        assert session.automation.log.get(d.id).is_undone, said
        if kind == "fork":
            assert said == f"stopped the fork #{child}"
        else:
            resumed = max(t.id for t in study.trials("id") if t.parent == d.trial_id)
            assert f"#{resumed} resumes it" in said
            ckpt = d.progress["out"]["0" if kind == "early_stop" else "2"]
            assert isinstance(ckpt, int)
            assert study.trial(resumed).resume is not None and study.trial(resumed).fork_step is not None
        session.close(stop_runs=True, timeout=10)
        study.close()
    finally:
        kill_runs(study_dir)
