"""The launch shim: run one trainer detached from the tuner, log its output, record how it ended.

``python -m tui_tuner.launch RUN_DIR [--attempt TOKEN] -- COMMAND [ARG...]``

The shim is a session and process-group leader (started with start_new_session by `spawn`, in
tui_tuner/runtime/pids.py, the tuner's side), and the trainer is its child in the same group. So a dropped SSH session, a SIGHUP or the tuner's own crash
reach neither, while the tuner can still pause, continue or kill the whole run at once with
``os.killpg(shim_pid, SIGSTOP | SIGCONT | SIGKILL)``. SIGTERM and SIGINT sent to the shim itself are
forwarded to the trainer, so the runner should send those to the shim's pid only (`send_signal` does):
sent to the whole group the trainer would get them twice.

The command is an argv list, executed directly and never through a shell, so a value like
``"; rm -rf ~"`` reaches the trainer as one harmless argument. stdout and stderr are appended to
output.log; exit.json is written atomically when the trainer ends (see tui_tuner.trainer.protocol). A shim
killed by SIGKILL leaves no exit.json: the runner then settles the run by pid liveness.

Attempts. A run directory belongs to one attempt. `spawn` writes a fresh random token into
attempt.json and hands it to the shim. Before it writes anything, the shim takes an flock on that
file, checks that RUN_DIR/attempt.json is still that very file and holds its token, writes
launch.json, and only then lets go. A shim that finds another attempt's file (a tuner that died
right after spawning it, restarted, moved the run dir aside and started the trial afresh while
this shim was still starting) exits quietly, having written nothing. A tuner moves a run dir aside
only while it holds the same flock (`attempt_lock`), after it has looked for launch.json: so a shim
either claimed the dir first (and is adopted) or finds it gone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tui_tuner.errors import RunError
from tui_tuner.trainer import protocol

USAGE = "usage: python -m tui_tuner.launch RUN_DIR [--attempt TOKEN] -- COMMAND [ARG...]"
FORWARDED = (signal.SIGTERM, signal.SIGINT)
ATTEMPT_FLAG = "--attempt"
RESERVE = ".exit.reserve"   # a block kept free for exit.json, in case the trainer fills the disk
RESERVE_BYTES = 8192
LOCK_WAIT = 5.0   # seconds a tuner waits for a shim that is claiming a run dir right now

# -- the shim ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the shim: start COMMAND with TUI_TUNER_RUN_DIR set, wait for it, write exit.json."""
    args = list(sys.argv[1:] if argv is None else argv)
    token = None
    if len(args) > 3 and args[1] == ATTEMPT_FLAG:
        token, args = args[2], args[:1] + args[3:]
    if len(args) < 3 or args[1] != "--" or not args[0] or token == "":
        print(USAGE, file=sys.stderr)
        return 2
    run_dir = Path(args[0]).resolve()
    cmd = args[2:]
    _own_session()
    if token is None:   # started by hand, or by a tuner from before attempts: no check
        run_dir.mkdir(mode=protocol.PRIVATE_DIR, parents=True, exist_ok=True)
        protocol.write_json_atomic(run_dir / protocol.LAUNCH, {"pid": os.getpid(), "started": time.time()})
        _redirect_output(run_dir / protocol.OUTPUT)
    else:
        claim = _claim(run_dir, token)
        if claim is None:
            return 0   # another attempt's run dir now: not ours to write into or run in
        try:
            _set_aside_requeued(run_dir)
            protocol.write_json_atomic(run_dir / protocol.LAUNCH, {"pid": os.getpid(), "started": time.time()})
            _redirect_output(run_dir / protocol.OUTPUT)
        finally:
            os.close(claim)   # launch.json is there: a tuner now adopts this run rather than move it

    _reserve(run_dir)
    child: subprocess.Popen[bytes] | None = None
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        # Remember a signal that arrives before the child exists, and deliver it once it does.
        if child is None:
            pending.append(signum)
        elif child.returncode is None:
            try:
                os.kill(child.pid, signum)
            except ProcessLookupError:
                pass

    # A Slurm job's signals (scancel, its time limit) reach every process of the job: the trainer has
    # its own, and one forwarded on top would be a second SIGTERM (runtime/slurm.py sets this).
    slurm_job = os.environ.get("TUI_TUNER_EXECUTOR") == "slurm" and "SLURM_JOB_ID" in os.environ
    for sig in FORWARDED:
        signal.signal(sig, (lambda _s, _f: None) if slurm_job else forward)
    # A handler rather than SIG_IGN: an ignored signal stays ignored across exec, a handled one does
    # not, so the trainer keeps the default SIGHUP behaviour while the shim survives one.
    signal.signal(signal.SIGHUP, lambda _s, _f: None)

    env = dict(os.environ)
    env[protocol.ENV_RUN_DIR] = str(run_dir)
    # Output goes to a file, where Python would block-buffer it: a zero-code trainer's metric lines
    # would reach output.log late. Unbuffered unless the user chose otherwise.
    env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=env, close_fds=True)
    except OSError as e:
        rc = protocol.RC_NOT_FOUND if isinstance(e, FileNotFoundError) else protocol.RC_NOT_EXECUTABLE
        reason = f"cannot run {cmd[0]!r}: {e.strerror or e}"
        print(f"tui-tuner launch: {reason}", file=sys.stderr, flush=True)
        _write_exit(run_dir, rc, None, pid=None, error=reason)
        return rc
    for signum in pending:
        forward(signum, None)
    rc = child.wait()  # retried on EINTR after each forwarded signal (PEP 475)
    sig = -rc if rc < 0 else None
    _write_exit(run_dir, rc, sig, pid=child.pid)
    return 128 + sig if sig else rc


def _claim(run_dir: Path, token: str) -> int | None:
    """The locked fd of RUN_DIR/attempt.json when it is this attempt's (the token), else None."""
    path = run_dir / protocol.ATTEMPT
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)   # a tuner holds it only while it decides about this dir
        st, now = os.fstat(fd), os.stat(path)
        doc = json.loads(os.pread(fd, 4096, 0) or b"null")
        if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino) and isinstance(doc, dict) and doc.get("token") == token:
            return fd
    except (OSError, ValueError):
        pass   # moved, replaced or unreadable: in every case not this attempt's any more
    os.close(fd)
    return None


def new_attempt(run_dir: Path) -> str:
    """Make run_dir a new attempt's: a fresh token in attempt.json (written whole), returned for the shim."""
    token = secrets.token_hex(16)
    protocol.write_json_atomic(run_dir / protocol.ATTEMPT, {"token": token, "created": time.time()})
    return token


@contextlib.contextmanager
def attempt_lock(run_dir: Path, wait: float | None = None) -> Iterator[None]:
    """Hold the run dir's attempt lock, so that no shim claims it meanwhile (see "Attempts" above).

    A dir without attempt.json has no shim that checks it. RunError when a shim holds the lock for
    longer than `wait` seconds (default LOCK_WAIT; a shim stopped in the middle of its claim).
    """
    try:
        fd = os.open(run_dir / protocol.ATTEMPT, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        yield
        return
    try:
        deadline = time.monotonic() + (LOCK_WAIT if wait is None else wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RunError(f"{run_dir}: its launch shim is starting right now (it holds "
                                   f"{protocol.ATTEMPT}); try again in a moment") from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)


def _set_aside_requeued(run_dir: Path) -> None:
    """A Slurm job requeued after preemption runs this shim again in the same run directory: the exit.json
    and events of the run it cut short are kept as exit.requeued-N.json and events.requeued-N.jsonl, so
    they are not taken for this run's end and curve (the rerun starts its own)."""
    restarts = os.environ.get("SLURM_RESTART_COUNT", "")
    if os.environ.get("TUI_TUNER_EXECUTOR") == "slurm" and restarts.isdigit() and int(restarts) > 0:
        for name in (protocol.EXIT, protocol.EVENTS):
            stem, _, ext = name.partition(".")
            with contextlib.suppress(FileNotFoundError):
                os.replace(run_dir / name, run_dir / f"{stem}.requeued-{int(restarts)}.{ext}")


def _own_session() -> None:
    """Become a session leader unless `spawn` already made us one."""
    if os.getsid(0) == os.getpid():
        return
    try:
        os.setsid()
    except PermissionError:
        # Already a process-group leader (started by an interactive shell's job control): carry on in
        # the caller's session. Started through `spawn`, this never happens.
        pass


def _redirect_output(log: Path) -> None:
    """Point fds 1 and 2 (inherited by the trainer) at output.log, appending."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, protocol.PRIVATE_FILE)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _reserve(run_dir: Path) -> None:
    """Set aside one block for exit.json: a trainer that fills the disk must not leave its run without one."""
    try:
        fd = os.open(run_dir / RESERVE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, protocol.PRIVATE_FILE)
        try:
            os.write(fd, b"\0" * RESERVE_BYTES)
        finally:
            os.close(fd)
    except OSError as e:
        print(f"tui-tuner launch: cannot set space aside for {protocol.EXIT}: {e.strerror or e}", file=sys.stderr)


def _write_exit(run_dir: Path, rc: int, sig: int | None, *, pid: int | None, error: str | None = None) -> None:
    try:
        _write_exit_json(run_dir, rc, sig, pid=pid, error=error)
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # The disk is full: give back the block set aside at the start and say so in exit.json.
        with contextlib.suppress(OSError):
            os.unlink(run_dir / RESERVE)
        _write_exit_json(run_dir, rc, sig, pid=pid, error=error, disk_full=True)
        return
    with contextlib.suppress(OSError):
        os.unlink(run_dir / RESERVE)


def _write_exit_json(run_dir: Path, rc: int, sig: int | None, *, pid: int | None, error: str | None = None,
                     disk_full: bool = False) -> None:
    obj: dict[str, object] = {
        "returncode": rc,
        "signal": sig,
        "signal_name": signal_name(sig),
        "ended": time.time(),
        "pid": pid,
    }
    if error is not None:
        obj["error"] = error
    if disk_full:
        obj["disk_full"] = True
    protocol.write_json_atomic(run_dir / protocol.EXIT, obj)


def signal_name(sig: int | None) -> str | None:
    """SIGKILL for 9, "signal 77" for a number with no name; None for None."""
    if sig is None:
        return None
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


if __name__ == "__main__":
    sys.exit(main())
