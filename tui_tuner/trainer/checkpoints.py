"""Checkpoint requests on the trainer side: save on request, or answer once a framework wrote one.

The tuner asks for a checkpoint (a fork, an undone early stop) with a `checkpoint` command; the
answer is a checkpoint event with the same seq, naming the file (relative to the run directory)
and the step, or saying why there is none. A framework that writes checkpoints at a later point of
its own loop registers a deferred save: the request waits until `answer()`. Standard library only:
this runs inside the user's training process.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from typing import Any

from tui_tuner.trainer import protocol as P


class Checkpoints:
    """One run's checkpoint function and the requests a deferred save still owes an answer."""

    def __init__(self, event: Callable[..., None]) -> None:
        self._event = event                    # queues one event: event(kind, **fields)
        self.save: Callable[[str], Any] | None = None
        self.deferred = False                  # save(path) only asks; answer() answers
        self.waiting: list[Any] = []           # seqs of checkpoint requests a deferred save still owes
        self.saved: Callable[[str], None] | None = None   # told each checkpoint's absolute path once written

    def register(self, save: Callable[[str], Any], deferred: bool) -> None:
        """Use save(path) to write the full training state from now on."""
        self.save = save
        self.deferred = deferred

    def request(self, run_dir: str, seq: Any, step: int | None) -> None:
        """Answer a checkpoint command: save now (or ask, when deferred); a failure is an error event."""
        if self.save is None:
            self._event(P.EV_CHECKPOINT, seq=seq, error="the trainer registered no checkpoint function "
                                                        "(trainer.on_checkpoint)")
            return
        step = step if step is not None else 0
        rel = P.checkpoint_relpath(step)
        path = os.path.join(run_dir, rel)
        try:
            os.makedirs(os.path.dirname(path), mode=P.PRIVATE_DIR, exist_ok=True)
            self.save(path)
        except Exception as e:  # noqa: BLE001 - a failed save must not end the training run
            traceback.print_exc()
            msg = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
            self._event(P.EV_CHECKPOINT, seq=seq, error=f"checkpoint failed: {msg}")
            return
        if self.deferred:
            self.waiting.append(seq)
            return
        if self.saved is not None:
            self.saved(path)
        self._event(P.EV_CHECKPOINT, seq=seq, path=rel, step=step)

    def answer(self, run_dir: str | None, path: str | os.PathLike[str], step: int | None) -> bool:
        """Answer the waiting deferred requests: path (a file or folder) holds the state; True if any were."""
        waiting, self.waiting = self.waiting, []
        if not waiting or run_dir is None:
            return False
        where = os.path.abspath(os.path.join(run_dir, os.fspath(path)))
        inside = where.startswith(run_dir + os.sep)
        rel = os.path.relpath(where, run_dir) if inside else where
        if self.saved is not None:
            self.saved(where)
        for seq in waiting:
            self._event(P.EV_CHECKPOINT, seq=seq, path=rel, step=int(step if step is not None else 0))
        return True

    def abandon(self) -> None:
        """The run ends: every request still waiting gets an error event."""
        for seq in self.waiting:
            self._event(P.EV_CHECKPOINT, seq=seq, error="the run ended before its checkpoint was written")
        self.waiting = []
