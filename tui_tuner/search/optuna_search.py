"""Model-based search through Optuna: TPE (and GP, CMA-ES by name) proposes settings inside the search state.

The project's study stays the source of truth. `OptunaSearch` is built from (space, search state,
seed, the study's trials) and rebuilds an in-memory Optuna study from those trials on every
`ask`, so what it proposes is a function of that history and the seed alone: a tuner killed and
restarted on the same study continues the same search, and nothing Optuna-side is persisted.

Distributions match our scales exactly: log -> a log float; one_minus_log -> a log float on 1-β
(mapped back to β); int log -> a log int; step -> a stepped float or int; choice -> categorical.
They span the current zoom box (and the choices still allowed), so a proposal stays inside it; a
frozen, anchored or not-yet-staged parameter is not given to Optuna at all and keeps its value.

How each trial counts (Optuna's own rules then apply):
- done with an objective: a COMPLETE trial, whatever made it (strategy, fork, manual edit, default);
- stopped (early-stopped or by hand): PRUNED, with its intermediate values (`curves`, or its last
  step and objective when no curve is given), which TPE ranks the way it ranks pruned trials;
- diverged: PRUNED with NaN at its last step, so the model learns the region is bad;
- queued, running or paused: RUNNING, so with parallel > 1 a pending setting is not proposed again
  (TPE's constant liar; CMA-ES asked them in its replay);
- failed, or done without an objective: left out (Optuna ignores failed trials too).
GP learns from COMPLETE trials alone, so once one has finished it is told every trial as COMPLETE:
a pending one with the worst finished value (constant liar), a stopped one with its last value, a
diverged one with the worst (`_for_gp`).
A trial whose searched values lie outside the current zoom box (or use a choice the zoom dropped)
is left out of the model: Optuna's distributions cannot hold it, and the zoom said the good region
is elsewhere. The trials inside the box, from before the zoom included, all count (`used`,
`outside` say how many of each).

TPE and GP are stateless given the trials. CMA-ES keeps its state between asks (generations, the
optimiser), so it is rebuilt by replaying the history in order: each trial asked when it was
created, with its recorded values, and told when it ended; a zoom then restarts CMA-ES on the new
box with the trials inside it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from tui_tuner.errors import SpaceError
from tui_tuner.search import strategies
from tui_tuner.search.gp_told import (
    HISTORY_CAP,
    capped,
    get_kernel,
    get_stream,
    set_kernel,
    set_stream,
    stopped_value,
)
from tui_tuner.search.optuna_space import distributions, from_optuna, to_optuna
from tui_tuner.search.space import Space
from tui_tuner.search.state import SearchState
from tui_tuner.search.trials import PENDING, Trial

STUDY_NAME = "tui-tuner"
GP_STARTUP = 10   # GPSampler's random startup trials (its default): it fits no model before these


def load_optuna(what: str = "a model-based strategy") -> Any:
    """Import optuna (slow: about 0.4 s, so only when needed) with its log lines below ERROR silenced.

    The app draws on the terminal: Optuna's "A new study created in memory" lines, or GP's warning
    that greenlet is missing (its acquisition optimiser then runs one start at a time), would tear it.
    Whatever the user must hear about a proposal, the project raises or says itself.
    """
    try:
        import optuna
    except ImportError:
        raise SpaceError(f"{what} needs optuna: pip install optuna") from None
    if optuna.logging.get_verbosity() < optuna.logging.ERROR:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


# -- the search ---------------------------------------------------------------------------------


class OptunaSearch:
    """Settings proposed by an Optuna sampler from the study's trials, inside the current search state.

    `curves` (optional) maps a trial id to its intermediate values {step: value} (what early stopping
    judged, for every trial it saw); `startup` overrides the sampler's random startup trials (TPE and
    GP: 10, CMA-ES: 1). GP only: `kernel` is the previous fit's kernel parameters to start from
    (`self.kernel` holds this fit's after an ask), and `pending` how a pending trial is told:
    "lie" (the worst finished value) or "running" (GPSampler's own batch acquisition, ~15x costlier).
    """

    def __init__(self, space: Space, state: SearchState, seed: int, trials: Iterable[Trial], *,
                 strategy: str = "tpe", curves: Mapping[int, Mapping[int, float]] | None = None,
                 startup: int | None = None, kernel: list[float] | None = None, pending: str = "lie",
                 stream: dict[str, Any] | None = None) -> None:
        if strategy not in strategies.model_names():
            raise SpaceError(f"strategy: {strategy!r} is not a model-based strategy "
                             f"(allowed: {', '.join(strategies.model_names())})")
        if startup is not None and (isinstance(startup, bool) or not isinstance(startup, int) or startup < 0):
            raise SpaceError(f"startup trials must be an integer >= 0, got {startup!r}")
        if pending not in ("lie", "running"):
            raise SpaceError(f"pending: {pending!r} is not lie or running")
        self.optuna = load_optuna(f"strategy {strategy!r}")
        if strategy == "cmaes":
            _require("cmaes", "strategy 'cmaes' needs the cmaes package: pip install cmaes")
        if strategy == "gp":
            for module in ("torch", "scipy"):
                _require(module, "strategy 'gp' needs torch and scipy: pip install torch scipy")
        self.space = space
        self.state = state.copy()
        self.seed = int(seed)
        self.strategy = strategy
        self.startup = startup
        self.kernel = list(kernel) if kernel else None
        self.stream = dict(stream) if stream else None
        self.pending = pending
        self.direction = space.config.direction
        self.dists = distributions(space, state)
        self.fixed = state.fixed(space)
        self.trials = sorted(trials, key=lambda t: t.id)
        self._curves = {int(k): dict(v) for k, v in (curves or {}).items()}
        self.outside = 0      # trials left out: values outside the zoom box
        self.rows = [r for r in (self._row(t, self._curves) for t in self.trials) if r is not None]
        complete = self.optuna.trial.TrialState.COMPLETE
        results = [r["value"] for r in self.rows if r["state"] == complete]
        self.finished = len(results)   # trials with their own result
        # GP's lie: the worst finished objective (None before any).
        self.lie = (min(results) if self.direction == "maximize" else max(results)) if results else None
        self.capped = 0       # rows GP does not see (past HISTORY_CAP)
        self._last_sampler: Any = None   # the sampler of the last ask (its kernel and stream are kept)
        self._empty: Any = None          # the empty study startup draws are made against
        if strategy == "gp" and self.lie is not None:
            finals = [(self._curves.get(r["id"], {}), r["value"]) for r in self.rows if r["state"] == complete]
            self.rows = [self._for_gp(r, finals) for r in self.rows]
            kept = capped(self.rows, HISTORY_CAP, self.direction == "maximize", self.optuna.trial.TrialState.RUNNING)
            self.capped, self.rows = len(self.rows) - len(kept), kept

    @property
    def _startup(self) -> int:
        return (GP_STARTUP if self.strategy != "cmaes" else 1) if self.startup is None else self.startup

    def fits(self, n: int = 1) -> bool:
        """True when asking n settings fits a GP (seconds, torch) at some ask of the batch, rather than
        drawing at random or building a TPE (milliseconds). The one definition of "enough trials to
        fit": GPSampler fits once it holds `startup` COMPLETE trials, and it is told every trial as
        COMPLETE once one has finished (and each setting of the batch once asked)."""
        if self.strategy != "gp" or not self.dists or n < 1:
            return False
        return self._told_complete() + (n - 1 if self._tells_batch else 0) >= self._startup

    @property
    def costly(self) -> bool:
        """True when asking one setting fits a GP: `fits(1)`."""
        return self.fits(1)

    @property
    def _tells_batch(self) -> bool:
        # GP is told each setting of a batch as the lie once a trial has finished (see `ask`).
        return self.strategy == "gp" and self.lie is not None and self.pending == "lie"

    def _told_complete(self) -> int:
        """Rows the sampler counts towards its startup (GP: COMPLETE; TPE: COMPLETE and PRUNED)."""
        TrialState = self.optuna.trial.TrialState
        counted = (TrialState.COMPLETE,) if self.strategy == "gp" else (TrialState.COMPLETE, TrialState.PRUNED)
        return sum(r["state"] in counted for r in self.rows)

    def in_startup(self, n: int = 1) -> bool:
        """True when all n settings would come from the sampler's random startup: then they depend on
        the seed and the history's size alone, and the history need not be built (`ask` draws them
        from an empty study, which is what makes `sample -n 2000` linear)."""
        if self.strategy == "cmaes" or not self.dists:
            return False
        return self._told_complete() + (n - 1 if self._tells_batch else 0) < self._startup

    def job(self) -> dict[str, Any]:
        """This search's arguments, picklable: the model worker rebuilds it from them."""
        return {"space": self.space, "state": self.state, "seed": self.seed, "trials": self.trials,
                "strategy": self.strategy, "curves": self._curves, "startup": self.startup,
                "kernel": self.kernel, "pending": self.pending, "stream": self.stream}

    @property
    def used(self) -> int:
        """Trials the model sees (finished ones and pending ones)."""
        return len(self.rows)

    # -- trials -> Optuna -----------------------------------------------------------------------

    def _row(self, t: Trial, curves: Mapping[int, Mapping[int, float]]) -> dict | None:
        """What Optuna is told about one trial: params, state, value, intermediate values."""
        TrialState = self.optuna.trial.TrialState
        if t.status in PENDING:
            state, value, inter = TrialState.RUNNING, None, {}
        elif t.status == "done":
            if t.objective is None or not math.isfinite(t.objective):   # GP cannot hold an inf
                return None
            state, value, inter = TrialState.COMPLETE, float(t.objective), {}
        elif t.status in ("stopped", "diverged"):
            inter = {int(s): float(v) for s, v in (curves.get(t.id) or {}).items()}
            if not inter and t.objective is not None:
                inter = {int(t.step or 0): float(t.objective)}
            if t.status == "diverged":
                last = max([int(t.step or 0), *inter])
                inter[last] = math.nan
            state, value = TrialState.PRUNED, None
        else:  # failed
            return None
        params = {}
        for name, dist in self.dists.items():
            p = self.space[name]
            try:
                x = to_optuna(p, p.check(t.params.get(name, p.default)), dist)
            except SpaceError:
                x = None
            if x is None:
                self.outside += 1
                return None
            params[name] = x
        return {"id": t.id, "params": params, "state": state, "value": value, "inter": inter,
                "created": float(t.created or 0.0), "ended": float(t.ended or t.created or 0.0)}

    def _for_gp(self, row: dict, finals: list[tuple[Mapping[int, float], float]]) -> dict:
        """A row as GP is told it (search/gp_told.py): pending -> the worst finished value (or left
        RUNNING with pending="running"); stopped -> where its curve was heading; diverged -> the worst.
        Optuna's GP could take pending ones as pending points, but its batch acquisition then costs
        ~15x more per ask (16 s instead of 1 s on LCBench's space, 15 trials)."""
        TrialState = self.optuna.trial.TrialState
        if row["state"] == TrialState.RUNNING:
            if self.pending == "running":
                return row
            return {**row, "state": TrialState.COMPLETE, "value": self.lie}
        if row["state"] == TrialState.PRUNED:
            curve = {s: v for s, v in row["inter"].items()}
            if not curve or any(math.isnan(v) for v in curve.values()):
                value = self.lie
            else:
                value = stopped_value(curve, finals)
            return {**row, "state": TrialState.COMPLETE, "value": value, "inter": {}}
        return row

    def _frozen(self, row: dict) -> Any:
        return self.optuna.trial.create_trial(
            params=row["params"], distributions=dict(self.dists), state=row["state"], value=row["value"],
            intermediate_values=row["inter"] or None)

    def _sampler(self, seed: int) -> Any:
        samplers = self.optuna.samplers
        if self.strategy == "tpe":
            return samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                       n_startup_trials=10 if self.startup is None else self.startup)
        if self.strategy == "gp":
            return samplers.GPSampler(seed=seed, n_startup_trials=GP_STARTUP if self.startup is None else self.startup)
        # Categorical parameters go to the independent (random) sampler: CMA-ES has no notion of them.
        return samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False,
                                     n_startup_trials=1 if self.startup is None else self.startup,
                                     independent_sampler=samplers.RandomSampler(seed=seed))

    @staticmethod
    def history_seed(seed: int, count: int, last_id: int) -> int:
        """The sampler's seed for a history of `count` trials, the last numbered `last_id`: the study's
        seed mixed with how much has happened, so asks after the history grew draw afresh and a
        restart draws the same."""
        words = [seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, count, last_id]
        return int(np.random.SeedSequence(words).generate_state(1)[0])

    def _ask_seed(self) -> int:
        ids = [t.id for t in self.trials]
        if self.strategy == "gp" and not ids:
            return self.seed % 2**32    # a study's first ask: its stream starts at the seed
        return self.history_seed(self.seed, len(ids), max(ids, default=0))

    def _gp_sampler(self, seed: int) -> Any:
        """The sampler for this ask, its random stream continued when one was handed over."""
        self._last_sampler = sampler = self._sampler(seed)
        if self.strategy == "gp":
            set_kernel(sampler, self.kernel)
            if self.stream:
                set_stream(sampler, self.stream)
        return sampler

    def _keep_stream(self) -> None:
        if self.strategy == "gp":
            self.stream = get_stream(self._last_sampler)

    def build(self, *, history: bool = True) -> Any:
        """The in-memory Optuna study holding the history (CMA-ES: replayed), ready to ask; without
        `history`, an empty one (for asks the random startup answers: see `in_startup`)."""
        # CMA-ES replays the history, which advances its generator: the study's seed is enough.
        seed = self.seed % 2**32 if self.strategy == "cmaes" else self._ask_seed()
        return self._study(seed, history)

    def _study(self, seed: int, history: bool = True) -> Any:
        optuna = self.optuna
        sampler = self._gp_sampler(seed)
        study = optuna.create_study(study_name=STUDY_NAME, direction=self.direction, sampler=sampler)
        if not history:
            return study
        if self.strategy == "cmaes":
            self._replay(study)
        else:
            study.add_trials([self._frozen(r) for r in self.rows])
        return study

    def _replay(self, study: Any) -> None:
        """Ask every trial when it was created (with its recorded values) and tell it when it ended,
        so CMA-ES's generations and optimiser state come out as a function of the history."""
        TrialState = self.optuna.trial.TrialState
        events = []
        for row in self.rows:
            events.append((row["created"], 0, row["id"], row))
            if row["state"] != TrialState.RUNNING:
                events.append((max(row["ended"], row["created"]), 1, row["id"], row))
        asked: dict[int, Any] = {}
        for _, kind, tid, row in sorted(events, key=lambda e: e[:3]):
            if kind == 0:
                study.enqueue_trial(row["params"], skip_if_exists=False)
                trial = study.ask(dict(self.dists))
                # Optuna skips the sampler for a trial whose values are all given; CMA-ES must see
                # it (that is where it tags the generation and tells a finished one).
                _ = trial.relative_params
                asked[tid] = trial
                continue
            trial = asked[tid]
            for step, v in sorted(row["inter"].items()):
                trial.report(v, step)
            if row["state"] == TrialState.COMPLETE:
                study.tell(trial, row["value"])
            else:
                study.tell(trial, state=row["state"])

    # -- asking ---------------------------------------------------------------------------------

    def ask(self, n: int) -> list[dict[str, Any]]:
        """n full settings (space order) proposed by the sampler: searched values inside the box,
        the others at their fixed values. Deterministic for a given seed and trial history."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise SpaceError(f"ask needs a count >= 0, got {n!r}")
        if not self.dists:
            return [self.space.check_setting(dict(self.fixed)) for _ in range(n)]
        if not n:
            return []
        return self._draw(self._ask_seed(), n, history=not self.in_startup(n))

    def _startup_draws(self, seed: int, n: int) -> list[dict[str, Any]]:
        """n startup settings: the sampler's independent draws, parameter by parameter, as `study.ask`
        makes them in the startup (the same values: tests/unit/test_optuna_search.py checks it),
        without a trial per setting; `sample -n 2000` costs 2,000 of these."""
        sampler = self._gp_sampler(seed)
        if self._empty is None:
            self._empty = self.optuna.create_study(study_name=STUDY_NAME, direction=self.direction)
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
            for _ in range(n):
                setting = dict(self.fixed)
                for name, dist in self.dists.items():
                    x = sampler.sample_independent(self._empty, None, name, dist)
                    setting[name] = from_optuna(self.space[name], x)
                out.append(self.space.check_setting(setting))
        self._keep_stream()
        return out

    def _draw(self, seed: int, n: int, *, history: bool = True) -> list[dict[str, Any]]:
        if not history and not self._tells_batch:
            return self._startup_draws(seed, n)
        out = []
        fitted = False
        with warnings.catch_warnings():
            # Experimental-feature notices (GP, CMA-ES options) would tear the app's screen.
            warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
            study = self._study(seed, history)
            for _ in range(n):
                # Left RUNNING: the next ask in this batch sees it as pending (constant liar); GP is
                # told the lie at once (see _for_gp).
                trial = study.ask(dict(self.dists))
                if self._tells_batch:
                    study.tell(trial, self.lie)
                fitted = fitted or bool(trial.relative_params)
                setting = dict(self.fixed)
                for name in self.dists:
                    setting[name] = from_optuna(self.space[name], trial.params[name])
                out.append(self.space.check_setting(setting))
        if self.strategy == "gp" and fitted:
            self.kernel = get_kernel(self._last_sampler)
        self._keep_stream()
        return out


def _require(module: str, message: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise SpaceError(message)
