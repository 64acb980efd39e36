"""Numbers a trainer reports are bounded: a step outside 0..2**63-1 or a metric too big for a float
is one "bad event" line, the line is skipped, and the run goes on; reopening the study and
`plot` read the run back without a crash."""

from __future__ import annotations

import io
import re

import pytest
from space_toml import lr, space_toml

from tui_tuner import cli
from tui_tuner.runtime.headless import run_headless
from tui_tuner.runtime.run_state import Kind, Objective, RunState

MIN = Objective("val_loss", lambda a, b: a < b, "best")


@pytest.mark.parametrize("line, why", [
    ({"step": 10**19, "metrics": {"val_loss": 0.5}}, "step 10000000000000000000 is outside 0..9223372036854775807"),
    ({"step": 2**63, "metrics": {"val_loss": 0.5}}, "step 9223372036854775808 is outside"),
    ({"step": -1, "metrics": {"val_loss": 0.5}}, "step -1 is outside"),
    ({"step": 1e300, "metrics": {"val_loss": 0.5}}, "step 1e+300 is outside"),
    ({"step": "NaN", "metrics": {"val_loss": 0.5}}, "step 'NaN' is outside"),
    ({"step": 10**2000, "metrics": {"val_loss": 0.5}}, "(2001 digits) is outside"),
    ({"step": 10**5000, "metrics": {"val_loss": 0.5}}, "step an integer of about 5000 digits is outside"),
    ({"step": 3, "metrics": {"val_loss": 10**400}}, "metric 'val_loss' is 100000000000000000000000000000… (401 "
                                                    "digits), too big for a number"),
])
def test_a_number_out_of_range_is_one_bad_event_and_the_run_goes_on(line, why):
    s = RunState(7, MIN, {}, now=0.0)
    events = s.apply_lines([{"t": 1.0, "step": 1, "metrics": {"val_loss": 0.9}}, line,
                            {"t": 2.0, "step": 2, "metrics": {"val_loss": 0.4}}, line], 5.0)
    (bad,) = [e for e in events if e.kind is Kind.ERROR]   # said once, however many there are
    assert why in bad.data["message"] and bad.trial_id == 7
    assert (s.step, s.best, s.reports, s.garbage) == (2, 0.4, 2, 2)
    assert s.series["val_loss"].get() == [(1, 0.9), (2, 0.4)]


def _run(tmp_path, script: str, **study) -> tuple[str, str]:
    (tmp_path / "t.py").write_text(script)
    text = space_toml({"lr": lr()}, name="bad", command=["python", str(tmp_path / "t.py")], objective="val_loss",
                      strategy="random", stage=1, **study)
    (tmp_path / "space.toml").write_text(text)
    out = io.StringIO()
    assert run_headless(tmp_path / "space.toml", tmp_path / "study", trials=1, seed=1, out=out) == 0
    again = io.StringIO()   # reopened: the run's events are read back again
    assert run_headless(tmp_path / "space.toml", tmp_path / "study", trials=1, seed=1, out=again) == 0
    return out.getvalue(), again.getvalue()


def _check(first: str, again: str, capsys, study) -> None:
    bad = [ln for ln in first.splitlines() if "bad event" in ln]
    assert len(bad) == 1 and "unexpected" not in first, first
    (line,) = [ln for ln in first.splitlines() if re.match(r"trial +1  ", ln)]
    assert " done " in line and "val_loss=0.25" in line, first
    assert "summary: 1 done" in again and "unexpected" not in again
    assert cli.main(["plot", str(study), "-o", "-"]) == 0
    assert "val_loss" in capsys.readouterr().out
    assert cli.main(["show", str(study)]) == 0
    assert "0.25" in capsys.readouterr().out


def test_a_trainer_reporting_step_ten_to_the_nineteen_is_no_crash(tmp_path, capsys):
    script = ("from tui_tuner import trainer\n"
              "trainer.report(1, val_loss=0.5)\n"
              "trainer.report(10**19, val_loss=0.1)\n"
              "trainer.report(2, val_loss=0.25)\n")
    _check(*_run(tmp_path, script), capsys, tmp_path / "study")


def test_a_zero_code_line_with_an_endless_step_is_no_crash(tmp_path, capsys):
    script = ("print('step 1 val_loss 0.5')\n"
              "print('step 99999999999999999999999 val_loss 0.1')\n"
              "print('step 2 val_loss 0.25')\n"
              "print('step 3 val_loss 1e999')\n")
    metrics = {"val_loss": r"val_loss\s+([-+0-9.eE]+|nan|inf)", "step": r"^step\s+(\d+)"}
    _check(*_run(tmp_path, script, metrics=metrics), capsys, tmp_path / "study")
