"""A run's processes: spawning the launch shim, telling whether a run still goes, and ending what an
ended run left behind in its process group. The runner decides; this carries it out."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from tui_tuner import launch
from tui_tuner.errors import RunError
from tui_tuner.runtime import pids
from tui_tuner.search import devices, run_setup
from tui_tuner.search.argv import command_parts
from tui_tuner.search.space import Space
from tui_tuner.study import rundir
from tui_tuner.study.store import Trial
from tui_tuner.trainer import protocol

DEVICE_KEY = "device"     # params.json: the GPU a run was given (absent without [study] devices)


class Process:
    """A run's launch shim: its pid (also its process group), and whether this process spawned it."""

    def __init__(self, pid: int | None, run_dir: Path, *, child: bool = False) -> None:
        self.pid = pid
        self.run_dir = run_dir
        self.child = child                   # spawned by this process (so we reap it)
        self.shim_rc: int | None = None      # the shim's exit status, once we reaped it

    def alive(self) -> bool:
        """True while the run's trainer may still be going.

        Once exit.json exists (or our shim exited on its own), the trainer has ended, whatever helper
        it left behind in its process group: the run settles and `Leftovers` ends the helpers.
        Only a shim that died without exit.json (SIGKILLed) leaves the group as the sign of life.
        """
        pid = self.pid
        if not pid:
            return False
        if self.child:
            # Our own shim: reap it (a zombie looks alive) and keep its status for the verdict.
            rc = pids.reap(pid)
            if rc is None:
                return True
            self.child = False
            self.shim_rc = rc
        if (self.shim_rc is not None and self.shim_rc >= 0) or (self.run_dir / protocol.EXIT).exists():
            return False
        return adoptable(pid, self.run_dir)

    def send(self, sig: int) -> None:
        """SIGTERM goes to the shim, which forwards it; SIGSTOP/SIGCONT/SIGKILL to the whole group."""
        if self.pid:
            pids.send_signal(self.pid, sig)

    def queued(self) -> str | None:
        """Why the run waits to start (a cluster job's queue, runtime/slurm.py); a local run never waits."""
        return None

    def ended_how(self) -> str | None:
        """What ended the run from outside (a cluster's time limit, runtime/slurm.py); None for a local run."""
        return None

    def take_requeues(self) -> int:
        """Times the run went back to a cluster's queue since last asked (runtime/slurm.py); never for a local run."""
        return 0


def adoptable(pid: int | None, run_dir: Path) -> bool:
    """True when the run's shim (checked against its run dir, so a reused pid does not fool us) or a
    trainer it left behind in its process group still lives."""
    if not pid:
        return False
    if pids.pid_alive(pid, run_dir):
        return True
    return not pids.pid_alive(pid) and pids.group_alive(pid)


def going(pid: int | None, run_dir: Path) -> bool:
    """True while a run's trainer goes: no exit.json yet (whatever helper its group holds) and a live shim or group."""
    return run_dir.is_dir() and not (run_dir / protocol.EXIT).exists() and adoptable(pid, run_dir)


class Leftovers:
    """Process groups of ended runs that still hold processes: SIGTERMed, then SIGKILLed after a grace period."""

    def __init__(self) -> None:
        self.deadlines: dict[int, float] = {}   # process group -> when to SIGKILL it

    def __bool__(self) -> bool:
        return bool(self.deadlines)

    def end(self, pgid: int | None, now: float, term_timeout: float) -> None:
        """SIGTERM what an ended trainer left in its process group; `reap` SIGKILLs it later."""
        if pgid and pids.group_alive(pgid):
            pids.signal_group(pgid, signal.SIGTERM)
            pids.signal_group(pgid, signal.SIGCONT)
            self.deadlines[pgid] = now + term_timeout

    def reap(self, now: float) -> None:
        """Forget groups that are gone; SIGKILL those whose grace period is over."""
        for pgid, deadline in list(self.deadlines.items()):
            if not pids.group_alive(pgid):
                del self.deadlines[pgid]
            elif now >= deadline:
                pids.signal_group(pgid, signal.SIGKILL)
                del self.deadlines[pgid]

    def hurry(self, now: float) -> None:
        """SIGKILL every group at the next reap."""
        for pgid in self.deadlines:
            self.deadlines[pgid] = now


def spawn_run(space: Space, trial: Trial, run_dir: Path, resume: str | None, cwd: Path,
              space_file: str | None = None, device: str | None = None,
              launcher: Callable[..., int] | None = None) -> tuple[int, list[str]]:
    """Create the run dir, write params.json and start the study command under the launch shim: (pid, argv).

    The command runs in `cwd` (where the tuner was started) unless the space sets `[study] cwd`
    (relative to `space_file`), with the tuner's environment plus `[study.env]`. command.json
    records what ran: the command and flags, the program (the interpreter that really ran), the
    directory and the extra environment, for `export --format command`. `launcher` starts the shim
    elsewhere (a Slurm job: runtime/slurm.py), called as `pids.spawn` is; it returns 0 for no local pid.

    A `device` (`[study] devices`) is the run's one GPU: its CUDA_VISIBLE_DEVICES (with CUDA_DEVICE_ORDER
    PCI_BUS_ID, so GPU N is the one NVML calls N), in the extra environment and in params.json.
    """
    try:
        run_dir.mkdir(mode=protocol.PRIVATE_DIR, parents=True)
    except OSError as e:
        raise RunError(f"trial {trial.id}: cannot create {run_dir}: {e.strerror or e}") from None
    params_doc: dict[str, object] = {"trial": trial.id, "params": trial.params, "resume": resume}
    if device is not None:
        params_doc[DEVICE_KEY] = device
    protocol.write_json_atomic(run_dir / protocol.PARAMS, params_doc)
    home = run_dir.resolve()
    cfg = space.config
    command, flags = command_parts(space, trial.params, run_dir=home, trial=trial.id)
    argv = command + flags
    where = run_setup.trial_cwd(cfg.cwd, space_file or space.path, cwd, home, trial.id)
    if not where.is_dir():
        raise RunError(f"trial {trial.id}: [study] cwd {where}: no such directory")
    extra = run_setup.trial_env(cfg.env, home, trial.id)
    if device is not None:
        extra.setdefault(devices.ORDER_ENV, devices.ORDER)
        extra[devices.ENV] = device
    env = dict(os.environ)
    env.update(extra)
    env[protocol.ENV_RUN_DIR] = str(home)
    # Output goes to a file: without this a Python script block-buffers it and a zero-code
    # run shows no metrics for minutes.
    env.setdefault("PYTHONUNBUFFERED", "1")
    protocol.write_json_atomic(run_dir / run_setup.COMMAND_FILE,
                               run_setup.record(command, flags, where, extra, env))
    try:
        pid = (launcher or pids.spawn)(run_dir, argv, env=env, cwd=where)
    except OSError as e:
        raise RunError(f"trial {trial.id}: cannot start {argv[0]}: {e.strerror or e}") from None
    return pid, argv


def earlier_attempt(trial: Trial, run_dir: Path, live_names: set[str]) -> tuple[int, float | None] | None:
    """A run dir already there before a start (a tuner died between spawning and recording).

    Returns the shim's (pid, started) when that run ran (or runs) this very setting, to be taken
    over rather than run twice; otherwise the run dir is moved aside to runs/tNNNN.attempt-K, kept,
    and None says the trial starts afresh. RunError when it is another setting and still going.
    """
    if not (run_dir.exists() or run_dir.is_symlink()):
        return None
    # Under the attempt lock: a shim still starting there cannot claim the dir while we decide.
    with launch.attempt_lock(run_dir):
        return _earlier_attempt(trial, run_dir, live_names)


def _earlier_attempt(trial: Trial, run_dir: Path, live_names: set[str]) -> tuple[int, float | None] | None:
    shim = rundir.launched(run_dir) if run_dir.is_dir() else None
    if shim is not None:
        problem = rundir.params_mismatch(run_dir, trial, live_names)
        if problem is None:
            return shim
        if going(shim[0], run_dir):
            raise RunError(f"{problem}; that run is still going, so trial {trial.id} does not start over it")
    try:
        rundir.set_aside(run_dir)
    except OSError as e:
        raise RunError(f"trial {trial.id}: cannot move {run_dir} aside: {e.strerror or e}") from None
    return None
