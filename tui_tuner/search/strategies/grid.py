"""grid: every combination of the searched parameters' values, queued once; the study ends when it is done.

For small discrete choices (layers 2, 3, 4): each parameter must have a finite set of values (a
choice, an int range, or a float with a step). The grid is enumerated for the search state it was
queued in (kept in the study), so a zoom or a stage change queues the grid of the new region.
"""

from __future__ import annotations

from typing import Any

from tui_tuner.search.sampling import Sampler
from tui_tuner.search.state import SearchState
from tui_tuner.search.strategies import Host, Strategy, register

GRID_META = "grid_state"   # the search state the grid was enumerated for


def refill(host: Host, room: int) -> bool:
    """Queue the whole grid of the current region, once; say when it is exhausted."""
    study = host.study
    state = study.search_state
    key = state.to_json()
    if study.meta(GRID_META) == key:
        if not host.exhausted:
            host.exhausted = True
            n = sum(1 for t in study.trials("id") if t.source == "grid")
            host.message = (f"grid exhausted: all {n} settings were tried"
                            f"{f' (budget {host.budget})' if n < host.budget else ''}; the study ends")
        return False
    # SpaceError (a float without a step, a grid over the limit) reaches the caller: no sensible
    # fallback exists, the user has to change the space or the strategy.
    settings = host.sampler.grid(state)
    study.enqueue(settings, "grid", meta={GRID_META: key})
    return bool(settings)


def preview(space: Any, n: int, seed: int | None, *, budget: int, parallel: int) -> list[dict]:
    """The grid's first n settings, in the order they are queued."""
    return Sampler(space, seed).grid(SearchState(stage=space.config.stage))[:n]


register(Strategy("grid", "every combination of the searched values, once", refill, preview, order=2))
