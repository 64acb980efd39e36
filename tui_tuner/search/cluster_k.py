"""Auto-k on a Slurm cluster: how many jobs at once, decided from how fast the cluster starts them. Pure.

On a cluster the tuner sees no GPU (the jobs run on other nodes) and the cluster is shared, so the
local rule (search/autok.py: raise while the aggregate steps/s pays) does not apply. Here k is raised
by one job at a time while every job started within a minute of its submission and none is waiting;
once a job waits longer, k stays where it is (that job stays queued: Slurm decides when it runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from tui_tuner.search.autok import Change, State

START_WITHIN = 60.0   # seconds a job may wait in the queue for the cluster to count as having room


@dataclass(frozen=True)
class Wait:
    """One live job: seconds from its submission to its start, or waited so far (`queued`)."""

    seconds: float
    queued: bool


def decide(state: State, waits: Sequence[Wait], within: float = START_WITHIN) -> tuple[State, Change | None]:
    """The live jobs' waits in; the new state and the change of k (None: stay)."""
    if not state.exploring:
        return state, None
    longest = max((w.seconds for w in waits), default=0.0)
    if longest > within:
        note = f"k {state.k}: a job waited {longest:.0f}s to start (over {within:.0f}s)"
        return replace(state, settled=True, prev=None, note=note), None
    if len(waits) < state.k or any(w.queued for w in waits) or state.k >= state.max_k:
        return state, None   # not all k submitted and started yet: nothing to judge
    new = state.k + 1
    jobs = f"{len(waits)} job{'s' if len(waits) != 1 else ''}"
    text = f"k {state.k} → {new}: the cluster started every job within {within:.0f}s ({jobs}, longest wait {longest:.0f}s)"
    data = {"from": state.k, "to": new, "why": "raise", "longest_wait": round(longest, 1), "jobs": len(waits)}
    return replace(state, k=new, prev=state.k, note=""), Change(state.k, new, "raise", text, data)
