"""A trial's statuses, in one place: what each means and which groups the code asks about.

queued (waiting to start) -> running <-> paused -> done | failed | stopped | diverged.
"""

from __future__ import annotations

STATUSES = ("queued", "running", "paused", "done", "failed", "stopped", "diverged")
FINISHED = ("done", "failed", "stopped", "diverged")   # ended: never runs again
ACTIVE = ("running", "paused")                          # its processes are alive
PENDING = ("queued", *ACTIVE)                           # no result yet, one is coming


def sql_in(statuses: tuple[str, ...]) -> str:
    """`status IN (...)` for a group above (the names are ours, never user input)."""
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"
