"""Headless studies whose trials are Slurm jobs, against the real one-node cluster (2 CPUs, a CPU a job):
the tuner SIGKILLed and restarted while its jobs go, and auto-k raising the number of jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_executor import cancel_jobs, job_state, write_space
from waiting import wait_for as _wait_for

pytest.importorskip("submitit", reason="submitit is not installed (pip install -e '.[slurm]')")

from tui_tuner.runtime.slurm import JOB_FILE  # noqa: E402
from tui_tuner.study.study import Study  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]


def headless(space_file: Path, study_dir: Path, *args: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tui_tuner", "run", str(space_file), "--headless", "--study", str(study_dir), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=space_file.parent, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_a_headless_study_of_four_jobs_survives_its_tuner_being_killed(slurm_cluster, tmp_path):
    """4 trials, 4 at once on a 2-CPU node (two queue); the tuner is SIGKILLed while they go, and a new
    one re-adopts the same jobs (none submitted twice) and settles them all."""
    space_file = write_space(tmp_path, "four", strategy="random", budget=4, parallel=4, stage=1)
    # About 4 s of steps a trial: both pairs are still going when the tuner dies.
    text = space_file.read_text().replace("default = 3000", "default = 120").replace("default = 0.02", "default = 0.03")
    space_file.write_text(text)
    study_dir = tmp_path / "study"
    first = headless(space_file, study_dir, "--seed", "3")
    try:
        jobs = _wait_for(lambda: sorted(study_dir.glob(f"runs/*/{JOB_FILE}")) if len(
            list(study_dir.glob(f"runs/*/{JOB_FILE}"))) == 4 else None, 60, 0.05, "four jobs submitted")
        ids = {p.parent.name: json.loads(p.read_text())["job_id"] for p in jobs}
        _wait_for(lambda: any((p.parent / "events.jsonl").exists() for p in jobs), 60, 0.05, "a job to report")
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        assert sum(job_state(j) in ("RUNNING", "PENDING") for j in ids.values()) >= 2, "the jobs died with the tuner"

        second = headless(space_file, study_dir, "--seed", "3")
        out, _ = second.communicate(timeout=120)
        assert second.returncode == 0, out
        assert out.count("re-adopted (Slurm job ") >= 2, out
        after = {p.parent.name: json.loads(p.read_text())["job_id"] for p in study_dir.glob(f"runs/*/{JOB_FILE}")}
        assert after == ids, "a job was submitted again"
        study = Study.open(study_dir, lock=False)
        try:
            trials = study.trials()
            assert [t.status for t in trials] == ["done"] * 4, [(t.id, t.status, t.reason) for t in trials]
        finally:
            study.close()
        assert all(job_state(j) == "COMPLETED" for j in ids.values())
    finally:
        for p in (first,):
            if p.poll() is None:
                p.kill()
        cancel_jobs(study_dir)


def test_auto_k_on_the_cluster_raises_k_while_jobs_start_within_a_minute(slurm_cluster, tmp_path):
    space_file = write_space(tmp_path, "autok", strategy="random", budget=4, parallel="auto", stage=1)
    space_file.write_text(space_file.read_text().replace("default = 3000", "default = 60").replace(
        "default = 0.02", "default = 0.05"))
    study_dir = tmp_path / "study"
    try:
        p = headless(space_file, study_dir, "--seed", "5")
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
        raises = [ln for ln in out.splitlines() if ln.startswith("auto_k: ")]
        assert raises[:2] == [ln for ln in raises[:2] if "the cluster started every job within 60s" in ln], out
        assert [ln.split(":")[1].strip() for ln in raises[:2]] == ["k 1 → 2", "k 2 → 3"], out
        assert not any("steps/s" in ln or "GB" in ln for ln in raises), "measured what it cannot see"
        assert out.count(" done ") == 4, out
    finally:
        cancel_jobs(study_dir)


def test_ctrl_c_stops_the_studys_jobs_and_leaves_the_study_intact(slurm_cluster, tmp_path):
    space_file = write_space(tmp_path, "ctrlc", strategy="random", budget=4, parallel=2, stage=1)
    study_dir = tmp_path / "study"
    p = headless(space_file, study_dir, "--seed", "4")
    try:
        _wait_for(lambda: len([r for r in study_dir.glob("runs/*") if (r / "events.jsonl").exists()]) == 2,
                  60, 0.05, "both jobs reporting")
        ids = [json.loads(j.read_text())["job_id"] for j in study_dir.glob(f"runs/*/{JOB_FILE}")]
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=90)
        assert p.returncode == 130, out
        assert "all runs stopped" in out, out
        assert all(job_state(j) not in ("RUNNING", "PENDING", "STOPPED") for j in ids)
        study = Study.open(study_dir, lock=False)
        try:
            assert [t.status for t in study.trials("id")] == ["stopped", "stopped"]
        finally:
            study.close()
    finally:
        if p.poll() is None:
            p.kill()
        cancel_jobs(study_dir)
