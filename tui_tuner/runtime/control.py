"""The runner's commands to its runs: pause, resume, set, checkpoint, stop, and fork (which waits for
the parent's checkpoint). A trainer-API run gets a line in its control.jsonl; a zero-code one a signal.

`Commands` is the part of `Runner` (runner.py) that sends them; it uses the runner's runs, lock and
event queue, named in the annotations below.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_tuner import protocol
from tui_tuner.errors import RunError, SpaceError
from tui_tuner.protocol import Command
from tui_tuner.tailing import last_lines

if TYPE_CHECKING:
    from tui_tuner.core.space import Space
    from tui_tuner.core.store import Trial
    from tui_tuner.core.study import Study
    from tui_tuner.core.study_config import StudyConfig
    from tui_tuner.runtime.events import EventBus
    from tui_tuner.runtime.process import Leftovers
    from tui_tuner.runtime.runner import _Run

SEQ_WINDOW = 65536   # bytes at the end of control.jsonl searched for the last seq


class Commands:
    """Sending commands to live runs, and forking them."""

    study: Study
    space: Space
    config: StudyConfig
    runs: dict[int, _Run]
    stop_timeout: float
    term_timeout: float
    checkpoint_timeout: float
    _cancel: threading.Event
    _leftovers: Leftovers
    _bus: EventBus
    _hurry: Callable[[], None]
    _known: Callable[[int], _Run | None]
    _poll_run: Callable[[_Run], None]
    _study_write: Callable[..., None]
    poll: Callable[[], None]
    live_ids: Callable[[], list[int]]
    start: Callable[[Trial], None]

    def _live_run(self, trial_id: int) -> _Run:
        run = self.runs.get(trial_id)
        if run is None or not run.live:
            raise RunError(f"trial {trial_id} is not running")
        return run

    def _control(self, run: _Run, cmd: Command, **extra: Any) -> int:
        """Append one command line to control.jsonl with the next seq; returns the seq."""
        path = run.run_dir / protocol.CONTROL
        seq = max(run.seq, last_seq(path)) + 1
        # One write of one whole line (O_APPEND), so the trainer never reads half a command.
        protocol.append_line(path, {"seq": seq, "cmd": cmd, **extra, "t": time.time()})
        run.seq = seq
        self._hurry()
        return seq

    def _send(self, run: _Run, signals: list[int]) -> None:
        for sig in signals:
            run.proc.send(sig)
            self._hurry()

    def pause(self, trial_id: int) -> None:
        """Pause a run: a pause command, or SIGSTOP of its process group for a zero-code run."""
        with self._bus.locked():
            run = self._live_run(trial_id)
            if run.state.status == "paused":
                return
            if run.zero_code:
                self._send(run, [signal.SIGSTOP])
                for ev in run.state.paused_by_signal():
                    self.study.set_status(trial_id, "paused")
                    self._bus.emit(ev.kind, trial_id, ev.data)
            else:
                self._control(run, Command.PAUSE)

    def resume(self, trial_id: int) -> None:
        """Resume a paused run (resume command, or SIGCONT for a zero-code run)."""
        with self._bus.locked():
            run = self._live_run(trial_id)
            if run.zero_code:
                self._send(run, [signal.SIGCONT])
                for ev in run.state.resumed_by_signal(time.time()):
                    self.study.set_status(trial_id, "running")
                    self._bus.emit(ev.kind, trial_id, ev.data)
            else:
                self._control(run, Command.RESUME)
                # The clock for a stall starts again from here, not from the pause.
                run.state.last_activity = time.time()

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
        with self._bus.locked():
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
            return self._control(run, Command.SET, params=checked)

    def set_max_steps(self, trial_id: int, steps: int) -> int:
        """Change a run's step limit (the trainer reads it with trainer.max_steps); returns the seq."""
        with self._bus.locked():
            run = self._live_run(trial_id)
            if run.zero_code:
                raise RunError(f"trial {trial_id}: a zero-code script takes its step limit only as a flag at "
                               f"start; fork it with more steps instead")
            if run.state.max_steps is None:
                raise RunError(f"trial {trial_id}: its trainer does not read trainer.max_steps(), so its step "
                               f"limit cannot change while it trains (see the README's trainer API)")
            if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
                raise RunError(f"trial {trial_id}: a step limit must be a whole number >= 1, got {steps!r}")
            return self._control(run, Command.MAX_STEPS, steps=steps)

    def checkpoint(self, trial_id: int) -> int:
        """Ask a run to save a checkpoint; returns the seq its checkpoint event will carry."""
        with self._bus.locked():
            run = self._live_run(trial_id)
            if run.zero_code:
                raise RunError(f"trial {trial_id}: checkpoints are not available for a zero-code run")
            return self._control(run, Command.CHECKPOINT)

    def checkpoint_event(self, trial_id: int, seq: int) -> dict[str, Any] | None:
        """The checkpoint event that answered command `seq` ({"seq", "path", "step"}), None until it has."""
        with self._bus.locked():
            run = self.runs.get(trial_id)
            found = run.state.checkpoints.get(seq) if run is not None else None
            return dict(found) if found is not None else None

    # -- stopping ---------------------------------------------------------------------------------

    def stop(self, trial_id: int) -> None:
        """Stop a run gracefully; poll() escalates to SIGTERM, then SIGKILL, after the timeouts."""
        with self._bus.locked():
            self._begin_stop(self._live_run(trial_id))

    def _begin_stop(self, run: _Run) -> None:
        if run.stopper.active:
            return
        asked = time.time()
        # Written first, for every run: the record that a stop was asked for, read by the verdict
        # (also by a tuner restarted after this one dies). A zero-code script does not read it.
        self._control(run, Command.STOP)
        self._carry_out_stop(run, asked)

    def _carry_out_stop(self, run: _Run, asked: float) -> None:
        """Drive a stop asked for at `asked` (maybe by a tuner that died since) through its phases."""
        self._send(run, run.stopper.begin(asked, time.time(), zero_code=run.zero_code,
                                          stop_timeout=self.stop_timeout, term_timeout=self.term_timeout))

    def hurry_stops(self) -> None:
        """Skip what is left of every grace period: runs already stopping escalate at the next poll.

        For a second Ctrl-C: setting the timeouts to 0 only reaches stops begun after it.
        """
        with self._bus.locked():
            now = time.time()
            for run in self.runs.values():
                if run.live:
                    run.stopper.hurry(now)
            self._leftovers.hurry(now)
            self._hurry()

    def stop_all(self, timeout: float | None = None) -> bool:
        """Stop every live run and poll until they are settled (or timeout); True when all ended."""
        with self._bus.locked():
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

    # -- forking ----------------------------------------------------------------------------------

    def fork(self, trial_id: int, changes: dict[str, Any] | None = None, *,
             checkpoint: int | None = None, timeout: float | None = None) -> Trial:
        """Fork a run into a new trial with some settings changed, and start it at once.

        A trainer-API run is checkpointed first and the child resumes from that checkpoint; this
        blocks until the checkpoint event arrives (call it from a worker, not the UI loop). Pass
        `checkpoint`, the seq from an earlier `checkpoint()` call, to fork the state of that moment:
        the fork then works even if the run ended meanwhile (a user filling in the fork form).
        A zero-code run's child restarts from scratch with the changed flags, ended parent or not.
        """
        changes = dict(changes or {})
        known = self._known(trial_id)   # an old run is read back before the lock is taken
        with self._bus.locked():
            if checkpoint is not None or (known is not None and known.zero_code):
                if known is None:
                    raise RunError(f"trial {trial_id} has never run")
                run = known
            else:
                run = self._live_run(trial_id)
            checked = self.space.check_setting(changes, partial=True) if changes else {}
            params = {**run.state.params, **checked}
            if run.zero_code:
                # A restart from scratch with the changed flags, not a continuation: no fork step.
                child = self.study.add_fork(trial_id, params, None, None)
                self.start(child)
                return self.study.trial(child.id)
            seq = self._control(run, Command.CHECKPOINT) if checkpoint is None else checkpoint
        ev = self._checkpoint_wait(run, seq, self.checkpoint_timeout if timeout is None else timeout)
        with self._bus.locked():
            child = self.study.add_fork(trial_id, params, ev.get("step", run.state.step),
                                        ckpt_rel(self.study.dir, run.run_dir, ev.get("path")))
            self.start(child)
            return self.study.trial(child.id)

    def _checkpoint_wait(self, run: _Run, seq: int, waited: float) -> dict[str, Any]:
        """Poll the run until its checkpoint event for command `seq` comes; RunError when it cannot."""
        deadline = time.time() + waited
        while True:
            with self._bus.locked():
                if run.live:
                    self._poll_run(run)
                ev = run.state.checkpoints.get(seq)
                if ev is None and not run.live:
                    raise RunError(f"trial {run.trial_id} ended before its checkpoint for the fork was written")
                if ev is None and self._cancel.is_set():
                    raise RunError(f"trial {run.trial_id}: fork cancelled (the tuner is closing)")
                if ev is not None and ev.get("error"):
                    raise RunError(f"trial {run.trial_id}: the checkpoint for the fork failed: {ev['error']}")
                if ev is not None:
                    return ev
            if time.time() > deadline:
                raise RunError(f"trial {run.trial_id}: no checkpoint within {waited:g}s "
                               f"(does the trainer call trainer.on_checkpoint?); fork cancelled")
            time.sleep(0.005)


def last_seq(path: Path) -> int:
    """The highest seq in a control file (0 when none): commands keep counting after re-adoption."""
    best = 0
    for line in last_lines(path, None, max_bytes=SEQ_WINDOW):
        try:
            seq = json.loads(line).get("seq")
        except (ValueError, TypeError, AttributeError, RecursionError):
            continue
        if isinstance(seq, int):
            best = max(best, seq)
    return best


def ckpt_rel(study_dir: Path, run_dir: Path, path: Any) -> str | None:
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
