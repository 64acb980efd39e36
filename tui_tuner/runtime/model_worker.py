"""A warm worker process for the model's costly asks: GP's fit never runs in the tuner's process.

Fitting a GP means torch and scipy: importing torch alone takes the tuner from ~55 MB of RSS to over
300 MB, and a fit holds a CPU for a fraction of a second to seconds. So the scheduler hands every ask
that fits a model (`OptunaSearch.fits`) to a child process and picks the proposals up on a later
tick: the command thread never waits, and torch is imported only in the child.

The child is `python -m tui_tuner.runtime.model_worker`, started on the first costly ask and kept
for the next ones (its imports stay warm). Jobs and answers are pickled, length-prefixed, over its
stdin and stdout; what it would print goes to its stderr, which is discarded (the app draws on the
terminal). It ends when the tuner closes its stdin, or dies with it.

An answer is the proposals (with the fit's kernel parameters, the next fit's start), an error of ours (a `TunerError`: raised again in the tuner, one line),
a model that failed (`ModelFailed`: numerics; the scheduler lets TPE stand in), or, when the child
died, `WorkerCrashed`: the scheduler says so in one line and TPE stands in.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
from typing import Any, BinaryIO

from tui_tuner.errors import TunerError

_HEADER = struct.Struct("!Q")


class ModelFailed(Exception):
    """The model raised while asking (a fit that did not converge, a singular matrix): one line."""


class WorkerCrashed(Exception):
    """The worker process died or could not be started; the message says how, in one line."""


def _send(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _recv(stream: BinaryIO) -> Any:
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError("the pipe closed")
    size = _HEADER.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the pipe closed mid-message")
    return pickle.loads(data)


class PendingAsk:
    """One ask in flight in the worker; `key` is the search state it was asked in.

    A reader thread waits for the answer (a daemon: it only reads a pipe, so the tuner may exit
    mid-ask; the child then sees its stdin close and ends).
    """

    def __init__(self, key: str, worker: ModelWorker) -> None:
        self.key = key
        self._worker = worker
        self._answer: tuple | None = None
        self.kernel: list[float] | None = None   # the fit's kernel parameters, once answered
        self.stream: dict | None = None          # the model's random state after the ask
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, name="tui-tuner-ask-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            self._answer = _recv(self._worker.stdout)
        except (EOFError, OSError, ValueError, pickle.UnpicklingError) as e:
            # ValueError: the worker was closed while this read waited (its pipe closed under it).
            self._answer = ("crashed", self._worker.crash_text(e))
        finally:
            self._done.set()

    def done(self) -> bool:
        """True once the worker answered (or died)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the ask has finished; True when it has."""
        return self._done.wait(timeout)

    def result(self) -> list[dict[str, Any]]:
        """The proposed settings (once done); raises TunerError, ModelFailed or WorkerCrashed."""
        if not self._done.is_set():
            raise RuntimeError("the ask has not finished yet")
        assert self._answer is not None
        kind, *rest = self._answer
        if kind == "ok":
            self.kernel, self.stream = rest[1], rest[2]
            return rest[0]
        if kind == "tuner":
            cls_name, message, title = rest
            raise _tuner_error(cls_name, message, title)
        if kind == "error":
            raise ModelFailed(rest[0])
        self._worker.discard()
        raise WorkerCrashed(rest[0])


def _tuner_error(cls_name: str, message: str, title: str) -> TunerError:
    from tui_tuner import errors

    cls = getattr(errors, cls_name, TunerError)
    try:
        return cls(message, title=title)
    except TypeError:   # an error type with more required fields: keep its message and title
        return TunerError(message, title=title)


class ModelWorker:
    """The tuner's handle on the worker process: started on the first ask, one ask at a time."""

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.starts = 0      # processes started (a crash makes the next ask start another)

    @property
    def pid(self) -> int | None:
        """The worker's process id, or None when none is running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def stdout(self) -> BinaryIO:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        # The child must find this tui_tuner even when the tuner runs from a source tree.
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        # One thread per pool: Optuna's GPSampler docs name OpenMP and OpenBLAS threads competing for
        # the same cores as what makes it laggy, curable only before torch is imported; the trainers
        # share these cores too. The user's own setting wins.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        try:
            proc = subprocess.Popen([self.python, "-m", "tui_tuner.runtime.model_worker"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        except OSError as e:
            raise WorkerCrashed(f"the model worker could not start: {e}") from None
        self.starts += 1
        return proc

    def submit(self, key: str, job: dict[str, Any], n: int) -> PendingAsk:
        """Send one ask (OptunaSearch's arguments and a count) to the worker, starting it if needed."""
        return self._submit(key, ("ask", job, n))

    def importance(self, space: Any, done: list[tuple[dict, float]], maximize: bool,
                   timeout: float | None = 600) -> Any:
        """Measured importance (search/importance.py) computed in the worker, waited for: optuna's
        importance package imports scikit-learn and scipy (~130 MB) wherever it runs."""
        job = self._submit("importance", ("importance", {"space": space, "trials": done, "maximize": maximize}))
        if not job.wait(timeout):
            self.discard()
            raise WorkerCrashed(f"the model worker gave no importance within {timeout:g} s")
        return job.result()

    def _submit(self, key: str, message: tuple) -> PendingAsk:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            assert self._proc.stdin is not None
            try:
                _send(self._proc.stdin, message)
            except (OSError, ValueError) as e:
                text = self.crash_text(e)
                self.discard()
                raise WorkerCrashed(text) from None
            return PendingAsk(key, self)

    def crash_text(self, error: BaseException) -> str:
        """One line on how the worker died."""
        proc = self._proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
        if code is None:
            how = f"stopped answering ({type(error).__name__})"
        elif code < 0:
            how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        return f"the model worker {how}"

    def discard(self) -> None:
        """Forget a dead (or broken) worker: the next ask starts a fresh one."""
        proc, self._proc = self._proc, None
        if proc is not None:
            _end(proc)

    def close(self) -> None:
        """End the worker (its stdin closes: it exits after the ask in hand, if any)."""
        self.discard()


def _end(proc: subprocess.Popen) -> None:
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass   # already broken: the child is gone or going
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- the child ----------------------------------------------------------------------------------


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer until stdin closes: an ask builds an OptunaSearch and asks it; an importance job
    measures importance."""
    from tui_tuner.search.importance import importance
    from tui_tuner.search.optuna_search import OptunaSearch

    while True:
        try:
            kind, job, *n = _recv(inp)
        except EOFError:
            return
        try:
            if kind == "importance":
                answer: tuple = ("ok", importance(**job), None, None)
            else:
                model = OptunaSearch(**job)
                answer = ("ok", model.ask(n[0]), model.kernel, model.stream)
        except TunerError as e:
            answer = ("tuner", type(e).__name__, e.message, e.title)
        except Exception as e:  # noqa: BLE001 - the model failed: the tuner says it and lets TPE ask
            answer = ("error", f"{type(e).__name__}: {e}".splitlines()[0])
        _send(out, answer)


def main() -> int:
    """The worker's entry point: its stdout carries answers only (prints go to stderr)."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
