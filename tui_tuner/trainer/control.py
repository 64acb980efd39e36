"""The trainer's side of control.jsonl: read the tuner's new commands and apply each once, in order.

A mixin of tui_tuner.trainer.Run (it uses the run's state: params, changes, pause and stop flags,
step limit, checkpoint requests). Standard library only, like the rest of the trainer side.
"""

from __future__ import annotations

import time
from typing import Any

from tui_tuner.trainer import protocol as P
from tui_tuner.trainer.settings import coerce_like

PAUSE_POLL = 0.015     # seconds between control-file checks while paused


class ControlCommands:
    """Pause, resume, stop, set, max_steps and checkpoint, as the tuner writes them to control.jsonl."""

    _ctl: Any
    _ctl_seq: int
    _paused: bool
    _stop: bool
    _params: dict[str, Any]
    _changes: dict[str, Any]
    _limit: Any
    _ckpt: Any
    _last_step: int | None
    run_dir: str | None

    flush: Any        # Run.flush and Run._event: the events writer
    _event: Any

    def _poll_control(self) -> None:
        """Read control.jsonl's new lines and apply each command once, in order."""
        if self._ctl is None:
            return
        handled = False
        for cmd in self._ctl.read_all(final=False):   # a line not yet ended waits for its end
            seq = cmd.get("seq")
            if isinstance(seq, int) and not isinstance(seq, bool):
                if seq <= self._ctl_seq:
                    continue   # already applied (the file is only ever appended to)
                self._ctl_seq = seq
            self._apply(cmd)
            handled = True
        if handled:
            self.flush()   # answer commands promptly, not at the next 100 ms tick

    def _apply(self, cmd: dict[str, Any]) -> None:
        name = cmd.get("cmd")
        if name == P.CMD_PAUSE:
            if not self._paused and not self._stop:
                self._paused = True
                self._event(P.EV_PAUSED)
        elif name == P.CMD_RESUME:
            if self._paused:
                self._paused = False
                self._event(P.EV_RESUMED)
        elif name == P.CMD_STOP:
            self._stop = True
            self._paused = False
        elif name == P.CMD_SET:
            changes = cmd.get("params")
            if isinstance(changes, dict) and changes:
                applied = {}
                for k, v in changes.items():
                    if k in self._params:
                        v = coerce_like(v, self._params[k])
                    self._params[k] = v
                    self._changes[k] = v
                    applied[k] = v
                self._event(P.EV_APPLIED, params=applied)
        elif name == P.CMD_MAX_STEPS:
            self._limit.command(cmd.get("steps"))
        elif name == P.CMD_CHECKPOINT:
            assert self.run_dir is not None
            self._ckpt.request(self.run_dir, cmd.get("seq"), self._last_step)
        # Unknown commands are skipped: a newer tuner may know more than this trainer.

    def _wait_paused(self) -> None:
        """Block until resume or stop, still answering set and checkpoint commands.

        A deferred checkpoint cannot be written while the loop is blocked here: its request ends the
        wait, the framework writes it, and the next report() or poll() blocks again.
        """
        self.flush()
        while self._paused and not self._ckpt.waiting:
            time.sleep(PAUSE_POLL)
            if self._ctl is not None and self._ctl.grew():
                self._poll_control()
