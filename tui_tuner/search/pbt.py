"""Population-based training, the decision part: which live run to replace, by a fork of which, changed how.

Pure functions of what the runs reported (no processes, no files): runtime/autopilot.py feeds them
the live runs and carries out what they decide. The rule is Ray Tune's PBT (asynchronous: each run
is judged when it has trained `interval` steps since its start or its last judgement) applied to
our runs, which Ray's scheduler cannot drive (it owns its trials' processes and checkpoints; Optuna
has no PBT), hence this module:

- rank the live runs that have each trained at least `interval` steps by their latest objective
  value (the fork continues from the run's current state, so its current value is what is copied);
- the bottom `fraction` (at least one run, at most half) is "bottom", the top `fraction` "top";
- a judged run in the bottom is exploited: it is stopped and its slot goes to a fork of a top run,
  whose live parameters are explored: each is moved x0.8 or x1.25 on its own scale, or with
  probability `resample` drawn afresh from the current search box.

Never exploited: a pinned run (one the user adjusted or forked by hand) and a zero-code run (no
checkpoint to continue from, no live change). Neither is forked from either: a pinned run is not
touched at all (not even checkpointed), a zero-code one has nothing to continue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tui_tuner.formatting import short_value
from tui_tuner.search.pbt_config import (
    AUTOPILOTS,
    FACTORS,
    FRACTION,
    INTERVAL,
    RESAMPLE,
    PbtConfig,
    pbt_config,
)

__all__ = ["AUTOPILOTS", "FACTORS", "FRACTION", "INTERVAL", "RESAMPLE", "Exploit", "Member", "PbtConfig", "Ranking",
           "explore", "judge", "pbt_config", "perturb", "quantile_size", "rank"]

if TYPE_CHECKING:   # space.py builds a PbtConfig while it loads: no import of it at run time
    import numpy as np

    from tui_tuner.search.sampling import SearchState
    from tui_tuner.search.space import Param, Space

@dataclass(frozen=True)
class Member:
    """A live run as the autopilot sees it."""

    trial_id: int
    step: int                     # its latest step
    value: float | None           # its latest objective value (None: not reported yet)
    params: Mapping[str, Any]
    start: int = 0                # the step it started from (a fork's fork step)
    pinned: bool = False
    zero_code: bool = False

    def mature(self, interval: int) -> bool:
        """True once it has trained `interval` steps itself (a fresh fork is not ranked before)."""
        return self.value is not None and math.isfinite(self.value) and self.step - self.start >= interval


@dataclass(frozen=True)
class Ranking:
    """The ranked population: the bottom and top trial ids and the value that cuts off the bottom."""

    order: tuple[int, ...]        # best first
    bottom: tuple[int, ...]
    top: tuple[int, ...]
    cut: float | None             # the worst value outside the bottom: a bottom run is worse than it


@dataclass(frozen=True)
class Exploit:
    """Replace `loser` by a fork of `winner` with `changes` (what `moves` says, per parameter)."""

    loser: int
    loser_step: int
    loser_value: float
    winner: int
    winner_step: int
    winner_value: float
    cut: float | None
    fraction: float
    changes: dict[str, Any] = field(default_factory=dict)
    moves: dict[str, str] = field(default_factory=dict)

    def summary(self, metric: str) -> str:
        """The stop and its numbers: "stopped #12 at step 300: val_loss 0.91, bottom 25% (cut 0.74)"."""
        cut = f" (cut {short_value(self.cut)})" if self.cut is not None else ""
        return (f"stopped #{self.loser} at step {self.loser_step}: {metric} {short_value(self.loser_value)}, "
                f"bottom {round(self.fraction * 100):g}%{cut}")

    def explored(self) -> str:
        """The changes in a few words: "lr×1.25, momentum resampled 0.95" or "unchanged"."""
        return ", ".join(self.moves.values()) if self.moves else "settings unchanged"


def quantile_size(n: int, fraction: float) -> int:
    """How many runs are bottom (and top) among n ranked: ceil(n * fraction), at least 1, at most n // 2."""
    if n < 2:
        return 0
    return max(1, min(math.ceil(n * fraction - 1e-9), n // 2))


def rank(members: Sequence[Member], interval: int, fraction: float, maximize: bool) -> Ranking:
    """Rank the mature members best first (ties by id) and split off the bottom and top quantiles."""
    ranked = sorted((m for m in members if m.mature(interval)),
                    key=lambda m: (-m.value if maximize else m.value, m.trial_id))  # type: ignore[operator]
    q = quantile_size(len(ranked), fraction)
    if q == 0:
        return Ranking(tuple(m.trial_id for m in ranked), (), (), None)
    bottom, top = ranked[len(ranked) - q:], ranked[:q]
    cut = ranked[len(ranked) - q - 1].value
    return Ranking(tuple(m.trial_id for m in ranked), tuple(m.trial_id for m in bottom),
                   tuple(m.trial_id for m in top), cut)


def judge(run: Member, members: Sequence[Member], cfg: PbtConfig, maximize: bool, space: Space,
          state: SearchState, rng: np.random.Generator) -> Exploit | None:
    """Judge one run that has trained `interval` steps since it was last judged: an Exploit when it is
    in the bottom and may be replaced (not pinned, not zero-code) by a fork of a top run, else None."""
    if not cfg.active or run.pinned or run.zero_code or not run.mature(cfg.interval):
        return None
    ranking = rank(members, cfg.interval, cfg.fraction, maximize)
    if run.trial_id not in ranking.bottom:
        return None
    by_id = {m.trial_id: m for m in members}
    parents = [by_id[i] for i in ranking.top
               if i != run.trial_id and not by_id[i].pinned and not by_id[i].zero_code]
    if not parents:
        return None
    winner = parents[int(rng.integers(len(parents)))]
    changes, moves = explore(space, state, winner.params, rng, cfg.resample)
    return Exploit(run.trial_id, run.step, float(run.value), winner.trial_id, winner.step,  # type: ignore[arg-type]
                   float(winner.value), ranking.cut, cfg.fraction, changes, moves)  # type: ignore[arg-type]


def explore(space: Space, state: SearchState, params: Mapping[str, Any], rng: np.random.Generator,
            resample: float) -> tuple[dict[str, Any], dict[str, str]]:
    """New values for the live parameters being searched: each perturbed, or resampled with
    probability `resample`. Returns (changes, a short text per changed parameter)."""
    changes: dict[str, Any] = {}
    moves: dict[str, str] = {}
    for name, p in space.params.items():
        if not p.live or not state.is_searched(space, name) or name not in params:
            continue
        old = params[name]
        if rng.random() < resample:
            new = _resample(space, p, state, rng)
            move = f"{name} resampled {short_value(new)}"
        else:
            factor = FACTORS[int(rng.integers(2))]
            new = perturb(p, old, factor)
            move = f"{name}×{factor:g}"
        if new != old or type(new) is not type(old):
            changes[name] = new
        moves[name] = move
    return changes, moves


def perturb(p: Param, value: Any, factor: float) -> Any:
    """Move a value by `factor` on the parameter's own scale, clipped to its range.

    log: multiplied; one_minus_log: 1 - value multiplied (beta x1.25 means 1 - beta grows by a
    quarter); linear: moved by (factor - 1) of the range (x1.25: a quarter of it up, x0.8: a fifth
    down); an int moves at least one, a choice to the next value up (x1.25) or down (x0.8).
    """
    up = factor > 1
    if p.type == "choice":
        i = p.index_of(value) + (1 if up else -1)
        return p.values[min(max(i, 0), len(p.values) - 1)]
    lo, hi = float(p.low), float(p.high)  # type: ignore[arg-type]
    x = float(value)
    if p.scale == "log":
        new = x * factor
    elif p.scale == "one_minus_log":
        new = 1.0 - (1.0 - x) * factor
    else:
        new = x + (factor - 1.0) * (hi - lo)
    new = min(max(new, lo), hi)
    snapped = p.snap(new)
    if p.type == "int" and snapped == int(value):
        # Rounding undid a small move (lr-like ints at the low end): an int moves at least one.
        snapped = p.snap(int(value) + (1 if up else -1))
    return snapped


def _resample(space: Space, p: Param, state: SearchState, rng: np.random.Generator) -> Any:
    """A fresh value from the current search box (the zoom, if any), on the parameter's own scale."""
    if p.type == "choice":
        allowed = state.allowed(space, p.name)
        return allowed[int(rng.integers(len(allowed)))]
    lo, hi = state.box(space, p.name)
    return p.from_unit(lo + float(rng.random()) * (hi - lo))
