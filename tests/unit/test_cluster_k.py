"""Auto-k on a Slurm cluster: one more job at a time while the cluster starts every job within a minute."""

from __future__ import annotations

import pytest

from tui_tuner.search.autok import State
from tui_tuner.search.cluster_k import Wait, decide


def started(*seconds):
    return [Wait(s, False) for s in seconds]


def test_all_jobs_started_quickly_raise_k_by_one():
    state, change = decide(State(k=2), started(1.2, 3.0))
    assert (state.k, state.prev, change.old, change.new, change.why) == (3, 2, 2, 3, "raise")
    assert change.text == "k 2 → 3: the cluster started every job within 60s (2 jobs, longest wait 3s)"


@pytest.mark.parametrize(("k", "waits"), [
    (3, started(1.0, 2.0)),                       # the third job is not submitted yet
    (2, [Wait(1.0, False), Wait(5.0, True)]),     # one still waits (under a minute): wait and see
])
def test_nothing_to_judge_until_k_jobs_have_started(k, waits):
    assert decide(State(k=k), waits) == (State(k=k), None)


@pytest.mark.parametrize("waits", [started(1.0, 75.0), [Wait(1.0, False), Wait(61.0, True)]])
def test_a_job_that_waited_over_a_minute_stops_the_raises_and_k_stays(waits):
    state, change = decide(State(k=2), waits)
    assert change is None and state.k == 2 and state.settled
    assert "waited" in state.note and "over 60s" in state.note
    assert decide(state, started(1.0, 1.0)) == (state, None)   # settled: no more raises


def test_fixed_k_or_the_most_auto_k_tries_is_left_alone():
    fixed = State(k=2, mode="fixed")
    assert decide(fixed, started(1.0, 1.0)) == (fixed, None)
    top = State(k=3, max_k=3)
    assert decide(top, started(1.0, 1.0, 1.0)) == (top, None)


def test_the_status_line_says_k_follows_job_starts_on_a_cluster():
    from tui_tuner.runtime.autok import Status

    assert Status(3, "auto", None, cluster=True).text() == "k 3 auto · by job starts"
    assert Status(3, "auto", None).text() == "k 3 auto · measuring"
    assert Status(2, "fixed", None, cluster=True).text() == "k 2 fixed"
