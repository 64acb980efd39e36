"""How a run is stopped: a graceful request, then SIGTERM, then SIGKILL, each after a grace period.

`Stopper` is the escalation of one run's stop as named phases with a deadline. It sends nothing
itself: each step returns the signals to send, in order, and the runner sends them. So the
escalation is a pure function of the phase, the deadline and the time, tested with a table.
"""

from __future__ import annotations

import signal
from enum import Enum


class Phase(Enum):
    """Where a run's stop stands."""

    NONE = "none"     # no stop asked for
    ASKED = "asked"   # the stop command is written; the trainer has stop_timeout to end on its own
    TERM = "term"     # SIGTERM sent (the shim forwards it); SIGKILL of the group after term_timeout
    KILL = "kill"     # SIGKILL sent to the process group: nothing is left to escalate to


class Stopper:
    """One run's stop escalation: its phase and when the next phase is due."""

    def __init__(self) -> None:
        self.phase = Phase.NONE
        self.deadline = 0.0

    @property
    def active(self) -> bool:
        """True once a stop was asked for (whatever its phase)."""
        return self.phase is not Phase.NONE

    def begin(self, asked: float, now: float, *, zero_code: bool, stop_timeout: float,
              term_timeout: float) -> list[int]:
        """Start a stop asked for at `asked` (maybe by a tuner that died since); returns the signals to send.

        A trainer-API run gets until asked + stop_timeout to act on its stop command. A zero-code
        script cannot read one: it is woken (a SIGSTOPped process cannot act on SIGTERM) and sent
        SIGTERM at once.
        """
        if zero_code:
            self.phase, self.deadline = Phase.TERM, now + term_timeout
            return [signal.SIGCONT, signal.SIGTERM]
        self.phase, self.deadline = Phase.ASKED, asked + stop_timeout
        return []

    def escalate(self, now: float, term_timeout: float) -> list[int]:
        """Move to the next phase once the deadline has passed; returns the signals to send."""
        if now < self.deadline:
            return []
        if self.phase is Phase.ASKED:
            self.phase, self.deadline = Phase.TERM, now + term_timeout
            return [signal.SIGCONT, signal.SIGTERM]
        if self.phase is Phase.TERM:
            self.phase, self.deadline = Phase.KILL, now + term_timeout
            return [signal.SIGKILL]
        return []

    def hurry(self, now: float) -> None:
        """Skip what is left of the current grace period (a second Ctrl-C)."""
        if self.active:
            self.deadline = now
