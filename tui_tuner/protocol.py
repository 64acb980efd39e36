"""The run-directory protocol shared by the tuner and the trainer: file names, commands, events, encoders.

Imported on both sides, including inside the user's training process, so it imports only the standard
library (no textual, numpy or torch).

Run directory (STUDY/runs/RUN_ID/):

- ``params.json``   tuner -> trainer, written before launch:
  ``{"trial": ID, "params": {name: value}, "resume": PATH or null}``.
  ``resume`` is a checkpoint path; a relative one is relative to the *study* directory (the run dir's
  grandparent, the same convention as ``Trial.resume``), an absolute one is used as is
  (see `resolve_resume`).
- ``events.jsonl``  trainer -> tuner, one JSON object a line, each with ``"t"`` (unix time):
  ``{"t", "step", "metrics": {name: value}}``, ``{"t", "event": "applied", "params": {...}}``,
  ``{"t", "event": "paused"}``, ``{"t", "event": "resumed"}``,
  ``{"t", "event": "checkpoint", "seq", "path", "step"}`` (path relative to the run dir;
  on failure ``{"t", "event": "checkpoint", "seq", "error": "one line"}`` and no path),
  ``{"t", "event": "done"}`` (the trainer process is exiting without an uncaught exception; the
  final status still comes from exit.json's returncode), ``{"t", "event": "max_steps", "steps"}``,
  ``{"t", "event": "inexact", "reason"}`` (a forked run that will not repeat its parent's curve
  exactly, e.g. its data loader has no state to resume; the app marks its lineage).
- ``control.jsonl`` tuner -> trainer, append-only, one object a line with an increasing ``"seq"``:
  ``{"seq", "cmd": "pause" | "resume" | "stop" | "checkpoint"}``, ``{"seq", "cmd": "set", "params": {...}}``.
- ``output.log``    the trainer's stdout and stderr (appended by the launch shim).
- ``exit.json``     written atomically by the launch shim when the trainer ends:
  ``{"returncode", "signal", "signal_name", "ended", "pid"}`` and ``"error"`` when the command could not
  be started. ``returncode`` follows subprocess: the exit status, or ``-N`` when signal N killed it
  (then ``signal`` is N); 127 = command not found, 126 = not executable.
- ``ckpt/``         checkpoints, ``ckpt/step-N.pt`` (the state after step N).

Every run directory is 0700 and every file in it 0600 (PRIVATE_DIR, PRIVATE_FILE), whatever the
umask: on a shared GPU box other users must not read settings, logs or checkpoints. Whole-file
writes go through `atomic_file` (an O_EXCL temp file beside the target, then a rename).

Non-finite metrics: JSON has no NaN or infinity, so the trainer writes them as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``; every line stays strict JSON. `decode_metric` turns them
(and, for hand-written trainers, Python's bare ``NaN``/``Infinity`` literals) back into floats. The
runner treats any non-finite value of the objective as divergence.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import IO, Any

# The tail readers live in tui_tuner/tailing.py; their names stay importable from here (a contract).
from tui_tuner.tailing import JsonlTail as JsonlTail
from tui_tuner.tailing import Tail as Tail
from tui_tuner.tailing import last_lines as last_lines
from tui_tuner.tailing import loads_line as loads_line

# -- file names and environment -------------------------------------------------------------------

ENV_RUN_DIR = "TUI_TUNER_RUN_DIR"
PARAMS = "params.json"
EVENTS = "events.jsonl"
CONTROL = "control.jsonl"
OUTPUT = "output.log"
EXIT = "exit.json"
CKPT = "ckpt"
# Written by the shim as it starts ({"pid", "started"}): a tuner killed between spawning a run and
# recording it finds the run here on restart and adopts it instead of starting it twice.
LAUNCH = "launch.json"
# Written by the tuner before it spawns the shim ({"token"}), the token also given to the shim: the
# shim runs only in the run directory of its own attempt (see tui_tuner.launch, "Attempts").
ATTEMPT = "attempt.json"

# Everything in a study is private to its owner: on a shared GPU box other users must not read the
# settings, logs and checkpoints. Explicit modes, so the umask cannot widen them.
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

# -- control commands (tuner -> trainer) --------------------------------------------------------------

CMD_PAUSE = "pause"
CMD_RESUME = "resume"
CMD_STOP = "stop"
CMD_SET = "set"
CMD_CHECKPOINT = "checkpoint"
CMD_MAX_STEPS = "max_steps"   # {"steps": N}: the run's new step limit (trainer.max_steps reads it)
MAX_STEPS_SUFFIX = ".tuner.json"   # beside a checkpoint: the step limit it was taken under
COMMANDS = (CMD_PAUSE, CMD_RESUME, CMD_STOP, CMD_SET, CMD_CHECKPOINT, CMD_MAX_STEPS)

# -- events (trainer -> tuner); a metrics line has "step" and "metrics" and no "event" ----------------

EV_APPLIED = "applied"
EV_PAUSED = "paused"
EV_RESUMED = "resumed"
EV_CHECKPOINT = "checkpoint"
EV_DONE = "done"
EV_MAX_STEPS = "max_steps"    # {"steps": N}: the step limit the run trains to now (first known, or changed)
EV_INEXACT = "inexact"        # {"reason": "..."}: this forked run does not continue its parent exactly
EVENTS_KINDS = (EV_APPLIED, EV_PAUSED, EV_RESUMED, EV_CHECKPOINT, EV_DONE, EV_MAX_STEPS, EV_INEXACT)

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - Python 3.10
    class StrEnum(str, Enum):
        """A str Enum whose members print and format as their value (enum.StrEnum before 3.11)."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return str(self.value).__format__(spec)


class Command(StrEnum):
    """The control commands, as an enum: a member equals its string (Command.STOP == "stop")."""

    PAUSE = CMD_PAUSE
    RESUME = CMD_RESUME
    STOP = CMD_STOP
    SET = CMD_SET
    CHECKPOINT = CMD_CHECKPOINT
    MAX_STEPS = CMD_MAX_STEPS


class Event(StrEnum):
    """The trainer's events (the "event" of a line that is not metrics), as an enum."""

    APPLIED = EV_APPLIED
    PAUSED = EV_PAUSED
    RESUMED = EV_RESUMED
    CHECKPOINT = EV_CHECKPOINT
    DONE = EV_DONE
    MAX_STEPS = EV_MAX_STEPS
    INEXACT = EV_INEXACT

# -- exit codes the shim uses when it cannot start the command (the shell's conventions) --------------

RC_NOT_FOUND = 127
RC_NOT_EXECUTABLE = 126

# Non-finite floats as strict-JSON strings (see the module docstring).
NAN = "NaN"
POS_INF = "Infinity"
NEG_INF = "-Infinity"
_DECODE = {NAN: math.nan, POS_INF: math.inf, NEG_INF: -math.inf}


# A step is stored as a SQLite INTEGER and in array("q"): a signed 64-bit int. A report outside
# 0..STEP_MAX is refused (the trainer API raises; the tuner skips the line as a bad event).
STEP_MAX = 2**63 - 1


def step_of(value: Any) -> int | None:
    """A reported step as an int in 0..STEP_MAX (a float is cut to its whole part), or None when it is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not 0.0 <= value < 2.0**63:   # NaN and inf fail it too
            return None
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= STEP_MAX:
        return None
    return value


def run_id(trial_id: int) -> str:
    """The run directory name of a trial: t0001, t0002, ..."""
    return f"t{trial_id:04d}"


def checkpoint_relpath(step: int) -> str:
    """Path of the checkpoint taken after `step`, relative to the run dir: ckpt/step-N.pt."""
    return f"{CKPT}/step-{step}.pt"


def resolve_resume(run_dir: str | os.PathLike[str], resume: str | None) -> str | None:
    """Absolute path of params.json's ``resume``: relative paths are relative to the study directory."""
    if not resume:
        return None
    p = Path(resume)
    if p.is_absolute():
        return str(p)
    study_dir = Path(run_dir).resolve().parent.parent
    return str(study_dir / p)


def encode_metric(x: float) -> float | str:
    """A metric value as strict JSON: finite floats as is, NaN/inf as "NaN"/"Infinity"/"-Infinity"."""
    if x - x == 0.0:  # false exactly for NaN and +-inf, and cheaper than math.isfinite
        return x
    if x != x:
        return NAN
    return POS_INF if x > 0 else NEG_INF


def decode_metric(v: Any) -> float | None:
    """A metric value read from events.jsonl as a float (NaN/inf included), or None if not a number."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        return _DECODE.get(v)
    return None


def decode_metrics(metrics: Any) -> dict[str, float]:
    """The numeric entries of an event's "metrics" object as floats (non-numbers dropped)."""
    if not isinstance(metrics, dict):
        return {}
    out: dict[str, float] = {}
    for k, v in metrics.items():
        f = decode_metric(v)
        if f is not None:
            out[str(k)] = f
    return out


def dumps(obj: dict[str, Any]) -> str:
    """One compact JSON line (no newline); refuses NaN so every line is strict JSON."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def append_line(path: str | os.PathLike[str], obj: dict[str, Any]) -> None:
    """Append one JSON object as one line with a single write (how the tuner writes control.jsonl)."""
    data = (dumps(obj) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _umask() -> int:
    """This process's umask, read without changing it (os.umask would, for every thread at once)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _final_mode(path: str, mode: int | None) -> int:
    """The mode the written file gets: that of the file it replaces, else `mode` (None: 0666) less the umask."""
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        return stat.S_IMODE(st.st_mode) & 0o777
    # As os.open(path, flags, mode) would: the umask may narrow the mode, never widen it.
    return (0o666 if mode is None else mode) & ~_umask()


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, mode: int | None = PRIVATE_FILE) -> Iterator[IO[bytes]]:
    """A binary file to write that replaces `path` whole when the block ends without an error.

    Readers see the old file or the whole new one, never a part (fsync, then rename). The temporary
    file is made by tempfile.mkstemp in the target's folder: an unpredictable name opened with
    O_EXCL, so a file or symlink planted there is never followed. The result keeps the mode of the
    file it replaces; a new file gets `mode` (None: what open() gives under the umask). On an error
    the temporary file is removed and the old file is left as it was.
    """
    import tempfile  # here, not at the top: the trainer imports this module and rarely writes whole files

    target = os.fspath(path)
    folder, name = os.path.split(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), _final_mode(target, mode))
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_dir(folder or ".")


def _sync_dir(folder: str) -> None:
    """Make a rename in `folder` durable (best effort: some file systems refuse a directory fsync)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    """Write a file whole or not at all (see atomic_file); a new file gets `mode` (None: the umask's)."""
    with atomic_file(path, mode=mode) as f:
        f.write(data)


def write_json_atomic(path: str | os.PathLike[str], obj: dict[str, Any]) -> None:
    """Write a run-directory JSON file whole or not at all; a new one is private (0600)."""
    write_atomic(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode(), mode=PRIVATE_FILE)


def read_json(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A JSON object file, or None when it is missing, unreadable or not an object."""
    try:
        with open(path, "rb") as f:
            obj = json.loads(f.read())
    except (OSError, ValueError, RecursionError):   # RecursionError: absurd nesting ([[[[...)
        return None
    return obj if isinstance(obj, dict) else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
