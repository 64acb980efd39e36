"""Fail fast: pause the queue instead of spending a study's budget on one repeated mistake.

Two mistakes show in the first trials of a study (or of a session, or since the user went on after a
pause), and each pauses the queue with a message that says why, once:

- the first FIRST trials to end all failed within QUICK seconds of starting, with the same reason
  (numbers aside: "unrecognized arguments: --lr 0.012" and "... --lr 0.3" are one mistake): a
  command or script that cannot run;
- the first trial to end finished cleanly without reporting the objective: a misspelt objective or
  metric pattern, which would otherwise let every trial train to its end for nothing. The message
  names the metrics it did report.

Once the first FIRST trials have ended without either, the watch stands down. `judge` and `Watch`
are pure (given the ended trials and the time); `check` reads them from the study for the scheduler,
which carries the pause out (it starts nothing while paused).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tui_tuner.core.status import FINISHED
from tui_tuner.core.store import Store, first_line
from tui_tuner.core.verdict import NO_OBJECTIVE

FIRST = 3          # trials failing alike at the start of a study that pause it
QUICK = 30.0       # "within seconds": each of them ended this soon after it started
REASON_WIDTH = 200
GO_ON = "queue or start a trial to go on (the app: n, or r on a queued one; headless: run the same command again)"
_NUMBER = re.compile(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?")


@dataclass(frozen=True)
class Ended:
    """A trial that ended: how, why, and how long it ran (None when unknown)."""

    id: int
    status: str
    reason: str | None
    seconds: float | None


def mistake(reason: str | None) -> str:
    """What makes two failures the same mistake: the reason's first line, numbers left out."""
    return _NUMBER.sub("#", first_line(reason, 10_000))


def judge(ended: Sequence[Ended]) -> str | None:
    """The message that pauses the queue, or None.

    `ended`: the first trials that ended since the watch began, in the order they ended.
    """
    if not ended:
        return None
    first = ended[0]
    if first.status == "failed" and (first.reason or "").startswith(NO_OBJECTIVE):
        return (f"queue paused: trial {first.id} {first_line(first.reason, REASON_WIDTH)}; a misspelt objective "
                f"needs a new study (--study NEWDIR); a script or metric pattern that misses it, a fix, then {GO_ON}")
    head = ended[:FIRST]
    if len(head) < FIRST:
        return None
    quick = all(t.status == "failed" and t.seconds is not None and t.seconds <= QUICK for t in head)
    if not quick or len({mistake(t.reason) for t in head}) != 1:
        return None
    longest = max(t.seconds or 0.0 for t in head)
    return (f"queue paused: trials {', '.join(f'#{t.id}' for t in head)} all failed within "
            f"{max(1, round(longest))} s with the same reason: {first_line(head[-1].reason, REASON_WIDTH)}; "
            f"fix it, then {GO_ON}")


class Watch:
    """Fail fast's state: since when trials count, whether it has stood down, and the pause."""

    def __init__(self, now: float, *, enabled: bool = True) -> None:
        self.since = now                     # trials started from this time on count
        self.standing_down = not enabled     # seen enough trials (or switched off): nothing to watch
        self.paused_at: float | None = None
        self.message: str | None = None

    @property
    def watching(self) -> bool:
        """True while the first trials are still being looked at."""
        return not self.standing_down and self.paused_at is None

    def observe(self, ended: Sequence[Ended], now: float) -> str | None:
        """Look at the first trials that ended since `since`: the pause message when they call for one."""
        if not self.watching:
            return None
        message = judge(ended)
        if message is not None:
            self.paused_at, self.message = now, message
        elif len(ended) >= FIRST:
            self.standing_down = True
        return message

    def go_on(self) -> None:
        """The user went on after a pause: watch again the trials started since the pause."""
        if self.paused_at is not None:
            self.since, self.paused_at, self.message = self.paused_at, None, None


def check(watch: Watch, store: Store, now: float) -> bool:
    """True while the queue stays paused: the watch looks at the first trials that ended since it
    began; a pause ends once a trial was queued or started after it (by hand: the queue starts none)."""
    if watch.paused_at is not None:
        if not store.query("SELECT 1 FROM trials WHERE created > ? OR started > ? LIMIT 1",
                           (watch.paused_at, watch.paused_at)):
            return True
        watch.go_on()
    if not watch.watching:
        return False
    marks = ", ".join("?" * len(FINISHED))
    # A trial that could not even start (no such cwd) failed with no start time: it ran 0 seconds.
    rows = store.query(f"SELECT id, status, reason, COALESCE(started, ended), ended FROM trials WHERE "
                       f"COALESCE(started, ended) >= ? AND status IN ({marks}) ORDER BY ended, id LIMIT ?",
                       (watch.since, *FINISHED, FIRST))
    ended = [Ended(i, status, reason, end - start if start is not None and end is not None else None)
             for i, status, reason, start, end in rows]
    return watch.observe(ended, now) is not None
