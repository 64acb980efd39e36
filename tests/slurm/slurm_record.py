"""What Slurm says about a job, on a cluster with accounting (sacct) or without it.

Without slurmdbd, `sacct` only says "Slurm accounting storage is disabled" (exit status 1), so
submitit's own watcher, which reads sacct, reports every job as UNKNOWN. What is left:
- the controller: `squeue --states=all` lists queued, running AND ended jobs, with Slurm's reason,
  for MinJobAge seconds after they end (kept across a controller restart);
- the job completion log (JobCompType=jobcomp/filetxt), read with `sacct --completion`: one line per
  ended run of a job (a preempted run, then the requeued one), however old;
- the job's own files (the run directory, submitit's log files).
These helpers read them in that order, for the proof tests (test_cluster.py). The executor itself
(tui_tuner/runtime/slurm.py, slurm_queue.py) reads the controller with one squeue call for all jobs
and, once the controller has forgotten a job, sacct where accounting works, else the job's log.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable

from submitit.slurm.slurm import SlurmInfoWatcher

ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "REQUEUED", "RESIZING",
          "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"}


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a Slurm client; with check, fail with its stderr."""
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def accounting_on() -> bool:
    """True where sacct has a database to read (slurmdbd)."""
    return run("sacct", "-n", "-X", "-o", "JobID", "-j", "1", check=False).returncode == 0


def controller(job_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    """{job id: {"State", "Reason", "NodeList", "Comment"}} for the jobs the controller still holds."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    r = run("squeue", "-h", "--states=all", "-o", "%i|%T|%r|%N|%k", "-j", ",".join(ids), check=False)
    out: dict[str, dict[str, str]] = {}
    for line in r.stdout.splitlines():
        job_id, state, reason, nodes, comment = line.split("|", 4)
        out[job_id] = {"State": state, "Reason": reason, "NodeList": nodes,
                       "Comment": "" if comment == "(null)" else comment}
    return out


def state(job_id: str) -> str | None:
    """The job's state as the controller has it (RUNNING, TIMEOUT...), None once it has forgotten it."""
    return controller([job_id]).get(job_id, {}).get("State")


def scontrol(job_id: str) -> dict[str, str]:
    """`scontrol -o show job`, as key=value pairs (values with spaces are cut at the first one)."""
    r = run("scontrol", "-o", "show", "job", job_id, check=False)
    pairs = (kv.split("=", 1) for kv in r.stdout.split() if "=" in kv)
    return {k: v for k, v in pairs}


def completions(job_id: str) -> list[str]:
    """The state of each ended run of the job, oldest first, from the job completion log (sacct -c)."""
    r = run("sacct", "--completion", "-n", "-P", "-o", "JobID,State", "-j", job_id, check=False)
    return [line.split("|")[1] for line in r.stdout.splitlines() if line.split("|")[0] == job_id]


def ended(job_id: str) -> tuple[str, str] | None:
    """(state, reason) of a job that has ended, from whichever record still has it; None while it is active."""
    held = controller([job_id]).get(job_id)
    if held is not None:
        return None if held["State"] in ACTIVE else (held["State"], held["Reason"])
    if accounting_on():
        r = run("sacct", "-n", "-X", "-P", "-o", "State,Reason", "-j", job_id, check=False)
        if r.stdout.strip():
            st, _, reason = r.stdout.splitlines()[-1].partition("|")
            return st.split()[0], reason
    runs = completions(job_id)
    return (runs[-1], "") if runs else None


def wait_state(job_id: str, want: str | set[str], timeout: float = 60.0) -> dict[str, str]:
    """Wait until the controller shows the job in one of the wanted states; fail with the last one seen."""
    wanted = {want} if isinstance(want, str) else want
    end = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while time.monotonic() < end:
        seen = controller([job_id]).get(job_id, {})
        if seen.get("State") in wanted:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not {sorted(wanted)} after {timeout}s; last seen {seen or 'nothing'}")


class ControllerWatcher(SlurmInfoWatcher):
    """submitit's watcher, asking the controller (squeue --states=all) instead of sacct.

    Overrides the two methods submitit's own SlurmInfoWatcher overrides; `job.state` and `job.done()`
    then work on a cluster without accounting, for MinJobAge after the job ends.
    """

    def _make_command(self) -> list[str] | None:
        ids = {x.split("_")[0] for x in self._registered - self._finished}
        if not ids:
            return None
        return ["squeue", "-h", "--states=all", "-o", "%i|%T|%r|%N", "-j", ",".join(sorted(ids))]

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        text = string.decode() if isinstance(string, bytes) else string
        return super().read_info("JobID|State|Reason|NodeList\n" + text)
