"""The tuner's side of the launch shim: start a trainer under `tui_tuner.launch`, reap the shim, tell
whether a run's processes are alive, and signal them.

The shim is a session and process-group leader: its pid is also the run's process group. SIGTERM and
SIGINT go to the shim alone (it forwards them to the trainer); SIGSTOP, SIGCONT and SIGKILL go to the
whole group, so a paused run is paused entirely. See tui_tuner/launch.py for the shim itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tui_tuner.errors import RunError
from tui_tuner.launch import ATTEMPT_FLAG, FORWARDED, new_attempt
from tui_tuner.trainer import protocol

# Shims started by this process, kept so they can be reaped (a Popen dropped on the floor is reaped
# only by chance, at the next Popen, and meanwhile sits as a zombie that looks alive to kill(pid, 0)).
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(run_dir: str | os.PathLike[str], argv: Sequence[str], env: Mapping[str, str] | None = None,
          cwd: str | os.PathLike[str] | None = None) -> int:
    """Start COMMAND under the shim in a new session; return the shim's pid (also its process group).

    `env` is the environment (default: this process's); the shim adds TUI_TUNER_RUN_DIR. Call
    `reap` or `pid_alive` on the pid from time to time so the ended shim does not linger as a zombie.
    """
    argv = list(argv)
    if not argv or not all(isinstance(a, str) and a for a in argv):
        raise RunError(f"command must be a non-empty list of non-empty strings, got {argv!r}")
    run = Path(run_dir).resolve()
    run.mkdir(mode=protocol.PRIVATE_DIR, parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "tui_tuner.launch", str(run), ATTEMPT_FLAG, new_attempt(run), "--", *argv]
    # The shim's own stdout/stderr go to output.log too, so even its import errors are visible there.
    fd = os.open(run / protocol.OUTPUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, protocol.PRIVATE_FILE)
    with open(fd, "ab") as log:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=None if env is None else dict(env), cwd=cwd,
                                    start_new_session=True, close_fds=True)
        except OSError as e:
            raise RunError(f"cannot start the launch shim for {run}: {e.strerror or e}") from None
    _children[proc.pid] = proc
    return proc.pid


# A pid_t is a C int; a pid from a damaged database can be anything (os.kill(2**62) overflows).
_PID_MAX = 2**31 - 1


def _possible(pid: object) -> bool:
    """True for a number that can be a process id (a positive C int); bools and absurd values are not."""
    return isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid <= _PID_MAX


def reap(pid: int) -> int | None:
    """Collect a shim this process started, if it has ended: its exit status, else None.

    Also None for a pid that is not this process's child (e.g. a run re-adopted after a restart).
    """
    if not _possible(pid):
        return None
    proc = _children.get(pid)
    if proc is not None:
        rc = proc.poll()
        if rc is None:
            return None
        del _children[pid]
        return rc
    try:
        wpid, status = os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        return None
    return os.waitstatus_to_exitcode(status) if wpid else None


def pid_alive(pid: int, run_dir: str | os.PathLike[str] | None = None) -> bool:
    """True if pid is a live process (a zombie counts as dead; this process's own ended shims are reaped).

    With run_dir, also check (where /proc allows) that the process is the shim of that run, so a
    recycled pid after a reboot is not mistaken for the run.
    """
    if not _possible(pid):
        return False
    if pid in _children and reap(pid) is not None:
        return False
    state = _proc_state(pid)
    if state is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if state in GONE:
        return False
    if run_dir is not None:
        args = _command_line(pid)
        if args is None:
            return True   # /proc would not say: the pid is alive, and may be the shim
        return os.fsencode(str(Path(run_dir).resolve())) in args
    return True


# How long a live process may show no command line: between execve replacing its memory and the
# kernel setting its arguments (Popen has already returned by then) /proc/PID/cmdline reads empty.
EXEC_WINDOW = 0.5


def _command_line(pid: int) -> list[bytes] | None:
    """The arguments /proc shows for pid ([] if it is gone), waiting out the instant of its exec; None
    when /proc will not say."""
    deadline = time.monotonic() + EXEC_WINDOW
    while True:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        except OSError:
            return None
        if data or time.monotonic() >= deadline or _proc_state(pid) in GONE:
            return data.split(b"\0") if data else []
        time.sleep(0.002)


def group_alive(pgid: int) -> bool:
    """True if any live (non-zombie) process is in process group pgid.

    Needed when the shim itself is gone (SIGKILLed) but the trainer it started may still run.
    """
    if not _possible(pgid):
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc"):
        return True
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0].decode("ascii", "replace") not in GONE:
            return True
    return False


def send_signal(pid: int, sig: int) -> bool:
    """Signal a run started by `spawn`: SIGTERM/SIGINT to the shim (which forwards them), others to the group.

    SIGSTOP/SIGCONT/SIGKILL go to the whole process group, so a paused run is paused entirely. If the
    shim is gone, SIGTERM/SIGINT go to the group instead. False when no such process or group exists.
    """
    if not _possible(pid):
        return False
    try:
        if sig in FORWARDED:
            try:
                os.kill(pid, sig)
                return True
            except ProcessLookupError:
                pass
        os.killpg(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def signal_group(pgid: int, sig: int) -> bool:
    """Send sig to every process of group pgid (e.g. helpers an ended trainer left behind)."""
    if not _possible(pgid):
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# The /proc states of a process that runs no more: a zombie, dead, or ('' from _proc_state) gone.
GONE = ("Z", "X", "x", "")


def _proc_state(pid: int) -> str | None:
    """The one-letter state from /proc/PID/stat ('' if the process is gone), or None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return "" if os.path.isdir("/proc") else None
    except OSError:
        return None
    # The command name is in parentheses and may itself contain ') ', so split after the last one.
    rest = data[data.rfind(b")") + 2:]
    return rest[:1].decode("ascii", "replace")
