"""`tui-tuner run SPACE --headless`: the loop without the app, killed and restarted, interrupted."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from runtime_helpers import toy_space
from space_toml import param
from waiting import wait_for

from tui_tuner.cli import main
from tui_tuner.runtime.headless import run_headless
from tui_tuner.study.study import Study


def headless(space_file: Path, study: Path, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tui_tuner", "run", str(space_file), "--headless", "--study", str(study), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def steps_in(run_dir: Path) -> list[int]:
    out = []
    p = run_dir / "events.jsonl"
    if p.exists():
        for line in p.read_text().splitlines():
            ev = json.loads(line)
            if "step" in ev:
                out.append(ev["step"])
    return out


def test_headless_in_process_prints_trials_and_summary(tmp_path):
    space = toy_space(tmp_path, stage=1, strategy="random", steps=3, delay=0.0)
    out = io.StringIO()
    rc = run_headless(space.path, tmp_path / "study", trials=3, parallel=2, strategy=None, seed=3, out=out)
    text = out.getvalue()
    assert rc == 0
    assert text.count(" done ") == 3
    assert "summary: 3 done" in text
    assert "best: trial" in text and f"tui-tuner export {tmp_path / 'study'} --best" in text


def test_cli_run_headless_and_errors(tmp_path, capsys):
    space = toy_space(tmp_path, stage=1, steps=2, delay=0.0)
    assert main(["run", space.path, "--headless", "--study", str(tmp_path / "s"), "--trials", "1",
                 "--strategy", "random"]) == 0
    assert "summary: 1 done" in capsys.readouterr().out
    assert main(["run", str(tmp_path / "missing.toml"), "--headless"]) == 2
    assert "missing.toml: no such file" in capsys.readouterr().err


def test_grid_smaller_than_budget_says_so(tmp_path):
    space = toy_space(tmp_path, steps=2, delay=0.0, stage=1, lr=param("choice", values=[0.1, 0.5], live=True))
    out = io.StringIO()
    assert run_headless(space.path, tmp_path / "g", trials=5, parallel=1, strategy="grid", seed=None, out=out) == 0
    assert "grid exhausted: all 2 settings were tried (budget 5); the study ends" in out.getvalue()


def test_sigkill_mid_study_then_restart_loses_nothing(tmp_path):
    # Long enough that the runs under way outlive the restarted tuner's start-up on a loaded machine.
    steps = 120
    space = toy_space(tmp_path, stage=1, strategy="random", steps=steps, delay=0.02)
    study_dir = tmp_path / "study"
    runs = study_dir / "runs"
    args = ("--trials", "5", "--parallel", "2", "--seed", "5")

    def mid_study() -> bool:
        # Trials 1 and 2 have ended, 3 and 4 are mid-way.
        ended = [runs / f"t000{i}" / "exit.json" for i in (1, 2)]
        return all(p.exists() for p in ended) and all(
            len(steps_in(runs / f"t000{i}")) >= 5 and not (runs / f"t000{i}" / "exit.json").exists()
            for i in (3, 4))

    tuner = headless(Path(space.path), study_dir, *args)
    try:
        wait_for(mid_study, timeout=20, interval=0.02, what="two runs ended and two under way")
    finally:
        tuner.kill()
        tuner.wait()
    with Study.open(study_dir, lock=False) as s:
        before = {t.id: t for t in s.trials("id")}
    assert [before[i].status for i in (3, 4)] == ["running", "running"]
    for i in (3, 4):
        # The runs survived the tuner. They are held (SIGSTOP) until the next tuner has re-adopted
        # them: on a loaded box its start-up could otherwise outlast them, and it would only settle them.
        os.killpg(before[i].pid, signal.SIGSTOP)
    # Restart: the live runs are re-adopted, the ended ones settled or kept, the budget completed.
    tuner = headless(Path(space.path), study_dir, *args)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(tuner.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: sum("re-adopted" in line for line in list(lines)) >= 2, timeout=60, interval=0.05,
                 what="the restarted tuner to re-adopt both runs")
    finally:
        for i in (3, 4):
            os.killpg(before[i].pid, signal.SIGCONT)
    assert tuner.wait(timeout=60) == 0, "".join(lines)
    reader.join(10)
    out = "".join(lines)
    assert out.count("re-adopted") == 2, out
    with Study.open(study_dir, lock=False) as s:
        trials = s.trials("id")
        assert [t.status for t in trials] == ["done"] * 5, [(t.status, t.reason) for t in trials]
        for t in trials:
            assert steps_in(s.run_dir(t.id)) == list(range(1, steps + 1)), f"trial {t.id} lost events"
            assert t.step == steps
            # The objective of a re-adopted run comes from its whole replayed history.
            assert abs(t.objective - (10.0 * (1 - t.params["lr"]) ** steps) ** 2) < 1e-9
        for i in (1, 2):
            if before[i].status == "done":   # settled before the kill: untouched since
                assert (s.trial(i).objective, s.trial(i).ended) == (before[i].objective, before[i].ended)


def test_sigint_stops_runs_cleanly_and_keeps_the_study(tmp_path):
    space = toy_space(tmp_path, stage=1, strategy="random", steps=100000, delay=0.01)
    study_dir = tmp_path / "study"
    tuner = headless(Path(space.path), study_dir, "--trials", "3", "--parallel", "2")
    try:
        wait_for(lambda: len([d for d in (study_dir / "runs").glob("t*") if steps_in(d)]) >= 2,
                 timeout=15, interval=0.02, what="two runs under way")
        tuner.send_signal(signal.SIGINT)
        out, _ = tuner.communicate(timeout=20)
    finally:
        if tuner.poll() is None:
            tuner.kill()
    assert tuner.returncode == 130, out
    assert "interrupted: stopping 2 run(s)" in out
    assert "all runs stopped" in out
    assert "the study is intact" in out
    with Study.open(study_dir, lock=True) as s:   # the lock was released
        assert [t.status for t in s.trials("id")] == ["stopped", "stopped"]
        assert not s.active()
