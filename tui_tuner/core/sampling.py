"""Sampling: random, grid and coarse-to-fine search over a Space, with priority stages and frozen values.

Everything happens in each parameter's unit space (see `Param.to_unit`): a zoom is a sub-box of
[0, 1] per numeric parameter, so a zoomed log learning rate stays log-uniform and a zoomed
one_minus_log beta keeps 1-beta log-uniform. A `SearchState` holds the stage, frozen and anchored
values and the zoom stack; it is plain data, persisted by the study as JSON. Every change returns a
new state, so the caller decides when to store it.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tui_tuner.core.formatting import show_value
from tui_tuner.core.param import Param
from tui_tuner.core.space import Space
from tui_tuner.core.study_config import MODEL_STRATEGIES, ZOOM_MARGIN, ZOOM_TOP
from tui_tuner.errors import SpaceError

# Coarse-to-fine defaults, chosen with tests/bench/search_quality.py (see its table): zoom on the
# best 25% (at least 2) of all finished trials, add 15% of the current box width on each side;
# rounds from `coarse_to_fine_rounds` (a first round of twice the round size, then one zoom per
# round), each round drawn stratified. Narrower margins or a smaller top fraction win a little
# on easy surfaces and lose more when noise misleads an early zoom.
# A zoomed box is never narrower than this share of the box it came from, so a run of zooms
# around a single good point narrows geometrically instead of collapsing to that point.
MIN_WIDTH = 0.05
# Raising the stage boxes the previously searched parameters around the best trial: this share
# of their current box width.
STAGE_WIDTH = 0.5
# Grid refusal threshold when the caller gives none.
GRID_LIMIT = 1000
FULL = (0.0, 1.0)


@dataclass
class ZoomLevel:
    """One level of the zoom stack: a full snapshot of the allowed region, not a change to the last one."""

    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)  # numeric: unit box in [0, 1]
    choices: dict[str, list] = field(default_factory=dict)  # choice params: values still allowed
    trials: list[int] = field(default_factory=list)  # trial ids the zoom was taken from
    kind: str = "zoom"  # "zoom" (coarse-to-fine) or "stage" (boxed around the best when the stage rose)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {"bounds": {k: [float(lo), float(hi)] for k, (lo, hi) in self.bounds.items()},
                "choices": {k: list(v) for k, v in self.choices.items()},
                "trials": [int(t) for t in self.trials], "kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ZoomLevel:
        """Inverse of to_dict."""
        return cls(bounds={k: (float(v[0]), float(v[1])) for k, v in d.get("bounds", {}).items()},
                   choices={k: list(v) for k, v in d.get("choices", {}).items()},
                   trials=[int(t) for t in d.get("trials", [])], kind=str(d.get("kind", "zoom")))


@dataclass
class SearchState:
    """Where the search stands: stage, frozen and anchored values, and the zoom stack ([] = full space)."""

    stage: int = 4
    frozen: dict[str, Any] = field(default_factory=dict)
    anchor: dict[str, Any] = field(default_factory=dict)
    levels: list[ZoomLevel] = field(default_factory=list)

    # -- queries --------------------------------------------------------------------------------

    def is_searched(self, space: Space, name: str) -> bool:
        """True when the parameter is sampled now (its tier <= stage and it is not frozen)."""
        return space[name].tier <= self.stage and name not in self.frozen

    def searched(self, space: Space) -> list[str]:
        """Names searched now (tier <= stage and not frozen), in priority order."""
        return [n for n in space.params if self.is_searched(space, n)]

    def box(self, space: Space, name: str) -> tuple[float, float]:
        """Current unit-space box of a numeric parameter ((0, 1) when not zoomed)."""
        return _box(self, name)

    def allowed(self, space: Space, name: str) -> list:
        """Current allowed values of a choice parameter (all of them when not zoomed)."""
        return _allowed(self, space[name])

    def fixed_value(self, space: Space, name: str) -> Any:
        """The value an un-searched parameter takes: frozen, else anchored, else its default."""
        p = space[name]
        if name in self.frozen:
            return p.check(self.frozen[name])
        if name in self.anchor:
            try:
                return p.check(self.anchor[name])
            except SpaceError:
                return p.default  # an anchor from an older space edit: fall back rather than fail
        return p.default

    def fixed(self, space: Space) -> dict[str, Any]:
        """Values of every parameter not searched now."""
        return {n: self.fixed_value(space, n) for n in space.params if not self.is_searched(space, n)}

    def ranges(self, space: Space) -> dict[str, str]:
        """Display text of each parameter's current range, in value space, in priority order.

        "[0.0012, 0.0087]" for a zoomed numeric, "{2, 3}" for choices, "= 0.9 (frozen)",
        "= 0.003 (anchored)" or "= 0.01 (default)" for one that is not searched.
        """
        out: dict[str, str] = {}
        for name, p in space.params.items():
            if not self.is_searched(space, name):
                why = "frozen" if name in self.frozen else "anchored" if name in self.anchor else "default"
                out[name] = f"= {show_value(self.fixed_value(space, name))} ({why})"
            elif p.type == "choice":
                out[name] = "{" + ", ".join(show_value(v) for v in self.allowed(space, name)) + "}"
            else:
                lo, hi = self.box(space, name)
                if (lo, hi) == FULL:
                    out[name] = p.range_label()
                elif p.type == "int":
                    # The ints whose cells reach inside the box (a box edge on a cell edge would
                    # otherwise show a neighbour that is never drawn).
                    tiny = 1e-9 * (hi - lo)
                    out[name] = f"[{p.from_unit(lo + tiny)}, {p.from_unit(hi - tiny)}]"
                else:
                    out[name] = "[{}, {}]".format(*_pair(p.value_at(lo), p.value_at(hi), p.low, p.high))
        return out

    # -- persistence ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {"stage": self.stage, "frozen": dict(self.frozen), "anchor": dict(self.anchor),
                "levels": [lv.to_dict() for lv in self.levels]}

    def to_json(self) -> str:
        """JSON text (the study stores it)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, s: str | dict) -> SearchState:
        """Rebuild a state from to_json() text (or its dict)."""
        d = json.loads(s) if isinstance(s, str) else s
        return cls(stage=int(d.get("stage", 4)), frozen=dict(d.get("frozen", {})),
                   anchor=dict(d.get("anchor", {})),
                   levels=[ZoomLevel.from_dict(x) for x in d.get("levels", [])])

    def copy(self) -> SearchState:
        """A deep copy (states are treated as values)."""
        return copy.deepcopy(self)


def _pair(a: float, b: float, low: float, high: float) -> tuple[str, str]:
    """Two range ends with just enough significant digits to tell them apart and to stay inside
    [low, high] (β near 1 needs more: 0.999 must not show as 1, which is off the 1-β scale)."""
    for digits in range(2, 9):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb and low <= float(sa) <= high and low <= float(sb) <= high:
            return sa, sb
    return f"{a:.9g}", f"{b:.9g}"


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
        return _allowed(state, p)
    if p.type == "float" and not p.step:
        raise SpaceError(f"{where}: a grid needs a step for a float parameter (add step = ..., freeze it, "
                         f"or use random or coarse_to_fine)")
    lo, hi = _box(state, p.name)
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


def _box(state: SearchState, name: str) -> tuple[float, float]:
    return tuple(state.levels[-1].bounds.get(name, FULL)) if state.levels else FULL  # type: ignore[return-value]


def _allowed(state: SearchState, p: Param) -> list:
    if state.levels and p.name in state.levels[-1].choices:
        return list(state.levels[-1].choices[p.name])
    return list(p.values)


# -- zoom ----------------------------------------------------------------------------------------


def _top_count(top: float, n: int) -> int:
    """How many best trials a zoom uses: a fraction in (0, 1) of n, or a count; at least 2, at most n."""
    if not (top > 0) or (top >= 1 and not float(top).is_integer()):
        raise SpaceError(f"zoom top must be a fraction in (0, 1) or a count >= 1, got {top}")
    k = math.ceil(top * n) if top < 1 else int(top)
    return max(2, min(k, n))


def _int_cell(p: Param, value: int) -> tuple[float, float]:
    """The unit-space cell an int value owns (its share of [0, 1])."""
    a, b = p._edges()
    if b == a:
        return FULL
    lo = (p._coord(max(value - 0.5, float(p.low) - 0.5)) - a) / (b - a)
    hi = (p._coord(min(value + 0.5, float(p.high) + 0.5)) - a) / (b - a)
    return max(lo, 0.0), min(hi, 1.0)


def _fit(lo: float, hi: float, cur: tuple[float, float], min_w: float) -> tuple[float, float]:
    """Clip [lo, hi] into the current box and widen it to at least min_w (staying inside cur)."""
    clo, chi = cur
    min_w = min(min_w, chi - clo)
    nlo, nhi = max(lo, clo), min(hi, chi)
    if nhi - nlo < min_w:
        centre = min(max((lo + hi) / 2, clo + min_w / 2), chi - min_w / 2)
        nlo, nhi = centre - min_w / 2, centre + min_w / 2
        # float noise must not push a side outside the box
        nlo, nhi = max(nlo, clo), min(nhi, chi)
    return float(nlo), float(nhi)


def _ranked(finished: list[tuple[dict, float]], ids, maximize: bool) -> list[tuple[dict, float, int | None]]:
    rows = []
    for i, (setting, obj) in enumerate(finished):
        if obj is None:
            continue
        try:
            val = float(obj)
        except (TypeError, ValueError):
            continue
        if math.isfinite(val):
            rows.append((setting, val, None if ids is None else ids[i]))
    rows.sort(key=lambda r: -r[1] if maximize else r[1])  # stable: earlier trials win ties
    return rows


def zoom_minimum(space: Space, state: SearchState) -> int:
    """The finished trials a zoom needs unless forced: twice the parameters searched now (at least 2).

    Fewer than that, and the best few trials say little about most parameters: a walk-through zoom
    after 3 trials collapsed batch size, layers and optimizer each to one value, and the eventual
    best trial lay outside the box.
    """
    return max(2, 2 * len(state.searched(space)))


def zoom(space: Space, state: SearchState, finished: list[tuple[dict, float]], *, maximize: bool,
         top: float = ZOOM_TOP, margin: float = ZOOM_MARGIN, ids: list[int] | None = None,
         min_width: float = MIN_WIDTH, force: bool = False) -> SearchState:
    """A new state with one more zoom level around the best finished trials.

    Each searched numeric parameter shrinks to the unit-space span of the best `top` trials plus
    `margin` of the current box width on each side, never narrower than `min_width` of the current
    box and always inside it; each searched choice keeps the values those trials used. `ids`
    (parallel to `finished`) are recorded on the level. Non-finite objectives are ignored.
    Fewer finished trials than `zoom_minimum` are refused (saying how many it has and needs)
    unless `force`; a forced zoom still needs 2.
    """
    if ids is not None and len(ids) != len(finished):
        raise ValueError("ids must be parallel to finished")
    rows = _ranked(finished, ids, maximize)
    need = zoom_minimum(space, state)
    if force and len(rows) < 2:
        raise SpaceError(f"zoom needs at least 2 finished trials with an objective, got {len(rows)}")
    if not force and len(rows) < need:
        n = len(state.searched(space))
        raise SpaceError(f"zoom needs at least {need} finished trials with an objective (twice the {n} "
                         f"searched parameters), got {len(rows)}; zooming on fewer may shut out the best "
                         f"region (force it to zoom anyway)")
    best = rows[:_top_count(top, len(rows))]
    old = state.levels[-1] if state.levels else ZoomLevel()
    level = ZoomLevel(bounds=dict(old.bounds), choices={k: list(v) for k, v in old.choices.items()},
                      trials=[r[2] for r in best if r[2] is not None], kind="zoom")
    for name in state.searched(space):
        p = space[name]
        values = [r[0].get(name, p.default) for r in best]
        if p.type == "choice":
            used = set()
            for v in values:
                try:
                    used.add(p.index_of(v))
                except SpaceError:
                    continue  # a value no longer in the space: it says nothing about this one
            kept = [p.values[i] for i in sorted(used)]
            allowed = state.allowed(space, name)
            nested = [v for v in kept if v in allowed]
            level.choices[name] = nested or kept or allowed
            continue
        cur = state.box(space, name)
        width = cur[1] - cur[0]
        units = []
        for v in values:
            try:
                v = p.check(v)
            except SpaceError:
                continue
            if p.type == "int":
                units.extend(_int_cell(p, v))  # keep each best integer's whole cell
            else:
                units.append(p.to_unit(v))
        if not units:
            continue
        lo, hi = min(units) - margin * width, max(units) + margin * width
        min_w = max(min_width * width, 1e-9)
        level.bounds[name] = _fit(lo, hi, cur, min_w)
    new = state.copy()
    new.levels.append(level)
    return new


def unzoom(state: SearchState) -> SearchState:
    """A new state with the last zoom level removed; SpaceError when the search is already full."""
    if not state.levels:
        raise SpaceError("nothing to unzoom: the search already covers the full space")
    new = state.copy()
    new.levels.pop()
    return new


# -- stages and freezing -------------------------------------------------------------------------


def set_stage(space: Space, state: SearchState, stage: int, best: dict | None = None, *,
              width: float = STAGE_WIDTH) -> SearchState:
    """A new state searching tiers <= stage.

    With `best` (a finished trial's setting), raising the stage keeps what was learned: the params
    searched so far get a box of `width` of their current box around best's values (one "stage"
    level on the zoom stack), the newly searched ones start over their full range, and those still
    not searched are anchored at best's values. Lowering the stage anchors the dropped params at
    best's values.
    """
    if not isinstance(stage, int) or isinstance(stage, bool) or not 1 <= stage <= 4:
        raise SpaceError(f"stage must be 1, 2, 3 or 4 (search tiers <= stage), got {stage!r}")
    new = state.copy()
    new.stage = stage
    if best is None:
        return new
    before = set(state.searched(space))
    after = set(new.searched(space))
    for name in space.params:
        if name not in after and name not in new.frozen and name in best:
            try:
                new.anchor[name] = space[name].check(best[name])
            except SpaceError:
                pass
    if stage <= state.stage:
        return new
    old = state.levels[-1] if state.levels else ZoomLevel()
    level = ZoomLevel(bounds=dict(old.bounds), choices={k: list(v) for k, v in old.choices.items()},
                      kind="stage")
    for name in space.params:
        if name in after and name not in before:
            # Newly searched: its whole range again.
            level.bounds.pop(name, None)
            level.choices.pop(name, None)
            new.anchor.pop(name, None)
        elif name in before and space[name].numeric and name in best:
            p = space[name]
            try:
                u = p.to_unit(p.check(best[name]))
            except SpaceError:
                continue
            cur = state.box(space, name)
            half = width * (cur[1] - cur[0]) / 2
            level.bounds[name] = _fit(u - half, u + half, cur, 2 * half)
    new.levels.append(level)
    return new


def freeze(state: SearchState, name: str, value: Any, space: Space | None = None) -> SearchState:
    """A new state with `name` pinned at `value` (checked against `space` when given)."""
    if space is not None:
        if name not in space:
            raise SpaceError(f"params.{name}: no such parameter in {space.path}")
        value = space[name].check(value)
    new = state.copy()
    new.frozen[name] = value
    return new


def unfreeze(state: SearchState, name: str) -> SearchState:
    """A new state where `name` is searched again (if its tier is within the stage); no-op if not frozen."""
    new = state.copy()
    new.frozen.pop(name, None)
    return new


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


def first_settings(space: Space, n: int, seed: int | None, *, strategy: str | None = None,
                   budget: int | None = None, parallel: int | None = None) -> list[dict]:
    """The first n settings a fresh study of `space` run with this seed queues, in queue order.

    Draws in the scheduler's batches, since a batch of 8 is not two batches of 4 (each parameter
    takes its draws as one vector, and a stratified draw depends on its size): random queues
    min(room, parallel) at a time, coarse_to_fine one stratified first round
    (`first_round_size`), grid the whole grid. Later coarse-to-fine rounds depend on the results
    (each zooms first): past the first round these are the rounds it would draw without a zoom.
    """
    cfg = space.config
    strategy = strategy or cfg.strategy
    budget = cfg.budget if budget is None else budget
    parallel = max(1, cfg.parallel if parallel is None else parallel)
    if strategy in MODEL_STRATEGIES:
        from tui_tuner.core import optuna_search

        return optuna_search.first_settings(space, n, int(np.random.SeedSequence(seed).entropy % 2**63), strategy=strategy,
                                            parallel=parallel)
    sampler = Sampler(space, seed)
    state = SearchState(stage=cfg.stage)
    if strategy == "grid":
        return sampler.grid(state)[:n]
    out: list[dict] = []
    if strategy == "coarse_to_fine":
        out += sampler.random(state, first_round_size(budget, parallel, cfg.round_size), stratified=True)
        r = cfg.round_size or max(auto_round_size(budget), parallel)
    else:
        r = parallel
    while len(out) < n:
        room = budget - len(out)
        out += sampler.random(state, min(room, r) if room > 0 else r, stratified=strategy != "random")
    return out[:n]
