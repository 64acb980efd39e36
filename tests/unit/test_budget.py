"""Budgets: time budgets as people write them, the steps trials spent, and which budget ends a study."""

from __future__ import annotations

import pytest

from tui_tuner.search.budget import BudgetUsage, format_duration, parse_duration, steps_spent, trial_steps


@pytest.mark.parametrize("text, seconds", [
    ("8h", 8 * 3600), ("90m", 5400), ("3600s", 3600), ("1h30m", 5400), ("1.5h", 5400), ("2d", 172800),
    (" 45 s ", 45), ("3600", 3600), ("0.5", 0.5), (3600, 3600), (12.5, 12.5), ("1H", 3600),
])
def test_time_budgets_people_write(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["soon", "", "h", "8x", "-1h", "0", 0, -5, "1h1h", "inf", float("nan"),
                                   "8 hours", True, None, [1]])
def test_time_budgets_refused_say_what_is_accepted(value):
    with pytest.raises(ValueError, match=r'like "8h", "90m", "1h30m" or "3600s", or a number of seconds > 0'):
        parse_duration(value)


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (45, "45s"), (60, "1m"), (90, "1m30s"), (720, "12m"), (3600, "1h"), (3900, "1h05m"),
    (8 * 3600, "8h"), (2 * 86400 + 3 * 3600, "2d3h"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("step, fork_step, resume, spent", [
    (None, None, None, 0),
    (30, None, None, 30),
    (300, 200, "runs/t0001/ckpt/step-200.pt", 100),   # a fork continues from its checkpoint
    (300, 200, None, 300),                              # a zero-code fork restarts from scratch
    (150, 200, "ckpt", 0),                              # never negative
])
def test_steps_a_trial_spent(step, fork_step, resume, spent):
    assert trial_steps(step, fork_step, resume) == spent


def test_steps_spent_sums_all_trials():
    assert steps_spent([(52, None, None), (10, None, None), (60, 52, "c"), (None, None, None)]) == 70


def test_usage_says_which_budget_ends_the_study():
    free = BudgetUsage(trials=3, trial_budget=20, steps=500, step_budget=None, seconds=10.0, time_budget=None)
    assert free.ended_by is None and free.reason() is None and free.text() == "trials 3/20"
    steps = BudgetUsage(trials=3, trial_budget=20, steps=1040, step_budget=1040, seconds=10.0, time_budget=3600)
    assert steps.ended_by == "steps"
    assert steps.reason().startswith("step budget reached: 1040 of 1040 steps used")
    assert steps.text() == "trials 3/20 · steps 1040/1040 · time 10s/1h"
    late = BudgetUsage(trials=3, trial_budget=20, steps=10, step_budget=1040, seconds=3601.0, time_budget=3600)
    assert late.ended_by == "time" and late.reason().startswith("time budget reached: 1h of 1h used")
    assert not BudgetUsage(trials=20, trial_budget=20).trials_left
