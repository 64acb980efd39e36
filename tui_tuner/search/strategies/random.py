"""random: settings drawn at random from the current search region, a batch whenever the queue runs dry."""

from __future__ import annotations

from typing import Any

from tui_tuner.search.sampling import Sampler
from tui_tuner.search.state import SearchState
from tui_tuner.search.strategies import Host, Strategy, register


def refill(host: Host, room: int) -> bool:
    """A batch the size of the free slots (parallel), at most what the budget leaves."""
    return host.queue_random(min(room, host.parallel), "random")


def preview(space: Any, n: int, seed: int | None, *, budget: int, parallel: int) -> list[dict]:
    """The first n settings a fresh study queues: batches of `parallel` random draws (a batch of 8 is
    not two of 4: each parameter takes its draws as one vector)."""
    sampler = Sampler(space, seed)
    state = SearchState(stage=space.config.stage)
    out: list[dict] = []
    while len(out) < n:
        room = budget - len(out)
        out += sampler.random(state, min(room, parallel) if room > 0 else parallel)
    return out[:n]


register(Strategy("random", "settings drawn at random from the current search region", refill, preview, order=1))
