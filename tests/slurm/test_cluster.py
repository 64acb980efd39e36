"""Proof tests against a real single-node Slurm cluster: what issue 22's Slurm executor can rely on.

Trials are submitted through submitit the way the executor will: the launch shim as the job's
command (`python -m tui_tuner.launch RUN_DIR -- CMD...`), the run directory on the (here trivially)
shared filesystem. The cluster has no accounting database, so states and reasons are read from the
controller (squeue --states=all), `scontrol show job` and the job completion log (sacct --completion);
see slurm_record.py. Each test fails if the Slurm behaviour it relies on is absent.

What the executor now does itself is tested through it (test_executor.py: a cancel and its reason,
STOP/CONT of a zero-code job, preemption and requeue, queue reasons, node failure, a job over its
memory); the time-limit proof (80-90 s,
a 1-minute limit checked every 30 s) is gone: the executor reads a TIMEOUT from the controller's state
or from the job log's "DUE TO TIME LIMIT" line, both pinned in tests/unit/test_slurm_record.py.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from waiting import wait_for

submitit = pytest.importorskip("submitit", reason="submitit is not installed (pip install -e '.[slurm]')")

from slurm_record import (  # noqa: E402
    controller,
    ended,
    run,
    wait_state,
)

from tui_tuner import protocol  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]

PY = sys.executable
HERE = Path(__file__).resolve().parent
HEARTBEAT = HERE / "trial_heartbeat.py"
# How a trial ends on Slurm's SIGTERM: its handler exits 143, or a second SIGTERM kills it first (the
# trial gets one from slurmstepd, which signals every process of the job, and one forwarded by the shim).
TERMINATED = (143, -15)


@pytest.fixture
def executor(slurm_cluster, tmp_path, request):
    """A SlurmExecutor on the debug partition; every job it (or the test) submitted is cancelled at the end."""
    name = f"tt-{request.node.name}"[:64]
    folder = tmp_path / "submitit"
    folder.mkdir()  # submit() makes it; _submit_command() expects it
    ex = submitit.SlurmExecutor(folder=folder)
    # time is in minutes: long enough that Slurm's warning signal (USR2, signal_delay_s=90 before the
    # limit) never reaches a trial in these tests, except where a test shortens it on purpose.
    ex.update_parameters(partition="debug", time=10, cpus_per_task=1, mem="256M", job_name=name)
    yield ex
    run("scancel", f"--name={name}", check=False)


def submit_trial(ex, run_dir: Path):
    """Submit the heartbeat trial under the launch shim, as the Slurm executor will submit a trial."""
    run_dir.mkdir(parents=True, exist_ok=True)  # the tuner makes it (and writes params.json) first
    command = shlex.join([PY, "-m", "tui_tuner.launch", str(run_dir), "--", PY, str(HEARTBEAT)])
    return ex._submit_command(command)


def beats(run_dir: Path) -> int:
    try:
        return (run_dir / "heartbeat").read_text().count("\n")
    except FileNotFoundError:
        return 0


def running_trial(job, run_dir: Path) -> None:
    """Wait until the job runs and its trial has written a few heartbeats."""
    wait_state(job.job_id, "RUNNING")
    wait_for(lambda: beats(run_dir) >= 3, timeout=60, what=f"heartbeats of job {job.job_id}")


def exit_record(run_dir: Path) -> dict:
    return json.loads(wait_for(lambda: (run_dir / protocol.EXIT).exists() and (run_dir / protocol.EXIT).read_text(),
                               timeout=30, what="exit.json"))


def test_a_running_job_survives_a_controller_crash_and_a_new_process_readopts_it_by_id(slurm_cluster, executor,
                                                                                     tmp_path):
    run_dir = tmp_path / "run"
    job = submit_trial(executor, run_dir)
    (run_dir / "slurm_job_id").write_text(job.job_id)  # kept with the run, as the executor will
    running_trial(job, run_dir)
    # The controller writes its state a moment after a change; a crash before that loses the job. The
    # save that followed the job's start may have come before this line on a loaded box, and the next
    # one only follows the next change: so make one (a comment on the running job), then wait for it.
    started = time.time()
    run("scontrol", "update", f"JobId={job.job_id}", "Comment=running")
    wait_for(lambda: (slurm_cluster.dir / "state" / "job_state").stat().st_mtime > started, timeout=30,
             what="the controller to save its state")

    slurmd = slurm_cluster.pid("slurmd")
    os.kill(slurm_cluster.pid("slurmctld"), signal.SIGKILL)
    wait_for(lambda: run("squeue", check=False).returncode != 0, timeout=10, what="the controller to be gone")
    # Without a controller the trial runs on: slurmd and slurmstepd own its processes.
    now = beats(run_dir)
    wait_for(lambda: beats(run_dir) >= now + 10, timeout=10, what="heartbeats while the controller is down")

    slurm_cluster.start()  # restarts only what is down, here slurmctld, which recovers its jobs
    assert slurm_cluster.pid("slurmd") == slurmd

    # A new process (a restarted tuner) re-attaches by job id: submitit's Job on the same folder.
    readopt = (
        "import sys, submitit\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from slurm_record import ControllerWatcher\n"
        "job = submitit.SlurmJob(folder=sys.argv[1], job_id=open(sys.argv[2]).read())\n"
        "job.watcher = ControllerWatcher()\n"
        "print(job.job_id, job.state, job.get_info()['NodeList'])\n"
        "job.cancel()\n"
    )
    out = subprocess.run([PY, "-c", readopt, str(executor.folder), str(run_dir / "slurm_job_id")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    node = run("sinfo", "-h", "-N", "-o", "%N").stdout.split()[0]
    assert out.stdout.split() == [job.job_id, "RUNNING", node]
    state, _ = wait_for(lambda: ended(job.job_id), timeout=60, what=f"job {job.job_id} to end")
    assert state == "CANCELLED"
    assert exit_record(run_dir)["returncode"] in TERMINATED


def test_queued_jobs_show_slurms_reason_and_gpus_go_through_cuda_visible_devices(executor, tmp_path):
    # The cluster has two fake GPUs (gres without devices): enough to queue on them.
    executor.update_parameters(gpus_per_node=2)
    first = submit_trial(executor, tmp_path / "first")
    running_trial(first, tmp_path / "first")
    executor.update_parameters(gpus_per_node=1)
    second = submit_trial(executor, tmp_path / "second")
    third = submit_trial(executor, tmp_path / "third")

    def reason(job) -> str | None:
        held = controller([job.job_id]).get(job.job_id, {})
        return held.get("Reason") if held.get("State") == "PENDING" else None

    # Right after submission the reason is "None", until the scheduler has looked at the job.
    wait_for(lambda: reason(second) == "Resources", timeout=30, what="the second job to wait for GPUs")
    wait_for(lambda: reason(third) == "Priority", timeout=30, what="the third job to wait behind the second")
    assert "CUDA_VISIBLE_DEVICES=0,1\n" in (tmp_path / "first" / "env").read_text()

    first.cancel()
    running_trial(second, tmp_path / "second")
    assert "CUDA_VISIBLE_DEVICES=0\n" in (tmp_path / "second" / "env").read_text()
