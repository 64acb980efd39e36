"""Our parameters as Optuna holds them: distributions over the current box, values both ways.

Distributions match our scales exactly: log -> a log float; one_minus_log -> a log float on 1-β
(mapped back to β); int log -> a log int; step -> a stepped float or int; choice -> categorical.
They span the current zoom box (and the choices still allowed), so a proposal stays inside it.
A choice's values go to Optuna as themselves, or as JSON text when two of them compare equal
(1 and true): its labels are computed once per parameter, in one pass (a choice of 1,000 values
would otherwise compare every pair, once per value).
"""

from __future__ import annotations

import functools
import json
import warnings
from typing import Any

from tui_tuner.errors import SpaceError
from tui_tuner.search.param import Param
from tui_tuner.search.space import Space
from tui_tuner.search.state import SearchState

# A stored value that lies this close outside a box edge (a share of the box width) is on the edge:
# β = 1 - (1 - β) and exp(log(x)) drift in the last bits, and such a trial must not be left out.
EDGE_TOL = 1e-9


def _hashable(value: Any) -> Any:
    """A hashable stand-in that compares (and hashes) the way `value` compares: lists as tuples,
    tables as sorted item tuples; 1, 1.0 and True stay equal, as they are to Python."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return ("__table__", tuple(sorted((str(k), _hashable(v)) for k, v in value.items())))
    return value


def _json_labels(p: Param) -> bool:
    """True when a choice's values go to Optuna as JSON text: two of them compare equal (1 and true,
    1 and 1.0), and Optuna finds a choice by ==, so it would mix them up. Linear in the values (one set)."""
    return _labels(p)[2]


def _labels(p: Param) -> tuple[dict[Any, Any], dict[Any, int], bool]:
    """A choice's labels both ways, computed once per parameter: value -> label, label -> index."""
    try:
        return _cached_labels(p)
    except TypeError:   # a parameter holding a list value is not hashable itself: not cached
        return _compute_labels(p)


@functools.lru_cache(maxsize=256)
def _cached_labels(p: Param) -> tuple[dict[Any, Any], dict[Any, int], bool]:
    return _compute_labels(p)


def _compute_labels(p: Param) -> tuple[dict[Any, Any], dict[Any, int], bool]:
    """(type, `_hashable` value) -> label, (type, `_hashable` label) -> index, and whether labels are JSON."""
    json_labels = len({_hashable(v) for v in p.values}) < len(p.values)
    to_label: dict[Any, Any] = {}
    to_index: dict[Any, int] = {}
    for i, v in enumerate(p.values):
        lab = json.dumps(v) if json_labels else v
        to_label.setdefault((type(v), _hashable(v)), lab)
        to_index.setdefault((type(lab), _hashable(lab)), i)
    return to_label, to_index, json_labels


def _label(p: Param, value: Any) -> Any:
    label = _labels(p)[0].get((type(value), _hashable(value)))
    if label is None:
        return json.dumps(value) if _json_labels(p) else value
    return label


def distribution(p: Param, state: SearchState, space: Space) -> Any:
    """The Optuna distribution of a searched parameter over its current box (or allowed choices)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if p.type == "choice":
        return CategoricalDistribution([_label(p, v) for v in state.allowed(space, p.name)])
    lo, hi = state.box(space, p.name)
    if p.type == "int" or p.step:
        # The lattice points whose cells reach into the box: what Sampler.random can draw there.
        tiny = 1e-9 * (hi - lo)
        a, b = p.from_unit(lo + tiny), p.from_unit(hi - tiny)
        if p.type == "int":
            return IntDistribution(int(a), int(b), log=p.scale == "log", step=int(p.step or 1))
        with warnings.catch_warnings():
            # Optuna trims `high` onto the lattice itself and warns when str() rounding disagrees.
            warnings.simplefilter("ignore")
            return FloatDistribution(float(a), float(b), step=float(p.step))
    a, b = p.value_at(lo), p.value_at(hi)
    if p.scale == "one_minus_log":
        return FloatDistribution(1.0 - b, 1.0 - a, log=True)
    return FloatDistribution(a, b, log=p.scale == "log")


def distributions(space: Space, state: SearchState) -> dict[str, Any]:
    """Optuna distributions of the parameters searched now (tier <= stage, not frozen), in priority order."""
    return {name: distribution(space[name], state, space) for name in state.searched(space)}


def to_optuna(p: Param, value: Any, dist: Any) -> Any:
    """A checked value of p as Optuna holds it in `dist`, or None when the distribution cannot hold it."""
    if p.type == "choice":
        label = _label(p, value)
        for c in dist.choices:
            if type(c) is type(label) and c == label:
                return c
        return None
    if p.type == "int":
        v = int(value)
        return v if dist._contains(float(v)) else None
    x = 1.0 - float(value) if p.scale == "one_minus_log" else float(value)
    tol = EDGE_TOL * (dist.high - dist.low) + 1e-15 * max(abs(dist.low), abs(dist.high))
    if not dist.low - tol <= x <= dist.high + tol:
        return None
    x = min(max(x, dist.low), dist.high)
    return x if dist._contains(x) else None


def from_optuna(p: Param, x: Any) -> Any:
    """The parameter's value for what Optuna proposed: 1-β mapped back, JSON labels decoded, snapped."""
    if p.type == "choice":
        i = _labels(p)[1].get((type(x), _hashable(x)))
        if i is None:
            raise SpaceError(f"params.{p.name}: Optuna proposed {x!r}, not among the values")
        return p.values[i]
    if p.scale == "one_minus_log":
        return p.snap(1.0 - float(x))
    return p.snap(float(x))
