"""End to end: an early stop and its undo, in the real `tui-tuner` app in a real terminal (tmux).

The study (asha, rungs from step 5, reduction factor 2; one run at a time) holds two settings of the
stdlib toy trainer: a good one (lr 0.3) that runs its 30 steps, then a hopeless one (lr 0.001) that
asha stops at its first rung, step 5, where it is far behind the good one. The test waits for the
trials table to show #2 stopped, reads the reason one key away (`v`: "early stop: stopped #2 at step
5: ..."), presses `u` on it, and reads that a new trial resumes it (lineage #2@STEP, the checkpoint
taken before the stop) and reports past that step. Every wait polls the screen with a generous timeout (a loaded 2-core machine).
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from space_toml import lr, param, space_toml
from study_runs import TOY
from tmux_session import Tmux, terminal

from tui_tuner.search.space import parse_space
from tui_tuner.study.study import Study

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
pytest.importorskip("optuna")

TUI_TUNER = str(Path(sys.executable).with_name("tui-tuner"))


def write_study(tmp_path: Path) -> tuple[Path, Path]:
    """The space file and the study, its two settings queued (good first); nothing started."""
    text = space_toml({"lr": lr(low=1e-4, high=0.5, default=0.05, tier=1, live=True),
                       "steps": param("int", low=1, high=10_000_000, default=30, tier=4),
                       "delay": param("float", low=0.0, high=1.0, default=0.02, tier=4)},
                      name="es-e2e", command=[sys.executable, str(TOY)], parallel=1, budget=2,
                      strategy="random", early_stop="asha", early_stop_min_step=5, early_stop_factor=2,
                      early_stop_trust_after=0)
    space_file = tmp_path / "es.toml"
    space_file.write_text(text)
    study_dir = tmp_path / "es-study"
    with Study.open(study_dir, parse_space(text, str(space_file)), seed=1) as study:
        # The hopeless one keeps training once resumed (a million steps), so the test can watch it.
        study.enqueue([{"lr": 0.3, "steps": 30, "delay": 0.02},
                       {"lr": 0.001, "steps": 1_000_000, "delay": 0.05}], "manual")
    return space_file, study_dir


@pytest.fixture
def tmux(tmp_path):
    """A tmux session; afterwards the terminal is gone and every run its study left is killed."""
    with terminal(tmp_path, tmp_path / "es-study", "es") as t:
        yield t


def select_trial(tmux: Tmux, trial_id: int) -> None:
    """Move the trials table's cursor to a trial: open its output view (v) to see which is selected."""
    for _ in range(6):
        tmux.keys("v")
        shown = int(tmux.wait(r"Trial #(\d+) output", 10).group(1))
        tmux.keys("Escape")
        tmux.wait_gone(r"Trial #\d+ output", 10)
        if shown == trial_id:
            return
        tmux.keys("Down" if shown < trial_id else "Up")
    raise AssertionError(f"could not select trial #{trial_id}:\n{tmux.screen()}")


def test_an_early_stop_is_shown_and_u_resumes_it(tmp_path, tmux):
    space_file, study_dir = write_study(tmp_path)
    tmux.start(f"{TUI_TUNER} {space_file} --study {study_dir}", tmp_path, width=120, height=32)
    tmux.wait(r"es-e2e", 30)
    # The trials table (by start, so #1 is the first row) shows the hopeless run stopped.
    tmux.keys("o")
    tmux.wait(r"Trials \(by start\)", 10)
    tmux.wait(r"\b2\s+stop\b", 60)
    tmux.wait(r"\b1\s+done\b", 30)

    select_trial(tmux, 2)
    tmux.keys("v")                                   # the reason, one key away
    # The pruner judges the first report at or past the rung: step 5, or a little later when the
    # runner reads several reports at once.
    m = tmux.wait(r"status stopped: early stop: stopped #2 at step (\d+): val_loss [0-9.e+]+ >", 10)
    stopped_at = int(m.group(1))
    assert stopped_at >= 5
    screen = tmux.screen()                           # the rest of the line wraps in the dialog
    assert re.search(r"cut-off [0-9.e+]+\s.*at rung 0 \(step 5\) \(asha, eta 2\)", screen, re.S), screen
    tmux.keys("Escape")
    tmux.wait_gone(r"Trial #2 output", 10)

    tmux.keys("u")                                   # undo: a new trial resumes #2 where it stopped
    tmux.wait(r"undid the early stop of #2", 30)
    # Its row: running, lineage #2@STEP (the checkpoint taken before the stop).
    at = int(tmux.wait(r"\b3⚑\s+run\b.*#2@(\d+)\b", 30).group(1))
    assert at >= stopped_at
    tmux.wait(rf"fork of #2@{at}\b", 30)             # the run panel follows it
    # It reports past the step it was stopped at.
    end = time.monotonic() + 30
    step = 0
    while time.monotonic() < end:
        m = re.search(r"#3 running(?: ⚑pinned)?\s+step (\d+)", tmux.screen())
        step = int(m.group(1)) if m else 0
        if step > at:
            break
        time.sleep(0.2)
    assert step > at, f"the resumed run reports past step {at}:\n{tmux.screen()}"
    with Study.open(study_dir, lock=False) as study:
        child = study.trial(3)
        assert (child.parent, child.fork_step) == (2, at)
        assert study.trial(2).reason.startswith(f"early stop: stopped #2 at step {stopped_at}: ")
