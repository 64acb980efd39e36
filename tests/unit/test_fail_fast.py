"""Fail fast as a pure decision (core/fail_fast.py): which first trials pause the queue, and the watch's
life (stand down, pause, go on)."""

from __future__ import annotations

import pytest

from tui_tuner.core.fail_fast import FIRST, QUICK, Ended, Watch, judge, mistake

ARGPARSE = "exit code 2: train.py: error: unrecognized arguments: --lr {}\nusage: train.py [-h]"
NO_OBJ = "exited without reporting the objective 'val_los' (it reported loss, val_loss): done\ndone"


def failed(i: int, reason: str, seconds: float | None = 1.0) -> Ended:
    return Ended(i, "failed", reason, seconds)


def done(i: int) -> Ended:
    return Ended(i, "done", None, 30.0)


@pytest.mark.parametrize(("ended", "pauses"), [
    ([], False),
    ([failed(1, ARGPARSE.format(0.01)), failed(2, ARGPARSE.format(0.3))], False),            # not yet three
    ([failed(i, ARGPARSE.format(0.01 * i)) for i in (1, 2, 3)], True),                         # numbers aside: one mistake
    ([failed(1, "exit code 1: a.py:3: KeyError: 'x'"), failed(2, "exit code 1: a.py:3: KeyError: 'x'"),
      failed(3, "exit code 1: a.py:9: ValueError: y")], False),                               # two mistakes
    ([failed(1, ARGPARSE.format(1)), done(2), failed(3, ARGPARSE.format(3))], False),          # one trial worked
    ([failed(i, ARGPARSE.format(i), QUICK + 5) for i in (1, 2, 3)], False),                    # not within seconds
    ([failed(i, ARGPARSE.format(i), None) for i in (1, 2, 3)], False),                         # how long: unknown
    ([Ended(i, "stopped", "stopped", 1.0) for i in (1, 2, 3)], False),                         # stopped by hand
    ([failed(1, NO_OBJ, 600.0)], True),                                                        # the first, however long
    ([done(1), failed(2, NO_OBJ)], False),                                                     # only the first
])
def test_which_first_trials_pause_the_queue(ended, pauses):
    assert (judge(ended) is not None) == pauses


def test_the_messages_say_why_with_the_reason():
    three = judge([failed(i, ARGPARSE.format(0.01 * i), 2.4) for i in (1, 2, 3)])
    assert three.startswith("queue paused: trials #1, #2, #3 all failed within 2 s with the same reason: "
                            "exit code 2: train.py: error: unrecognized arguments: --lr 0.03; fix it, then ")
    assert "\n" not in three
    first = judge([failed(4, NO_OBJ, 900.0)])
    assert first.startswith("queue paused: trial 4 exited without reporting the objective 'val_los' "
                            "(it reported loss, val_loss)")


def test_same_mistake_ignores_numbers_only():
    assert mistake(ARGPARSE.format(0.001)) == mistake(ARGPARSE.format(1e-05)) == mistake(ARGPARSE.format(3))
    assert mistake("exit code 1: x") != mistake("killed by SIGKILL")


def test_the_watch_stands_down_pauses_once_and_goes_on():
    w = Watch(100.0)
    assert w.observe([done(1)], 110.0) is None and w.watching
    assert w.observe([done(1), done(2), done(3)], 120.0) is None and not w.watching   # seen enough
    w = Watch(100.0)
    bad = [failed(i, ARGPARSE.format(i)) for i in range(1, FIRST + 1)]
    assert w.observe(bad, 130.0) is not None and w.paused_at == 130.0 and not w.watching
    assert w.observe(bad, 131.0) is None          # said once
    w.go_on()
    assert w.paused_at is None and w.since == 130.0 and w.watching and w.message is None
    assert not Watch(0.0, enabled=False).watching
