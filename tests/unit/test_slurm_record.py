"""What Slurm says about a trial's job, read without a cluster: the queue reason the app shows, the end the
trial's failure reason names (from the controller's state, else the job's own log), and the verdict."""

from __future__ import annotations

import sys

import pytest

from tui_tuner.errors import RunError
from tui_tuner.runtime import slurm
from tui_tuner.runtime.slurm import SlurmJob, from_log, require_submitit
from tui_tuner.runtime.slurm_queue import Calls, JobInfo, Squeue
from tui_tuner.study.verdict import Facts, decide

# What slurmstepd wrote into the jobs' logs on the test cluster (Slurm 22.05; tests/slurm).
LOGS = {
    "TIMEOUT": "slurmstepd: error: *** JOB 41 ON vm CANCELLED AT 2026-12-04T21:07:11 DUE TO TIME LIMIT ***",
    "NODE_FAIL": "slurmstepd: error: *** JOB 41 ON vm CANCELLED AT 2026-12-04T21:09:02 DUE TO NODE FAILURE, "
                 "SEE SLURMCTLD LOG FOR DETAILS ***",
    "PREEMPTED": "slurmstepd: error: *** JOB 41 ON vm CANCELLED AT 2026-12-04T21:08:40 DUE TO PREEMPTION ***",
    "OUT_OF_MEMORY": "slurmstepd: error: StepId=41.0 exceeded memory limit (153751552 > 104857600), being killed",
    "CANCELLED": "slurmstepd: error: *** JOB 41 ON vm CANCELLED AT 2026-12-04T21:05:45 ***",
}


def job(tmp_path, state=None, reason="None", log=None):
    if log is not None:
        (tmp_path / slurm.LOG_DIR).mkdir(exist_ok=True)
        (tmp_path / slurm.LOG_DIR / "41_0_log.out").write_text(f"srun: starting\n{log}\n")
    j = SlurmJob("41", tmp_path, Squeue(), Calls())
    j.last = JobInfo(state, reason, "vm") if state else None
    return j


@pytest.mark.parametrize("state", sorted(LOGS))
def test_the_jobs_log_names_how_slurm_ended_it(tmp_path, state):
    assert from_log(tmp_path, "41") is None
    assert from_log(job(tmp_path, log=LOGS[state]).run_dir, "41") == state


@pytest.mark.parametrize(("state", "log", "said"), [
    ("TIMEOUT", None, "the job reached its time limit on the cluster (Slurm TIMEOUT)"),
    ("NODE_FAIL", None, "its node failed (Slurm NODE_FAIL)"),
    ("CANCELLED", None, "cancelled on the cluster (scancel; Slurm CANCELLED)"),
    ("OUT_OF_MEMORY", None, "out of memory: the job went over its mem limit (Slurm OUT_OF_MEMORY)"),
    # Without cgroups a job over its memory ends FAILED: only its log says why.
    ("FAILED", LOGS["OUT_OF_MEMORY"], "out of memory: the job went over its mem limit (Slurm OUT_OF_MEMORY)"),
    ("FAILED", None, None),          # the trainer failed: its own exit status says why
    ("COMPLETED", LOGS["CANCELLED"], None),
])
def test_how_slurm_ended_a_job(tmp_path, state, log, said):
    assert job(tmp_path, state, log=log).ended_how() == said


def test_a_job_the_controller_forgot_is_read_from_its_log(tmp_path, monkeypatch):
    monkeypatch.setattr(slurm, "accounted", lambda _id: None)   # no accounting database
    assert job(tmp_path, None, log=LOGS["TIMEOUT"]).ended_how().startswith("the job reached its time limit")


@pytest.mark.parametrize(("state", "reason", "requeued", "shown"), [
    ("PENDING", "Resources", 0, "queued on the cluster (Resources)"),
    ("PENDING", "Priority", 0, "queued on the cluster (Priority)"),
    ("PENDING", "None", 0, "queued on the cluster"),   # just submitted: the scheduler has not looked yet
    ("PENDING", "BeginTime", 1, "requeued after preemption, queued on the cluster (BeginTime)"),
    ("RUNNING", "None", 0, None),
    ("STOPPED", "None", 0, None),
])
def test_a_queued_job_says_why_it_waits(tmp_path, state, reason, requeued, shown):
    j = job(tmp_path, state, reason)
    j.requeued = requeued
    assert j.queued() == shown


@pytest.mark.parametrize(("facts", "status", "reason"), [
    (Facts(exit={"returncode": -15, "signal": 15}, cluster="cancelled on the cluster (scancel; Slurm CANCELLED)"),
     "failed", "cancelled on the cluster (scancel; Slurm CANCELLED) (killed by SIGTERM)"),
    (Facts(exit={"returncode": 143}, cluster="the job reached its time limit on the cluster (Slurm TIMEOUT)"),
     "failed", "the job reached its time limit on the cluster (Slurm TIMEOUT) (exit code 143)"),
    (Facts(exit=None, cluster="its node failed (Slurm NODE_FAIL)"), "failed", "its node failed (Slurm NODE_FAIL)"),
    # Our own stop wins: the tuner asked for it (control.jsonl), whatever Slurm recorded after.
    (Facts(exit={"returncode": -15, "signal": 15}, stop_at=1.0, cluster="cancelled on the cluster"),
     "stopped", "stopped (SIGTERM)"),
    # A trainer that finished cleanly is done, even if a cancel came after.
    (Facts(exit={"returncode": 0}, objective=0.5, cluster="cancelled on the cluster"), "done", None),
])
def test_slurms_end_is_the_failure_reason(facts, status, reason):
    assert decide(facts, "loss") == (status, reason)


def test_slurm_without_submitit_says_to_install_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)   # what `import submitit` meets when it is not installed
    with pytest.raises(RunError, match=r"^executor = \"slurm\" needs submitit: pip install 'tui-tuner\[slurm\]'$"):
        require_submitit()
