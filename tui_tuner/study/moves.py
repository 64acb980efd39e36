"""Search operations on a study: zoom, unzoom, stage and freeze, with the queue re-sampled after.

The one home of these moves, shared by the app (a key), headless mode and the scheduler's automatic
coarse-to-fine rounds, so a zoom made by hand and one made by a strategy are the same zoom. Each
operation returns the message a user reads; a move that cannot be made raises a TunerError.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tui_tuner.errors import SpaceError
from tui_tuner.formatting import short_value
from tui_tuner.search import region
from tui_tuner.search.state import SearchState

if TYPE_CHECKING:
    from tui_tuner.study.study import Study

# Queued settings a search move may draw again: those the search itself drew, not the user's.
RESAMPLED_SOURCES = ("random", "zoom")


def zoomed(study: Study, *, top: float | None = None, margin: float | None = None,
           force: bool = False) -> SearchState:
    """The study's search state with one more zoom level around its best done trials (not saved).

    `top` and `margin` default to the space's `zoom_top` and `zoom_margin`. Fewer done trials with a
    finite objective than `region.zoom_minimum` raise ZoomTooFewError unless `force` (a zoom the
    user confirmed); fewer than two raise SpaceError whatever `force` says.
    """
    cfg = study.space.config
    # By id, so trials with equal objectives rank the same whoever zooms (and whenever they ended).
    done = sorted((t for t in study.finished()
                   if t.status == "done" and t.objective is not None and math.isfinite(t.objective)),
                  key=lambda t: t.id)
    return region.zoom(study.space, study.search_state, [(t.params, t.objective) for t in done],
                         maximize=cfg.maximize, top=cfg.zoom_top if top is None else top,
                         margin=cfg.zoom_margin if margin is None else margin, ids=[t.id for t in done],
                         force=force)


def resample_queue(study: Study) -> int:
    """Draw the queued settings the search drew again, from the current region; returns how many.

    Settings the user put in the queue (manual, forks, edits) stay as they are.
    """
    stale = [t for t in study.queue() if t.source in RESAMPLED_SOURCES]
    if not stale:
        return 0
    for t in stale:
        study.drop(t.id)
    study.sample(len(stale))
    return len(stale)


def _resampled(n: int) -> str:
    return f" (re-sampled {n} queued)" if n else ""


def zoom(study: Study, *, top: float | None = None, margin: float | None = None, force: bool = False) -> str:
    """Narrow the search around the best done trials (coarse to fine) and re-sample the queue.

    `force` zooms on fewer done trials than `region.zoom_minimum` (the user was asked first).
    """
    new = zoomed(study, top=top, margin=margin, force=force)
    study.search_state = new
    replaced = resample_queue(study)
    ranges = new.ranges(study.space)
    shown = "; ".join(f"{n} {ranges[n]}" for n in new.searched(study.space))
    return f"zoom {len(new.levels)}: {shown}{_resampled(replaced)}"


def unzoom(study: Study) -> str:
    """Undo the last zoom (SpaceError when there is none) and re-sample the queue."""
    new = region.unzoom(study.search_state)
    study.search_state = new
    return f"zoom {len(new.levels)}{_resampled(resample_queue(study))}"


def set_stage(study: Study, stage: int) -> str:
    """Search tiers <= stage; raising it keeps what was learned around the best trial."""
    best = study.best(1)
    new = region.set_stage(study.space, study.search_state, stage, best[0].params if best else None)
    study.search_state = new
    resample_queue(study)
    names = ", ".join(new.searched(study.space)) or "nothing"
    return f"stage {stage}: searching {names}"


def toggle_freeze(study: Study, name: str) -> str:
    """Freeze a parameter at the best trial's value (or its default), or search it again."""
    space = study.space
    if name not in space:
        raise SpaceError(f"params.{name}: no such parameter")
    state = study.search_state
    if name in state.frozen:
        study.search_state = region.unfreeze(state, name)
        resample_queue(study)
        return f"{name} searched again"
    best = study.best(1)
    value = best[0].params.get(name, space[name].default) if best else space[name].default
    where = f"best trial #{best[0].id}" if best else "default"
    study.search_state = region.freeze(state, name, value, space)
    resample_queue(study)
    return f"{name} frozen at {short_value(value)} ({where})"
