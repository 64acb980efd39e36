"""Budgets users think in: trials, steps (the total reported by all trials) and wall-clock time.

A study ends at whichever comes first. The parts here are pure: parsing a time budget ("8h",
"90m", "1h30m", "3600s" or a number of seconds), counting the steps trials spent, and the usage
(`BudgetUsage`) that says how much of each budget is gone and which one ended the study.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tui_tuner.search.param import is_number

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([smhd])")
# The study meta key holding the wall-clock time (unix seconds) the study first started a trial.
STARTED_META = "budget_started"


def parse_duration(value: Any) -> float:
    """Seconds for a time budget: a number of seconds, or text like "8h", "90m", "1h30m", "3600s".

    ValueError (saying what is accepted) for anything else, zero, a negative or an infinite time.
    """
    rule = 'a time like "8h", "90m", "1h30m" or "3600s", or a number of seconds > 0'
    if is_number(value):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text or len({u for _, u in parts}) != len(parts):
                raise ValueError(f"must be {rule}, got {value!r}") from None
            seconds = sum(float(n) * UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"must be {rule}, got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"must be {rule}, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration as people read it: 45s, 12m, 1h05m, 2d3h."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"{m}m" if not r or m >= 10 else f"{m}m{r:02d}s"
    if s < 86400:
        h, r = divmod(s, 3600)
        return f"{h}h{r // 60:02d}m" if r // 60 else f"{h}h"
    d, r = divmod(s, 86400)
    return f"{d}d{r // 3600}h" if r // 3600 else f"{d}d"


def trial_steps(step: int | None, fork_step: int | None, resume: str | None) -> int:
    """The steps one trial spent: its last step, less the steps a fork inherited from its
    checkpoint (a fork that restarts from scratch, zero-code, spent them all again)."""
    if step is None:
        return 0
    if resume and fork_step:
        return max(0, int(step) - int(fork_step))
    return max(0, int(step))


def steps_spent(rows: Iterable[tuple[int | None, int | None, str | None]]) -> int:
    """The total of steps reported by all trials, from (step, fork_step, resume) per trial."""
    return sum(trial_steps(*r) for r in rows)


@dataclass(frozen=True)
class BudgetUsage:
    """How much of each budget a study has used; a None budget is unlimited.

    `trials` counts trials started, `steps` the steps all trials reported (forks count from their
    checkpoint), `seconds` the wall clock since the study first started a trial.
    """

    trials: int
    trial_budget: int
    steps: int = 0
    step_budget: int | None = None
    seconds: float = 0.0
    time_budget: float | None = None

    @property
    def steps_left(self) -> bool:
        """False once the step budget is spent."""
        return self.step_budget is None or self.steps < self.step_budget

    @property
    def time_left(self) -> bool:
        """False once the time budget is spent."""
        return self.time_budget is None or self.seconds < self.time_budget

    @property
    def trials_left(self) -> bool:
        """False once the trial budget is spent (every trial it allows has started)."""
        return self.trials < self.trial_budget

    @property
    def ended_by(self) -> str | None:
        """The budget that ends the study now ("steps" or "time"; checked before the trial budget,
        which waits for its trials to finish), or None while both have some left."""
        if not self.steps_left:
            return "steps"
        if not self.time_left:
            return "time"
        return None

    def reason(self) -> str | None:
        """Why the study ends now, for the scheduler's message; None while steps and time are left."""
        if self.ended_by == "steps":
            return (f"step budget reached: {self.steps} of {self.step_budget} steps used; "
                    f"the study ends (running trials are stopped)")
        if self.ended_by == "time":
            return (f"time budget reached: {format_duration(self.seconds)} of "
                    f"{format_duration(self.time_budget or 0)} used; the study ends (running trials are stopped)")
        return None

    def text(self) -> str:
        """One short line for a status bar or a summary: trials 12/20 · steps 830/1040 · time 1h02m/8h."""
        parts = [f"trials {self.trials}/{self.trial_budget}"]
        if self.step_budget is not None:
            parts.append(f"steps {self.steps}/{self.step_budget}")
        if self.time_budget is not None:
            parts.append(f"time {format_duration(self.seconds)}/{format_duration(self.time_budget)}")
        return " · ".join(parts)
