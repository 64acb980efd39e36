"""The stop escalation's named phases, as a table: what each step sends and where it goes next."""

from __future__ import annotations

import signal

import pytest

from tui_tuner.runtime.stopper import Phase, Stopper

STOP, TERM = 10.0, 5.0


@pytest.mark.parametrize("zero_code, asked, now, phase, deadline, sent", [
    # A trainer-API run reads its stop command and gets stop_timeout from when it was asked.
    (False, 100.0, 100.0, Phase.ASKED, 110.0, []),
    # ... counted from the ask, also when a tuner that died since asked for it.
    (False, 50.0, 100.0, Phase.ASKED, 60.0, []),
    # A zero-code script cannot read a command: woken, and SIGTERMed at once.
    (True, 100.0, 100.0, Phase.TERM, 105.0, [signal.SIGCONT, signal.SIGTERM]),
])
def test_begin(zero_code, asked, now, phase, deadline, sent):
    s = Stopper()
    assert not s.active
    assert s.begin(asked, now, zero_code=zero_code, stop_timeout=STOP, term_timeout=TERM) == sent
    assert (s.phase, s.deadline, s.active) == (phase, deadline, True)


@pytest.mark.parametrize("phase, deadline, now, to, new_deadline, sent", [
    (Phase.NONE, 0.0, 100.0, Phase.NONE, 0.0, []),
    (Phase.ASKED, 110.0, 109.9, Phase.ASKED, 110.0, []),                             # not yet
    (Phase.ASKED, 110.0, 110.0, Phase.TERM, 115.0, [signal.SIGCONT, signal.SIGTERM]),
    (Phase.TERM, 115.0, 114.0, Phase.TERM, 115.0, []),
    (Phase.TERM, 115.0, 116.0, Phase.KILL, 121.0, [signal.SIGKILL]),
    (Phase.KILL, 121.0, 500.0, Phase.KILL, 121.0, []),                               # nothing left
])
def test_escalate(phase, deadline, now, to, new_deadline, sent):
    s = Stopper()
    s.phase, s.deadline = phase, deadline
    assert s.escalate(now, TERM) == sent
    assert (s.phase, s.deadline) == (to, new_deadline)


def test_hurry_skips_the_grace_period_of_a_stop_under_way_only():
    s = Stopper()
    s.hurry(100.0)
    assert s.deadline == 0.0 and s.phase is Phase.NONE
    s.begin(100.0, 100.0, zero_code=False, stop_timeout=STOP, term_timeout=TERM)
    s.hurry(101.0)
    assert s.escalate(101.0, TERM) == [signal.SIGCONT, signal.SIGTERM] and s.phase is Phase.TERM
