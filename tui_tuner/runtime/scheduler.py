"""The tuning loop: keep `parallel` runs going from the queue and refill it per strategy.

Strategies: random (a batch of random settings whenever the queue runs dry), grid (the whole grid
queued once; the study ends when it is exhausted), coarse_to_fine (a random first round, then after
each round a zoom around the best trials so far and the next round sampled inside it, once enough
trials finished: `region.zoom_minimum`), and the model-based tpe, gp and cmaes (Optuna, through
`OptunaSearch`: each free slot gets a setting asked from the study's trials, the pending ones
included so they are not proposed again, inside the current zoom box and stage).

Budgets (search/budget.py): the trial budget is the number of trials started
(`study.budget_used()`); `step_budget` the total of steps all trials reported; `time_budget` the
wall clock since the study first started (recorded in the study, so it spans sessions). The study
ends at whichever comes first; a step or time budget reached stops the running trials, and
`message` says which budget ended it. Fail fast (study/fail_fast.py) pauses the queue when the first
trials fail alike, or the first one ends without the objective; `message` says why, and a trial
queued or started by hand afterwards (or a new session) goes on. Everything the search needs to
continue (sampler state, zoom stack, round, the history a model is rebuilt from) lives in the
study, so a restarted tuner carries on.
The app and headless mode drive it through the session (runtime/session.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from tui_tuner.errors import SpaceError, StudyError, TunerError
from tui_tuner.runtime.model_worker import ModelFailed, ModelWorker, PendingAsk, WorkerCrashed
from tui_tuner.runtime.runner import Runner
from tui_tuner.search import sampling, strategies
from tui_tuner.search.budget import STARTED_META, BudgetUsage, parse_duration, steps_spent
from tui_tuner.study import fail_fast
from tui_tuner.study import moves as search

KERNEL_META = "gp_kernel"                        # the last GP fit's kernel parameters: the next fit starts there
STREAM_META = "gp_stream"                        # GP's random state after its last ask: the next one continues it
WORKER_CRASHES = 2                               # crashes of the model worker after which TPE asks for good


class Scheduler:
    """Keeps up to `parallel` runs going and refills the queue by the study's strategy.

    With `[study] devices`, `parallel` is runs per device: a run starts from the queue only while
    some device holds fewer than its k (the runner's `devices` chooses which one, runtime/devices.py).

    `budget`, `parallel` (or "auto"), `strategy`, `step_budget` and `time_budget` (seconds, or text
    like "8h") default to the study's [study] values (with what the user turned on applied: see
    study/settings.py). Call `tick()` after each `runner.poll()`; `done()` says when the study
    has nothing left to do. `holding` (set by the app) stops new starts without touching the running
    ones. `curves` (the automation loop sets it to early stopping's) returns the values the pruner
    judged per trial, {trial id: {step: value}}, for a model-based strategy to learn from. `promote`
    (the automation loop sets it with early stopping on) is asked when a slot is free and nothing is
    queued, before the strategy samples: it resumes a stopped trial that ranks well now and returns
    the run it started (None: nothing to promote). `notify`
    (set by the session) is told, in one line, when the model worker crashed or a fit failed and TPE
    stood in.
    """

    def __init__(self, study, runner: Runner, sampler: sampling.Sampler | None = None, *,
                 budget: int | None = None, parallel: int | str | None = None,
                 strategy: str | None = None,
                 step_budget: int | None = None, time_budget: float | str | None = None) -> None:
        cfg = study.space.config
        self.study = study
        self.runner = runner
        self.sampler = sampler if sampler is not None else study.sampler()
        self.budget = int(budget if budget is not None else cfg.budget)
        # "auto" (the space's parallel = "auto", or --parallel auto): auto-k sets `parallel` as it
        # measures (runtime/autok.py, through the session), starting at one run.
        self.auto_k = parallel == "auto" or (parallel is None and cfg.auto_k)
        if isinstance(parallel, str) and not self.auto_k:
            raise StudyError(f"parallel must be a whole number >= 1 or \"auto\", got {parallel!r}")
        self._parallel = 1
        self.parallel = 1 if self.auto_k else max(1, int(parallel if parallel is not None else cfg.parallel))
        self.strategy = strategy or cfg.strategy
        try:
            model = strategies.get(self.strategy).model
        except SpaceError as e:
            raise StudyError(e.message.removeprefix("strategy: ")) from None
        self.step_budget = cfg.step_budget if step_budget is None else step_budget
        if self.step_budget is not None and (isinstance(self.step_budget, bool)
                                             or not isinstance(self.step_budget, int) or self.step_budget < 1):
            raise StudyError(f"step budget must be an integer >= 1, got {self.step_budget!r}")
        try:
            self.time_budget = cfg.time_budget if time_budget is None else parse_duration(time_budget)
        except ValueError as e:
            raise StudyError(f"time budget {e}") from None
        self.curves: Callable[[], Mapping[int, Mapping[int, float]]] | None = None
        self.promote: Callable[[], int | None] | None = None
        if model:
            # Fails now, in one line naming the missing package, rather than at the first refill.
            self._model_search([])
        # An automatic round smaller than `parallel` would leave slots idle while it waits to zoom.
        self.round_size = cfg.round_size or max(sampling.auto_round_size(self.budget), self.slots)
        self.zoom_top = cfg.zoom_top
        self.zoom_margin = cfg.zoom_margin
        self.holding = False
        self.exhausted = False      # grid: every setting has been queued and taken
        self.message: str | None = None   # why the study ended, for the app and headless
        self.ended_by: str | None = None  # "steps" or "time" once that budget ended the study
        self._t0: float | None = None      # when the study first started (STARTED_META)
        self._budget_stops: set[int] = set()
        self.notify: Callable[[str], None] | None = None
        self._asking: PendingAsk | None = None    # a costly model ask in flight, in the worker
        self._worker: ModelWorker | None = None
        self._crashes = 0
        self.fail_fast = fail_fast.Watch(time.time(), enabled=cfg.fail_fast)

    # -- how many at once ------------------------------------------------------------------------

    @property
    def parallel(self) -> int:
        """k: runs at once, or with `[study] devices` runs per device (auto-k sets it; per device, the
        largest device's k, each device's own being in `runner.devices`)."""
        return self._parallel

    @parallel.setter
    def parallel(self, k: int) -> None:
        self._parallel = k
        if self.runner.devices is not None:
            self.runner.devices.k = k

    @property
    def slots(self) -> int:
        """Runs at once in all: k, or with devices every device's k added up."""
        devices = self.runner.devices
        return sum(devices.each_k().values()) if devices is not None else self.parallel

    def free_slots(self) -> int:
        """Runs that may start now: below k in all, or with devices below k on some device (so a
        device never gets more than k from the queue, whatever the others hold)."""
        devices = self.runner.devices
        if devices is not None:
            return devices.free_slots(self.runner.runs)
        return self.parallel - len(self.runner.queries.live_ids())

    # -- the loop -------------------------------------------------------------------------------

    def remaining(self) -> int:
        """Trials the budget still allows to start."""
        return max(0, self.budget - self.study.budget_used())

    def tick(self) -> list[int]:
        """Start queued trials while there are free slots and budget; returns the ids started.

        Once the step or time budget is spent, stops the running trials instead and starts none.
        """
        started: list[int] = []
        if self.holding or self._failing_fast():
            return started
        self._mark_start()
        if self._budget_spent():
            return started
        while self.free_slots() > 0 and self.remaining() > 0:
            # Asked before every start, once a slot is seen free: the run that freed it wrote its end first
            # (Runner._settle), and a start that failed is already recorded, so a third failure in a row
            # pauses here rather than after one more start.
            if self._failing_fast():
                break
            trial = self.study.pop_next()
            if trial is None:
                # Before a new setting is sampled: a trial early stopping cut that ranks well now.
                child = self.promote() if self.promote is not None else None
                if child is not None:
                    started.append(child)
                    continue
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
                continue   # the loop's fail-fast check stops the same start failure repeated in one tick
            started.append(trial.id)
        return started

    def done(self) -> bool:
        """True when no run is live and nothing more will start (a budget reached or grid exhausted)."""
        if self.runner.queries.live_ids():
            return False
        if self.exhausted or self.fail_fast.paused_at is not None or self._budget_spent():
            return True
        if self.remaining() <= 0:
            if self.message is None:
                self.message = f"trial budget reached: {self.budget} trials started; the study ends"
            return True
        return False

    # -- fail fast ------------------------------------------------------------------------------

    def _failing_fast(self) -> bool:
        """True while the queue is paused on a repeated mistake (study/fail_fast.py); `message` says why.

        A trial queued or started after the pause (the app's n, or r on a queued one) goes on.
        """
        was = self.fail_fast.paused_at
        paused = fail_fast.check(self.fail_fast, self.study.store, time.time())
        if paused or was is not None:
            self.message = self.fail_fast.message
        return paused

    # -- budgets --------------------------------------------------------------------------------

    def _mark_start(self) -> None:
        """Record when the study first started, once: the time budget counts from there, across
        sessions. A study started before this was recorded counts from its first trial's start."""
        if self._t0 is not None:
            return
        at = self.study.meta(STARTED_META)
        if at is None:
            (first,) = self.study.store.query("SELECT MIN(started) FROM trials")[0]
            at = min(first, time.time()) if first is not None else time.time()
            self.study.set_meta(STARTED_META, at)
        self._t0 = float(at)

    def steps_used(self) -> int:
        """The total of steps all trials reported (forks from their checkpoint on); live runs at
        their latest step, which the study records only about once a second."""
        rows = {tid: (step, fork, resume) for tid, step, fork, resume in
                self.study.store.query("SELECT id, step, fork_step, resume FROM trials WHERE step IS NOT NULL "
                                       "OR status IN ('running', 'paused')")}
        for tid in self.runner.queries.live_ids():
            if tid in rows:
                step, fork, resume = rows[tid]
                live = self.runner.queries.latest(tid).get("step")
                if live is not None and (step is None or live > step):
                    rows[tid] = (live, fork, resume)
        return steps_spent(rows.values())

    def usage(self) -> BudgetUsage:
        """How much of each budget is used now (trials, steps, time), for a status line or summary."""
        t0 = self._t0 if self._t0 is not None else self.study.meta(STARTED_META)
        return BudgetUsage(
            trials=self.study.budget_used(), trial_budget=self.budget,
            steps=self.steps_used(), step_budget=self.step_budget,
            seconds=0.0 if t0 is None else max(0.0, time.time() - float(t0)), time_budget=self.time_budget)

    def _budget_spent(self) -> bool:
        """True once the step or time budget is spent: says so in `message` and stops the live runs."""
        if self.ended_by is None:
            if self.step_budget is None and self.time_budget is None:
                return False
            usage = self.usage()
            if usage.ended_by is None:
                return False
            self.ended_by, self.message = usage.ended_by, usage.reason()
        for tid in self.runner.queries.live_ids():
            if tid not in self._budget_stops:
                self._budget_stops.add(tid)
                try:
                    self.runner.commands.stop(tid, self.message)
                except TunerError:
                    pass   # it ended meanwhile: nothing left to stop
        return True

    # -- refilling ------------------------------------------------------------------------------

    def refill(self) -> bool:
        """Queue more settings by the strategy (search/strategies/); False when there is nothing to queue now."""
        room = self.remaining() - len(self.study.queue())
        if room <= 0:
            return False
        return strategies.get(self.strategy).refill(self, room)

    def zoomed(self) -> Any:
        """The study's region zoomed around its best trials, with this study's zoom settings (a
        coarse-to-fine round); TunerError on too few finished trials."""
        return search.zoomed(self.study, top=self.zoom_top, margin=self.zoom_margin)

    def _model_search(self, trials: list, strategy: str | None = None) -> Any:
        from tui_tuner.search.optuna_search import OptunaSearch

        strategy = strategy or self.strategy
        curves = self.curves() if self.curves is not None and trials else None
        gp = strategy == "gp" and bool(trials)
        return OptunaSearch(self.study.space, self.study.search_state, self.study.seed, trials,
                            strategy=strategy, curves=curves, kernel=self.study.meta(KERNEL_META) if gp else None,
                            stream=self.study.meta(STREAM_META) if gp else None)

    def _enqueue_model(self, settings: list, kernel: Any, stream: Any) -> None:
        """Queue what the model proposed, with its kernel and random stream (one transaction, so a
        restarted tuner continues from exactly here)."""
        meta = {k: v for k, v in ((KERNEL_META, kernel), (STREAM_META, stream)) if v is not None}
        self.study.enqueue(settings, self.strategy, meta=meta or None)

    def ask_model(self, room: int) -> bool:
        """Ask the model for a setting per free slot, as late as possible so it has seen every
        result so far; the queued and running trials are in its history as pending.

        An ask that fits a model (`OptunaSearch.fits`: GP past its startup, seconds and torch) goes to
        the model worker, a process of its own (runtime/model_worker.py), so the tick's thread (the
        app's commands, early-stop decisions) never runs a fit: this tick queues nothing, a later one
        queues what it proposed, unless the search region moved meanwhile (then it asks again). What
        it proposes is still a function of the history it was given (and the kernel it started from,
        kept in the study)."""
        n = min(room, max(1, self.free_slots()))
        key = self.study.search_state.to_json()
        if self._asking is not None:
            if not self._asking.done():
                return False
            job, self._asking = self._asking, None
            try:
                settings = job.result()[:room]
            except TunerError:
                raise   # a one-line error of ours (a bad space, a missing package): the session says it
            except WorkerCrashed as e:
                return self._stand_in(n, self._crashed(str(e)))
            except ModelFailed as e:
                return self._stand_in(n, f"the {self.strategy} model failed to fit ({e}); TPE proposed "
                                         f"the next {n} setting{'s' if n > 1 else ''}")
            if job.key == key and settings:
                self._enqueue_model(settings, job.kernel, job.stream)
                return True
        model = self._model_search(self.study.trials("id"))
        if model.fits(n):
            if self._crashes >= WORKER_CRASHES:
                return self._fallback_ask(n)
            try:
                self._asking = self.worker.submit(key, model.job(), n)
            except WorkerCrashed as e:
                return self._stand_in(n, self._crashed(str(e)))
            return False
        settings = model.ask(n)
        self._enqueue_model(settings, model.kernel, model.stream)
        return bool(settings)

    @property
    def worker(self) -> ModelWorker:
        """The model worker process (started on its first ask)."""
        if self._worker is None:
            self._worker = ModelWorker()
        return self._worker

    def close(self) -> None:
        """End the model worker, if one was started (an ask in flight is dropped)."""
        if self._worker is not None:
            self._worker.close()

    def _crashed(self, what: str) -> str:
        self._crashes += 1
        after = ("; TPE proposes the rest of this session's settings" if self._crashes >= WORKER_CRASHES
                 else "; TPE proposed these settings, the next ask starts a new worker")
        return what + after

    def _stand_in(self, n: int, line: str) -> bool:
        if self.notify is not None:
            self.notify(line)
        return self._fallback_ask(n)

    def _fallback_ask(self, n: int) -> bool:
        """Settings asked from TPE (same history, same box) when the costly model failed; their source
        says so ("tpe")."""
        settings = self._model_search(self.study.trials("id"), "tpe").ask(n)
        self.study.enqueue(settings, "tpe")
        return bool(settings)

    def queue_random(self, n: int, source: str, extra_meta: dict[str, Any] | None = None, *,
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

    @property
    def round(self) -> int:
        """The coarse-to-fine round in progress (0 before the first)."""
        from tui_tuner.search.strategies.coarse_to_fine import round_of

        return round_of(self.study)
