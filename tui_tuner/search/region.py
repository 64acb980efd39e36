"""Moves of the search region on a SearchState: coarse-to-fine zoom, unzoom, priority stage, freeze.

Each move returns a new state (states are values), so the caller decides when to store it; the
study-level operations that also re-sample the queue are in study/moves.py.
"""

from __future__ import annotations

import math
from typing import Any

from tui_tuner.errors import SpaceError, ZoomTooFewError
from tui_tuner.search.config import ZOOM_MARGIN, ZOOM_TOP
from tui_tuner.search.param import Param
from tui_tuner.search.space import Space
from tui_tuner.search.state import FULL, SearchState, ZoomLevel

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
    Fewer finished trials than `zoom_minimum` are refused with ZoomTooFewError (saying how many it
    has and needs) unless `force`; a forced zoom still needs 2.
    """
    if ids is not None and len(ids) != len(finished):
        raise ValueError("ids must be parallel to finished")
    rows = _ranked(finished, ids, maximize)
    need = zoom_minimum(space, state)
    if force and len(rows) < 2:
        raise SpaceError(f"zoom needs at least 2 finished trials with an objective, got {len(rows)}")
    if not force and len(rows) < need:
        n = len(state.searched(space))
        raise ZoomTooFewError(f"zoom needs at least {need} finished trials with an objective (twice the "
                              f"{n} searched parameters), got {len(rows)}; zooming on fewer may shut out "
                              f"the best region (force it to zoom anyway)", have=len(rows), need=need, searched=n)
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
