"""Search strategies: one module each in this package, registering itself with its name, what it needs
and how it proposes. Nothing else in tui-tuner lists strategy names: the space file's check, the
command line's choices, the trial sources, the default and `tui-tuner sample` all ask this registry.

A strategy proposes through the scheduler it is handed (`Host`: the study, the sampler, the slots,
and what only the runtime can do: a zoom of the study, a model's ask run off the command thread),
and previews what a fresh study would queue (`preview`, for `tui-tuner sample`). The modules of
this package are found and imported the first time the registry is asked (a new module needs no
line anywhere else).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tui_tuner.errors import SpaceError


class Host(Protocol):
    """What a strategy's refill may use of the scheduler that runs it (runtime/scheduler.py)."""

    study: Any
    sampler: Any
    parallel: int
    budget: int
    round_size: int
    exhausted: bool
    message: str | None

    def queue_random(self, n: int, source: str, extra_meta: dict[str, Any] | None = None, *,
                     stratified: bool = False) -> bool:
        """Queue n random settings of the current search region (with the sampler's state)."""

    def zoomed(self) -> Any:
        """The study's search region zoomed around its best trials (TunerError on too few)."""

    def ask_model(self, room: int) -> bool:
        """Queue what the study's model proposes for the free slots (a fit runs off the command thread)."""


Refill = Callable[[Host, int], bool]
Preview = Callable[..., list]   # (space, n, seed, *, strategy, budget, parallel) -> settings


@dataclass(frozen=True)
class Strategy:
    """One way to choose settings."""

    name: str
    about: str                        # one line: what it does
    refill: Refill                    # queue settings for up to `room` more trials; False when nothing now
    preview: Preview                  # the first n settings a fresh study queues (`tui-tuner sample`)
    needs: tuple[str, ...] = ()       # the modules it imports (find_spec decides whether it can run)
    install: str = ""                 # how to get them
    sources: tuple[str, ...] = ()     # the source its queued trials get (default: its name)
    model: bool = False               # it asks a model of the study's history (Optuna)
    prefer: int | None = None         # its rank as the default where its needs are met (lowest first)
    order: int = 100                  # where it is listed (the command line's choices, error messages)
    preview_note: Callable[..., str | None] = lambda n, budget, parallel, round_size: None

    @property
    def queued_as(self) -> tuple[str, ...]:
        """The sources of the trials it queues."""
        return self.sources or (self.name,)

    def missing(self) -> list[str]:
        """The modules it needs that are not installed."""
        return [m for m in self.needs if importlib.util.find_spec(m) is None]


_REGISTRY: dict[str, Strategy] = {}
_loaded = False


def register(strategy: Strategy) -> Strategy:
    """Add a strategy (each module of this package calls it once, at import)."""
    _REGISTRY[strategy.name] = strategy
    return strategy


def _load() -> dict[str, Strategy]:
    global _loaded
    if not _loaded:
        _loaded = True
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
    return _REGISTRY


def _listed() -> list[Strategy]:
    return sorted(_load().values(), key=lambda s: (s.order, s.name))


def names() -> tuple[str, ...]:
    """Every strategy's name, in the order they are listed."""
    return tuple(s.name for s in _listed())


def model_names() -> tuple[str, ...]:
    """The model-based strategies."""
    return tuple(s.name for s in _listed() if s.model)


def get(name: str) -> Strategy:
    """The strategy of this name; SpaceError naming the ones there are."""
    found = _load().get(name)
    if found is None:
        raise SpaceError(f"strategy: unknown strategy {name!r} (allowed: {', '.join(names())})")
    return found


def sources() -> tuple[str, ...]:
    """Every source a strategy's queued trials get (a strategy's own draws, not the user's)."""
    out: list[str] = []
    for s in _listed():
        out += [x for x in s.queued_as if x not in out]
    return tuple(out)


def default() -> tuple[str, str]:
    """The strategy of a space that names none, and why it is not the first choice ("" when it is):
    the most preferred strategy whose needs are installed."""
    ranked = sorted((s for s in _load().values() if s.prefer is not None), key=lambda s: s.prefer)  # type: ignore[arg-type, return-value]
    first = ranked[0]
    for s in ranked:
        missing = s.missing()
        if not missing:
            if s is first:
                return s.name, ""
            lack = first.missing()
            verb = "is" if len(lack) == 1 else "are"
            return s.name, (f"{' and '.join(lack)} {verb} not installed: searching with {s.name} instead of "
                            f"the default {first.name} ({first.install})")
    raise SpaceError("no search strategy can run here")
