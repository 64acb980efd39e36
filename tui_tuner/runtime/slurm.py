"""Trials as Slurm jobs (`[study] executor = "slurm"`): each trial is one job that runs the same launch
shim as a local run, in a run directory on the shared filesystem, so events, control commands,
checkpoints and exit.json work unchanged. This module submits the job (through submitit) and gives
the runner a handle to it that reads like a local shim's (`alive`, `send`; process.Process).

Slurm is the scheduler: a job is submitted when the runner starts its trial and counts towards
`parallel` while queued or running. What Slurm says about the study's jobs comes from ONE `squeue`
call for all of them, at most once a second and on a thread of its own, never one per run; signals
and cancels go through one ordered call thread (slurm_queue.py): the runner never waits for Slurm. Without
accounting (no slurmdbd) `squeue --states=all` still knows an ended job for MinJobAge; after that a
job's end is read from its log file in RUN_DIR/slurm/ (Slurm writes "DUE TO TIME LIMIT" there).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from tui_tuner import launch
from tui_tuner.errors import RunError
from tui_tuner.runtime.slurm_queue import UNKNOWN, Calls, JobInfo, Squeue, clients
from tui_tuner.search.slurm_config import SlurmConfig
from tui_tuner.trainer import protocol

JOB_FILE = "job.json"      # {"job_id", "submitted"} in the run directory: how a restarted tuner finds the job
LOG_DIR = "slurm"          # submitit's folder in the run directory: the sbatch file and the job's own log
EXECUTOR_ENV = "TUI_TUNER_EXECUTOR"   # "slurm" in the job: Slurm signals every process, the shim forwards none
WARNING_LEAD = 120         # seconds before the time limit that Slurm sends SIGURG (ignored unless handled)

QUEUED = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
# PREEMPTED is passing for a job submitted with --requeue (ours are): it goes back to PENDING.
ACTIVE = QUEUED | {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT",
                   "PREEMPTED"}
# How Slurm ended a job, as the trial's failure reason says it.
ENDINGS = {
    "TIMEOUT": "the job reached its time limit on the cluster (Slurm TIMEOUT)",
    "NODE_FAIL": "its node failed (Slurm NODE_FAIL)",
    "OUT_OF_MEMORY": "out of memory: the job went over its mem limit (Slurm OUT_OF_MEMORY)",
    "PREEMPTED": "preempted on the cluster and not requeued (Slurm PREEMPTED)",
    "CANCELLED": "cancelled on the cluster (scancel; Slurm CANCELLED)",
    "BOOT_FAIL": "its node failed to boot (Slurm BOOT_FAIL)",
    "DEADLINE": "the job reached its deadline on the cluster (Slurm DEADLINE)",
}
# The same, from the lines slurmstepd writes into the job's log (the record that outlives the controller's).
LOG_MARKS = (("DUE TO TIME LIMIT", "TIMEOUT"), ("DUE TO NODE FAILURE", "NODE_FAIL"),
             ("DUE TO PREEMPTION", "PREEMPTED"), ("exceeded memory limit", "OUT_OF_MEMORY"),
             ("oom_kill event", "OUT_OF_MEMORY"), ("oom-kill", "OUT_OF_MEMORY"), ("CANCELLED AT", "CANCELLED"))
LOG_BYTES = 64 * 1024


class SlurmJob:
    """A trial's Slurm job, followed as the runner follows a local shim (process.Process)."""

    pid = None   # no process here: nothing for the runner to reap or to end in a process group

    def __init__(self, job_id: str, run_dir: Path, queue: Squeue, calls: Calls) -> None:
        self.job_id = job_id
        self.run_dir = run_dir
        self.queue = queue
        self.calls = calls
        self.last: JobInfo | None = None     # the controller's last answer about it
        self.requeued = 0                    # times it went back to the queue after running (preemption)
        self.waited: float | None = None     # seconds from submission to start, once it started (auto-k)
        self._ran = False
        self._told = 0
        queue.watch(job_id)

    def alive(self, wait: bool = False) -> bool:
        """True while the job is queued, running, stopped or being requeued (or the controller cannot say).

        From the last squeue answer (a second old at most); `wait` asks the controller now."""
        info = self.queue.info(self.job_id, wait=wait)
        if info is UNKNOWN:
            return True
        if info is None:
            self.queue.forget(self.job_id)
            return False
        if info.state in QUEUED and self._ran:
            self.requeued += 1
        self._ran = info.state not in QUEUED
        self.last = info
        if info.state not in ACTIVE:
            self.queue.forget(self.job_id)
            return False
        return True

    def going(self) -> bool:
        """True while the job goes (for a run found on disk: its directory is there and Slurm still runs it)."""
        return self.run_dir.is_dir() and self.alive(wait=True)

    def send(self, sig: int) -> None:
        """A signal through Slurm: STOP/CONT/TERM/INT to every process of the job (scancel --signal),
        KILL as `scancel` (Slurm's own TERM, then KILL after KillWait). A queued job cannot take a signal:
        TERM cancels it, STOP holds it in the queue (`scontrol hold`) and CONT releases it.

        Queued and carried out in order on the cluster's call thread (a client can wait ~20 s for a
        controller that is restarting): the runner never waits for Slurm."""
        self.calls.later(lambda: self._send_now(sig))

    def _send_now(self, sig: int) -> str:
        self.queue.expire()
        info = self.queue.info(self.job_id, wait=True)   # fresh: a second-old PENDING may be a job that now runs
        waiting = info is not None and info.state in QUEUED
        if sig == signal.SIGKILL or (waiting and sig in (signal.SIGTERM, signal.SIGINT)):
            cmd = ("scancel", self.job_id)
        elif waiting and sig in (signal.SIGSTOP, signal.SIGCONT):
            cmd = ("scontrol", "hold" if sig == signal.SIGSTOP else "release", self.job_id)
        else:
            cmd = ("scancel", f"--signal={signal.Signals(sig).name.removeprefix('SIG')}", self.job_id)
        r = clients(*cmd)
        self.queue.expire()
        ended = info is None or (info is not UNKNOWN and info.state not in ACTIVE)   # nothing left to signal
        if r.returncode != 0 and not ended:
            said = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
            return f"Slurm job {self.job_id}: {' '.join(cmd[:-1])} failed: {said}"
        return ""

    def take_requeues(self) -> int:
        """Times the job went back to the queue (preempted) since last asked."""
        new, self._told = self.requeued - self._told, self.requeued
        return new

    def queued(self) -> str | None:
        """Why the job waits ("queued on the cluster (Resources)"); None while it runs."""
        info = self.last
        if info is None or info.state not in QUEUED:
            return None
        why = f" ({info.reason})" if info.reason and info.reason != "None" else ""
        again = "requeued after preemption, " if self.requeued else ""
        return f"{again}queued on the cluster{why}"

    def ended_how(self) -> str | None:
        """How Slurm ended the job, as a reason (time limit, node failure, memory, cancel); None: it did not."""
        state = self.last.state if self.last is not None else None
        if state in ENDINGS:
            return ENDINGS[state]
        if state in (None, "FAILED", "UNKNOWN"):
            if state is None:
                told = accounted(self.job_id)
                if told in ENDINGS:
                    return ENDINGS[told]
            logged = from_log(self.run_dir, self.job_id)
            if logged is not None and (state is None or logged == "OUT_OF_MEMORY"):
                return ENDINGS[logged]
        return None


def _options(cwd: Path, extra: dict[str, str | bool]) -> dict[str, str | bool]:
    """The sbatch options set for every job, then the space's `extra` (which may say --no-requeue)."""
    # SIGURG, not submitit's USR2: USR2 would kill the shim and leave the trainer orphaned.
    options: dict[str, str | bool] = {"signal": f"URG@{WARNING_LEAD}", "chdir": str(cwd)}
    if "no-requeue" not in extra:
        options["requeue"] = True   # a preempted job goes back to the queue rather than failing
    return {**options, **extra}


def refusal(e: Exception) -> str:
    """sbatch's error lines in one ("invalid partition specified: gpu; Batch job submission failed: ...")."""
    said = [ln.strip().removeprefix("sbatch: error: ") for ln in str(e).splitlines() if "error" in ln.lower()]
    return "; ".join(dict.fromkeys(said)) or (str(e).strip().splitlines() or [type(e).__name__])[-1]


def accounted(job_id: str) -> str | None:
    """The job's state from Slurm's accounting (sacct), where the cluster keeps it; None where it does not."""
    r = clients("sacct", "-X", "-n", "-P", "-o", "State", "-j", job_id)
    lines = r.stdout.split() if r.returncode == 0 else []
    return lines[-1].split()[0] if lines else None


def from_log(run_dir: Path, job_id: str) -> str | None:
    """The state the job's own log names (slurmstepd's "*** JOB N ... DUE TO TIME LIMIT ***"), if any."""
    tail = ""
    for path in sorted((run_dir / LOG_DIR).glob(f"{job_id}_*log.*")):
        try:
            with open(path, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - LOG_BYTES))
                tail += f.read().decode("utf-8", "replace")
        except OSError:
            continue
    for mark, state in LOG_MARKS:
        if mark in tail:
            return state
    return None


def job_id(run_dir: Path) -> str | None:
    """The Slurm job id kept in a run directory, None for a local run."""
    doc = protocol.read_json(run_dir / JOB_FILE) if (run_dir / JOB_FILE).is_file() else None
    jid = doc.get("job_id") if isinstance(doc, dict) else None
    return jid if isinstance(jid, str) and re.fullmatch(r"[0-9]+(_[0-9]+)?", jid) else None


def require_submitit() -> None:
    """RunError, one line, unless submitit and sbatch are there to submit with."""
    try:
        import submitit  # noqa: F401 - only whether it imports
    except ImportError:
        raise RunError('executor = "slurm" needs submitit: pip install \'tui-tuner[slurm]\'') from None
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise RunError('executor = "slurm": sbatch and srun are not on PATH; start the tuner on a node that '
                       'submits jobs (a login node)')


class Cluster:
    """The study's Slurm side: submits trials as jobs ([study.slurm]) and finds the job of a run directory."""

    def __init__(self, config: SlurmConfig | None, study: str) -> None:
        self.config = config
        self.study = study
        self.queue = Squeue()
        self.calls = Calls()
        if config is not None:
            require_submitit()

    def attach(self, run_dir: Path) -> SlurmJob | None:
        """The handle to a run directory's job (None: a local run)."""
        jid = job_id(run_dir)
        return SlurmJob(jid, run_dir, self.queue, self.calls) if jid is not None else None

    def wait(self, handle: object, now: float) -> tuple[float, bool] | None:
        """(seconds a job waited from submission to start, or so far; still queued) for auto-k; None: not a job."""
        if not isinstance(handle, SlurmJob):
            return None
        if handle.waited is not None:
            return handle.waited, False
        job = protocol.read_json(handle.run_dir / JOB_FILE) or {}
        submitted = job.get("submitted")
        if not isinstance(submitted, (int, float)):
            return None
        launched = protocol.read_json(handle.run_dir / protocol.LAUNCH) if (handle.run_dir / protocol.LAUNCH).exists() else None
        started = launched.get("started") if isinstance(launched, dict) else None
        if isinstance(started, (int, float)):
            handle.waited = max(0.0, started - submitted)   # fixed once it started: not read again
            return handle.waited, False
        return max(0.0, now - submitted), True

    def watch(self, run_dirs: Iterable[Path]) -> None:
        """Follow these runs' jobs, so the next squeue asks about all of them at once (re-adoption)."""
        for run_dir in run_dirs:
            jid = job_id(run_dir)
            if jid is not None:
                self.queue.watch(jid)

    def launcher(self, trial_id: int) -> Callable[..., int]:
        """process.spawn_run's way to start the shim: as this trial's job (returns 0: no local pid)."""

        def submit(run_dir: Path, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> int:
            self.submit(trial_id, run_dir, argv, env, cwd)
            return 0

        return submit

    def submit(self, trial_id: int, run_dir: Path, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> str:
        """sbatch the launch shim with the trial's command; the job id, also written to RUN_DIR/job.json."""
        if self.config is None:
            raise RunError(f'trial {trial_id}: not a Slurm study (executor = "slurm" in [study] submits jobs)')
        import submitit

        cfg = self.config
        run = Path(run_dir).resolve()
        folder = run / LOG_DIR
        folder.mkdir(mode=protocol.PRIVATE_DIR, exist_ok=True)
        shim = [sys.executable, "-m", "tui_tuner.launch", str(run), launch.ATTEMPT_FLAG, launch.new_attempt(run),
                "--", *argv]
        # sbatch passes the tuner's environment on; what the trial adds to it is exported in the script.
        exports = {k: v for k, v in env.items() if os.environ.get(k) != v and k.isidentifier()}
        exports[EXECUTOR_ENV] = "slurm"
        asks: dict[str, object] = {k: v for k, v in (("partition", cfg.partition), ("cpus_per_task", cfg.cpus_per_trial),
                                                     ("mem", cfg.mem), ("account", cfg.account)) if v is not None}
        if cfg.gpus_per_trial:
            asks["gpus_per_node"] = cfg.gpus_per_trial
        try:
            ex = submitit.SlurmExecutor(folder=folder, python=None)
            ex.update_parameters(
                job_name=f"tui-tuner-{self.study}-{trial_id}"[:120], time=cfg.time, stderr_to_stdout=True,
                signal_delay_s=WARNING_LEAD,
                setup=[f"export {k}={shlex.quote(v)}" for k, v in sorted(exports.items())],
                additional_parameters=_options(cwd, cfg.extra_options()),
                **asks)
            # The shim itself is the job's command (no pickled function, no submitit wrapper in between).
            # submitit prints a refused sbatch's stderr too: it is in the error, said once, in one line.
            with contextlib.redirect_stderr(io.StringIO()):
                job = ex._submit_command(shlex.join(shim))
        except Exception as e:  # noqa: BLE001 - sbatch's refusal, said in one line
            raise RunError(f"trial {trial_id}: Slurm did not take the job: {refusal(e)}") from None
        jid = str(job.job_id)
        protocol.write_json_atomic(run / JOB_FILE, {"job_id": jid, "submitted": time.time()})
        self.queue.watch(jid)
        return jid
