"""A run's step limit on the trainer side: `trainer.max_steps(default)`, which a training loop reads
each step, and the tuner's `max_steps` command that changes it ("train longer").

The limit is said to the tuner (a `max_steps` event, with the script's default) the first time the
loop asks and whenever it changes, so the tuner knows which runs it can extend, and an export keeps a
longer limit (`[tuner] max_steps`, which `--config` then applies standalone). A checkpoint keeps a changed limit in a small
file beside it (CHECKPOINT.tuner.json), so a fork or a resume from that checkpoint trains to the same
limit, unless the fork's own default differs (its step setting was changed: that wins). Standard
library only: this runs inside the user's training process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tui_tuner.trainer import protocol as P


class StepLimit:
    """The limit: the script's default, or what the tuner (or the checkpoint resumed from) said."""

    def __init__(self, event: Callable[..., None], live: bool) -> None:
        self._event = event          # queues one event: event(kind, **fields)
        self._live = live            # under the tuner (events are written)
        self.value: int | None = None
        self.default: int | None = None

    def get(self, default: int, resume: str | None, exported: int | None = None) -> int:
        """The limit now; the first call settles it from the default, the resumed checkpoint, or (run
        standalone) the limit a `tui-tuner export` kept for a run that was trained longer."""
        if self.default is None:
            self.default = int(default)
            if self.value is None:   # a command may have come before the loop first asked
                self.value = _saved(resume, self.default) or exported or self.default
            self._say()
        assert self.value is not None
        return self.value

    def command(self, steps: Any) -> None:
        """The tuner's max_steps command; anything but a whole number >= 1 is ignored."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1 or steps == self.value:
            return
        self.value = steps
        if self.default is not None:
            self._say()

    def keep_beside(self, checkpoint: str) -> None:
        """Write a changed limit beside a checkpoint just saved (nothing when it is the default)."""
        if self.value is None or self.default is None or self.value == self.default:
            return
        try:
            P.write_json_atomic(checkpoint + P.MAX_STEPS_SUFFIX, {"max_steps": self.value, "default": self.default})
        except OSError as e:   # the checkpoint itself is fine; a fork from it trains to its own default
            print(f"tui-tuner: could not keep the step limit beside {checkpoint}: {e}", flush=True)

    def _say(self) -> None:
        if self._live:
            # With the script's own default, so an export can tell a limit trained longer from the default.
            self._event(P.EV_MAX_STEPS, steps=self.value, default=self.default)


def _saved(resume: str | None, default: int) -> int | None:
    """The limit kept beside the checkpoint a run resumes from, if its default then was this one."""
    if not resume:
        return None
    try:
        with open(resume + P.MAX_STEPS_SUFFIX, encoding="utf-8") as f:
            kept = json.load(f)
    except (OSError, ValueError):
        return None
    steps = kept.get("max_steps") if isinstance(kept, dict) else None
    if kept.get("default") != default or isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        return None
    return steps
