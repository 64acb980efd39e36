"""The pure auto-k rule (search/autok.py): raise while a raise pays, go back when it does not, back off
on out of memory, overrides, undo that holds, and the meter that measures a window."""

from __future__ import annotations

import pytest

from tui_tuner.search import autok
from tui_tuner.search.autok import Measurement, Memory, Meter, State

GB = 1e9


def m(k: int, rate: float, runs: float | None = None, memory: Memory | None = None) -> Measurement:
    return Measurement(k, rate, float(k) if runs is None else runs, 10.0, int(rate * 10), memory)


def test_starts_at_one_and_raises_after_the_first_window():
    s, ch = autok.decide(State(), m(1, 1000))
    assert (s.k, s.prev, ch.old, ch.new, ch.why) == (2, 1, 1, 2, "raise")
    assert "1,000 steps/s at k 1" in ch.text
    assert ch.data["from"] == 1 and ch.data["to"] == 2 and ch.data["steps_per_s"] == 1000


@pytest.mark.parametrize("before,after,raises", [
    (1000, 1100, True),     # exactly +10%: pays
    (1000, 1810, True),
    (1000, 1099, False),    # +9.9%: does not
    (1000, 900, False),     # fell
])
def test_a_raise_pays_only_with_ten_percent_more(before, after, raises):
    s, _ = autok.decide(State(), m(1, before))
    s, ch = autok.decide(s, m(2, after))
    if raises:
        assert (ch.why, ch.old, ch.new, s.k, s.prev) == ("raise", 2, 4, 4, 2)   # doubling
        assert f"{autok.rate_text(before)} → {autok.rate_text(after)} steps/s at k 1 → 2" in ch.text
    else:
        assert (ch.why, ch.old, ch.new, s.k, s.settled) == ("back", 2, 1, 1, True)
        assert ch.data["before"] == before and ch.data["steps_per_s"] == after


def test_raises_double_and_a_raise_that_did_not_pay_is_bisected():
    s = State()
    for k, rate in [(1, 1000), (2, 1810), (4, 2470)]:
        s, ch = autok.decide(s, m(k, rate))
        assert ch.why == "raise" and s.k == 2 * k
    assert ch.text.startswith("k 4 → 8: 1,810 → 2,470 steps/s at k 2 → 4 (+36% ≥ +10%)")
    s, ch = autok.decide(s, m(8, 2500))              # 8 does not pay over 4: try the middle
    assert (ch.why, ch.new, s.k, s.prev, s.cap, s.settled) == ("back", 6, 6, 4, 8, False)
    assert ch.text == "k 8 → 6: 2,470 → 2,500 steps/s at k 4 → 8 (+1% < +10%): trying 6"
    s, ch = autok.decide(s, m(6, 2800))              # 6 pays over 4: raise, but below 8
    assert (ch.why, ch.new, s.k) == ("raise", 7, 7)
    s, ch = autok.decide(s, m(7, 2900))              # 7 does not pay over 6, nothing between: back
    assert (ch.why, s.k, s.settled) == ("back", 6, True)
    # Settled: further windows change nothing, but keep the rate for the status line.
    s2, ch = autok.decide(s, m(6, 2600))
    assert ch is None and s2.k == 6 and s2.rates[6] == 2600


def test_on_two_cores_it_settles_on_two():
    s = State()
    for k, rate in [(1, 400), (2, 790), (4, 800), (3, 805)]:
        s, ch = autok.decide(s, m(k, rate))
    assert (s.k, s.settled) == (2, True) and ch.text.endswith("back to 2")


def test_a_window_with_too_few_runs_or_at_another_k_decides_nothing():
    s, _ = autok.decide(State(), m(1, 1000))
    same, ch = autok.decide(s, m(2, 5000, runs=1.2))   # the queue could not fill 2 slots
    assert ch is None and same == s
    same, ch = autok.decide(s, m(1, 5000))               # stale: measured at the old k
    assert ch is None and same == s


def test_memory_limits_a_doubling_to_the_runs_that_fit():
    mem = Memory(used=30 * GB, free=50 * GB, total=80 * GB, runs=24 * GB)   # 6 GB a run at k 4
    s, ch = autok.decide(State(k=4), m(4, 1000, memory=mem))
    # (50 - 4 reserve) // (6 * 1.2) = 6 more would fit: 8 is allowed; with less free memory, fewer.
    assert ch.new == 8
    tight = Memory(used=60 * GB, free=20 * GB, total=80 * GB, runs=24 * GB)
    s, ch = autok.decide(State(k=4), m(4, 1000, memory=tight))
    assert ch.new == 6


def test_memory_without_room_stops_the_raise():
    full = Memory(used=70 * GB, free=10 * GB, total=80 * GB, runs=60 * GB)   # 30 GB a run, 10 free
    s, ch = autok.decide(State(k=2), m(2, 1000, memory=full))
    assert ch is None and s.settled and s.k == 2 and "memory" in s.note
    roomy = Memory(used=10 * GB, free=70 * GB, total=80 * GB, runs=8 * GB)
    s, ch = autok.decide(State(k=2), m(2, 1000, memory=roomy))
    assert ch.why == "raise" and "GPU 10.0/80 GB" in ch.text and ch.data["gpu_free"] == 70 * GB


def test_memory_per_run_falls_back_to_the_device_use():
    mem = Memory(used=40 * GB, free=40 * GB, total=80 * GB)
    assert mem.per_run(4) == 10 * GB
    assert mem.has_room(4) and not Memory(used=40 * GB, free=5 * GB, total=45 * GB).has_room(4)


def test_max_k_and_ceiling_stop_the_search():
    s, ch = autok.decide(State(k=4, max_k=4), m(4, 1000))
    assert ch is None and s.settled
    s, ch = autok.decide(State(k=3, ceiling=3), m(3, 1000))
    assert ch is None and s.settled and "out of memory" in s.note


def test_oom_backs_off_caps_and_says_requeued():
    s, ch = autok.oom(State(k=3, prev=2), trial_id=7, requeued=True)
    assert (s.k, s.ceiling, s.settled, ch.why, ch.old, ch.new) == (2, 2, True, "oom", 3, 2)
    assert "#7 ran out of GPU memory" in ch.text and "re-queued, not counted" in ch.text
    assert ch.data["trial"] == 7 and ch.data["requeued"] is True
    # Capped: a later window at 2 does not raise to 3 again.
    s, ch = autok.decide(s, m(2, 9999))
    assert ch is None and s.k == 2


def test_oom_at_one_or_with_a_fixed_k_leaves_k():
    assert autok.oom(State(k=1), 3, requeued=False) == (State(k=1), None)
    fixed = State(k=4, mode="fixed")
    assert autok.oom(fixed, 3, requeued=True) == (fixed, None)


@pytest.mark.parametrize("failures,others,k,again", [
    (1, 2, 3, True),          # shared the GPU: not its fault
    (1, 0, 2, True),          # alone now, but k > 1 (the others ended)
    (1, 0, 1, False),         # alone at k 1: it simply does not fit
    (autok.OOM_RETRIES, 1, 2, True),
    (autok.OOM_RETRIES + 1, 1, 2, False),   # enough tries
])
def test_should_requeue(failures, others, k, again):
    assert autok.should_requeue(failures, others, k) is again


def test_fix_overrides_and_auto_resumes():
    s, ch = autok.fix(State(k=2, prev=1, rates={1: 10.0, 2: 20.0}), 5)
    assert (s.k, s.mode, ch.why, ch.new) == (5, "fixed", "fixed", 5)
    same, ch = autok.decide(s, m(5, 100))
    assert ch is None and same.k == 5     # a fixed k is never changed by measurements
    assert autok.fix(s, 5) == (s, None)
    s, ch = autok.to_auto(s)
    assert (s.mode, s.k, s.settled, ch.why, dict(s.rates)) == ("auto", 5, False, "auto", {})
    s, ch = autok.decide(s, m(5, 100))
    assert ch.why == "raise" and s.k == 10
    assert autok.to_auto(s) == (s, None)   # already exploring


def test_undo_puts_k_back_and_holds_it():
    s, ch = autok.decide(State(), m(1, 1000))
    s, ch = autok.decide(s, m(2, 1900))           # 2 → 4
    s, undo = autok.undo(s, ch.data)
    assert (s.k, s.held, undo.old, undo.new, undo.why) == (2, True, 4, 2, "undo")
    # Held: however good the next windows, it is not redone.
    for _ in range(3):
        s, again = autok.decide(s, m(2, 5000))
        assert again is None and s.k == 2
    s, _ = autok.to_auto(s)
    s, again = autok.decide(s, m(2, 5000))
    assert again.why == "raise"


def test_state_round_trips_through_json():
    s = State(k=3, prev=2, ceiling=4, rates={1: 1.5, 2: 3.0}, note="x")
    assert State.from_dict(s.to_dict()) == s
    assert State.from_dict({"k": "bad"}) == State()
    assert State.from_dict({"k": 500}, max_k=8).k == 8


def test_meter_ignores_start_up_and_inherited_steps():
    meter = Meter()
    meter.going(2, 0.0)
    meter.report(1, 1000)           # a fork resuming at step 1000: a baseline, not 1000 steps
    meter.start(0.0)
    meter.report(2, 50)             # run 2's first report inside the window: baseline too
    meter.report(1, 1100)
    meter.report(2, 150)
    meter.report(1, 1100)           # no progress: not a report that counts
    got = meter.measure(2, 10.0)
    assert (got.steps, got.steps_per_s, got.runs, got.seconds, meter.reports) == (200, 20.0, 2.0, 10.0, 2)


def test_meter_averages_the_runs_going():
    meter = Meter()
    meter.going(1, 0.0)
    meter.start(0.0)
    meter.going(3, 5.0)             # a raise: from t=5 three runs go
    got = meter.measure(3, 10.0)
    assert got.runs == pytest.approx(2.0) and not got.full()
    meter.end(1)
    assert not meter.baseline(1)
    meter.stop()
    assert not meter.open and meter.elapsed(20.0) == 0.0


def test_meter_does_not_count_reports_written_before_the_window_and_read_late():
    meter = Meter()
    meter.report(1, 100, t=1.0)
    meter.start(10.0)
    meter.report(1, 900, t=9.5)     # a backlog the busy tuner reads only now: a new baseline
    meter.report(1, 1000, t=10.5)
    assert meter.measure(1, 11.0).steps == 100
