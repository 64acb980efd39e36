"""A trial as the search and the study see it: its record (`Trial`) and its statuses, in one place.

queued (waiting to start) -> running <-> paused -> done | failed | stopped | diverged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tui_tuner.trainer.protocol import run_id

STATUSES = ("queued", "running", "paused", "done", "failed", "stopped", "diverged")
FINISHED = ("done", "failed", "stopped", "diverged")   # ended: never runs again
ACTIVE = ("running", "paused")                          # its processes are alive
PENDING = ("queued", *ACTIVE)                           # no result yet, one is coming


def sql_in(statuses: tuple[str, ...]) -> str:
    """`status IN (...)` for a group above (the names are ours, never user input)."""
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


@dataclass
class Trial:
    """One trial as stored: its settings, status, result, lineage and process."""

    id: int
    status: str
    params: dict[str, Any]
    objective: float | None = None
    parent: int | None = None
    fork_step: int | None = None
    resume: str | None = None        # checkpoint path (relative to the study dir) a fork starts from
    source: str = "random"
    created: float = 0.0
    started: float | None = None
    ended: float | None = None
    reason: str | None = None
    step: int | None = None          # last step seen
    queue_pos: int | None = None     # queued only
    zoom_level: int = 0              # zoom levels in force when it was created
    pid: int | None = None           # the launch shim's pid (its process group) while active

    @property
    def run_id(self) -> str:
        """The run directory name: STUDY/runs/<run_id>."""
        return run_id(self.id)

    @property
    def finished(self) -> bool:
        """True once the trial has ended (done, failed, stopped or diverged)."""
        return self.status in FINISHED

    @property
    def active(self) -> bool:
        """True while the trial's process is running or paused."""
        return self.status in ACTIVE
