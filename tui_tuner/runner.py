"""Runs trials as processes and follows them through their run directories.

The runner starts a trial under the launch shim, tails what the trainer writes (events.jsonl, or
output.log for a zero-code script), keeps a small bounded picture of each run in memory (latest
metrics, downsampled series), writes commands to control.jsonl (pause, resume, set, checkpoint,
stop) and settles each run in the study when it ends. It never imports textual: the app gives it
an `on_event` callback and calls `poll()` from a thread (`start_thread`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_tuner import launch, protocol
from tui_tuner.adapters import LineTail, MetricParser, command_argv, tail_lines
from tui_tuner.errors import RunError, SpaceError

# Polled per run; the defaults suit a person pressing keys, tests shrink them.
STOP_TIMEOUT = 10.0        # after the stop command, before SIGTERM
TERM_TIMEOUT = 5.0         # after SIGTERM, before SIGKILL of the process group
CHECKPOINT_TIMEOUT = 60.0  # a fork waits this long for the parent's checkpoint
PROGRESS_EVERY = 1.0       # seconds between step/objective writes to the study per run
FAST_POLL = 0.003          # poll-thread period for FAST_WINDOW seconds after a command
FAST_WINDOW = 0.5
SERIES_POINTS = 512        # per metric and run, whatever the run's length
OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError", "CUDA error: out of memory")
REASON_LINES = 5
OUTPUT_PREV = "output.prev.log"  # a retried run's earlier output.log


@dataclass
class RunEvent:
    """Something that happened to a run, handed to the `on_event` callback.

    kinds: started, metrics (coalesced: one per poll and run), applied, paused, resumed,
    checkpoint, done, diverged, stalled (data["stalled"] True/False), garbage, ended
    (data: status, reason, objective), error (the poll thread caught an exception).
    """

    kind: str
    trial_id: int
    data: dict[str, Any] = field(default_factory=dict)


class Series:
    """A bounded learning curve: at most `cap` points; when full, neighbouring pairs merge.

    Each stored point then stands for twice as many raw points (mean value, last step), so a run
    reporting thousands of steps a second keeps a fixed memory and an even view of its whole curve.
    Points live in two typed arrays (16 bytes a point), so a study of many runs stays small.
    """

    def __init__(self, cap: int = SERIES_POINTS) -> None:
        self.cap = max(2, cap)
        self.steps = array("q")
        self.values = array("d")
        self.stride = 1
        self._sum = 0.0
        self._n = 0
        self._step = 0

    def __len__(self) -> int:
        return len(self.steps) + (1 if self._n else 0)

    def add(self, step: int, value: float) -> None:
        """Add one raw point (non-finite values are left out of the curve)."""
        if not math.isfinite(value):
            return
        self._sum += value
        self._n += 1
        self._step = step
        if self._n < self.stride:
            return
        self.steps.append(self._step)
        self.values.append(self._sum / self._n)
        self._sum, self._n = 0.0, 0
        if len(self.steps) >= self.cap:
            st, va = self.steps, self.values
            n = len(st) - len(st) % 2
            steps = array("q", st[1:n:2])
            values = array("d", ((va[i] + va[i + 1]) / 2 for i in range(0, n, 2)))
            if len(st) % 2:
                steps.append(st[-1])
                values.append(va[-1])
            self.steps, self.values = steps, values
            self.stride *= 2

    def get(self) -> list[tuple[int, float]]:
        """The curve as (step, value) pairs, the not yet merged tail included."""
        pts = list(zip(self.steps, self.values, strict=True))
        if self._n:
            pts.append((self._step, self._sum / self._n))
        return pts


class _Run:
    """What the runner knows about one run (live or settled in this session)."""

    def __init__(self, runner: Runner, trial, run_dir: Path, zero_code: bool) -> None:
        self.trial_id: int = trial.id
        self.run_dir = run_dir
        self.pid: int | None = trial.pid
        self.zero_code = zero_code
        self.params: dict[str, Any] = dict(trial.params)   # with applied live changes
        self.started: float = trial.started or time.time()
        self.ended: float | None = None
        self.status: str = trial.status if trial.status in ("running", "paused") else "running"
        self.events = protocol.JsonlTail(run_dir / protocol.EVENTS)
        self.output = LineTail(run_dir / protocol.OUTPUT)
        self.parser = MetricParser(runner.space.study.metrics) if zero_code else None
        self.series: dict[str, Series] = {}
        self.metrics: dict[str, float] = {}
        self.step: int | None = trial.step
        self.best: float | None = None
        self.last: float | None = None
        self.last_activity = time.time()
        self.stalled = False
        self.garbage = 0
        self.done_seen = False
        self.diverged: str | None = None
        self.checkpoints: dict[int, dict[str, Any]] = {}
        self.applied: list[dict[str, Any]] = []
        self.stop_at: float | None = None     # when a stop was asked for
        self.stop_phase = 0                   # 0 none, 1 stop command sent, 2 SIGTERM, 3 SIGKILL
        self.phase_deadline = 0.0
        self.stop_done_before = False         # a done event arrived before the stop was asked
        self.progress_written = 0.0
        self.settled = False
        self.live = False
        self.child = False                    # spawned by this process (so we reap it)
        self.shim_rc: int | None = None       # the shim's exit status, when we reaped it
        self.seq = 0                          # last control seq written


class Runner:
    """Starts, follows and controls the runs of one study."""

    def __init__(self, study, on_event: Callable[[RunEvent], None] | None = None, *,
                 cwd: str | Path | None = None, stop_timeout: float = STOP_TIMEOUT,
                 term_timeout: float = TERM_TIMEOUT, checkpoint_timeout: float = CHECKPOINT_TIMEOUT,
                 stall_timeout: float | None = None) -> None:
        self.study = study
        self.space = study.space
        self.config = study.space.study
        self.on_event = on_event
        # The directory the tuner was started from: a relative command path resolves there.
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
        self.stop_timeout = stop_timeout
        self.term_timeout = term_timeout
        self.checkpoint_timeout = checkpoint_timeout
        self.stall_timeout = self.config.stall_timeout if stall_timeout is None else stall_timeout
        self.runs: dict[int, _Run] = {}
        self._lock = threading.RLock()
        self._depth = 0                       # nesting of _locked() by the thread holding the lock
        self._pending: deque[RunEvent] = deque()
        self._dispatching = threading.Lock()
        self._quiet = False
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._cancel = threading.Event()   # set by cancel_waits(): a fork stops waiting for its checkpoint
        self._kick = threading.Event()
        self._fast_until = 0.0
        self._leftovers: dict[int, float] = {}  # process group of an ended run -> when to SIGKILL it

    # -- starting ---------------------------------------------------------------------------------

    def start(self, trial) -> None:
        """Write params.json, spawn the launch shim with the study command, mark the trial started."""
        with self._locked():
            if trial.id in self.runs and self.runs[trial.id].live:
                raise RunError(f"trial {trial.id} is already running")
            # Checked before spawning: a process the study would refuse to record would be an orphan.
            current = self.study.trial(trial.id)
            if current.status != "queued":
                raise RunError(f"trial {trial.id} is {current.status}; only a queued trial can start")
            trial = current
            run_dir = self.study.run_dir(trial.id)
            run_dir.mkdir(parents=True, exist_ok=True)
            orphan = _orphan_shim(run_dir)
            if orphan is not None:
                # A tuner died between spawning this run and recording it: the run is going, adopt it.
                self.study.mark_started(trial.id, orphan)
                self._adopt_one(self.study.trial(trial.id), run_dir)
                return
            # A previous attempt (a tuner killed between spawn and bookkeeping) must not leak in.
            for name in (protocol.EVENTS, protocol.CONTROL, protocol.EXIT, protocol.LAUNCH):
                with contextlib.suppress(FileNotFoundError):
                    (run_dir / name).unlink()
            # Its output too (a zero-code run would re-read its metric lines), kept aside to read.
            with contextlib.suppress(FileNotFoundError):
                (run_dir / protocol.OUTPUT).replace(run_dir / OUTPUT_PREV)
            resume = str((self.study.dir / trial.resume).resolve()) if trial.resume else None
            params_doc = {"trial": trial.id, "params": trial.params, "resume": resume}
            protocol.write_json_atomic(run_dir / protocol.PARAMS, params_doc)
            argv = command_argv(self.space, trial.params)
            env = dict(os.environ)
            env[protocol.ENV_RUN_DIR] = str(run_dir.resolve())
            # Output goes to a file: without this a Python script block-buffers it and a zero-code
            # run shows no metrics for minutes.
            env.setdefault("PYTHONUNBUFFERED", "1")
            try:
                pid = launch.spawn(run_dir, argv, env=env, cwd=self.cwd)
            except OSError as e:
                raise RunError(f"trial {trial.id}: cannot start {argv[0]}: {e.strerror or e}") from None
            self.study.mark_started(trial.id, pid)
            fresh = self.study.trial(trial.id)
            run = _Run(self, fresh, run_dir, self.config.zero_code)
            run.pid = pid
            run.live = True
            run.child = True
            run.status = "running"
            self.runs[trial.id] = run
            self._emit("started", trial.id, {"pid": pid, "argv": argv})

    # -- following --------------------------------------------------------------------------------

    def poll(self) -> None:
        """Read what every live run wrote since the last call, drive stops, settle ended runs."""
        with self._locked():
            for run in list(self.runs.values()):
                if run.live:
                    self._poll_run(run)
            if self._leftovers:
                self._reap_leftovers(time.time())

    def _poll_run(self, run: _Run) -> None:
        now = time.time()
        alive = self._alive(run)
        count = self._read(run, final=not alive)
        if count:
            self._emit("metrics", run.trial_id, {"step": run.step, "metrics": dict(run.metrics),
                                                 "count": count})
        if not alive:
            self._settle(run)
            self._end_leftovers(run, now)
            return
        if run.stop_phase:
            self._escalate(run, now)
        if run.diverged and not run.stop_phase:
            self._begin_stop(run)
        if (not run.stalled and run.status == "running" and self.stall_timeout > 0
                and now - run.last_activity > self.stall_timeout):
            run.stalled = True
            self._emit("stalled", run.trial_id, {"stalled": True, "since": run.last_activity})
        if now - run.progress_written >= PROGRESS_EVERY:
            self._write_progress(run, now)

    def _write_progress(self, run: _Run, now: float) -> None:
        run.progress_written = now
        with contextlib.suppress(Exception):
            self.study.update_progress(run.trial_id, run.step, _finite(self._objective(run)))

    def _read(self, run: _Run, final: bool = False) -> int:
        """Consume new events or output lines; returns how many metric reports came in."""
        count = 0
        while True:
            n, behind = self._read_some(run, final)
            count += n
            # A poll reads a bounded chunk; settling or replaying reads everything there is.
            if not (behind and (final or not run.live)):
                return count

    def _read_some(self, run: _Run, final: bool) -> tuple[int, bool]:
        count = 0
        if run.zero_code:
            lines = run.output.read_new()
            behind = run.output.behind
            if final and not behind:
                lines += run.output.flush()
            if lines:
                self._activity(run)
            for line in lines:
                ev = run.parser.feed(line)
                if ev is not None:
                    self._metrics(run, ev["step"], ev["metrics"])
                    count += 1
            return count, behind
        events, garbage = run.events.read_new(final=final)
        behind = run.events.behind
        if garbage:
            run.garbage += garbage
            self._activity(run)
            self._emit("garbage", run.trial_id, {"count": run.garbage, "new": garbage})
        for ev in events:
            self._activity(run)
            if not isinstance(ev, dict):
                run.garbage += 1
                continue
            if "metrics" in ev and isinstance(ev.get("metrics"), dict):
                step = ev.get("step")
                step = int(step) if isinstance(step, (int, float)) and math.isfinite(step) else (run.step or 0)
                self._metrics(run, step, protocol.decode_metrics(ev["metrics"]))
                count += 1
                continue
            self._event(run, ev)
        return count, behind

    def _activity(self, run: _Run) -> None:
        run.last_activity = time.time()
        if run.stalled:
            run.stalled = False
            self._emit("stalled", run.trial_id, {"stalled": False})

    def _metrics(self, run: _Run, step: int, metrics: dict[str, Any]) -> None:
        run.step = step
        for name, value in metrics.items():
            run.metrics[name] = value
            series = run.series.get(name)
            if series is None:
                series = run.series[name] = Series()
            series.add(step, value)
            if name == self.config.objective:
                run.last = value
                if math.isfinite(value) and (run.best is None or self.config.better(value, run.best)):
                    run.best = value
            if not math.isfinite(value) and run.diverged is None and (
                    name == self.config.objective or name.endswith("loss")):
                run.diverged = f"{name} is {value} at step {step}"
                self._emit("diverged", run.trial_id, {"reason": run.diverged, "step": step})

    def _event(self, run: _Run, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "applied":
            params = ev.get("params") if isinstance(ev.get("params"), dict) else {}
            run.params.update(params)
            run.applied.append({"step": run.step, "params": params, "t": ev.get("t")})
            with contextlib.suppress(Exception):
                # Persisted so an export or a later fork of a babysat run carries the value it trains with.
                if run.live and params:
                    self.study.apply_live(run.trial_id, params)
            self._emit("applied", run.trial_id, {"params": params, "step": run.step})
        elif kind in ("paused", "resumed"):
            run.status = "paused" if kind == "paused" else "running"
            with contextlib.suppress(Exception):
                if run.live and not run.stop_phase:
                    self.study.set_status(run.trial_id, run.status)
            self._emit(kind, run.trial_id, {"step": run.step})
        elif kind == "checkpoint":
            seq = ev.get("seq")
            if isinstance(seq, int):
                run.checkpoints[seq] = ev
            self._emit("checkpoint", run.trial_id, {k: ev.get(k) for k in ("seq", "path", "step")})
        elif kind == "done":
            run.done_seen = True
            if not run.stop_phase:
                run.stop_done_before = True
            self._emit("done", run.trial_id, {"step": run.step})
        else:
            # A well-formed line of a kind we do not know: newer trainer; not an error.
            pass

    def _objective(self, run: _Run) -> float | None:
        return run.best if self.config.reduce == "best" else run.last

    # -- liveness and settling ----------------------------------------------------------------------

    def _alive(self, run: _Run) -> bool:
        """True while the run's trainer may still be going.

        Once exit.json exists (or our shim exited on its own), the trainer has ended, whatever helper
        it left behind in its process group: the run settles and `_reap_leftovers` ends the helpers.
        Only a shim that died without exit.json (SIGKILLed) leaves the group as the sign of life.
        """
        pid = run.pid
        if not pid:
            return False
        if run.child:
            # Our own shim: reap it (a zombie looks alive) and keep its status for the verdict.
            rc = launch.reap(pid)
            if rc is None:
                return True
            run.child = False
            run.shim_rc = rc
        if (run.shim_rc is not None and run.shim_rc >= 0) or (run.run_dir / protocol.EXIT).exists():
            return False
        return _adoptable(pid, run.run_dir)

    def _end_leftovers(self, run: _Run, now: float) -> None:
        """SIGTERM what the ended trainer left in its process group; poll() SIGKILLs it later."""
        pgid = run.pid
        if pgid and launch.group_alive(pgid):
            launch.signal_group(pgid, signal.SIGTERM)
            launch.signal_group(pgid, signal.SIGCONT)
            self._leftovers[pgid] = now + self.term_timeout

    def _reap_leftovers(self, now: float) -> None:
        for pgid, deadline in list(self._leftovers.items()):
            if not launch.group_alive(pgid):
                del self._leftovers[pgid]
            elif now >= deadline:
                launch.signal_group(pgid, signal.SIGKILL)
                del self._leftovers[pgid]

    def _settle(self, run: _Run) -> None:
        """The run's processes are gone: decide its status and record it in the study."""
        exit_info = protocol.read_json(run.run_dir / protocol.EXIT)
        run.ended = time.time()
        objective = self._objective(run)
        status, reason = self._verdict(run, exit_info, objective)
        run.live = False
        run.settled = True
        run.status = status
        if run.step is not None:
            self.study.update_progress(run.trial_id, run.step, None)
        self.study.finish(run.trial_id, status, objective=_finite(objective), reason=reason)
        self._emit("ended", run.trial_id, {"status": status, "reason": reason,
                                           "objective": _finite(objective), "step": run.step})

    def _verdict(self, run: _Run, exit_info: dict | None, objective: float | None) -> tuple[str, str | None]:
        rc = exit_info.get("returncode") if exit_info else None
        sig = exit_info.get("signal") if exit_info else None
        if exit_info is None and run.shim_rc is not None:
            # The shim itself died without writing exit.json (SIGKILL): its status is all we have.
            rc = run.shim_rc
            if rc < 0:
                sig, rc = -rc, None
        if isinstance(rc, int) and rc < 0 and not sig:
            sig, rc = -rc, None
        if run.diverged:
            return "diverged", run.diverged
        if run.stop_phase and not (run.stop_done_before and rc == 0):
            how = {1: "", 2: " (SIGTERM)", 3: " (SIGKILL)"}.get(run.stop_phase, "")
            return "stopped", f"stopped{how}"
        lines = tail_lines(run.run_dir / protocol.OUTPUT, 200)
        if rc == 0 and not sig:
            if objective is None:
                return "failed", (f"exited without reporting the objective {self.config.objective!r}"
                                  + _last_lines(lines))
            return "done", None
        if any(marker in line for line in lines for marker in OOM_MARKERS):
            return "failed", "out of GPU memory"
        if exit_info is None and rc is None and sig is None:
            if run.done_seen and objective is not None:
                # Its shim was killed while the tuner was away, but the run finished its work.
                return "done", None
            return "failed", "ended without an exit status (its launch shim was killed)" + _last_lines(lines)
        if sig:
            name = launch.signal_name(sig)
            return "failed", f"killed by {name}" + _last_lines(lines)
        return "failed", f"exit code {rc}" + _last_lines(lines)

    # -- commands ---------------------------------------------------------------------------------

    def _live_run(self, trial_id: int) -> _Run:
        run = self.runs.get(trial_id)
        if run is None or not run.live:
            raise RunError(f"trial {trial_id} is not running")
        return run

    def _control(self, run: _Run, cmd: str, **extra: Any) -> int:
        """Append one command line to control.jsonl with the next seq; returns the seq."""
        path = run.run_dir / protocol.CONTROL
        seq = max(run.seq, _last_seq(path)) + 1
        # One write of one whole line (O_APPEND), so the trainer never reads half a command.
        protocol.append_line(path, {"seq": seq, "cmd": cmd, **extra, "t": time.time()})
        run.seq = seq
        self._hurry()
        return seq

    def _hurry(self) -> None:
        """Poll fast for a moment: a command was just sent and its answer is on its way."""
        self._fast_until = time.time() + FAST_WINDOW
        self._kick.set()

    def _signal(self, run: _Run, sig: int) -> None:
        # SIGTERM goes to the shim, which forwards it; SIGSTOP/SIGCONT/SIGKILL to the whole group.
        if run.pid:
            launch.send_signal(run.pid, sig)
            self._hurry()

    def pause(self, trial_id: int) -> None:
        """Pause a run: a pause command, or SIGSTOP of its process group for a zero-code run."""
        with self._locked():
            run = self._live_run(trial_id)
            if run.status == "paused":
                return
            if run.zero_code:
                self._signal(run, signal.SIGSTOP)
                run.status = "paused"
                self.study.set_status(trial_id, "paused")
                self._emit("paused", trial_id, {"step": run.step})
            else:
                self._control(run, "pause")

    def resume(self, trial_id: int) -> None:
        """Resume a paused run (resume command, or SIGCONT for a zero-code run)."""
        with self._locked():
            run = self._live_run(trial_id)
            if run.zero_code:
                self._signal(run, signal.SIGCONT)
                if run.status == "paused":
                    run.status = "running"
                    run.last_activity = time.time()
                    self.study.set_status(trial_id, "running")
                    self._emit("resumed", trial_id, {"step": run.step})
            else:
                self._control(run, "resume")
                # The clock for a stall starts again from here, not from the pause.
                run.last_activity = time.time()

    def can_adjust(self, trial_id: int) -> bool:
        """True when live changes and checkpoints are possible (the run uses the trainer API)."""
        run = self.runs.get(trial_id)
        zero_code = run.zero_code if run is not None else self.config.zero_code
        return not zero_code

    def set(self, trial_id: int, changes: dict[str, Any]) -> int:
        """Change live parameters of a running trial; returns the command's seq.

        Each value is checked against the space: unknown, not live, or out of range raises
        SpaceError naming the parameter and the rule.
        """
        with self._locked():
            run = self._live_run(trial_id)
            if run.zero_code:
                raise RunError(f"trial {trial_id}: adjust is not available for this run "
                               f"(a zero-code script takes its settings only as flags at start; fork it instead)")
            if not changes:
                raise RunError(f"trial {trial_id}: nothing to change")
            checked = self.space.check_setting(changes, partial=True)
            for name in checked:
                if not self.space[name].live:
                    raise SpaceError(f"params.{name}: not live, so it cannot change while the run trains "
                                     f"(set live = true in the space file, or fork the run)")
            return self._control(run, "set", params=checked)

    def checkpoint(self, trial_id: int) -> int:
        """Ask a run to save a checkpoint; returns the seq its checkpoint event will carry."""
        with self._locked():
            run = self._live_run(trial_id)
            if run.zero_code:
                raise RunError(f"trial {trial_id}: checkpoints are not available for a zero-code run")
            return self._control(run, "checkpoint")

    def stop(self, trial_id: int) -> None:
        """Stop a run gracefully; poll() escalates to SIGTERM, then SIGKILL, after the timeouts."""
        with self._locked():
            run = self._live_run(trial_id)
            self._begin_stop(run)

    def _begin_stop(self, run: _Run) -> None:
        if run.stop_phase:
            return
        run.stop_at = time.time()
        if run.zero_code:
            # A stopped (SIGSTOP) process cannot act on SIGTERM: wake it first.
            self._signal(run, signal.SIGCONT)
            self._signal(run, signal.SIGTERM)
            run.stop_phase, run.phase_deadline = 2, run.stop_at + self.term_timeout
        else:
            self._control(run, "stop")
            run.stop_phase, run.phase_deadline = 1, run.stop_at + self.stop_timeout

    def _escalate(self, run: _Run, now: float) -> None:
        if now < run.phase_deadline:
            return
        if run.stop_phase == 1:
            self._signal(run, signal.SIGCONT)
            self._signal(run, signal.SIGTERM)
            run.stop_phase, run.phase_deadline = 2, now + self.term_timeout
        elif run.stop_phase == 2:
            self._signal(run, signal.SIGKILL)
            run.stop_phase, run.phase_deadline = 3, now + self.term_timeout

    def hurry_stops(self) -> None:
        """Skip what is left of every grace period: runs already stopping escalate at the next poll.

        For a second Ctrl-C: setting the timeouts to 0 only reaches stops begun after it.
        """
        with self._locked():
            now = time.time()
            for run in self.runs.values():
                if run.live and run.stop_phase:
                    run.phase_deadline = now
            for pgid in self._leftovers:
                self._leftovers[pgid] = now
            self._hurry()

    def stop_all(self, timeout: float | None = None) -> bool:
        """Stop every live run and poll until they are settled (or timeout); True when all ended."""
        with self._locked():
            for run in self.runs.values():
                if run.live:
                    self._begin_stop(run)
        limit = time.time() + (timeout if timeout is not None
                               else self.stop_timeout + 2 * self.term_timeout + 2)
        while time.time() < limit:
            self.poll()
            if not self.live_ids():
                return True
            time.sleep(0.02)
        return not self.live_ids()

    def fork(self, trial_id: int, changes: dict[str, Any] | None = None, *,
             checkpoint: int | None = None, timeout: float | None = None) -> Any:
        """Fork a run into a new trial with some settings changed, and start it at once.

        A trainer-API run is checkpointed first and the child resumes from that checkpoint; this
        blocks until the checkpoint event arrives (call it from a worker, not the UI loop). Pass
        `checkpoint`, the seq from an earlier `checkpoint()` call, to fork the state of that moment:
        the fork then works even if the run ended meanwhile (a user filling in the fork form).
        A zero-code run's child restarts from scratch with the changed flags, ended parent or not.
        """
        changes = dict(changes or {})
        with self._locked():
            known = self._known(trial_id)
            zero_code = known is not None and known.zero_code
            if checkpoint is not None or zero_code:
                if known is None:
                    raise RunError(f"trial {trial_id} has never run")
                run = known
            else:
                run = self._live_run(trial_id)
            checked = self.space.check_setting(changes, partial=True) if changes else {}
            params = {**run.params, **checked}
            if run.zero_code:
                child = self.study.add_fork(trial_id, params, run.step, None)
                self.start(child)
                return self.study.trial(child.id)
            seq = self._control(run, "checkpoint") if checkpoint is None else checkpoint
        deadline = time.time() + (self.checkpoint_timeout if timeout is None else timeout)
        while True:
            with self._locked():
                if run.live:
                    self._poll_run(run)
                ev = run.checkpoints.get(seq)
                if ev is None and not run.live:
                    raise RunError(f"trial {trial_id} ended before its checkpoint for the fork was written")
                if ev is None and self._cancel.is_set():
                    raise RunError(f"trial {trial_id}: fork cancelled (the tuner is closing)")
                if ev is not None and ev.get("error"):
                    raise RunError(f"trial {trial_id}: the checkpoint for the fork failed: {ev['error']}")
                if ev is not None:
                    rel = _ckpt_rel(self.study.dir, run.run_dir, ev.get("path"))
                    step = ev.get("step", run.step)
                    child = self.study.add_fork(trial_id, params, step, rel)
                    self.start(child)
                    return self.study.trial(child.id)
            if time.time() > deadline:
                waited = self.checkpoint_timeout if timeout is None else timeout
                raise RunError(f"trial {trial_id}: no checkpoint within {waited:g}s "
                               f"(does the trainer call trainer.on_checkpoint?); fork cancelled")
            time.sleep(0.005)

    # -- adoption ---------------------------------------------------------------------------------

    def adopt(self) -> list[int]:
        """On open: re-adopt the study's live runs, settle the ones that ended while away.

        Returns the ids re-adopted as live. Each adopted run's events are replayed from the start
        so its curves are whole again.
        """
        adopted: list[int] = []
        with self._locked():
            for trial in self.study.active():
                if trial.id in self.runs and self.runs[trial.id].live:
                    continue
                if self._adopt_one(trial, self.study.run_dir(trial.id)):
                    adopted.append(trial.id)
        return adopted

    def _adopt_one(self, trial, run_dir: Path) -> bool:
        """Follow an active trial's run again (replaying its events); settle it if it has ended."""
        run = _Run(self, trial, run_dir, self.config.zero_code)
        run.live = True
        self.runs[trial.id] = run
        if not _adoptable(trial.pid, run_dir):
            self._read(run, final=True)
            self._settle(run)
            return False
        self._read(run)
        run.last_activity = time.time()
        self._emit("started", trial.id, {"pid": trial.pid, "adopted": True})
        return True

    # -- queries ----------------------------------------------------------------------------------

    def live_ids(self) -> list[int]:
        """Trial ids whose processes are running or paused now."""
        with self._locked():
            return [i for i, r in self.runs.items() if r.live]

    def is_live(self, trial_id: int) -> bool:
        """True while the trial's processes run (or are paused)."""
        run = self.runs.get(trial_id)
        return bool(run and run.live)

    def series(self, trial_id: int, metric: str) -> list[tuple[int, float]]:
        """The trial's curve for one metric: (step, value), at most ~512 points.

        A trial run by an earlier tuner session is read back from its run directory once.
        """
        with self._locked():
            run = self._known(trial_id)
            if run is None:
                return []
            s = run.series.get(metric)
            return s.get() if s else []

    def metric_names(self, trial_id: int) -> list[str]:
        """The metrics a run has reported, in first-seen order."""
        with self._locked():
            run = self._known(trial_id)
            return list(run.series) if run else []

    def changes(self, trial_id: int) -> list[dict[str, Any]]:
        """The live changes that took effect in a run ({"step", "params", "t"} each), oldest first."""
        with self._locked():
            run = self._known(trial_id)
            return [dict(a) for a in run.applied] if run else []

    def latest(self, trial_id: int) -> dict[str, Any]:
        """{"step", "metrics", "elapsed", "status", "stalled", "garbage", "objective", "params"}."""
        with self._locked():
            run = self._known(trial_id)
            trial = self.study.trial(trial_id)
            if run is None:
                elapsed = ((trial.ended or time.time()) - trial.started) if trial.started else 0.0
                return {"step": trial.step, "metrics": {}, "elapsed": elapsed, "status": trial.status,
                        "stalled": False, "garbage": 0, "objective": trial.objective,
                        "params": dict(trial.params)}
            end = run.ended or time.time()
            return {"step": run.step, "metrics": dict(run.metrics),
                    "elapsed": end - (trial.started or run.started),
                    "status": run.status if run.live else trial.status, "stalled": run.stalled,
                    "garbage": run.garbage, "objective": self._objective(run),
                    "params": dict(run.params)}

    def output_tail(self, trial_id: int, n: int = 20) -> list[str]:
        """The last n lines of the run's output.log."""
        return tail_lines(self.study.run_dir(trial_id) / protocol.OUTPUT, n)

    def _known(self, trial_id: int) -> _Run | None:
        run = self.runs.get(trial_id)
        if run is not None:
            return run
        try:
            trial = self.study.trial(trial_id)
        except Exception:  # noqa: BLE001 - an unknown id simply has no curve
            return None
        if trial is None or trial.status == "queued":
            return None
        run_dir = self.study.run_dir(trial_id)
        run = _Run(self, trial, run_dir, self.config.zero_code)
        run.status = trial.status
        run.ended = trial.ended
        run.settled = True
        # Reading back an old run must not fire events at the UI.
        self._quiet = True
        try:
            self._read(run, final=True)
        finally:
            self._quiet = False
        self.runs[trial_id] = run
        return run

    # -- thread ---------------------------------------------------------------------------------

    def start_thread(self, interval: float = 0.05) -> None:
        """Call poll() every `interval` seconds from a daemon thread (for the app).

        For a moment after each command it polls every FAST_POLL seconds instead, so the answer
        (paused, applied, a checkpoint) shows up in milliseconds rather than at the next tick.
        """
        if self._thread is not None and self._thread.is_alive():
            return
        self._halt.clear()

        def loop() -> None:
            while True:
                wait = FAST_POLL if time.time() < self._fast_until else interval
                # _kick wakes the thread at once when a command is written.
                if self._kick.wait(wait):
                    self._kick.clear()
                if self._halt.is_set():
                    return
                try:
                    self.poll()
                except Exception as e:  # noqa: BLE001 - the thread must survive to settle later runs
                    self._emit("error", -1, {"message": f"{type(e).__name__}: {e}"})
                    self._dispatch()

        self._thread = threading.Thread(target=loop, name="tui-tuner-runner", daemon=True)
        self._thread.start()

    def cancel_waits(self) -> None:
        """Make a fork waiting for its checkpoint give up at once (the app is quitting)."""
        self._cancel.set()

    def stop_thread(self) -> None:
        """Stop the poll thread (runs keep going; they are re-adopted next time)."""
        self._halt.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the runner's lock; events raised meanwhile go to on_event after it is released.

        So a listener may call back into the runner, or block on the UI thread, without deadlock.
        """
        with self._lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                outer = self._depth == 0
        if outer:
            self._dispatch()

    def _emit(self, kind: str, trial_id: int, data: dict[str, Any]) -> None:
        if self.on_event is not None and not self._quiet:
            self._pending.append(RunEvent(kind, trial_id, data))

    def _dispatch(self) -> None:
        # One thread delivers at a time, in order; another finding it busy leaves its events to it.
        while self._pending:
            if not self._dispatching.acquire(blocking=False):
                return
            try:
                while self._pending:
                    ev = self._pending.popleft()
                    callback = self.on_event
                    if callback is None:
                        continue
                    try:
                        callback(ev)
                    except Exception:  # noqa: BLE001 - a faulty listener must not stop the runs being followed
                        pass
            finally:
                self._dispatching.release()


# -- helpers ------------------------------------------------------------------------------------


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _last_lines(lines: list[str]) -> str:
    """": <last line>" and then the last few lines: the first line of a reason reads on its own."""
    tail = [ln.rstrip() for ln in lines[-REASON_LINES:]]
    return (f": {tail[-1].strip()}\n" + "\n".join(tail)) if tail else ""


def _last_seq(path: Path) -> int:
    """The highest seq in a control file (0 when none): commands keep counting after re-adoption."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            data = f.read()
    except FileNotFoundError:
        return 0
    best = 0
    for line in data.splitlines():
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            seq = json.loads(line).get("seq")
            if isinstance(seq, int):
                best = max(best, seq)
    return best


def _ckpt_rel(study_dir: Path, run_dir: Path, path: Any) -> str | None:
    """A checkpoint path from an event (relative to the run dir, or absolute) -> relative to the study."""
    if not isinstance(path, str) or not path:
        return None
    p = Path(path)
    if not p.is_absolute():
        p = run_dir / p
    try:
        return str(p.resolve().relative_to(Path(study_dir).resolve()))
    except ValueError:
        return str(p.resolve())


def _orphan_shim(run_dir: Path) -> int | None:
    """The pid of a live shim already running this run dir (spawned by a tuner that died), or None."""
    info = protocol.read_json(run_dir / protocol.LAUNCH)
    pid = info.get("pid") if info else None
    if isinstance(pid, int) and launch.pid_alive(pid, run_dir):
        return pid
    return None


def _adoptable(pid: int | None, run_dir: Path) -> bool:
    """True when the run's shim (checked against its run dir, so a reused pid does not fool us) or a
    trainer it left behind in its process group still lives."""
    if not pid:
        return False
    if launch.pid_alive(pid, run_dir):
        return True
    return not launch.pid_alive(pid) and launch.group_alive(pid)
