"""The study lock cannot be deleted out from under a running tuner: with STUDY/.lock gone, a second
tuner is still refused, and the first one finishes its study undisturbed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from space_toml import param, space_toml
from study_runs import TOY, kill_runs

from tui_tuner.core.study_lock import LOCK_NAME, StudyLock
from tui_tuner.errors import StudyError

SPACE = space_toml({"lr": param("float", scale="log", low=1e-3, high=0.9, default=0.1),
                    "steps": param("int", low=1, high=1000, default=150, tier=4),
                    "delay": param("float", low=0.0, high=1.0, default=0.02, tier=4)},
                   name="locked", command=["python", str(TOY)], objective="loss", strategy="random", stage=1)


def tuner(space: Path, study: Path, trials: int) -> list[str]:
    return [sys.executable, "-m", "tui_tuner", "run", str(space), "--headless", "--trials", str(trials),
            "--study", str(study)]


def test_deleting_the_lock_file_lets_no_second_tuner_in(tmp_path):
    space, study = tmp_path / "s.toml", tmp_path / "study"
    space.write_text(SPACE)
    first = subprocess.Popen(tuner(space, study, 2), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (study / "runs" / "t0001" / "events.jsonl").exists():
            assert first.poll() is None and time.monotonic() < deadline, "the first tuner did not start a run"
            time.sleep(0.05)
        (study / LOCK_NAME).unlink()
        second = subprocess.run(tuner(space, study, 3), capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert second.stderr.count("\n") == 1 and "study is in use by" in second.stderr, second.stderr
        assert "is gone" in second.stderr
        out, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
        kill_runs(study)
    assert first.returncode == 0, out
    assert "summary: 2 done" in out and "already ended" not in out and "unexpected" not in out, out


def test_a_second_lock_is_refused_with_or_without_the_file(tmp_path):
    one = StudyLock(tmp_path)
    one.acquire()
    try:
        with pytest.raises(StudyError, match=r"study is in use by pid \d+ on "):
            StudyLock(tmp_path).acquire()
        (tmp_path / LOCK_NAME).unlink()
        with pytest.raises(StudyError, match=r"study is in use by another process \(its \.lock, which names the "
                                             r"holder, is gone\)"):
            StudyLock(tmp_path).acquire()
    finally:
        one.release()
    two = StudyLock(tmp_path)
    two.acquire()   # released: free again
    two.release()
