"""tpe, gp and cmaes: Optuna's samplers (search/optuna_search.py) asked for a setting per free slot.

Each ask sees every trial of the study (the queued and running ones as pending) inside the current
zoom box and stage; an ask that fits a model runs off the command thread (the scheduler's
`ask_model`: a worker process). gp is the default where torch and scipy are installed, tpe where
only Optuna is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tui_tuner.search.state import SearchState
from tui_tuner.search.strategies import Host, Strategy, register
from tui_tuner.search.trials import Trial


def refill(host: Host, room: int) -> bool:
    """Ask the study's model for the free slots."""
    return host.ask_model(room)


def preview(space: Any, n: int, seed: int | None, *, strategy: str, budget: int, parallel: int) -> list[dict]:
    """The first n settings a fresh study run with this seed queues: `parallel` asked at once, then
    one per trial that ends, each ask seeing the earlier settings as trials.

    The first `parallel` are exact. Later ones are exact while the sampler is still in its random
    startup (TPE, GP: 10 trials) and trials end one at a time; past that they depend on results.
    With no results every ask of TPE and GP is a startup draw, which depends on the seed and the
    history's size alone (GP: on the random stream the asks before it left): drawn from an empty
    study, so n settings cost n asks, not n² trials.
    """
    from tui_tuner.search.optuna_search import OptunaSearch

    seed = int(np.random.SeedSequence(seed).entropy % 2**63)
    state = SearchState(stage=space.config.stage)
    model = OptunaSearch(space, state, seed, [], strategy=strategy)
    out: list[dict[str, Any]] = []
    while len(out) < n:
        k = min(n - len(out), max(1, parallel) if not out else 1)
        if strategy == "gp" and model.in_startup(k):
            # GP continues one random stream from ask to ask (the scheduler keeps it in the study).
            batch = model._draw(model.seed % 2**32, k, history=False)
        elif model.in_startup(k):
            batch = model._draw(model.history_seed(model.seed, len(out), len(out)), k, history=False)
        else:   # CMA-ES (its replay), or a startup of 0: the history matters
            trials = [Trial(id=i + 1, status="queued", params=s, source=strategy, created=float(i + 1))
                      for i, s in enumerate(out)]
            batch = OptunaSearch(space, state, seed, trials, strategy=strategy).ask(k)
        out += batch
    return out


def preview_note(n: int, budget: int, parallel: int, round_size: int) -> str | None:
    """What `sample` says past the first `parallel`."""
    if n > parallel:
        return (f"settings after the first {parallel} assume trials end one at a time, and once the model "
                f"leaves its random startup (10 trials) they depend on the results")
    return None


def _model(name: str, about: str, needs: tuple[str, ...], install: str, order: int,
           prefer: int | None = None) -> None:
    def previewing(space: Any, n: int, seed: int | None, *, budget: int, parallel: int) -> list[dict]:
        return preview(space, n, seed, strategy=name, budget=budget, parallel=parallel)

    register(Strategy(name, about, refill, previewing, needs=needs, install=install, model=True, prefer=prefer,
                      preview_note=preview_note, order=order))


_model("tpe", "Optuna's TPE sampler", ("optuna",), "pip install optuna", 4, prefer=2)
_model("gp", "Optuna's GP sampler (a Gaussian process)", ("optuna", "torch", "scipy"), "pip install 'tui-tuner[torch]'",
       5, prefer=1)
_model("cmaes", "Optuna's CMA-ES sampler", ("optuna", "cmaes"), "pip install cmaes", 6)
