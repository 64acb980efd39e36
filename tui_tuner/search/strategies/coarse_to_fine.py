"""coarse_to_fine: a random first round, then after each round a zoom around the best trials so far and
the next round sampled inside it (once enough trials finished: `region.zoom_minimum`).

Stratified rounds and a first round twice the size won in tests/bench/search_quality.py: the first
zoom needs to have seen enough of the space. Needs nothing but numpy, so it is the default where
Optuna is missing.
"""

from __future__ import annotations

from typing import Any

from tui_tuner.errors import TunerError
from tui_tuner.search.sampling import Sampler, auto_round_size, first_round_size
from tui_tuner.search.state import SearchState
from tui_tuner.search.strategies import Host, Strategy, register, sources

C2F_META = "c2f_round"   # {"round": k, "after_id": id}: the trials > id are round k's


def round_of(study: Any) -> int:
    """The coarse-to-fine round in progress (0 before the first)."""
    info = study.meta(C2F_META)
    return int(info["round"]) if info else 0


def refill(host: Host, room: int) -> bool:
    """The next round: zoomed once all of the last one finished, sampled stratified."""
    study = host.study
    n = min(room, host.round_size)
    info = study.meta(C2F_META)
    trials = study.trials("id")
    last_id = trials[-1].id if trials else 0
    if not info:
        return host.queue_random(min(room, 2 * host.round_size), "random",
                                 {C2F_META: {"round": 1, "after_id": last_id}}, stratified=True)
    drawn = sources()
    members = [t for t in trials if t.id > info["after_id"] and t.source in drawn]
    source = "random" if info["round"] <= 1 else "zoom"
    if not members:
        # The round was zoomed but a tuner died before sampling it: sample it now.
        first = info["round"] <= 1
        return host.queue_random(min(room, 2 * host.round_size) if first else n, source, stratified=True)
    if any(not t.finished for t in members):
        return False   # a round zooms only once all of it has finished
    state = study.search_state
    source = "zoom"
    try:
        state = host.zoomed()
    except TunerError:
        # Fewer finished trials than region.zoom_minimum (failures, stops): a zoom on them
        # could shut out the best region, so the next round is sampled where we are.
        source = "random"
    # Zoom and the new round commit together, so a crash never zooms twice.
    study.store.set_meta({"search_state": state.to_dict(),
                          C2F_META: {"round": info["round"] + 1, "after_id": last_id}})
    return host.queue_random(n, source, stratified=True)


def preview(space: Any, n: int, seed: int | None, *, budget: int, parallel: int) -> list[dict]:
    """The first round exactly (stratified); later rounds as drawn without the zooms a run makes."""
    cfg = space.config
    sampler = Sampler(space, seed)
    state = SearchState(stage=cfg.stage)
    out = sampler.random(state, first_round_size(budget, parallel, cfg.round_size), stratified=True)
    r = cfg.round_size or max(auto_round_size(budget), parallel)
    while len(out) < n:
        room = budget - len(out)
        out += sampler.random(state, min(room, r) if room > 0 else r, stratified=True)
    return out[:n]


def preview_note(n: int, budget: int, parallel: int, round_size: int) -> str | None:
    """What `sample` says past the first round."""
    first = first_round_size(budget, parallel, round_size)
    if n > first:
        return (f"settings after the first {first} (the first coarse-to-fine round) are drawn without the "
                f"zooms a run makes from its results")
    return None


register(Strategy("coarse_to_fine", "a random round, then rounds zoomed around the best trials", refill, preview,
                  sources=("random", "zoom"), prefer=3, preview_note=preview_note, order=3))
