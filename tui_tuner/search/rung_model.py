"""A model across rungs: where a stopped trial would have ended, predicted from every trial's curve.

Early stopping judges a trial by its value at a rung, so a slow starter (a low learning rate, a
large batch) is stopped at the first rung even where it would have ended best. On the LCBench
bench, the runs in which early stopping cost the study its best trial were all of that kind: the
trial was behind at step 5 and would have finished above the pick. No rule that ranks a rung's
values brings such a trial back; a model of how values at a rung relate to values at the end can.

This is that model: one Gaussian process over (setting, fidelity), fitted with Optuna's GP (the one
`strategy = "gp"` uses: its Matern-5/2 kernel with a length scale per dimension, its prior and its
fit) on every value the early-stopping rule judged, each trial's at its rungs, plus each finished
trial's final value at fidelity 1. Fidelity is log(step) / log(final step), so the rungs (5, 10, 20,
40 of 52) are spread as successive halving spaces them. Its length scale along fidelity is fitted
too: where early values say little about final ones, it is short and the prediction at the end
leans on the finished trials near the setting, not on the trial's own early values. A stopped
trial's predicted final value is the posterior at (its setting, 1).

It runs in the model worker (it needs torch), after each GP ask, on the same history; the early-stopping
policy reads the predictions in the tuner (runtime/early_stopping.py `promotion`). It uses Optuna's GP
internals (optuna._gp), which change between Optuna versions: any error here means no predictions,
never a failed ask.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

Trial = tuple[int, Mapping[str, Any], "float | None", "int | None"]

JUDGED_META = "rung_model"   # the study's meta: the predictions of the last GP ask, {trial id: [mean, sd]}
MIN_FINISHED = 5          # finished trials before the model predicts anything
MAX_POINTS = 200          # an exact GP costs n^3: at most half of it finals, then the most recent rungs


def fidelity(step: float, final_step: float) -> float:
    """Where `step` lies between the first step and the final one, on a log scale, in [0, 1]."""
    if final_step <= 1:
        return 1.0
    return min(max(math.log(max(step, 1.0)) / math.log(final_step), 0.0), 1.0)


def judged(search: Any) -> dict[int, list[float]]:
    """An OptunaSearch's (search/optuna_search.py) GP with early stopping: each stopped trial's final
    value as this model predicts it, {trial id: [mean, standard deviation]}; {} for another strategy,
    without curves, or when the model cannot fit (it is a hint for early stopping's promotion, never
    worth a failed ask)."""
    if search.strategy != "gp" or not search.curves:
        return {}
    complete = search.optuna.trial.TrialState.COMPLETE
    by_id = {t.id: t for t in search.trials}
    finished, stopped = [], []
    for r in search.raw:
        t = by_id[r["id"]]
        if r["state"] == complete:
            finished.append((t.id, r["params"], r["value"], t.step))
        elif t.status == "stopped":
            stopped.append((t.id, r["params"], None, t.step))
    try:
        found = predict_finals(search.dists, finished, stopped, search.curves, search.direction == "maximize")
    except Exception:  # noqa: BLE001 - Optuna's GP internals differ between versions, or the fit failed
        return {}
    return {tid: [m, s] for tid, (m, s) in found.items() if math.isfinite(m) and math.isfinite(s)}


def predict_finals(dists: Mapping[str, Any], finished: Sequence[Trial], stopped: Sequence[Trial],
                   curves: Mapping[int, Mapping[int, float]], maximize: bool) -> dict[int, tuple[float, float]]:
    """{trial id: (predicted final value, its standard deviation)} for each stopped trial with a curve.

    `dists` are the Optuna distributions of the searched parameters; `finished` and `stopped` are
    (trial id, params in Optuna's terms, final value or None, last step) of the trials that ran to
    their end and of those early stopping stopped; `curves` every trial's judged values
    {step: value}. Empty with fewer than MIN_FINISHED finished trials, or no stopped trial with a
    curve.
    """
    import numpy as np

    finished = [r for r in finished if r[2] is not None and math.isfinite(r[2])]
    stopped = [r for r in stopped if _finite(curves.get(r[0]))]
    if len(finished) < MIN_FINISHED or not stopped or not dists:
        return {}
    final_step = max(float(r[3] or 0) for r in finished)
    if final_step <= 1:
        return {}

    from optuna._gp import gp, prior
    from optuna._gp.search_space import SearchSpace

    space = SearchSpace(dict(dists))

    def where(rs: Sequence[Mapping[str, Any]]) -> Any:
        return space.get_normalized_params([None] * len(rs), trial_params=[dict(r[1]) for r in rs])

    sign = 1.0 if maximize else -1.0
    if len(finished) > MAX_POINTS // 2:
        # The best quarter of the cap (where the stopped trials are compared) and the most recent rest.
        best = sorted(finished, key=lambda r: (-sign * r[2], r[0]))[:MAX_POINTS // 4]
        kept = {r[0] for r in best}
        recent = [r for r in sorted(finished, key=lambda r: -r[0]) if r[0] not in kept]
        kept |= {r[0] for r in recent[:MAX_POINTS // 2 - len(kept)]}
        finished = [r for r in finished if r[0] in kept]
    points: list[tuple[int, float, float]] = [(i, 1.0, float(r[2])) for i, r in enumerate(finished)]
    seen = finished + stopped
    # Then the rung values, the most recent trials' first, up to the cap.
    for i, r in sorted(enumerate(seen), key=lambda e: -e[1][0]):
        for step, v in sorted((curves.get(r[0]) or {}).items()):
            if len(points) < MAX_POINTS and math.isfinite(v) and step < final_step:
                points.append((i, fidelity(step, final_step), float(v)))
    x = where(seen)
    X = np.array([[*x[i], z] for i, z, _ in points], dtype=float)
    y = sign * np.array([v for _, _, v in points], dtype=float)
    mu, sd = float(y.mean()), float(max(y.std(), 1e-12))
    is_categorical = np.append(space.is_categorical, False)
    model = gp.fit_kernel_params(X=X, Y=(y - mu) / sd, is_categorical=is_categorical,
                                 log_prior=prior.default_log_prior, minimum_noise=prior.DEFAULT_MINIMUM_NOISE_VAR,
                                 deterministic_objective=False)
    import torch

    at = torch.from_numpy(np.array([[*row, 1.0] for row in where(stopped)], dtype=float))
    with torch.no_grad():
        mean, var = model.posterior(at)
    out: dict[int, tuple[float, float]] = {}
    for r, m, v in zip(stopped, mean.tolist(), var.tolist(), strict=True):
        out[int(r[0])] = (sign * (m * sd + mu), math.sqrt(max(v, 0.0)) * sd)
    return out


def _finite(curve: Mapping[int, float] | None) -> bool:
    return bool(curve) and all(math.isfinite(v) for v in curve.values())
