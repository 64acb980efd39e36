"""`run --headless` with strategy tpe or gp (the default) on the toy trainer: killed mid-study and rerun,
it continues the same search; the step budget given on the command line ends it and the summary says how
much was used."""

from __future__ import annotations

import importlib.util
import io
import signal
from pathlib import Path

import pytest
from runtime_helpers import toy_space
from test_headless import headless, steps_in
from waiting import wait_for

from tui_tuner.runtime.headless import run_headless
from tui_tuner.study.study import Study

# TPE's and GP's first 10 trials are their random startup: the 11th and 12th are the model's own proposals.
TRIALS = 12
GP_READY = all(importlib.util.find_spec(m) is not None for m in ("torch", "scipy"))


def lrs(study_dir: Path, strategy: str) -> list[float]:
    with Study.open(study_dir, lock=False) as study:
        trials = study.trials("id")
        assert [t.status for t in trials] == ["done"] * TRIALS and {t.source for t in trials} == {strategy}
        return [t.params["lr"] for t in trials]


@pytest.mark.parametrize("strategy", [
    "tpe", pytest.param("gp", marks=pytest.mark.skipif(not GP_READY, reason="gp needs torch and scipy"))])
def test_a_killed_model_study_rerun_proposes_what_an_uninterrupted_one_does(tmp_path, strategy):
    # gp: named by the default (the space names no strategy).
    space = toy_space(tmp_path, stage=1, steps=40, delay=0.01, **({"strategy": "tpe"} if strategy == "tpe" else {}))
    args = ("--trials", str(TRIALS), "--parallel", "1", "--seed", "11")

    out = io.StringIO()
    assert run_headless(space.path, tmp_path / "once", TRIALS, 1, None, 11, out=out) == 0
    assert f"summary: {TRIALS} done" in out.getvalue()
    once = lrs(tmp_path / "once", strategy)

    # Killed while trial 11 (the first the model proposes) runs; trial 12 is then asked by the rerun.
    runs = tmp_path / "twice" / "runs"
    tuner = headless(Path(space.path), tmp_path / "twice", *args)
    try:
        wait_for(lambda: len(steps_in(runs / "t0011")) >= 3 and not (runs / "t0011" / "exit.json").exists(),
                 60, 0.01, "trial 11 mid-way")
    finally:
        tuner.send_signal(signal.SIGKILL)
        tuner.wait(10)
    out = io.StringIO()
    assert run_headless(space.path, tmp_path / "twice", TRIALS, 1, None, None, out=out) == 0
    assert "trial   11  re-adopted" in out.getvalue() or "trial   11  done" in out.getvalue()
    assert lrs(tmp_path / "twice", strategy) == once
    assert len(set(once)) == TRIALS


def test_step_budget_on_the_command_line_ends_a_tpe_study_and_the_summary_shows_the_usage(tmp_path, capsys):
    from tui_tuner.cli import main

    # The third trial passes the budget 10 steps in, with 60 steps (0.6 s) still to go: room for a loaded box
    # to carry out the stop before it would end on its own.
    space = toy_space(tmp_path, stage=1, strategy="random", steps=70, delay=0.01)
    assert main(["run", space.path, "--headless", "--study", str(tmp_path / "s"), "--trials", "10",
                 "--strategy", "tpe", "--step-budget", "150", "--time-budget", "1h", "--early-stop", "none"]) == 0
    text = capsys.readouterr().out
    assert "study " in text and ": tpe, budget 10" in text
    assert "step budget reached: " in text
    assert "budget used: trials 3/10 · steps " in text and "/150 · time " in text and "/1h" in text
    with Study.open(tmp_path / "s", lock=False) as study:
        assert [t.status for t in study.trials("id")] == ["done", "done", "stopped"]
