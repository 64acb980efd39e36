"""What the user turned on stays on: settings given by flag are kept in the study and a reopen without
them continues with them (a flag changes them and says so); asha and hyperband need no extra keys;
early stopping turned on mid-study (or a run re-adopted) judges a run only at the rungs it reaches
from then on."""

from __future__ import annotations

import io
import re

import pytest
from runtime_helpers import open_study, toy_space, wait_for
from space_toml import lr, space_toml
from study_runs import ZERO_CODE, kill_runs

from tui_tuner.runtime.early_stopping import HISTORY_META
from tui_tuner.runtime.headless import run_headless
from tui_tuner.runtime.session import Session
from tui_tuner.search.space import parse_space
from tui_tuner.study.study import Study

pytest.importorskip("optuna")

RUNNER = {"stop_timeout": 1.0, "term_timeout": 1.0, "checkpoint_timeout": 10.0}
GOOD = {"lr": 0.5, "steps": 30, "delay": 0.0}
BAD = {"lr": 0.001, "steps": 200, "delay": 0.02}


def headless(space, study_dir, **flags) -> str:
    out = io.StringIO()
    try:
        rc = run_headless(space.path, study_dir, out=out, runner_options=RUNNER, **flags)
    finally:
        kill_runs(study_dir)
    assert rc == 0, out.getvalue()
    return out.getvalue()


def queue(study_dir, *settings) -> list[int]:
    with Study.open(study_dir) as study:
        return [t.id for t in study.enqueue(list(settings), "manual")]


def test_early_stopping_given_by_flag_continues_on_a_reopen_without_it_and_a_flag_changes_it(tmp_path):
    # Trusted from the first trial (asha's default waits for three to finish): kept under the flags too.
    space = toy_space(tmp_path, stage=1, strategy="random", parallel=1, budget=2, early_stop_trust_after=0)
    study_dir = tmp_path / "study"
    open_study(tmp_path, space).close()
    good, bad = queue(study_dir, GOOD, BAD)
    text = headless(space, study_dir, early_stop="asha", early_stop_min_step=5, trials=2)
    assert f"trial {bad:>4}  early_stop: stopped #{bad}" in text, text

    # Reopened with no flag: early stopping goes on, and the session says it kept it.
    good2, bad2 = queue(study_dir, GOOD, BAD)
    text = headless(space, study_dir, trials=4)
    assert "settings: kept from an earlier session: trial budget 2 → " not in text
    assert "settings: kept from an earlier session: early stop asha, early-stop min step 5" in text, text
    assert "early stopping: asha (rungs at steps 5, 15, 45, 135" in text, text
    assert f"trial {bad2:>4}  early_stop: stopped #{bad2}" in text, text

    # A flag changes it, says so, and keeps the new value.
    (bad3,) = queue(study_dir, {**BAD, "steps": 60})
    text = headless(space, study_dir, early_stop="none", trials=5)
    assert "settings: early stop asha → none (--early-stop; kept in the study from now on)" in text, text
    assert "early_stop:" not in text
    with Study.open(study_dir, lock=False) as study:
        assert study.trial(bad3).status == "done"
        assert study.meta("settings") == {"early_stop": "none", "early_stop_min_step": 5, "budget": 5}


def test_asha_with_no_steps_takes_them_from_the_trainers_max_steps(tmp_path):
    space = toy_space(tmp_path, stage=1, strategy="random", parallel=1, budget=2, early_stop="asha",
                      early_stop_trust_after=0)
    study_dir = tmp_path / "study"
    open_study(tmp_path, space).close()
    good, bad = queue(study_dir, {**GOOD, "steps": 90}, {**BAD, "steps": 90})
    text = headless(space, study_dir)
    assert "early stopping: asha (its steps come from the trainer's max_steps or the first trial to finish)" \
        in text, text
    assert ("early stopping: early stopping asha (rungs at steps 10, 30, 90): the most steps a trial runs, 90, "
            f"from the trainer's max_steps (#{good})") in text, text
    assert f"trial {bad:>4}  early_stop: stopped #{bad} at step " in text, text


def test_asha_with_no_steps_takes_them_from_the_first_trial_to_finish_and_keeps_them(tmp_path):
    # A zero-code script says no max_steps: the first trial that finishes gives the most steps.
    text = space_toml({"lr": lr(low=1e-3, high=0.9, default=0.5, live=True, flag="--trainer.learning_rate")},
                      name="zc-asha",
                      command=["python", str(ZERO_CODE), "--steps", "27", "--delay", "0.02"], objective="loss",
                      strategy="random", stage=1, parallel=1, budget=3, early_stop="asha", early_stop_trust_after=0,
                      metrics={"step": r"step (\d+)", "loss": r"loss ([0-9.eE+-]+)"})
    path = tmp_path / "zc.toml"
    path.write_text(text)
    space = parse_space(text, str(path))
    study_dir = tmp_path / "study"
    Study.open(study_dir, space, seed=1).close()
    queue(study_dir, {"lr": 0.5}, {"lr": 0.4}, {"lr": 0.001})
    out = headless(space, study_dir)
    assert "the most steps a trial runs, 27, from #1, the first trial to finish" in out, out
    assert re.search(r"trial    3  early_stop: stopped #3 at step \d+: loss [0-9.]+ > cut-off [0-9.]+ at rung 0 "
                     r"\(step 3\)", out), out
    with Study.open(study_dir, lock=False) as study:
        assert study.meta("early_stop_steps")["max_step"] == 27


def test_a_run_going_when_early_stopping_comes_on_is_judged_only_at_the_rungs_it_reaches_from_then_on(tmp_path):
    # Trial 2 trains badly with no early stopping; the study is reopened with --early-stop asha while it runs
    # past the rungs at 5 and 15. It must not be judged at those (its value now against #1's values there):
    # it is watched from its step, its values at the passed rungs recorded.
    space = toy_space(tmp_path, stage=1, strategy="random", parallel=2, budget=2)
    study = open_study(tmp_path, space)
    a, b = study.enqueue([GOOD, {**BAD, "steps": 10**5}], "manual")
    first = Session(study, runner_options={**RUNNER, "cwd": tmp_path})
    try:
        first.adopt()
        wait_for(first.runner, lambda: (first.tick(), study.trial(a.id).status == "done"
                                        and (first.runner.queries.latest(b.id).get("step") or 0) > 20)[1], 30,
                 "#1 done, #2 past rung 15")
        first.close()   # the tuner goes; #2 goes on
        second = Session(study, runner_options={**RUNNER, "cwd": tmp_path},
                         overrides={"early_stop": "asha", "early_stop_min_step": 5})
        second.adopt()
        at = second.runner.queries.latest(b.id)["step"]
        wait_for(second.runner, lambda: (second.tick(), (second.runner.queries.latest(b.id).get("step") or 0) > at + 5)[1],
                 30, "#2 reports on under early stopping")
        assert study.trial(b.id).active, "judged at rungs it passed before early stopping came on"
        assert not [d for d in second.decisions() if d.kind == "early_stop"]
        history = study.meta(HISTORY_META)
        (watch,) = [r for r in history if r["kind"] == "watch" and r["trial_id"] == b.id]
        assert watch["step"] >= 15 and {s for s, _ in watch["values"]} >= {5, 15}
        second.close(stop_runs=True, timeout=10)
    finally:
        study.close()
        kill_runs(tmp_path / "study")
