"""How a run ended, decided from what its run directory recorded.

`decide` is a pure function of the recorded facts (the trainer's events, the launch shim's
exit.json, the stop commands in control.jsonl, the last output lines), so the tuner that watched
the run, a tuner restarted after it died, and `tui-tuner recover` all reach the same verdict.
The readers here turn a run directory's files into those facts and never raise on a corrupt or
missing file: a file that cannot be used is a fact too ("exit.json is unreadable").
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_tuner.trainer import protocol
from tui_tuner.trainer.tailing import JsonlTail, last_lines

OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError", "CUDA error: out of memory")
DISK_FULL_MARKERS = ("No space left on device", "Disk quota exceeded")   # ENOSPC, EDQUOT as Python says them
DISK_FULL_BYTES = 1 << 20   # less free than this (for an unprivileged writer) is a full disk
REASON_LINES = 5          # output lines kept under a failure's headline
OUTPUT_LINES = 200        # output lines a verdict looks at (OOM markers, the exception line)
MAX_JSON = 1 << 20        # a run's small JSON files (exit, launch, params) are never this big

# An exception line: "ValueError: ...", "torch.OutOfMemoryError: ...", "KeyboardInterrupt".
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b")
# A line naming an error otherwise: "CUDA error: ...", "error: ...", "...Error..." (not "val error 0.3").
_ERROR = re.compile(r"Error|\berror:")
_TRACEBACK = "Traceback (most recent call last):"
# A traceback's frame line: '  File "/x/model.py", line 42, in forward' (a SyntaxError's has no "in").
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)')
# The start of the reason of a run that ended cleanly without its objective (study/fail_fast.py reads it).
NO_OBJECTIVE = "exited without reporting the objective"


@dataclass(frozen=True)
class Facts:
    """What a run directory says about how its run ended."""

    exit: dict[str, Any] | None = None   # exit.json, when it exists and is usable
    exit_problem: str | None = None      # why an existing exit.json is not used ("is unreadable")
    done_at: float | None = None         # the time of the trainer's done event (inf: it had none)
    diverged: str | None = None          # the first non-finite objective/loss, as a sentence
    objective: float | None = None       # the reduced objective (best or last)
    stop_at: float | None = None         # the time of the first stop command in control.jsonl
    stop_reason: str | None = None       # why that stop was asked for, when the tuner said (an early stop)
    output: tuple[str, ...] = ()         # the last lines of output.log
    reported: tuple[str, ...] = ()       # the metrics the run reported (named when the objective is missing)
    unusable: str | None = None          # why the run dir cannot be credited at all (not a dir, not this trial's)
    disk_full: bool = False              # the disk holding the run dir is full (now, or exit.json says it was)
    cluster: str | None = None           # how a cluster ended the run's job, when it did (time limit, node failure)


def decide(f: Facts, objective_name: str) -> tuple[str, str | None]:
    """(status, reason) of an ended run: done, failed, stopped or diverged, and why."""
    rc, sig = exit_status(f.exit)
    clean = f.exit is not None and rc == 0 and not sig
    if f.unusable:
        return "failed", f.unusable
    if f.diverged:
        return "diverged", f.diverged
    if f.stop_at is not None:
        # A run that had finished its work before anyone asked it to stop is done, not stopped.
        finished_first = f.done_at is not None and f.done_at <= f.stop_at and (clean or f.exit is None)
        if not finished_first:
            return "stopped", _stopped_how(f, sig)
    if f.exit is None and f.done_at is not None:
        # The shim died (SIGKILL) but the trainer said it finished: its own word is what counts,
        # and it reads the same to the tuner that watched and to one restarted later.
        clean = True
    if clean:
        if f.objective is None:
            said = f"it reported {', '.join(f.reported)}" if f.reported else "it reported no metrics"
            return "failed", f"{NO_OBJECTIVE} {objective_name!r} ({said})" + explain(f.output)
        return "done", None
    if f.cluster:
        # Slurm ended the job (time limit, node, memory, a cancel): that is why, whatever the trainer died of.
        how = ("" if f.exit is None else f" (killed by {signal_label(sig)})" if sig else f" (exit code {rc})")
        return "failed", f.cluster + how + explain(f.output)
    if any(marker in line for line in f.output for marker in OOM_MARKERS):
        return "failed", "out of GPU memory"
    disk_full = f.disk_full or bool(f.exit and f.exit.get("disk_full")) or any(
        marker in line for line in f.output for marker in DISK_FULL_MARKERS)
    if f.exit is None:
        what = (f"ended without an exit status ({protocol.EXIT} {f.exit_problem})" if f.exit_problem
                else "ended without an exit status (the disk is full: its launch shim could not write "
                     f"{protocol.EXIT})" if disk_full
                else "ended without an exit status (its launch shim was killed)")
        return "failed", what + explain(f.output)
    if disk_full:
        how = f"killed by {signal_label(sig)}" if sig else f"exit code {rc}"
        return "failed", f"the disk is full ({how})" + explain(f.output)
    if sig:
        return "failed", f"killed by {signal_label(sig)}" + explain(f.output)
    return "failed", f"exit code {rc}" + explain(f.output)


def _stopped_how(f: Facts, sig: int | None) -> str:
    if f.stop_reason:
        return f.stop_reason
    if sig:
        return f"stopped ({signal_label(sig)})"
    if f.exit is None and f.done_at is None:
        # Only SIGKILL ends the shim without its exit.json (it outlives every other signal it gets).
        return "stopped (SIGKILL)"
    return "stopped"


def exit_status(info: dict[str, Any] | None) -> tuple[int | None, int | None]:
    """(returncode, signal) from exit.json, a negative returncode read as its signal."""
    if info is None:
        return None, None
    rc, sig = info.get("returncode"), info.get("signal")
    rc = rc if isinstance(rc, int) and not isinstance(rc, bool) else None
    sig = sig if isinstance(sig, int) and not isinstance(sig, bool) and sig > 0 else None
    if rc is not None and rc < 0 and not sig:
        sig, rc = -rc, None
    return rc, sig


def signal_label(sig: int) -> str:
    """SIGKILL for 9, "signal 77" for a number with no name."""
    import signal

    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def headline(lines: list[str] | tuple[str, ...]) -> str:
    """The line that says what went wrong, for one-line views (`show`, headless, the app).

    A traceback (the last one, when exceptions were chained) becomes its last frame's file:line and
    the exception line, e.g. "model.py:42: ValueError: bad shape"; an exception without a message
    gets that frame's source line, e.g. "model.py:42: AssertionError (assert t <= self.block_size)".
    Without a traceback: the last line naming an error, else the last line.
    """
    stripped = [ln.rstrip() for ln in lines]
    start = max((i for i, ln in enumerate(stripped) if ln.strip() == _TRACEBACK), default=None)
    at = None
    if start is not None:
        # The frames are indented; the first line after them that is not is the exception.
        at = next((i for i in range(start + 1, len(stripped)) if stripped[i] and not stripped[i][0].isspace()), None)
    if at is None:
        at = next((i for i in range(len(stripped) - 1, -1, -1)
                   if _EXCEPTION.match(stripped[i].strip()) or _ERROR.search(stripped[i])), None)
    if at is None:
        return stripped[-1].strip() if stripped else ""
    line = stripped[at].strip()
    frame = _last_frame(stripped, at, start)
    if frame is None:
        return line
    where, code = frame
    if _EXCEPTION.match(line) and ":" not in line and code:
        return f"{where}: {line} ({code})"
    return f"{where}: {line}"


def _last_frame(lines: list[str], at: int, start: int | None) -> tuple[str, str] | None:
    """("file.py:42", its source line or "") of the frame just above the exception line at `at`.

    Looks back through the indented lines above it (to the traceback's header, when there is one):
    a SyntaxError in the script itself is printed with its frame but without a header.
    """
    lo = start if start is not None else 0
    for i in range(at - 1, lo - 1, -1):
        m = _FRAME.match(lines[i])
        if m:
            code = lines[i + 1].strip() if i + 1 < at else ""
            if code and set(code) <= set("^~ "):
                code = ""
            return f"{Path(m['file']).name}:{m['line']}", code
        if start is None and lines[i] and not lines[i][0].isspace():
            return None   # out of the indented block above the error line
    return None


def explain(lines: list[str] | tuple[str, ...]) -> str:
    """": <headline>" and then the last few lines; empty when the run printed nothing."""
    if not lines:
        return ""
    tail = [ln.rstrip() for ln in lines[-REASON_LINES:]]
    return f": {headline(lines)}\n" + "\n".join(tail)


# -- reading the facts ---------------------------------------------------------------------------


def read_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A small JSON object file: (object, None), (None, None) when missing, (None, problem) when unusable.

    Never raises: absurd nesting, bad bytes, a directory in its place, a huge file are problems.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_JSON + 1)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        if isinstance(e, NotADirectoryError):
            return None, None
        return None, f"is unreadable ({e.strerror or e})"
    if len(data) > MAX_JSON:
        return None, f"is unreadable (over {MAX_JSON} bytes)"
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return None, "is unreadable (not JSON)"
    if not isinstance(obj, dict):
        return None, "is unreadable (not a JSON object)"
    return obj, None


def read_exit(run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """exit.json as (info, problem): info None when it is missing or unusable."""
    info, problem = read_json(run_dir / protocol.EXIT)
    if info is not None and exit_status(info) == (None, None):
        return None, "is unreadable (no returncode)"
    return info, problem


def first_stop(run_dir: Path) -> float | None:
    """When the first stop command was written to control.jsonl (None: no stop was ever asked for).

    A stop without a time (a hand-written line) counts from the start of time: it was asked for.
    """
    return stop_time(stop_command(run_dir))


def stop_time(cmd: dict[str, Any] | None) -> float | None:
    """When a stop command was written (-inf without a time; None for no command)."""
    if cmd is None:
        return None
    t = cmd.get("t")
    return float(t) if _is_time(t) else -math.inf


def stop_command(run_dir: Path) -> dict[str, Any] | None:
    """The first stop command of control.jsonl (its "why" says why the tuner asked, when it said), or None."""
    for cmd in JsonlTail(run_dir / protocol.CONTROL).read_all():
        if cmd.get("cmd") == protocol.CMD_STOP:
            return cmd
    return None


def stop_reason(cmd: dict[str, Any] | None) -> str | None:
    """The reason a stop command carries ("why"), as one line; None when it gives none."""
    why = cmd.get("why") if cmd else None
    return " ".join(why.split()) if isinstance(why, str) and why.strip() else None


def event_time(ev: dict[str, Any]) -> float:
    """An event's "t", or +inf when it has none (it then counts as later than any stop)."""
    t = ev.get("t")
    return float(t) if _is_time(t) else math.inf


def _is_time(t: Any) -> bool:
    if not isinstance(t, (int, float)) or isinstance(t, bool):
        return False
    try:
        return math.isfinite(t)
    except OverflowError:   # an int too big for a float (a trainer wrote "t": 1e400 as digits)
        return False


def output_tail(run_dir: Path, n: int = OUTPUT_LINES, max_bytes: int = 256 * 1024) -> tuple[str, ...]:
    """The last n non-empty lines of output.log (none when it cannot be read)."""
    return tuple(last_lines(run_dir / protocol.OUTPUT, n, max_bytes=max_bytes))


def disk_full(run_dir: Path) -> bool:
    """True when the file system holding run_dir has (nearly) no space or inodes left for its owner."""
    try:
        st = os.statvfs(run_dir)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < DISK_FULL_BYTES or (st.f_files > 0 and st.f_favail == 0)


def not_a_directory(run_dir: Path) -> str | None:
    """A sentence when the run dir exists but is not a directory (a file, a dangling link)."""
    if run_dir.is_dir():
        return None
    if run_dir.exists() or run_dir.is_symlink():
        return f"runs/{run_dir.name} is not a directory; its files cannot be read"
    return None
