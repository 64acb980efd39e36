"""Early stopping's numbers, computed the way Optuna's pruners compute them (read from
optuna/pruners/_successive_halving.py, _hyperband.py, _percentile.py), and the arithmetic of ASHA's
way back: which stopped trials rank well enough now to be promoted, and whose records a promoted fork
continues. Pure functions over values and Optuna's frozen trials; the Decider (early_stop.py) holds
the state."""

from __future__ import annotations

import binascii
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tui_tuner.search.early_stop_records import STARTUP_SHARE, Candidate, End, Promote, Record
from tui_tuner.search.optuna_search import STUDY_NAME


def rung_key(rung: int) -> str:
    """The system attribute successive halving records a rung's value under."""
    return f"completed_rung_{rung}"


def rungs(trial: Any) -> list[int]:
    """The rungs a trial has completed (successive halving records each as a system attribute)."""
    r = 0
    while rung_key(r) in trial.system_attrs:
        r += 1
    return list(range(r))


def promotion_cutoff(values: list[float], eta: int, maximize: bool) -> float:
    """The value a trial must reach to go on past a rung, given every value recorded there (its own
    included): the (n // eta)-th best, or the best while fewer than eta trials have reached it."""
    idx = max(len(values) // eta - 1, 0)
    ordered = sorted(values)
    return ordered[-(idx + 1)] if maximize else ordered[idx]


def median_cutoff(values: list[float]) -> float | None:
    """The median (NaNs ignored) of the finished trials' values at a step; None when there are none."""
    if all(math.isnan(v) for v in values):
        return None
    return float(np.nanpercentile(np.array(values, dtype=float), 50.0))


def bracket_budgets(min_step: int, max_step: int, eta: int) -> list[int]:
    """Trials per Hyperband bracket, in proportion (as HyperbandPruner._try_initialization)."""
    n = math.floor(math.log(max_step / min_step, eta)) + 1
    return [math.ceil(n * eta ** (n - 1 - b) / (n - 1 - b + 1)) for b in range(n)]


def bracket_of(number: int, budgets: Sequence[int]) -> int:
    """Hyperband's bracket for the trial numbered `number` (as HyperbandPruner._get_bracket_id)."""
    n = binascii.crc32(f"{STUDY_NAME}_{number}".encode()) % sum(budgets)
    for b, size in enumerate(budgets):
        n -= size
        if n < 0:
            return b
    raise AssertionError("unreachable: n < sum(budgets)")


def candidates(trials: Sequence[Any], failed: Mapping[int, int], eta: int, maximize: bool,
               rung_step: Callable[[int], int]) -> list[Candidate]:
    """ASHA's promotion: of the trials numbered in `failed` ({number: the rung whose verdict stopped
    it}), those whose value there is now within the best 1/eta of every value recorded at that rung;
    the highest rung first, then the best value."""
    out: list[Candidate] = []
    for t in trials:
        rung = failed.get(t.number)
        if rung is None:
            continue
        key = rung_key(rung)
        value = t.system_attrs.get(key)
        if value is None or math.isnan(value):
            continue
        values = [u.system_attrs[key] for u in trials if key in u.system_attrs]
        cutoff = promotion_cutoff(values, eta, maximize)
        if (value >= cutoff) if maximize else (value <= cutoff):
            out.append(Candidate(t.number, rung, rung_step(rung), float(value), float(cutoff), len(values)))
    out.sort(key=lambda c: (-c.rung, -c.value if maximize else c.value, c.trial_id))
    return out


def promoted_owners(items: Sequence[Record]) -> tuple[list[int], set[int]]:
    """Whose each record is, once promotions are applied: a Promote makes the parent's records before
    it the child's (the child continues its curve), and the parent's end is dropped (the child has not
    ended). Returns the owner of each record and the indices of the dropped ends."""
    owner = [r.trial_id for r in items]
    dropped: set[int] = set()
    for i, r in enumerate(items):
        if isinstance(r, Promote):
            for j in range(i):
                if owner[j] == r.parent and not isinstance(items[j], Promote):
                    owner[j] = r.trial_id
                    if isinstance(items[j], End):
                        dropped.add(j)
    return owner, dropped


def startup_spent(trials: Sequence[Any], step_budget: int | None) -> bool:
    """True once the trials reached, together, a fourth of the step budget (their steps as judged:
    the rungs they reached and their ends); False with no step budget."""
    return step_budget is not None and sum(t.last_step or 0 for t in trials) * STARTUP_SHARE >= step_budget


def best_cut(finished: Sequence[Any], rung: int, cutoff: float, maximize: bool) -> str | None:
    """Why a rung should stop no more: the best of the `finished` trials has a value there worse than
    the rung's cut-off now. None when it has not (or none finished, or it has no value there)."""
    if not finished:
        return None
    best = (max if maximize else min)(finished, key=lambda t: t.value)
    value = best.system_attrs.get(rung_key(rung))
    if value is None or not ((value < cutoff) if maximize else (value > cutoff)):
        return None
    return f"it would stop #{best.number}, the best finished trial ({value:.4g} there)"
