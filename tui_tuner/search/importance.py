"""Measured importance: how much each parameter mattered to the objective in this study's finished trials.

With optuna installed, PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator) does the work: it
compares where the top trials lie with where all trials lie, per parameter, which suits a study
that has zoomed (trials are not uniform over the space). fANOVA is available on request.

Without optuna, a numpy fallback ("ranks"): for each parameter, the share of the variance of the
objective's ranks that its value explains (epsilon-squared of a one-way ANOVA), after grouping the
trials by the parameter's value (choices) or into equal-count bins of its unit-space value
(numbers). Ranks make it robust to diverged runs with huge losses; binning catches an optimum in
the middle of a range (a learning rate) that a correlation would miss; epsilon-squared subtracts
what chance alone explains, so a parameter that does nothing scores about 0.

Both work on each parameter's unit-space value (see `Param.to_unit`), so scales are respected.
Parameters that did not vary across the trials (frozen, not yet searched) get no score at all.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tui_tuner.errors import SpaceError
from tui_tuner.search.param import Param
from tui_tuner.search.space import Space

MIN_TRIALS = 8
METHODS = ("auto", "ped-anova", "fanova", "ranks")


@dataclass
class Importance:
    """Importance per parameter (shares in [0, 1] summing to 1, highest first) and how it was measured."""

    scores: dict[str, float] = field(default_factory=dict)
    method: str = ""
    n: int = 0  # trials the measure used

    def ranked(self) -> list[tuple[str, float]]:
        """(name, score) pairs, most important first."""
        return sorted(self.scores.items(), key=lambda kv: -kv[1])


def optuna_available() -> bool:
    """True when optuna can be imported (the PED-ANOVA and fANOVA methods need it)."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


def importance(space: Space, trials: list[tuple[dict, float]], maximize: bool, *,
               method: str = "auto") -> Importance:
    """How much each parameter mattered, from finished (setting, objective) pairs.

    method: "auto" (PED-ANOVA when optuna is importable, else "ranks"), "ped-anova", "fanova"
    (both need optuna) or "ranks" (numpy only). Non-finite objectives are ignored; with fewer
    than MIN_TRIALS usable trials the scores are empty.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "auto":
        method = "ped-anova" if optuna_available() else "ranks"
    units, objectives = _table(space, trials)
    n = len(objectives)
    if n < MIN_TRIALS:
        return Importance({}, f"too few trials ({n} < {MIN_TRIALS})", n)
    varied = [name for name, col in units.items() if np.ptp(col) > 1e-12]
    if not varied:
        return Importance({}, "no parameter varied", n)
    cols = {name: units[name] for name in varied}
    if method == "ranks":
        raw = _ranks(space, cols, objectives, maximize)
        label = "ranks (numpy)"
    else:
        raw = _optuna(space, cols, objectives, maximize, method)
        label = f"{method} (optuna)"
    return Importance(_normalise(raw), label, n)


def _table(space: Space, trials: list[tuple[dict, float]]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Unit-space columns per parameter (choices as value indices) for the usable trials."""
    rows: list[list[float]] = []
    objectives: list[float] = []
    params = list(space.params.values())
    for setting, obj in trials:
        try:
            y = float(obj)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(y):
            continue
        try:
            rows.append([_coord(p, setting.get(p.name, p.default)) for p in params])
        except SpaceError:
            continue  # a setting from outside this space (an edited space file): skip it
        objectives.append(y)
    arr = np.asarray(rows, dtype=float).reshape(len(rows), len(params))
    return {p.name: arr[:, i] for i, p in enumerate(params)}, np.asarray(objectives, dtype=float)


def _coord(p: Param, value: Any) -> float:
    if p.type == "choice":
        return float(p.index_of(value))
    return p.to_unit(p.check(value))


def _normalise(raw: dict[str, float]) -> dict[str, float]:
    clean = {k: max(float(v), 0.0) if math.isfinite(v) else 0.0 for k, v in raw.items()}
    total = sum(clean.values())
    if total <= 0:
        # Nothing stood out from chance: say so with equal shares rather than invent an order.
        return {k: 1.0 / len(clean) for k in clean}
    return dict(sorted(((k, v / total) for k, v in clean.items()), key=lambda kv: -kv[1]))


# -- numpy fallback -------------------------------------------------------------------------------


def _groups(col: np.ndarray, discrete: bool, bins: int) -> list[np.ndarray]:
    """Index groups: one per distinct value when few, else equal-count bins along the value."""
    distinct = np.unique(col)
    if discrete or len(distinct) <= bins:
        return [np.flatnonzero(col == v) for v in distinct]
    order = np.argsort(col, kind="stable")
    return [g for g in np.array_split(order, bins) if len(g)]


def _ranks(space: Space, cols: dict[str, np.ndarray], objectives: np.ndarray, maximize: bool) -> dict[str, float]:
    """Epsilon-squared of the objective's ranks grouped by each parameter's value."""
    n = len(objectives)
    y = -objectives if maximize else objectives
    ranks = np.argsort(np.argsort(y, kind="stable"), kind="stable").astype(float)
    ss_total = float(((ranks - ranks.mean()) ** 2).sum())
    bins = max(3, min(8, n // 4))
    out: dict[str, float] = {}
    for name, col in cols.items():
        groups = _groups(col, space[name].type == "choice", bins)
        k = len(groups)
        if k < 2 or ss_total <= 0:
            out[name] = 0.0
            continue
        ss_between = sum(len(g) * (ranks[g].mean() - ranks.mean()) ** 2 for g in groups)
        ms_within = (ss_total - ss_between) / max(n - k, 1)
        out[name] = max(0.0, (ss_between - (k - 1) * ms_within) / (ss_total + ms_within))
    return out


# -- optuna ---------------------------------------------------------------------------------------


def _optuna(space: Space, cols: dict[str, np.ndarray], objectives: np.ndarray, maximize: bool,
            method: str) -> dict[str, float]:
    """PED-ANOVA or fANOVA on an in-memory optuna study built from the trials (unit-space values)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    dists = {name: (CategoricalDistribution(list(range(len(space[name].values))))
                    if space[name].type == "choice" else FloatDistribution(0.0, 1.0))
             for name in cols}
    n = len(objectives)
    frozen = []
    for i in range(n):
        params = {name: (int(col[i]) if space[name].type == "choice" else float(col[i]))
                  for name, col in cols.items()}
        frozen.append(optuna.trial.create_trial(params=params, distributions=dists, value=float(objectives[i])))
    if method == "fanova":
        evaluator = FanovaImportanceEvaluator(seed=0)
    else:
        # At least 5 trials above the target quantile (optuna's advice), at most the better half.
        evaluator = PedAnovaImportanceEvaluator(target_quantile=min(0.5, max(0.1, 5 / n)))
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # no "study created" lines in the app's log
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-API and few-trials warnings
            study = optuna.create_study(direction="maximize" if maximize else "minimize")
            study.add_trials(frozen)
            return dict(evaluator.evaluate(study, params=list(cols)))
    finally:
        optuna.logging.set_verbosity(verbosity)
