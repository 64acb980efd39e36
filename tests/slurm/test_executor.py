"""Trials as Slurm jobs (`executor = "slurm"`), against the real one-node cluster: the runner and the
headless tuner, with the tests' own trainers (scripts/toy.py on the trainer API, scripts/zero_code.py).

The node has 2 CPUs and each job asks for one, so a third job at once waits in Slurm's queue
(reason Resources). Every job a test submitted is cancelled at its end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from space_toml import param, space_toml
from study_runs import TOY, ZERO_CODE
from waiting import wait_for as _wait_for

pytest.importorskip("submitit", reason="submitit is not installed (pip install -e '.[slurm]')")

from tui_tuner.errors import RunError  # noqa: E402
from tui_tuner.runtime.runner import RunEvent, Runner  # noqa: E402
from tui_tuner.runtime.slurm import JOB_FILE  # noqa: E402
from tui_tuner.search.space import parse_space  # noqa: E402
from tui_tuner.study.study import Study  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]

SLURM = {"partition": "debug", "time": 10, "gpus_per_trial": 0, "cpus_per_trial": 1, "mem": "200M"}
TOY_PARAMS = {
    "lr": param("float", scale="log", low=1e-3, high=0.9, default=0.1, live=True),
    "steps": param("int", low=1, high=100000, default=3000, tier=4),
    "delay": param("float", low=0.0, high=5.0, default=0.02, tier=4),
    "mode": param("choice", values=["ok", "crash"], default="ok", tier=4),
}
NUM = r"([-+0-9.eE]+|nan|inf)"
ZERO_CODE_PARAMS = {
    "lr": param("float", low=0.01, high=0.9, default=0.1, flag="--trainer.learning_rate"),
    "steps": param("int", low=1, high=100000, default=100000),
    "delay": param("float", low=0.0, high=1.0, default=0.05),
}


class Events(list):
    def __call__(self, ev: RunEvent) -> None:
        self.append(ev)

    def of(self, kind: str, trial_id: int) -> list[RunEvent]:
        return [e for e in self if e.kind == kind and e.trial_id == trial_id]


def write_space(tmp_path: Path, name: str, *, zero_code: bool = False, slurm: dict | None = None, **study) -> Path:
    slurm = {**SLURM, **(slurm or {})}
    if zero_code:
        text = space_toml(ZERO_CODE_PARAMS, name=name, command=["python", str(ZERO_CODE), "--fmt", "llmc"],
                          objective="loss", stall_timeout=30, executor="slurm", slurm=slurm,
                          metrics={"step": r"^step (\d+) \|", "loss": r"\|\s*loss\s+" + NUM}, **study)
    else:
        text = space_toml(TOY_PARAMS, name=name, command=["python", str(TOY)], objective="loss",
                          stall_timeout=30, executor="slurm", slurm=slurm, **study)
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def job_of(study: Study, trial_id: int) -> str:
    return json.loads((study.run_dir(trial_id) / JOB_FILE).read_text())["job_id"]


def cancel_jobs(study_dir: Path) -> None:
    """scancel every job a study's run directories name."""
    ids = [json.loads(p.read_text())["job_id"] for p in study_dir.glob(f"runs/*/{JOB_FILE}")]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=60)


def job_state(job_id: str) -> str:
    r = subprocess.run(["squeue", "-h", "--states=all", "-o", "%T", "-j", job_id], capture_output=True,
                       text=True, timeout=60)
    return r.stdout.strip()


@pytest.fixture
def cluster_study(slurm_cluster, tmp_path, request):
    """Open a study of the toy trainer (or, with zero_code=True, the zero-code script) run as Slurm jobs:
    (study, runner, events)."""
    made: list[tuple[Study, Runner]] = []

    def open_(zero_code: bool = False, slurm: dict | None = None):
        space_file = write_space(tmp_path, f"t{abs(hash(request.node.name)) % 10**6}", zero_code=zero_code,
                                 slurm=slurm)
        study = Study.open(tmp_path / "study", parse_space(space_file.read_text(), str(space_file)), seed=1)
        events = Events()
        runner = Runner(study, events, cwd=tmp_path, stop_timeout=2.0, term_timeout=2.0, checkpoint_timeout=30.0)
        made.append((study, runner))
        return study, runner, events

    yield open_
    for study, runner in made:
        runner.stop_timeout = runner.term_timeout = 0.0
        runner.commands.stop_all(timeout=20)
        cancel_jobs(study.dir)
        study.close()


def wait_for(runner: Runner, cond, timeout: float = 60.0, what: str = "condition"):
    def polled():
        runner.poll()
        return cond()

    return _wait_for(polled, timeout, 0.05, what)


def start(study: Study, runner: Runner, **params) -> int:
    trial = study.enqueue_manual(params)
    runner.start(trial)
    return trial.id


def step_of(runner: Runner, trial_id: int) -> int:
    return runner.queries.latest(trial_id)["step"] or 0


def test_a_protocol_trainer_job_is_paused_adjusted_and_forked_through_its_control_file(cluster_study):
    study, runner, events = cluster_study()
    tid = start(study, runner)
    parent_job = job_of(study, tid)
    wait_for(runner, lambda: step_of(runner, tid) >= 3, what="the job to run and report steps")

    runner.commands.pause(tid)
    wait_for(runner, lambda: runner.queries.latest(tid)["status"] == "paused", 30, "the trainer to pause")
    runner.commands.set(tid, {"lr": 0.05})
    runner.commands.resume(tid)
    applied = wait_for(runner, lambda: events.of("applied", tid), 30, "the lr change to take effect")
    assert applied[0].data["params"] == {"lr": 0.05}

    child = runner.commands.fork(tid, {"lr": 0.2}, timeout=30)
    child_job = job_of(study, child.id)
    assert child_job != parent_job and child.parent == tid
    wait_for(runner, lambda: any(ln.startswith("resumed from") for ln in runner.queries.output_tail(child.id)),
             what="the fork's job to resume from its parent's checkpoint")

    # Two jobs followed: polls share one squeue call for all of them while its answer is fresh (a second;
    # a minute here, so that a slow poll under load cannot make the answer stale within the burst).
    queue = runner.cluster.queue
    queue.ttl = 60.0
    queue.expire()
    before = queue.calls
    for _ in range(10):
        runner.poll()
    _wait_for(lambda: queue.calls > before, 30, 0.01, "the squeue call")
    for _ in range(10):
        runner.poll()
    assert queue.calls - before == 1
    queue.ttl = 1.0

    runner.commands.stop(tid)
    runner.commands.stop(child.id)
    wait_for(runner, lambda: study.trial(tid).finished and study.trial(child.id).finished, 60, "both to stop")
    assert (study.trial(tid).status, study.trial(child.id).status) == ("stopped", "stopped")
    assert study.trial(child.id).params["lr"] == 0.2


def test_a_zero_code_job_is_paused_with_slurm_signals_and_stopped(cluster_study):
    study, runner, _ = cluster_study(zero_code=True)
    tid = start(study, runner, lr=0.01)
    job = job_of(study, tid)
    wait_for(runner, lambda: step_of(runner, tid) >= 2, what="the zero-code job to print steps")

    runner.commands.pause(tid)   # scancel --signal=STOP: the shim and the script stop
    assert runner.queries.latest(tid)["status"] == "paused"
    wait_for(runner, lambda: job_state(job) == "STOPPED", 30, "squeue to show the job STOPPED")
    runner.poll()
    paused_at = step_of(runner, tid)
    time.sleep(1.0)
    runner.poll()
    assert step_of(runner, tid) == paused_at, "a stopped job printed more steps"

    runner.commands.resume(tid)  # scancel --signal=CONT
    wait_for(runner, lambda: step_of(runner, tid) > paused_at + 2, 30, "the job to go on after CONT")

    runner.commands.stop(tid)    # CONT, then TERM through scancel --signal: the script dies of it
    wait_for(runner, lambda: study.trial(tid).finished, 30, "the job to stop")
    t = study.trial(tid)
    assert t.status == "stopped", t.reason
    assert job_state(job) in ("FAILED", "CANCELLED", "COMPLETED")


def test_a_job_cancelled_on_the_cluster_fails_with_slurms_reason_and_a_queued_one_says_why_it_waits(cluster_study):
    study, runner, _ = cluster_study(slurm={"gpus_per_trial": 1, "extra": ["--comment=tt"]})
    first, second, third = (start(study, runner) for _ in range(3))
    # What each job asked Slurm for (submitit's sbatch file, kept in the run directory).
    sbatch = next((study.run_dir(first) / "slurm").glob("*_submission.sh")).read_text()
    for line in ("#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=1", "#SBATCH --mem=200M", "#SBATCH --time=10",
                 "#SBATCH --partition=debug", "#SBATCH --signal=URG@120", "#SBATCH --requeue", "#SBATCH --comment=tt",
                 f"#SBATCH --job-name=tui-tuner-{study.space.config.name}-{first}", "export TUI_TUNER_EXECUTOR=slurm"):
        assert line in sbatch.splitlines(), (line, sbatch)
    # Two CPUs, a CPU a job: the third waits for resources.
    wait_for(runner, lambda: step_of(runner, first) >= 1 and step_of(runner, second) >= 1, what="two jobs to run")
    wait_for(runner, lambda: runner.queries.latest(third)["waiting"] == "queued on the cluster (Resources)", 30,
             "the third job to wait in Slurm's queue with its reason")
    assert runner.queries.latest(first)["waiting"] is None
    assert not study.trial(third).finished

    subprocess.run(["scancel", job_of(study, first)], check=True, timeout=60)   # someone else's scancel
    wait_for(runner, lambda: study.trial(first).finished, 60, "the cancelled job to be settled")
    t = study.trial(first)
    assert t.status == "failed"
    assert t.reason.startswith("cancelled on the cluster (scancel; Slurm CANCELLED)"), t.reason
    wait_for(runner, lambda: step_of(runner, third) >= 1, 60, "the queued job to start in the freed place")
    assert runner.queries.latest(third)["waiting"] is None


def test_a_job_submitted_by_a_tuner_that_died_before_recording_it_is_adopted_not_submitted_again(cluster_study):
    # Held back a minute (--begin), so it is still queued with no launch.json when the next tuner comes.
    study, runner, _ = cluster_study(slurm={"extra": ["--begin=now+60"]})
    tid = start(study, runner)
    job = job_of(study, tid)
    # The tuner died between its sbatch and marking the trial started: the study still has it queued.
    study.set_status(tid, "queued")
    runner.runs.pop(tid)   # ... and forgot it
    again = Runner(study, Events(), cwd=study.dir, stop_timeout=0.0, term_timeout=0.0)
    again.start(study.trial(tid))
    assert job_of(study, tid) == job and study.trial(tid).status == "running"
    assert not (study.run_dir(tid) / "launch.json").exists()
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=60)
    wait_for(again, lambda: step_of(again, tid) >= 2, what="the adopted job's steps")
    again.commands.stop_all(timeout=30)
    assert study.trial(tid).status == "stopped"


def test_a_controller_that_does_not_answer_holds_up_neither_polls_nor_commands(cluster_study, slurm_cluster):
    study, runner, _ = cluster_study()
    tid = start(study, runner)
    wait_for(runner, lambda: step_of(runner, tid) >= 2, what="the job to run")
    ctld = slurm_cluster.pid("slurmctld")
    os.kill(ctld, signal.SIGSTOP)   # every client now waits ~20 s for it, then says it cannot reach it
    try:
        runner.cluster.queue.expire()
        before = step_of(runner, tid)
        done = threading.Event()

        def work() -> None:
            for _ in range(20):
                runner.poll()
                time.sleep(0.05)
            runner.runs[tid].proc.send(signal.SIGCONT)   # queued for the call thread, not waited for
            runner.poll()
            done.set()

        threading.Thread(target=work, daemon=True).start()
        assert done.wait(10), "the runner waited for a controller that does not answer"
        assert runner.queries.is_live(tid) and step_of(runner, tid) > before   # still followed, through its files
    finally:
        os.kill(ctld, signal.SIGCONT)
    runner.commands.stop(tid)
    wait_for(runner, lambda: study.trial(tid).finished, 60, "the run to stop once the controller answers again")
    assert study.trial(tid).status == "stopped"


def test_a_job_slurm_refuses_is_one_line_naming_what_sbatch_said(cluster_study, capfd):
    study, runner, _ = cluster_study(slurm={"partition": "nope"})
    trial = study.enqueue_manual({})
    with pytest.raises(RunError) as e:
        runner.start(trial)
    assert str(e.value) == (f"trial {trial.id}: Slurm did not take the job: invalid partition specified: nope; "
                            "Batch job submission failed: Invalid partition name specified")
    assert capfd.readouterr().err == ""   # not printed besides


def node_back(node: str) -> bool:
    """Resume the node if it is down; True once it is up and taking jobs."""
    st = subprocess.run(["sinfo", "-h", "-N", "-n", node, "-o", "%t"], capture_output=True, text=True,
                        timeout=60).stdout.split()[0]   # a line per partition
    if st.startswith(("down", "drain", "drng", "fail")):
        subprocess.run(["scontrol", "update", f"NodeName={node}", "State=RESUME"], capture_output=True, timeout=60)
        return False
    return st in ("idle", "mix", "alloc")


def test_a_node_failure_and_a_job_over_its_memory_fail_with_slurms_reasons(cluster_study, tmp_path):
    study, runner, _ = cluster_study(slurm={"extra": ["--no-requeue"]})   # else Slurm requeues it
    tid = start(study, runner)
    wait_for(runner, lambda: step_of(runner, tid) >= 2, what="the job to run")
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True, timeout=60).stdout.split()[0]
    subprocess.run(["scontrol", "update", f"NodeName={node}", "State=DOWN", "Reason=tui-tuner test"], check=True,
                   timeout=60)
    try:
        wait_for(runner, lambda: study.trial(tid).finished, 60, "the job on the failed node to be settled")
        t = study.trial(tid)
        assert t.status == "failed" and t.reason.startswith("its node failed (Slurm NODE_FAIL)"), t.reason
    finally:
        _wait_for(lambda: node_back(node), 60, 0.2, f"node {node} to be up again")

    # A script that grows past its job's memory (no cgroups here: slurmstepd's own poll kills it).
    grow = "import time\nx = []\nwhile True:\n    x.append(bytearray(20_000_000))\n    time.sleep(0.2)\n"
    space = tmp_path / "grow.toml"
    space.write_text(space_toml({"lr": param("float", low=0.01, high=0.9, default=0.1)}, name="grow",
                                command=["python", "-c", grow], objective="loss", metrics={"loss": r"loss " + NUM},
                                executor="slurm", slurm={**SLURM, "mem": "100M"}))
    grow_study = Study.open(tmp_path / "grow", parse_space(space.read_text(), str(space)), seed=1)
    grower = Runner(grow_study, None, cwd=tmp_path, stop_timeout=0.0, term_timeout=0.0)
    try:
        gid = start(grow_study, grower)
        wait_for(grower, lambda: grow_study.trial(gid).finished, 60, "the job over its memory to be settled")
        t = grow_study.trial(gid)
        assert t.status == "failed", t.reason
        assert t.reason.startswith("out of memory: the job went over its mem limit (Slurm OUT_OF_MEMORY)"), t.reason
    finally:
        cancel_jobs(grow_study.dir)
        grow_study.close()


def test_a_preempted_job_is_requeued_not_failed_and_its_rerun_is_the_trials(cluster_study, tmp_path):
    cpus = int(subprocess.run(["sinfo", "-h", "-N", "-p", "debug", "-o", "%c"], capture_output=True, text=True,
                              timeout=60).stdout.split()[0])
    # The whole node, so that a job in the higher-priority partition takes it back.
    study, runner, events = cluster_study(slurm={"cpus_per_trial": cpus})
    tid = start(study, runner, steps=60, delay=0.05)
    job = job_of(study, tid)
    wait_for(runner, lambda: step_of(runner, tid) >= 3, what="the job to run")
    urgent = subprocess.run(["sbatch", "--parsable", "--partition=urgent", f"--cpus-per-task={cpus}", "--mem=100M",
                             "--time=1", f"--output={tmp_path}/urgent.out", "--wrap=sleep 1"],
                            capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    wait_for(runner, lambda: (runner.queries.latest(tid)["waiting"] or "").startswith(
        "requeued after preemption, queued on the cluster"), 60, "the preempted job to be requeued")
    assert not study.trial(tid).finished, study.trial(tid).reason   # not failed: it waits to run again
    assert len(events.of("requeued", tid)) == 1
    wait_for(runner, lambda: job_state(urgent) == "COMPLETED", 60, "the urgent job to finish")
    # A requeued job waits about 2 minutes (BeginTime) before it may start again: not here.
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=60)
    wait_for(runner, lambda: study.trial(tid).finished, 60, "the rerun to finish")
    t = study.trial(tid)
    assert (t.status, t.step) == ("done", 60), t.reason
    run_dir = study.run_dir(tid)
    assert json.loads((run_dir / "exit.requeued-1.json").read_text())["signal"] == 15   # the cut-short run's
    assert json.loads((run_dir / "exit.json").read_text())["returncode"] == 0
    assert job_of(study, tid) == job
    # The rerun's curve is the trial's, once (live, and in the events a restarted tuner would replay);
    # the cut-short run's events are kept aside.
    assert [st for st, _ in runner.queries.series(tid, "loss")] == list(range(1, 61))
    lines = [json.loads(ln) for ln in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [ev["step"] for ev in lines if "metrics" in ev] == list(range(1, 61))
    assert "loss" in (run_dir / "events.requeued-1.jsonl").read_text()
