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

import json
import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from tui_tuner.errors import SpaceError
from tui_tuner.search.param import Param
from tui_tuner.search.space import Space
from tui_tuner.search.state import SearchState
from tui_tuner.search.trials import PENDING, Trial

STRATEGIES = ("tpe", "gp", "cmaes")
STUDY_NAME = "tui-tuner"
GP_STARTUP = 10   # GPSampler's random startup trials (its default): it fits no model before these
# A stored value that lies this close outside a box edge (a share of the box width) is on the edge:
# β = 1 - (1 - β) and exp(log(x)) drift in the last bits, and such a trial must not be left out.
EDGE_TOL = 1e-9


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


# -- distributions ------------------------------------------------------------------------------


def _json_labels(p: Param) -> bool:
    """True when a choice's values go to Optuna as JSON text: two of them compare equal (1 and true,
    1 and 1.0), and Optuna finds a choice by ==, so it would mix them up."""
    vals = p.values
    return any(a == b for i, a in enumerate(vals) for b in vals[i + 1:])


def _label(p: Param, value: Any) -> Any:
    return json.dumps(value) if _json_labels(p) else value


def distribution(p: Param, state: SearchState, space: Space) -> Any:
    """The Optuna distribution of a searched parameter over its current box (or allowed choices)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if p.type == "choice":
        return CategoricalDistribution([_label(p, v) for v in state.allowed(space, p.name)])
    lo, hi = state.box(space, p.name)
    if p.type == "int" or p.step:
        # The lattice points whose cells reach into the box: what Sampler.random can draw there.
        tiny = 1e-9 * (hi - lo)
        a, b = p.from_unit(lo + tiny), p.from_unit(hi - tiny)
        if p.type == "int":
            return IntDistribution(int(a), int(b), log=p.scale == "log", step=int(p.step or 1))
        with warnings.catch_warnings():
            # Optuna trims `high` onto the lattice itself and warns when str() rounding disagrees.
            warnings.simplefilter("ignore")
            return FloatDistribution(float(a), float(b), step=float(p.step))
    a, b = p.value_at(lo), p.value_at(hi)
    if p.scale == "one_minus_log":
        return FloatDistribution(1.0 - b, 1.0 - a, log=True)
    return FloatDistribution(a, b, log=p.scale == "log")


def distributions(space: Space, state: SearchState) -> dict[str, Any]:
    """Optuna distributions of the parameters searched now (tier <= stage, not frozen), in priority order."""
    return {name: distribution(space[name], state, space) for name in state.searched(space)}


def to_optuna(p: Param, value: Any, dist: Any) -> Any:
    """A checked value of p as Optuna holds it in `dist`, or None when the distribution cannot hold it."""
    if p.type == "choice":
        label = _label(p, value)
        for c in dist.choices:
            if type(c) is type(label) and c == label:
                return c
        return None
    if p.type == "int":
        v = int(value)
        return v if dist._contains(float(v)) else None
    x = 1.0 - float(value) if p.scale == "one_minus_log" else float(value)
    tol = EDGE_TOL * (dist.high - dist.low) + 1e-15 * max(abs(dist.low), abs(dist.high))
    if not dist.low - tol <= x <= dist.high + tol:
        return None
    x = min(max(x, dist.low), dist.high)
    return x if dist._contains(x) else None


def from_optuna(p: Param, x: Any) -> Any:
    """The parameter's value for what Optuna proposed: 1-β mapped back, JSON labels decoded, snapped."""
    if p.type == "choice":
        for v in p.values:
            lab = _label(p, v)
            if type(lab) is type(x) and lab == x:
                return v
        raise SpaceError(f"params.{p.name}: Optuna proposed {x!r}, not among the values")
    if p.scale == "one_minus_log":
        return p.snap(1.0 - float(x))
    return p.snap(float(x))


# -- the search ---------------------------------------------------------------------------------


class OptunaSearch:
    """Settings proposed by an Optuna sampler from the study's trials, inside the current search state.

    `curves` (optional) maps a trial id to its intermediate values {step: value}, for stopped trials;
    `startup` overrides the sampler's random startup trials (TPE and GP: 10, CMA-ES: 1).
    """

    def __init__(self, space: Space, state: SearchState, seed: int, trials: Iterable[Trial], *,
                 strategy: str = "tpe", curves: Mapping[int, Mapping[int, float]] | None = None,
                 startup: int | None = None) -> None:
        if strategy not in STRATEGIES:
            raise SpaceError(f"strategy: {strategy!r} is not a model-based strategy "
                             f"(allowed: {', '.join(STRATEGIES)})")
        if startup is not None and (isinstance(startup, bool) or not isinstance(startup, int) or startup < 0):
            raise SpaceError(f"startup trials must be an integer >= 0, got {startup!r}")
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
        self.direction = space.config.direction
        self.dists = distributions(space, state)
        self.fixed = state.fixed(space)
        self.trials = sorted(trials, key=lambda t: t.id)
        self.outside = 0      # trials left out: values outside the zoom box
        self.rows = [r for r in (self._row(t, curves or {}) for t in self.trials) if r is not None]
        complete = self.optuna.trial.TrialState.COMPLETE
        results = [r["value"] for r in self.rows if r["state"] == complete]
        self.finished = len(results)   # trials with their own result
        # GP's lie: the worst finished objective (None before any).
        self.lie = (min(results) if self.direction == "maximize" else max(results)) if results else None
        if strategy == "gp" and self.lie is not None:
            self.rows = [self._for_gp(r) for r in self.rows]

    @property
    def costly(self) -> bool:
        """True when asking fits a GP (seconds: torch, scipy; the first also imports torch) rather than
        drawing at random or building a TPE (milliseconds): whoever asks may want it off its thread."""
        if self.strategy != "gp" or not self.dists:
            return False
        return self.finished >= (GP_STARTUP if self.startup is None else self.startup)

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

    def _for_gp(self, row: dict) -> dict:
        """A row as GP is told it: GP learns from COMPLETE trials alone, so the others get a value.

        - pending: the worst finished value (constant liar, as TPE's constant_liar ranks them worst).
          Optuna's GP could take them as pending points instead, but its batch acquisition then costs
          ~15x more per ask (16 s instead of 1 s on LCBench's space, 15 trials);
        - stopped: its last value, where the rule judged it worse than its peers (a trial stopped
          early has not improved yet, so this leans pessimistic: the region is marked as worse);
        - diverged: the worst finished value.
        """
        TrialState = self.optuna.trial.TrialState
        if row["state"] == TrialState.RUNNING:
            return {**row, "state": TrialState.COMPLETE, "value": self.lie}
        if row["state"] == TrialState.PRUNED:
            steps = [v for _, v in sorted(row["inter"].items())]
            last = self.lie if not steps or any(math.isnan(v) for v in steps) else steps[-1]
            return {**row, "state": TrialState.COMPLETE, "value": last, "inter": {}}
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

    def _ask_seed(self) -> int:
        """The sampler's seed for this history: the study's seed mixed with how much has happened,
        so that asks after the history grew draw afresh and a restart draws the same."""
        ids = [t.id for t in self.trials]
        words = [self.seed & 0xFFFFFFFF, self.seed >> 32 & 0xFFFFFFFF, len(ids), max(ids, default=0)]
        return int(np.random.SeedSequence(words).generate_state(1)[0])

    def build(self) -> Any:
        """The in-memory Optuna study holding the history (CMA-ES: replayed), ready to ask."""
        optuna = self.optuna
        # CMA-ES replays the history, which advances its generator: the study's seed is enough.
        seed = self.seed % 2**32 if self.strategy == "cmaes" else self._ask_seed()
        study = optuna.create_study(study_name=STUDY_NAME, direction=self.direction,
                                    sampler=self._sampler(seed))
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
        out = []
        with warnings.catch_warnings():
            # Experimental-feature notices (GP, CMA-ES options) would tear the app's screen.
            warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
            study = self.build() if n else None
            for _ in range(n):
                # Left RUNNING: the next ask in this batch sees it as pending (constant liar); GP is
                # told the lie at once (see _for_gp).
                trial = study.ask(dict(self.dists))
                if self.strategy == "gp" and self.lie is not None:
                    study.tell(trial, self.lie)
                setting = dict(self.fixed)
                for name in self.dists:
                    setting[name] = from_optuna(self.space[name], trial.params[name])
                out.append(self.space.check_setting(setting))
        return out


def _require(module: str, message: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise SpaceError(message)


def first_settings(space: Space, n: int, seed: int, *, strategy: str = "tpe", parallel: int = 1) -> list[dict[str, Any]]:
    """The first n settings a fresh study run with this seed queues: `parallel` asked at once, then
    one per trial that ends, each ask seeing the earlier settings as trials.

    The first `parallel` are exact. Later ones are exact while the sampler is still in its random
    startup (TPE, GP: 10 trials) and trials end one at a time; past that they depend on results.
    """
    from tui_tuner.search.trials import Trial

    state = SearchState(stage=space.config.stage)
    trials: list[Trial] = []
    while len(trials) < n:
        k = min(n - len(trials), max(1, parallel) if not trials else 1)
        for setting in OptunaSearch(space, state, seed, trials, strategy=strategy).ask(k):
            i = len(trials) + 1
            trials.append(Trial(id=i, status="queued", params=setting, source=strategy, created=float(i)))
    return [t.params for t in trials]
