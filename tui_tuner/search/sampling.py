"""Sampling: random and grid settings over a Space within a SearchState, and coarse-to-fine rounds.

Everything happens in each parameter's unit space (see `Param.to_unit`): a zoom is a sub-box of
[0, 1] per numeric parameter, so a zoomed log learning rate stays log-uniform and a zoomed
one_minus_log beta keeps 1-beta log-uniform. The state (search/state.py) says what is searched
and where; the moves that change it (zoom, stage, freeze) are in search/region.py.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import numpy as np

from tui_tuner.errors import SpaceError
from tui_tuner.search.param import Param
from tui_tuner.search.space import Space
from tui_tuner.search.state import SearchState, current_box, current_values

# Grid refusal threshold when the caller gives none.
GRID_LIMIT = 1000


# -- sampling ------------------------------------------------------------------------------------


class Sampler:
    """Random and grid settings from one seeded numpy Generator (never the global RNG)."""

    def __init__(self, space: Space, seed: int | None = None) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)

    def random(self, state: SearchState, n: int, *, stratified: bool = False) -> list[dict]:
        """n full settings: searched parameters uniform in their unit box, the others fixed.

        With `stratified`, the n draws of each parameter are spread over n equal slices of its box
        (Latin hypercube): every setting is still uniform in the box, but a small round cannot
        bunch up in one corner of it. Coarse-to-fine rounds use this.
        """
        space = self.space
        fixed = state.fixed(space)
        columns: dict[str, list] = {}
        # One vectorised draw per parameter, in space order, so a seed gives the same settings.
        for name in state.searched(space):
            p = space[name]
            if p.type == "choice":
                allowed = state.allowed(space, name)
                if stratified:
                    # Each allowed value n/len times (the remainder at random), in random order.
                    idx = np.resize(self.rng.permutation(len(allowed)), n)
                    idx = self.rng.permutation(idx)
                else:
                    idx = self.rng.integers(0, len(allowed), size=n)
                columns[name] = [allowed[int(i)] for i in idx]
            else:
                lo, hi = state.box(space, name)
                if stratified:
                    u = (self.rng.permutation(n) + self.rng.uniform(0.0, 1.0, size=n)) / max(n, 1)
                    u = lo + u * (hi - lo)
                else:
                    u = self.rng.uniform(lo, hi, size=n)
                columns[name] = [p.from_unit(float(x)) for x in u]
        return [{name: (columns[name][i] if name in columns else fixed[name]) for name in space.params}
                for i in range(n)]

    def grid(self, state: SearchState, limit: int = GRID_LIMIT) -> list[dict]:
        """Every combination of the searched parameters' values within the current zoom.

        Choices, ints and floats with a step are enumerated; a searched float without a step, or a
        grid of more than `limit` settings, is refused with a SpaceError naming the parameter.
        """
        space = self.space
        names = state.searched(space)
        axes: dict[str, list] = {}
        for name in names:
            axes[name] = grid_values(space[name], state, limit)
        total = math.prod(len(v) for v in axes.values())
        if total > limit:
            big = max(names, key=lambda k: len(axes[k]))
            raise SpaceError(f"params.{big}: the grid would hold {total} settings, over the limit of "
                             f"{limit} ({big} alone has {len(axes[big])} values); freeze or narrow "
                             f"some parameters, or use random or coarse_to_fine")
        fixed = state.fixed(space)
        out = []
        for combo in itertools.product(*(axes[n] for n in names)):
            setting = dict(fixed)
            setting.update(zip(names, combo, strict=True))
            out.append({n: setting[n] for n in space.params})
        return out

    def get_state(self) -> dict:
        """The generator state as a JSON-able dict (128-bit words as hex text, safe in any JSON reader)."""
        return _encode(copy.deepcopy(self.rng.bit_generator.state))

    def set_state(self, d: dict) -> None:
        """Restore a state from get_state(), so a reopened study continues the same stream."""
        d = _decode(copy.deepcopy(d))
        name = d.get("bit_generator", "PCG64")
        if type(self.rng.bit_generator).__name__ != name:
            self.rng = np.random.Generator(getattr(np.random, name)())
        self.rng.bit_generator.state = d


def _encode(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _encode(v) for k, v in x.items()}
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool) and abs(int(x)) >= 2**53:
        return hex(int(x))
    if isinstance(x, np.ndarray):
        return {"__array__": x.tolist(), "dtype": str(x.dtype)}
    return x


def _decode(x: Any) -> Any:
    if isinstance(x, dict):
        if "__array__" in x:
            return np.asarray(x["__array__"], dtype=x["dtype"])
        return {k: _decode(v) for k, v in x.items()}
    if isinstance(x, str) and x.startswith(("0x", "-0x")):
        return int(x, 16)
    return x


def grid_values(p: Param, state: SearchState, limit: int = GRID_LIMIT) -> list:
    """The grid axis of one searched parameter: its allowed choices, or its ints/steps in the zoom box."""
    where = f"params.{p.name}"
    if p.type == "choice":
        return current_values(state, p)
    if p.type == "float" and not p.step:
        raise SpaceError(f"{where}: a grid needs a step for a float parameter (add step = ..., freeze it, "
                         f"or use random or coarse_to_fine)")
    lo, hi = current_box(state, p.name)
    step = p.step or 1
    # Candidate lattice points between the box ends in value space; keep those whose unit
    # coordinate lies in the box (ints: the cell centre), so the grid nests inside a zoom.
    a, b = p.value_at(lo), p.value_at(hi)
    k0 = math.floor((a - p.low) / step) - 1
    k1 = math.ceil((b - p.low) / step) + 1
    if k1 - k0 + 1 > 4 * limit + 8:
        raise SpaceError(f"{where}: the grid would hold about {k1 - k0 + 1} values of it alone, over the "
                         f"limit of {limit}; give it a larger step, narrow it or freeze it")
    eps = 1e-12
    vals = []
    for k in range(max(k0, 0), k1 + 1):
        v = p.snap(p.low + k * step)
        if v > p.high or (vals and v == vals[-1]):
            continue
        if lo - eps <= p.to_unit(v) <= hi + eps:
            vals.append(v)
    if not vals:  # a box narrower than one lattice cell: its centre's value
        vals = [p.from_unit((lo + hi) / 2)]
    return vals


def auto_round_size(budget: int) -> int:
    """Trials per coarse-to-fine round when round_size = 0 (StudyConfig.round_size): an eighth of
    the budget, 4 to 16 (20 -> 4, 50 -> 6, 100 -> 12)."""
    return max(4, min(16, round(budget / 8)))


def coarse_to_fine_rounds(budget: int, round_size: int = 0) -> list[int]:
    """Trials per round for a budget: a first, coarse round over the full space of twice the round
    size (so the first zoom sees enough of the space), then one zoom before each later round."""
    r = round_size or auto_round_size(budget)
    first = min(budget, 2 * r)
    rest = budget - first
    rounds = [first] + [r] * (rest // r)
    if rest % r:
        rounds.append(rest % r)
    return [n for n in rounds if n > 0]


def first_round_size(budget: int, parallel: int = 1, round_size: int = 0) -> int:
    """How many settings coarse-to-fine queues first (one stratified draw): twice the round size,
    at most the budget; an automatic round is never smaller than `parallel` (no idle slots)."""
    r = round_size or max(auto_round_size(budget), parallel)
    return min(budget, 2 * r)
