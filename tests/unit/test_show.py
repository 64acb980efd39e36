"""`tui-tuner show`: why a trial failed is in the table, on the trial's own line, cut to a width."""

from __future__ import annotations

import pytest
from space_toml import lr, param, space_toml

from tui_tuner import cli
from tui_tuner.cli.study import REASON_WIDTH
from tui_tuner.search.space import parse_space
from tui_tuner.study.store import first_line
from tui_tuner.study.study import Study

SPACE = space_toml({"lr": lr(), "units": param("int", low=1, high=9, default=3)}, name="show",
                   objective="loss")
LONG = ("exit code 1: RuntimeError: CUDA error: an illegal memory access was encountered while "
        "running the attention kernel of layer 12\nTraceback (most recent call last):\n  File ...")


@pytest.fixture
def study_dir(tmp_path):
    d = tmp_path / "study"
    with Study.open(d, parse_space(SPACE, str(tmp_path / "s.toml"))) as s:
        done, oom, long, stopped = s.enqueue([{"lr": 0.01}, {"lr": 0.9}, {"lr": 0.5}, {"lr": 0.1}])
        for t in (done, oom, long, stopped):
            s.mark_started(t.id, 0)
        s.finish(done.id, "done", objective=0.25)
        s.finish(oom.id, "failed", reason="out of GPU memory")
        s.finish(long.id, "failed", reason=LONG)
        s.finish(stopped.id, "stopped", reason="stopped (SIGTERM)")
    return d


def test_show_prints_each_failure_reason_on_its_trials_line(study_dir, capsys):
    assert cli.main(["show", str(study_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5   # the header and one line per trial, however long a reason is
    by_id = {line.split()[0]: line for line in lines[1:]}
    reason_at, params_at = lines[0].index("reason"), lines[0].index("params")
    assert by_id["1"][reason_at:params_at].strip() == "-"
    assert by_id["2"][reason_at:params_at].strip() == "out of GPU memory"
    assert by_id["4"][reason_at:params_at].strip() == "stopped (SIGTERM)"
    cut = by_id["3"][reason_at:params_at].strip()
    assert cut.startswith("exit code 1: RuntimeError: CUDA error") and cut.endswith("…")
    assert len(cut) == REASON_WIDTH and "Traceback" not in by_id["3"]
    assert by_id["3"][params_at:] == "lr=0.5 units=3"


def test_first_line():
    assert first_line(None, 10) == "" and first_line("  \n  ", 10) == "" and first_line("\n x", 10) == "x"
    assert first_line("a  b\tc\nsecond", 10) == "a b c"
    assert first_line("x" * 11, 10) == "x" * 9 + "…" and first_line("x" * 10, 10) == "x" * 10
