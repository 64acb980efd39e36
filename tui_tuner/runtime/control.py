"""The runner's commands to its runs: pause, resume, set, checkpoint, stop, and fork (which waits for
the parent's checkpoint only when asked to: `fork_at` never waits). A trainer-API run gets a line in
its control.jsonl; a zero-code one a signal.

`Commands` is the part of the runner that sends them (`runner.commands`). It is given the runner's
table of runs (runs.py) and, from the runner, what a command needs of the runs' life: starting a
fork, polling a run while a fork waits for its checkpoint, hurrying the poll thread.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui_tuner.errors import RunError, SpaceError
from tui_tuner.runtime.process import Leftovers
from tui_tuner.runtime.runs import Run, RunTable, Timeouts
from tui_tuner.search.trials import Trial
from tui_tuner.trainer import protocol
from tui_tuner.trainer.protocol import Command
from tui_tuner.trainer.tailing import JsonlTail, last_lines

SEQ_WINDOW = 65536   # bytes at the end of control.jsonl searched for the last seq


class Commands:
    """Sending commands to live runs, and forking them."""

    def __init__(self, table: RunTable, timeouts: Timeouts, *, start: Callable[[Trial], None],
                 poll: Callable[[], None], poll_run: Callable[[Run], None], hurry: Callable[[], None],
                 leftovers: Leftovers, cancel: threading.Event) -> None:
        self._table = table
        self.runs = table.runs
        self._bus = table.bus
        self.study = table.study
        self.space = table.study.space
        self.timeouts = timeouts
        self._start = start          # the runner's: a fork's child starts like any trial
        self._poll = poll
        self._poll_run = poll_run
        self._hurry = hurry
        self._leftovers = leftovers
        self._cancel = cancel

    def _live_run(self, trial_id: int) -> Run:
        return self._table.live(trial_id)

    def _control(self, run: Run, cmd: Command, **extra: Any) -> int:
        """Append one command line to control.jsonl with the next seq; returns the seq."""
        path = run.run_dir / protocol.CONTROL
        seq = max(run.seq, last_seq(path)) + 1
        # One write of one whole line (O_APPEND), so the trainer never reads half a command.
        protocol.append_line(path, {"seq": seq, "cmd": cmd, **extra, "t": time.time()})
        run.seq = seq
        self._hurry()
        return seq

    def _send(self, run: Run, signals: list[int]) -> None:
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
        zero_code = run.zero_code if run is not None else self._table.zero_code
        return not zero_code

    def set(self, trial_id: int, changes: dict[str, Any], tag: dict[str, Any] | None = None) -> int:
        """Change live parameters of a running trial; returns the command's seq.

        Each value is checked against the space: unknown, not live, or out of range raises
        SpaceError naming the parameter and the rule. `tag` goes into the command's line (the
        decision it carries out), so a restarted tuner can tell it was sent.
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
            return self._control(run, Command.SET, params=checked, **(tag or {}))

    def set_max_steps(self, trial_id: int, steps: int, tag: dict[str, Any] | None = None) -> int:
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
            return self._control(run, Command.MAX_STEPS, steps=steps, **(tag or {}))

    def checkpoint(self, trial_id: int, tag: dict[str, Any] | None = None) -> int:
        """Ask a run to save a checkpoint; returns the seq its checkpoint event will carry."""
        with self._bus.locked():
            run = self._live_run(trial_id)
            if run.zero_code:
                raise RunError(f"trial {trial_id}: checkpoints are not available for a zero-code run")
            return self._control(run, Command.CHECKPOINT, **(tag or {}))

    def checkpoint_event(self, trial_id: int, seq: int) -> dict[str, Any] | None:
        """The checkpoint event that answered command `seq` ({"seq", "path", "step"}), None until it has.

        A run of an earlier session is read back from its directory (its events.jsonl keeps them)."""
        run = self._table.known(trial_id)
        with self._bus.locked():
            found = run.state.checkpoints.get(seq) if run is not None else None
            return dict(found) if found is not None else None

    def last_sent(self, trial_id: int, name: str) -> Any:
        """The value the last set command sent for a parameter (None: none was ever sent)."""
        value = None
        for cmd in JsonlTail(self.study.run_dir(trial_id) / protocol.CONTROL).read_all():
            params = cmd.get("params")
            if cmd.get("cmd") == protocol.CMD_SET and isinstance(params, dict) and name in params:
                value = params[name]
        return value

    def tagged(self, trial_id: int, tag: dict[str, Any]) -> dict[str, Any] | None:
        """The command of the run's control.jsonl that carries `tag` (a decision's step), or None."""
        path = self.study.run_dir(trial_id) / protocol.CONTROL
        for cmd in JsonlTail(path).read_all():
            if all(cmd.get(k) == v for k, v in tag.items()):
                return cmd
        return None

    # -- stopping ---------------------------------------------------------------------------------

    def stop(self, trial_id: int, reason: str | None = None, tag: dict[str, Any] | None = None) -> None:
        """Stop a run gracefully; poll() escalates to SIGTERM, then SIGKILL, after the timeouts.

        `reason` (an early stop's verdict) becomes the stopped trial's reason; `tag` marks the
        command as a decision's step."""
        with self._bus.locked():
            self._begin_stop(self._live_run(trial_id), reason, tag)

    def _begin_stop(self, run: Run, reason: str | None = None, tag: dict[str, Any] | None = None) -> None:
        if run.stopper.active:
            return
        asked = time.time()
        # Written first, for every run: the record that a stop was asked for, read by the verdict
        # (also by a tuner restarted after this one dies). A zero-code script does not read it.
        self._control(run, Command.STOP, **({"why": reason} if reason else {}), **(tag or {}))
        self._carry_out_stop(run, asked)

    def _carry_out_stop(self, run: Run, asked: float) -> None:
        """Drive a stop asked for at `asked` (maybe by a tuner that died since) through its phases."""
        self._send(run, run.stopper.begin(asked, time.time(), zero_code=run.zero_code,
                                          stop_timeout=self.timeouts.stop, term_timeout=self.timeouts.term))

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
                               else self.timeouts.stop + 2 * self.timeouts.term + 2)
        while time.time() < limit:
            self._poll()
            if not self._table.live_ids():
                return True
            time.sleep(0.02)
        return not self._table.live_ids()

    # -- forking ----------------------------------------------------------------------------------

    def fork(self, trial_id: int, changes: dict[str, Any] | None = None, *,
             checkpoint: int | None = None, timeout: float | None = None) -> Trial:
        """Fork a run into a new trial with some settings changed, and start it at once.

        A trainer-API run is checkpointed first and the child resumes from that checkpoint; this
        blocks until the checkpoint event arrives (the session's forks do not: see `fork_at`). Pass
        `checkpoint`, the seq from an earlier `checkpoint()` call, to fork the state of that moment:
        the fork then works even if the run ended meanwhile. A zero-code run's child restarts from
        scratch with the changed flags, ended parent or not.
        """
        known = self._table.known(trial_id)   # an old run is read back before the lock is taken
        with self._bus.locked():
            if checkpoint is not None or (known is not None and known.zero_code):
                if known is None:
                    raise RunError(f"trial {trial_id} has never run")
                run = known
            else:
                run = self._live_run(trial_id)
            if run.zero_code:
                return self.fork_at(trial_id, changes, None)
            seq = self._control(run, Command.CHECKPOINT) if checkpoint is None else checkpoint
        ev = self._checkpoint_wait(run, seq, self.timeouts.checkpoint if timeout is None else timeout)
        return self.fork_at(trial_id, changes, ev)

    def fork_at(self, trial_id: int, changes: dict[str, Any] | None, ev: dict[str, Any] | None,
                also: Callable[[Any, int], None] | None = None) -> Trial:
        """Start a fork of a run now, from its checkpoint event `ev` (None: a restart from scratch with
        the changed flags, as for a zero-code run). Never waits. `also(db, child_id)` writes more in
        the transaction that adds the child (the decision that made it)."""
        known = self._table.known(trial_id)
        with self._bus.locked():
            if known is None:
                raise RunError(f"trial {trial_id} has never run")
            changes = dict(changes or {})
            checked = self.space.check_setting(changes, partial=True) if changes else {}
            params = {**known.state.params, **checked}
            if ev is None:
                child = self.study.add_fork(trial_id, params, None, None, also=also)
            else:
                child = self.study.add_fork(trial_id, params, ev.get("step", known.state.step),
                                            ckpt_rel(self.study.dir, known.run_dir, ev.get("path")), also=also)
            self._start(child)
            return self.study.trial(child.id)

    def _checkpoint_wait(self, run: Run, seq: int, waited: float) -> dict[str, Any]:
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
