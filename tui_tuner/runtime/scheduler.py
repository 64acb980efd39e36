"""The tuning loop: keep `parallel` runs going from the queue and refill it per strategy.

Strategies: random (a batch of random settings whenever the queue runs dry), grid (the whole grid
queued once; the study ends when it is exhausted), coarse_to_fine (a random first round, then after
each round a zoom around the best trials so far and the next round sampled inside it). The budget
is the number of trials started (`study.budget_used()`). Everything the search needs to continue
(sampler state, zoom stack, round) lives in the study, so a restarted tuner carries on.
The app and headless mode drive it through the session (runtime/session.py).
"""

from __future__ import annotations

from typing import Any

from tui_tuner.core import sampling, search
from tui_tuner.core.space import STRATEGIES
from tui_tuner.errors import StudyError, TunerError
from tui_tuner.runtime.runner import Runner

STRATEGY_SOURCES = ("random", "grid", "zoom")   # trials the strategy queued (not manual, fork, default)
C2F_META = "c2f_round"                           # {"round": k, "after_id": id}: trials > id are round k's
GRID_META = "grid_state"                         # the search state the grid was enumerated for


class Scheduler:
    """Keeps up to `parallel` runs going and refills the queue by the study's strategy.

    `budget`, `parallel` and `strategy` default to the space's [study] values. Call `tick()`
    after each `runner.poll()`; `done()` says when the study has nothing left to do. `holding`
    (set by the app) stops new starts without touching the running ones.
    """

    def __init__(self, study, runner: Runner, sampler: sampling.Sampler | None = None, *,
                 budget: int | None = None, parallel: int | None = None,
                 strategy: str | None = None) -> None:
        cfg = study.space.config
        self.study = study
        self.runner = runner
        self.sampler = sampler if sampler is not None else study.sampler()
        self.budget = int(budget if budget is not None else cfg.budget)
        self.parallel = max(1, int(parallel if parallel is not None else cfg.parallel))
        self.strategy = strategy or cfg.strategy
        if self.strategy not in STRATEGIES:
            raise StudyError(f"unknown strategy {self.strategy!r} (allowed: {', '.join(STRATEGIES)})")
        # An automatic round smaller than `parallel` would leave slots idle while it waits to zoom.
        self.round_size = cfg.round_size or max(sampling.auto_round_size(self.budget), self.parallel)
        self.zoom_top = cfg.zoom_top
        self.zoom_margin = cfg.zoom_margin
        self.holding = False
        self.exhausted = False      # grid: every setting has been queued and taken
        self.message: str | None = None   # why the study ended early, for the app and headless

    # -- the loop -------------------------------------------------------------------------------

    def remaining(self) -> int:
        """Trials the budget still allows to start."""
        return max(0, self.budget - self.study.budget_used())

    def tick(self) -> list[int]:
        """Start queued trials while there are free slots and budget; returns the ids started."""
        started: list[int] = []
        if self.holding:
            return started
        while len(self.runner.live_ids()) < self.parallel and self.remaining() > 0:
            trial = self.study.pop_next()
            if trial is None:
                if not self.refill():
                    break
                continue
            try:
                self.runner.start(trial)
            except TunerError as e:
                # One trial that cannot start must not stop the study. Failed only while still
                # queued: one that left the queue meanwhile (started elsewhere, or spawned before
                # the error) belongs to whoever took it.
                if self.study.trial(trial.id).status == "queued":
                    self.study.finish(trial.id, "failed", reason=e.message)
                continue
            started.append(trial.id)
        return started

    def done(self) -> bool:
        """True when no run is live and nothing more will start (budget reached or grid exhausted)."""
        if self.runner.live_ids():
            return False
        if self.remaining() <= 0 or self.exhausted:
            return True
        return False

    # -- refilling ------------------------------------------------------------------------------

    def refill(self) -> bool:
        """Queue more settings by the strategy; False when there is nothing to queue now."""
        room = self.remaining() - len(self.study.queue())
        if room <= 0:
            return False
        if self.strategy == "grid":
            return self._refill_grid()
        if self.strategy == "random":
            return self._queue_random(min(room, self.parallel), "random")
        return self._refill_coarse_to_fine(room)

    def _queue_random(self, n: int, source: str, extra_meta: dict[str, Any] | None = None, *,
                      stratified: bool = False) -> bool:
        """Sample n settings in the current search state; queue them with the sampler state, at once."""
        if n <= 0:
            return False
        before = self.sampler.get_state()
        try:
            settings = self.sampler.random(self.study.search_state, n, stratified=stratified)
            meta = {"sampler_state": self.sampler.get_state(), **(extra_meta or {})}
            self.study.enqueue(settings, source, meta=meta)
        except BaseException:
            self.sampler.set_state(before)
            raise
        return True

    def _refill_grid(self) -> bool:
        state = self.study.search_state
        key = state.to_json()
        if self.study.meta(GRID_META) == key:
            if not self.exhausted:
                self.exhausted = True
                n = sum(1 for t in self.study.trials("id") if t.source == "grid")
                self.message = (f"grid exhausted: all {n} settings were tried"
                                f"{f' (budget {self.budget})' if n < self.budget else ''}; the study ends")
            return False
        # SpaceError (a float without a step, a grid over the limit) reaches the caller: no sensible
        # fallback exists, the user has to change the space or the strategy.
        settings = self.sampler.grid(state)
        self.study.enqueue(settings, "grid", meta={GRID_META: key})
        return bool(settings)

    def _refill_coarse_to_fine(self, room: int) -> bool:
        # Stratified rounds and a first round twice the size won in tests/bench/search_quality.py:
        # the first zoom needs to have seen enough of the space.
        n = min(room, self.round_size)
        info = self.study.meta(C2F_META)
        trials = self.study.trials("id")
        last_id = trials[-1].id if trials else 0
        if not info:
            return self._queue_random(min(room, 2 * self.round_size), "random",
                                      {C2F_META: {"round": 1, "after_id": last_id}}, stratified=True)
        members = [t for t in trials if t.id > info["after_id"] and t.source in STRATEGY_SOURCES]
        source = "random" if info["round"] <= 1 else "zoom"
        if not members:
            # The round was zoomed but a tuner died before sampling it: sample it now.
            first = info["round"] <= 1
            return self._queue_random(min(room, 2 * self.round_size) if first else n, source,
                                      stratified=True)
        if any(not t.finished for t in members):
            return False   # a round zooms only once all of it has finished
        state = self.study.search_state
        try:
            state = search.zoomed(self.study, top=self.zoom_top, margin=self.zoom_margin)
        except TunerError:
            pass   # too few finished trials to zoom on: sample the next round where we are
        # Zoom and the new round commit together, so a crash never zooms twice.
        self.study.store.set_meta({"search_state": state.to_dict(),
                                   C2F_META: {"round": info["round"] + 1, "after_id": last_id}})
        return self._queue_random(n, "zoom", stratified=True)

    @property
    def round(self) -> int:
        """The coarse-to-fine round in progress (0 before the first)."""
        info = self.study.meta(C2F_META)
        return int(info["round"]) if info else 0
