"""End to end: the real `tui-tuner demo` command in a real terminal (tmux), driven by keys.

It waits for a run to show progress, pauses it (the screen says so and the step stops), resumes it,
exports it, pauses it again and kills the terminal (SIGHUP, as when an SSH session drops). The
trainer lives on in its own session; a new `tui-tuner` on the same study re-adopts it and shows it,
and resuming it makes it advance again. Skipped without tmux or torch (the demo trains a PyTorch MLP).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
import tomllib
from tmux_session import Tmux, terminal

from tui_tuner.study.study import Study

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the demo needs torch"),
]

TUI_TUNER = str(Path(sys.executable).with_name("tui-tuner"))
HEADER = re.compile(r"#(\d+) (running|paused)\s+step (\d+)")


def header(tmux: Tmux) -> tuple[int, str, int] | None:
    m = HEADER.search(tmux.screen())
    return (int(m.group(1)), m.group(2), int(m.group(3))) if m else None


@pytest.fixture
def demo(tmp_path):
    """(tmux, study dir) for the demo; afterwards the terminal is gone and every run it left is killed."""
    study_dir = tmp_path / "demo-study"
    with terminal(tmp_path, study_dir) as tmux:
        yield tmux, study_dir


def test_demo_pause_resume_export_and_survive_a_dropped_terminal(tmp_path, demo):
    tmux, study_dir = demo
    out = tmp_path / "best.toml"
    command = f"{TUI_TUNER} demo --study {study_dir}"
    tmux.start(command, tmp_path)
    tmux.wait(r"mlp-digits", 20)
    # A demo run lasts a few seconds: pause one early in its life (retry if it ends first).
    for _attempt in range(5):
        tmux.wait(r"#(\d+) running\s+step ([1-9]\d{0,2})\b", 90)   # progress, step < 1000
        tmux.keys("p")
        try:
            m = tmux.wait(r"#(\d+) paused\s+step (\d+)", 10)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("could not pause a demo run")
    run, held = int(m.group(1)), int(m.group(2))
    time.sleep(1.0)
    assert header(tmux) == (run, "paused", held), "a paused run must not advance"

    tmux.keys("p")
    tmux.wait(rf"#{run} running\s+step", 20)
    end = time.monotonic() + 20
    while (h := header(tmux)) and h[0] == run and h[2] <= held and time.monotonic() < end:
        time.sleep(0.05)
    # Pause it again at once, so it is still there (blocked in report()) when the terminal goes.
    tmux.keys("p")
    h = header(tmux)
    assert h[0] == run and h[2] > held, f"the resumed run advances: {h}"
    tmux.wait(rf"#{run} paused", 20)

    # No trial has finished yet, so there is no best to export: e says so, and exports the row once the
    # user has chosen one in Trials.
    tmux.keys("e")
    tmux.wait(r"there is no best", 10)
    tmux.keys("Up")
    tmux.keys("e")
    tmux.wait(r"Write TOML to", 10)
    tmux.keys(str(out), "Enter")                 # the field's text is selected: typing replaces it
    tmux.wait(r"wrote", 10)
    doc = tomllib.loads(out.read_text())
    assert "lr" in doc and doc["tuner"]["study"] == "mlp-digits"

    with Study.open(study_dir, lock=False) as study:
        pid = study.trial(run).pid
    assert pid

    tmux.kill()                                  # SIGHUP to the app, as when SSH drops
    end = time.monotonic() + 10
    while time.monotonic() < end:
        try:
            Study.open(study_dir).close()        # the lock is free: the app is gone
            break
        except Exception:                        # noqa: BLE001 - still held, wait
            time.sleep(0.2)
    os.killpg(pid, 0)                            # the trainer's process group is alive

    tmux.start(command, tmp_path)
    tmux.wait(r"re-adopted", 30)
    # The other demo run may still be going and hold the focus: move it to ours.
    for _ in range(4):
        h = header(tmux)
        if h and h[0] == run:
            break
        tmux.keys("]")
        time.sleep(0.5)
    tmux.wait(rf"#{run} paused\s+step", 20)
    tmux.keys("p")
    tmux.wait(rf"#{run} running\s+step", 20)
    end = time.monotonic() + 30
    first = header(tmux)[2]
    while (h := header(tmux)) and h[0] == run and h[2] <= first and time.monotonic() < end:
        time.sleep(0.2)
    h = header(tmux)
    assert h is not None and (h[0] != run or h[2] > first), "the re-adopted run advances again"


def test_demo_in_a_16_colour_terminal_at_80x24(tmp_path, demo):
    tmux, study_dir = demo
    tmux.start(f"{TUI_TUNER} demo --study {study_dir}", tmp_path, width=80, height=24, term="xterm")
    tmux.wait(r"#\d+ running\s+step [1-9]", 90)
    screen = tmux.screen()
    for words in ("mlp-digits", "Hyperparameters", "Trials", "Queue", "p Pause"):
        assert words in screen, words
    colours = tmux.screen_escapes()
    # Only the 16 ANSI colours: no 256-colour (38;5;N) or true-colour (38;2;R;G;B) escapes.
    assert "\x1b[" in colours
    assert not re.search(r"[34]8;5;\d+|[34]8;2;\d+;\d+;\d+", colours), "only 16-colour escapes"

    # The two pictures, in the same 16-colour terminal: every curve so far, then the search scatter.
    tmux.keys("c")
    tmux.wait(r"Curves · watching #\d+ · val_loss · all: \d+ curve", 30)
    tmux.wait(r"• #\d+ watched", 10)
    picture = tmux.screen_escapes()
    assert not re.search(r"[34]8;5;\d+|[34]8;2;\d+;\d+;\d+", picture), "only 16-colour escapes"
    tmux.keys("m")                               # another metric the runs report
    tmux.wait(r"Curves · watching #\d+ · (?!val_loss)\w+ · all", 10)
    tmux.keys("Escape")
    tmux.wait(r"Hyperparameters", 10)
    tmux.keys("x")
    tmux.wait(r"Search · (no zoom yet|zoom \d+) · momentum \(1-β log\) against lr \(log\)", 30)
    tmux.wait(r"0\.999", 10)                    # the 1-β log axis
    tmux.keys("Escape")
    tmux.wait(r"Hyperparameters", 10)
    tmux.keys("q")                               # quit, leaving the runs going
    end = time.monotonic() + 10
    while time.monotonic() < end and "mlp-digits" in tmux.screen():
        time.sleep(0.2)
    with Study.open(study_dir, lock=False) as study:
        assert study.active(), "quitting with q leaves the runs going"


def test_A_in_the_demo_runs_pbt_its_decision_is_in_the_log_and_it_stays_on_after_a_reopen(tmp_path, demo):
    tmux, study_dir = demo
    command = f"{TUI_TUNER} demo --study {study_dir}"
    tmux.start(command, tmp_path, width=120, height=32)
    tmux.wait(r"early stop off · autopilot off", 30)
    tmux.wait(r"#\d+ running\s+step [1-9]", 120)
    tmux.keys("A")
    tmux.wait(r"autopilot pbt/100", 20)
    tmux.keys("D")
    tmux.wait(r"Decisions · \d+", 10)
    # The replacement as the log lists it: kind pbt, the replaced run and its numbers.
    replaced = int(tmux.wait(r"\bpbt\s+#(\d+)\s+stopped #\d+ at step \d+: val_loss [0-9.]+, bottom", 120).group(1))
    tmux.keys("Escape")
    tmux.wait_gone(r"Decisions · \d+", 10)
    tmux.keys("q")
    end = time.monotonic() + 15
    while time.monotonic() < end:
        try:
            Study.open(study_dir).close()   # the app is gone
            break
        except Exception:                   # noqa: BLE001 - still held, wait
            time.sleep(0.2)
    from tui_tuner.study.decision_log import DecisionLog

    with Study.open(study_dir, lock=False) as study:
        first = [d for d in DecisionLog(study.store).all(newest_first=False) if d.kind == "pbt"][0]
        assert first.trial_id == replaced and first.state == "done"
        child = study.trial(first.progress["out"]["child"])
        assert child.source == "fork" and child.parent == first.data["winner"]
    tmux.kill()
    tmux.start(command, tmp_path, width=120, height=32)
    tmux.wait(r"autopilot pbt/100", 30)             # what the user turned on stays on
    end = time.monotonic() + 30                      # the replaced run stopped, and says why
    while time.monotonic() < end:
        with Study.open(study_dir, lock=False) as study:
            trial = study.trial(replaced)
        if trial.finished:
            break
        time.sleep(0.5)
    assert trial.status == "stopped" and trial.reason.startswith("autopilot: stopped #"), trial
