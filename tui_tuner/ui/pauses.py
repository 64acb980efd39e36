"""Time each run spent paused, from its paused/resumed events, so its elapsed time stops meanwhile.

Fed from the runner's poll thread and read by the view thread; no textual here. An event carries
the time the trainer wrote it ("t") when it came from events.jsonl, so a run re-adopted after a
restart, whose events are replayed at once, still counts its pauses as they were.
"""

from __future__ import annotations

import threading
import time


class PausedTime:
    """Seconds paused per trial: closed pauses summed, plus the open one up to now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total: dict[int, float] = {}
        self._since: dict[int, float] = {}

    def event(self, trial_id: int, kind: str, t: float | None = None) -> None:
        """Record a runner event: paused opens a pause, resumed or ended closes it (at `t`, else now)."""
        if kind not in ("paused", "resumed", "ended"):
            return
        at = t if isinstance(t, (int, float)) and not isinstance(t, bool) else time.time()
        with self._lock:
            since = self._since.pop(trial_id, None)
            if since is not None:
                self._total[trial_id] = self._total.get(trial_id, 0.0) + max(0.0, at - since)
            if kind == "paused":
                self._since[trial_id] = at

    def paused(self, trial_id: int, now: float | None = None) -> float:
        """Seconds the trial has been paused so far."""
        with self._lock:
            total = self._total.get(trial_id, 0.0)
            since = self._since.get(trial_id)
        if since is not None:
            total += max(0.0, (time.time() if now is None else now) - since)
        return total

    def running_time(self, trial_id: int, elapsed: float | None, now: float | None = None) -> float | None:
        """Wall-clock `elapsed` less the time paused (None stays None)."""
        if elapsed is None:
            return None
        return max(0.0, elapsed - self.paused(trial_id, now))
