"""Talking to the Slurm controller without holding the runner up: one squeue call at a time for all the
study's jobs, and the job commands (scancel, scontrol) in order, each on a thread of its own.

A controller that is down or restarting makes every client wait (about 20 s here before "Unable to
contact slurm controller"); the runner's poll and commands hold its lock, so they never call a Slurm
client themselves: they read the last answer (`Squeue.info`) and queue commands (`Calls.later`).
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CACHE_S = 1.0              # how long one squeue answer serves every job's question
BACKOFF_S = 10.0           # after the controller did not answer, ask again this much later
CALL_TIMEOUT = 60.0


@dataclass(frozen=True)
class JobInfo:
    """One job as the controller has it."""

    state: str
    reason: str
    nodes: str


UNKNOWN = JobInfo("UNKNOWN", "", "")   # no answer (yet): ask again, the job is not gone


def clients(*cmd: str) -> subprocess.CompletedProcess[str]:
    """Run a Slurm client; a missing or hanging one is an exit status, not an exception."""
    try:
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=CALL_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return subprocess.CompletedProcess(list(cmd), 1, "", str(e))


class Squeue:
    """What the controller says about every job the runner follows: one squeue call for all of them, at
    most once a `ttl`, made on a thread so that a question never waits unless it asks to."""

    def __init__(self, ttl: float = CACHE_S) -> None:
        self.ttl = ttl
        self.calls = 0                       # squeue calls made (one a second at most, however many jobs)
        self._lock = threading.Lock()
        self._ids: set[str] = set()          # jobs followed
        self._asked: set[str] = set()        # jobs the last answered call asked about
        self._seen: dict[str, JobInfo] = {}
        self._answered = False               # the last call reached the controller
        self._due = -1e18                    # when the next call is due (monotonic)
        self._call: threading.Thread | None = None

    def watch(self, job_id: str) -> None:
        """Follow this job from the next call on."""
        with self._lock:
            self._ids.add(job_id)

    def forget(self, job_id: str) -> None:
        """Stop asking about a job that has ended."""
        with self._lock:
            self._ids.discard(job_id)

    def expire(self) -> None:
        """The next question asks the controller again (after a signal or a cancel)."""
        with self._lock:
            self._due = -1e18

    def info(self, job_id: str, wait: bool = False) -> JobInfo | None:
        """The job's state and reason from the last answer; None once the controller no longer knows it;
        UNKNOWN when it did not answer or was not asked yet. `wait`: ask now and wait for the answer."""
        for _ in range(2 if wait else 1):
            with self._lock:
                self._ids.add(job_id)
                if time.monotonic() >= self._due or job_id not in self._asked:
                    if self._call is None:
                        self._call = threading.Thread(target=self._refresh, name="squeue", daemon=True)
                        self._call.start()
                call = self._call
            if not wait or call is None:
                break
            call.join()
            with self._lock:
                if job_id in self._asked or not self._answered:   # asked, or no answer to wait for again
                    break
        with self._lock:
            if not self._answered or job_id not in self._asked:
                return UNKNOWN
            return self._seen.get(job_id)

    def _refresh(self) -> None:
        try:
            with self._lock:
                ids = sorted(self._ids, key=lambda i: (len(i), i))
            r = clients("squeue", "-h", "--states=all", "-o", "%i|%T|%r|%N", "-j", ",".join(ids))
            seen = {}
            for line in r.stdout.splitlines():
                parts = line.strip().split("|")
                if len(parts) == 4:
                    seen[parts[0]] = JobInfo(parts[1], parts[2], parts[3])
            # An id the controller has forgotten fails the call only when it is the only one asked about.
            answered = r.returncode == 0 or (len(ids) == 1 and "Invalid job id" in r.stderr)
            with self._lock:
                self.calls += 1
                self._answered = answered
                if answered:
                    self._asked, self._seen = set(ids), seen
                self._due = time.monotonic() + (self.ttl if answered else BACKOFF_S)
        finally:
            with self._lock:
                self._call = None


class Calls:
    """Job commands (scancel, scontrol) carried out in the order given, on one thread: queued at once.

    A call returns what went wrong ("" when nothing did); `failures()` hands those over to be reported."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], str]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failed: list[str] = []
        self.pending = 0

    def failures(self) -> list[str]:
        """What went wrong since the last time asked, oldest first."""
        with self._lock:
            out, self._failed = self._failed, []
            return out

    def later(self, call: Callable[[], str]) -> None:
        """Run `call` after the ones queued before it."""
        with self._lock:
            self.pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="slurm-calls", daemon=True)
                self._thread.start()
        self._queue.put(call)

    def _run(self) -> None:
        while True:
            call = self._queue.get()
            try:
                problem = call()
            except Exception as e:  # noqa: BLE001 - reported like a client's refusal, and the next call goes on
                problem = f"{type(e).__name__}: {e}"
            with self._lock:
                if problem:
                    self._failed.append(problem)
                self.pending -= 1
