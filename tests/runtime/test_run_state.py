"""The pure run state: what a trainer's reports and events do to a run's picture (tables, no processes)."""

from __future__ import annotations

import math

import pytest

from tui_tuner import protocol
from tui_tuner.runtime.run_state import Kind, Objective, RunEvent, RunState

MIN = Objective("val_loss", lambda a, b: a < b, "best")
MAX = Objective("acc", lambda a, b: a > b, "best")
LAST = Objective("val_loss", lambda a, b: a < b, "last")


def state(objective: Objective = MIN, **kw) -> RunState:
    return RunState(7, objective, {"lr": 0.1}, now=100.0, **kw)


def kinds(events: list[RunEvent]) -> list[str]:
    return [e.kind for e in events]


def metrics_line(step, **m):
    return {"t": 1.0, "step": step, "metrics": {k: protocol.encode_metric(v) for k, v in m.items()}}


@pytest.mark.parametrize("objective, values, best, last", [
    (MIN, [0.5, 0.3, 0.4], 0.3, 0.4),
    (MAX, [0.5, 0.9, 0.7], 0.9, 0.7),
    (LAST, [0.5, 0.3, 0.4], 0.3, 0.4),
])
def test_objective_is_best_or_last_in_the_study_direction(objective, values, best, last):
    s = state(objective)
    for i, v in enumerate(values, 1):
        s.apply_line(metrics_line(i, **{objective.name: v}), 100.0 + i)
    assert (s.best, s.last, s.step, s.reports) == (best, last, 3, 3)
    assert s.objective == (last if objective.reduce == "last" else best)
    assert s.series[objective.name].get() == list(enumerate(values, 1))


@pytest.mark.parametrize("metrics, diverged", [
    ({"val_loss": math.nan}, "val_loss is nan at step 3"),
    ({"loss": math.inf}, "loss is inf at step 3"),
    ({"train_loss": -math.inf}, "train_loss is -inf at step 3"),
    ({"acc": math.nan}, None),             # neither the objective nor a loss
    ({"val_loss": 0.2}, None),
])
def test_divergence_is_the_first_non_finite_objective_or_loss(metrics, diverged):
    s = state()
    events = s.apply_line(metrics_line(3, **metrics), 101.0)
    assert s.diverged == diverged
    assert kinds(events) == ([Kind.DIVERGED] if diverged else [])
    if diverged:
        assert events[0].data == {"reason": diverged, "step": 3} and events[0].trial_id == 7
        # Only the first one is news.
        assert s.apply_line(metrics_line(4, **metrics), 102.0) == []


@pytest.mark.parametrize("line, kind, status, data", [
    ({"event": "paused", "t": 5.0}, Kind.PAUSED, "paused", {"step": None, "t": 5.0}),
    ({"event": "resumed", "t": 6.0}, Kind.RESUMED, "running", {"step": None, "t": 6.0}),
    ({"event": "applied", "params": {"lr": 0.01}}, Kind.APPLIED, "running", {"params": {"lr": 0.01}, "step": None}),
    ({"event": "applied", "params": "junk"}, Kind.APPLIED, "running", {"params": {}, "step": None}),
    ({"event": "checkpoint", "seq": 3, "path": "ckpt/step-0.pt", "step": 0}, Kind.CHECKPOINT, "running",
     {"seq": 3, "path": "ckpt/step-0.pt", "step": 0}),
    ({"event": "done", "t": 9.0}, Kind.DONE, "running", {"step": None}),
    ({"event": "from-a-newer-trainer"}, None, "running", None),
])
def test_events_change_the_state_and_say_so(line, kind, status, data):
    s = state()
    events = s.apply_line(line, 101.0)
    assert kinds(events) == ([kind] if kind else [])
    assert s.status == status
    if kind:
        assert events[0].data == data
    if kind == Kind.APPLIED and isinstance(line["params"], dict):
        assert s.params == {"lr": 0.01}
    if kind == Kind.CHECKPOINT:
        assert s.checkpoints == {3: line}
    if kind == Kind.DONE:
        assert s.done_at == 9.0


def test_done_without_a_time_counts_as_later_than_any_stop_and_only_the_first_counts():
    s = state()
    s.apply_line({"event": "done"}, 101.0)
    s.apply_line({"event": "done", "t": 3.0}, 102.0)
    assert s.done_at == math.inf


@pytest.mark.parametrize("line, step", [
    ({"step": 12.0, "metrics": {"loss": 1}}, 12),
    ({"step": "x", "metrics": {"loss": 1}}, 5),      # no usable step: the last one
    ({"step": math.nan, "metrics": {"loss": 1}}, 5),
    ({"metrics": {"loss": "NaN", "junk": "abc"}}, 5),
])
def test_a_report_without_a_usable_step_keeps_the_last_one(line, step):
    s = state(step=5)
    s.apply_line(line, 101.0)
    assert s.step == step and "junk" not in s.metrics


def test_garbage_is_counted_and_reported():
    s = state()
    assert s.apply_garbage(0, 101.0) == []
    ev = s.apply_garbage(2, 101.0)
    assert kinds(ev) == [Kind.GARBAGE] and ev[0].data == {"count": 2, "new": 2}
    assert s.apply_line([1, 2], 102.0) == [] and s.garbage == 3    # a JSON line that is not an object


@pytest.mark.parametrize("status, timeout, silent, stalls", [
    ("running", 10.0, 11.0, True),
    ("running", 10.0, 9.0, False),
    ("paused", 10.0, 60.0, False),      # a paused run is silent on purpose
    ("running", 0.0, 1e6, False),       # 0 turns stall detection off
])
def test_stall_is_flagged_once_and_cleared_by_activity(status, timeout, silent, stalls):
    s = state(status=status)
    events = s.check_stall(100.0 + silent, timeout)
    assert s.stalled is stalls and kinds(events) == ([Kind.STALLED] if stalls else [])
    if stalls:
        assert events[0].data == {"stalled": True, "since": 100.0}
        assert s.check_stall(200.0 + silent, timeout) == []
        back = s.apply_line(metrics_line(1, loss=1.0), 300.0)
        assert back[0].kind == Kind.STALLED and back[0].data == {"stalled": False} and not s.stalled


def test_signals_pause_and_resume_a_zero_code_run():
    s = state()
    assert kinds(s.paused_by_signal()) == [Kind.PAUSED] and s.status == "paused"
    assert kinds(s.resumed_by_signal(150.0)) == [Kind.RESUMED] and s.last_activity == 150.0
    assert s.resumed_by_signal(160.0) == [] and s.status == "running"


def test_event_kinds_are_strings_and_the_protocol_names():
    assert Kind.ENDED == "ended" and f"{Kind.ENDED}" == "ended" and hash(Kind.ENDED) == hash("ended")
    assert {Kind.APPLIED, Kind.PAUSED, Kind.RESUMED, Kind.CHECKPOINT, Kind.DONE, Kind.MAX_STEPS, Kind.INEXACT} == set(
        protocol.EVENTS_KINDS)
    assert set(protocol.Event) == set(protocol.EVENTS_KINDS) and set(protocol.Command) == set(protocol.COMMANDS)


def test_max_steps_is_known_once_said_and_a_change_is_marked():
    s = state()
    s.apply_metrics(10, {"loss": 1.0})
    assert kinds(s.apply_event({"event": "max_steps", "steps": 100})) == [Kind.MAX_STEPS]
    assert s.max_steps == 100 and s.applied == []          # first known: not a change
    s.apply_metrics(50, {"loss": 0.5})
    s.apply_event({"event": "max_steps", "steps": 150, "t": 3.0})
    assert s.max_steps == 150 and s.applied == [{"step": 50, "params": {}, "max_steps": 150, "t": 3.0}]
    assert s.apply_event({"event": "max_steps", "steps": 0}) == [] and s.max_steps == 150


def test_a_batch_of_lines_does_what_each_line_does_in_order():
    # The runner hands a poll's lines over at once (apply_lines); events, curves, the step a live
    # change lands on, garbage and divergence must come out as line by line.
    lines = [
        metrics_line(1, loss=0.9, val_loss=1.0),
        {"event": "applied", "params": {"lr": 0.01}, "t": 5.0},
        [1, 2],                                            # not an object: garbage
        {"t": 1.0, "metrics": {"loss": 0.8, "val_loss": 0.7, "flag": True, "name": "x", "n": 3}},  # no step
        {"t": 1.0, "step": 4.0, "metrics": "not a dict"},  # an event line of no known kind
        metrics_line(5, loss=math.inf, val_loss=0.75),
        metrics_line(6, loss=0.5, val_loss=math.nan),
        {"event": "done", "t": 9.0},
    ]
    batch, single = state(), state()
    events = batch.apply_lines(lines, 101.0)
    one_by_one = [ev for line in lines for ev in single.apply_line(line, 101.0)]
    assert [(e.kind, e.data) for e in events] == [(e.kind, e.data) for e in one_by_one]
    assert kinds(events) == [Kind.APPLIED, Kind.DIVERGED, Kind.DONE]
    assert events[0].data == {"params": {"lr": 0.01}, "step": 1}
    assert events[1].data["step"] == 5 and batch.diverged == "loss is inf at step 5"
    for s in (batch, single):
        assert (s.step, s.reports, s.garbage, s.best) == (6, 4, 1, 0.7) and math.isnan(s.last)
        assert s.series["val_loss"].get() == [(1, 1.0), (1, 0.7), (5, 0.75)]   # no step: the last one
        assert s.series["loss"].get() == [(1, 0.9), (1, 0.8), (6, 0.5)]        # inf left out of the curve
        assert s.metrics["n"] == 3.0 and "flag" not in s.metrics and "name" not in s.metrics
        assert s.params["lr"] == 0.01 and s.done_at == 9.0
    assert batch.apply_lines([], 200.0) == [] and batch.last_activity == 101.0


def test_a_fork_that_says_it_is_not_exact_gives_an_inexact_event():
    s = state()
    (ev,) = s.apply_line({"t": 1.0, "event": "inexact", "reason": "its loader shuffles"}, 101.0)
    assert ev.kind == Kind.INEXACT and ev.data == {"reason": "its loader shuffles"}
