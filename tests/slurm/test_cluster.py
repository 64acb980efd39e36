"""Proof tests against a real single-node Slurm cluster: what issue 22's Slurm executor can rely on.

Trials are submitted through submitit the way the executor will: the launch shim as the job's
command (`python -m tui_tuner.launch RUN_DIR -- CMD...`), the run directory on the (here trivially)
shared filesystem. The cluster has no accounting database, so states and reasons are read from the
controller (squeue --states=all), `scontrol show job` and the job completion log (sacct --completion);
see slurm_record.py. Each test fails if the Slurm behaviour it relies on is absent.
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
    ControllerWatcher,
    accounting_on,
    completions,
    controller,
    ended,
    run,
    scontrol,
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


def proc_state(pid: int) -> str:
    """The one-letter state from /proc/PID/status (T when stopped), '' once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except FileNotFoundError:
        pass
    return ""


def exit_record(run_dir: Path) -> dict:
    return json.loads(wait_for(lambda: (run_dir / protocol.EXIT).exists() and (run_dir / protocol.EXIT).read_text(),
                               timeout=30, what="exit.json"))


def test_a_command_job_writes_its_file_and_its_state_reads_back(executor, tmp_path):
    out = tmp_path / "out.txt"
    script = f"import os; open({str(out)!r}, 'w').write(os.environ['SLURM_JOB_ID']); print('hello', os.environ['SLURM_JOB_ID'])"
    job = executor.submit(submitit.helpers.CommandFunction([PY, "-c", script], verbose=False))
    assert job.job_id.isdigit()

    state, reason = wait_for(lambda: ended(job.job_id), timeout=60, what=f"job {job.job_id} to end")
    assert (state, reason) == ("COMPLETED", "None")
    # The result comes from the job's own file (the result pickle), not from Slurm.
    assert job.result() == f"hello {job.job_id}"
    assert out.read_text() == job.job_id

    # submitit's own watcher asks sacct: without accounting it knows nothing of the job.
    assert job.state == ("COMPLETED" if accounting_on() else "UNKNOWN")
    # Asking the controller instead, submitit's Job reads the state and Slurm's reason.
    job.watcher = ControllerWatcher()
    assert job.state == "COMPLETED"
    assert job.get_info()["Reason"] == "None"
    # The same record through scontrol, and in the job completion log.
    record = scontrol(job.job_id)
    assert (record["JobState"], record["ExitCode"]) == ("COMPLETED", "0:0")
    assert completions(job.job_id) == ["COMPLETED"]


def test_a_cancelled_job_is_recorded_with_its_reason(executor, tmp_path):
    run_dir = tmp_path / "run"
    job = submit_trial(executor, run_dir)
    running_trial(job, run_dir)

    # The tuner says why before it cancels: the comment stays with the job's record.
    run("scontrol", "update", f"JobId={job.job_id}", "Comment=tui-tuner: stopped by early stop")
    job.cancel()

    state, _ = wait_for(lambda: ended(job.job_id), timeout=60, what=f"job {job.job_id} to end")
    assert state == "CANCELLED"
    assert controller([job.job_id])[job.job_id]["Comment"] == "tui-tuner: stopped by early stop"
    assert scontrol(job.job_id)["JobState"] == "CANCELLED"
    assert wait_for(lambda: completions(job.job_id), timeout=10) == ["CANCELLED"]
    assert f"JOB {job.job_id} ON" in job.stderr() and "CANCELLED AT" in job.stderr()  # the last-resort record
    # scancel's SIGTERM reached the trial through the shim, which lived to record how it ended.
    assert exit_record(run_dir)["returncode"] in TERMINATED
    assert "SIGTERM" in (run_dir / "signals").read_text()


def test_stop_and_cont_signals_pause_and_resume_every_process_of_the_job(executor, tmp_path):
    run_dir = tmp_path / "run"
    job = submit_trial(executor, run_dir)
    running_trial(job, run_dir)
    trial = int((run_dir / "trial.pid").read_text())
    shim = json.loads((run_dir / protocol.LAUNCH).read_text())["pid"]

    run("scancel", "--signal=STOP", job.job_id)
    wait_for(lambda: proc_state(trial) == "T" and proc_state(shim) == "T", timeout=10,
             what="the shim and the trial to be stopped")
    assert controller([job.job_id])[job.job_id]["State"] == "STOPPED"
    paused_at = beats(run_dir)
    time.sleep(0.5)  # a stopped trial writes nothing, however long we look
    assert beats(run_dir) == paused_at

    run("scancel", "--signal=CONT", job.job_id)
    wait_for(lambda: beats(run_dir) >= paused_at + 3, timeout=10, what="heartbeats after CONT")
    assert proc_state(trial) in ("R", "S") and proc_state(shim) in ("R", "S")
    wait_state(job.job_id, "RUNNING", timeout=10)


def test_a_job_past_its_time_limit_is_warned_then_recorded_as_timeout(executor, tmp_path):
    run_dir = tmp_path / "run"
    # One minute, the shortest limit, and Slurm's warning 45s before it. Not submitit's default
    # USR2: Slurm sends the warning to every process of the job, and USR2 kills any that does not
    # handle it, the shim first. URG is ignored unless handled (this trial handles it).
    executor.update_parameters(time=1, signal_delay_s=45, additional_parameters={"signal": "URG@45"})
    job = submit_trial(executor, run_dir)

    # Slurm checks time limits every 30s, and waits KillWait (5s) between SIGTERM and SIGKILL.
    state, reason = wait_for(lambda: ended(job.job_id), timeout=180, interval=1, what=f"job {job.job_id} to end")
    assert (state, reason) == ("TIMEOUT", "TimeLimit")
    assert wait_for(lambda: completions(job.job_id), timeout=10) == ["TIMEOUT"]
    signals = [line.split()[0] for line in (run_dir / "signals").read_text().splitlines()]
    assert signals[0] == "SIGURG" and "SIGTERM" in signals
    # The shim lived through the warning to record the end, and the job's log says why it ended.
    assert exit_record(run_dir)["returncode"] in TERMINATED
    assert "DUE TO TIME LIMIT" in (job.stderr() or "")


def test_a_running_job_survives_a_controller_crash_and_a_new_process_readopts_it_by_id(slurm_cluster, executor,
                                                                                     tmp_path):
    run_dir = tmp_path / "run"
    job = submit_trial(executor, run_dir)
    (run_dir / "slurm_job_id").write_text(job.job_id)  # kept with the run, as the executor will
    running_trial(job, run_dir)
    # The controller writes its state a moment after a change; a crash before that loses the job.
    started = time.time()
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


def test_a_preempted_job_is_requeued_and_runs_again_with_its_restart_count(executor, tmp_path):
    cpus = int(run("sinfo", "-h", "-N", "-p", "debug", "-o", "%c").stdout.split()[0])
    run_dir = tmp_path / "run"
    # The whole node, so that the urgent job below must take it back; --requeue: preempted, not ended.
    executor.update_parameters(cpus_per_task=cpus, additional_parameters={"requeue": True})
    job = submit_trial(executor, run_dir)
    running_trial(job, run_dir)
    assert (run_dir / "heartbeat").read_text().split("\n", 1)[0].split()[1] == "-"  # first run: no count

    urgent = submitit.SlurmExecutor(folder=executor.folder)
    urgent.update_parameters(partition="urgent", time=1, cpus_per_task=cpus, mem="256M",
                             job_name=executor.parameters["job_name"])
    other = urgent._submit_command("sleep 1")

    assert wait_for(lambda: completions(job.job_id), timeout=60, what="the preempted run's record") == ["PREEMPTED"]
    assert "DUE TO PREEMPTION" in wait_for(lambda: job.stderr(), timeout=10)
    held = wait_state(job.job_id, "PENDING", timeout=30)
    assert held["Reason"] == "BeginTime"  # a requeued job waits (about 2 minutes) before it may start again
    assert scontrol(job.job_id)["Restarts"] == "1"
    wait_for(lambda: ended(other.job_id) == ("COMPLETED", "None"), timeout=60, what="the urgent job to finish")

    run("scontrol", "update", f"JobId={job.job_id}", "StartTime=now")  # no need to wait the 2 minutes here
    wait_state(job.job_id, "RUNNING", timeout=60)
    wait_for(lambda: (run_dir / "heartbeat").read_text().endswith(" 1\n"), timeout=60,
             what="a heartbeat from the second run with SLURM_RESTART_COUNT=1")


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


def test_a_node_failure_is_recorded_as_node_fail(executor, tmp_path):
    run_dir = tmp_path / "run"
    executor.update_parameters(additional_parameters={"no-requeue": True})  # else Slurm requeues it
    job = submit_trial(executor, run_dir)
    running_trial(job, run_dir)
    trial = int((run_dir / "trial.pid").read_text())
    node = run("sinfo", "-h", "-N", "-o", "%N").stdout.split()[0]

    run("scontrol", "update", f"NodeName={node}", "State=DOWN", "Reason=tui-tuner test: node failure")
    try:
        state, _ = wait_for(lambda: ended(job.job_id), timeout=60, what=f"job {job.job_id} to end")
        assert state == "NODE_FAIL"
        assert wait_for(lambda: completions(job.job_id), timeout=10) == ["NODE_FAIL"]
        assert "DUE TO NODE FAILURE" in (job.stderr() or "")
        wait_for(lambda: proc_state(trial) == "", timeout=30, what="the trial to be killed")
    finally:
        def back() -> bool:
            st = run("sinfo", "-h", "-N", "-n", node, "-o", "%t").stdout.split()[0]  # a line per partition
            if st.startswith(("down", "drain", "drng", "fail")):
                run("scontrol", "update", f"NodeName={node}", "State=RESUME", check=False)
                return False
            return st in ("idle", "mix", "alloc")  # up and responding (a '*' would say it is not)
        wait_for(back, timeout=60, interval=0.2, what=f"node {node} to be up again")


def test_a_job_over_its_memory_is_killed_and_says_so(executor):
    executor.update_parameters(mem="100M")
    grow = "import time\nx = []\nwhile True:\n    x.append(bytearray(20_000_000))\n    time.sleep(0.2)\n"
    job = executor._submit_command(shlex.join([PY, "-c", grow]))

    state, _ = wait_for(lambda: ended(job.job_id), timeout=60, what=f"job {job.job_id} to end")
    # OUT_OF_MEMORY needs cgroups (task/cgroup); without them the step is killed by slurmstepd's
    # own memory poll (JobAcctGatherParams=OverMemoryKill) and the job ends FAILED, saying why.
    assert state in ("OUT_OF_MEMORY", "FAILED")
    assert "exceeded memory limit" in (job.stderr() or "").lower() or state == "OUT_OF_MEMORY"
