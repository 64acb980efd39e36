"""What Optuna's GP is told about each trial, how much of the history it sees, and its warm start.

GP learns from COMPLETE trials alone (a pruned or running trial says nothing to it), so once a trial
has finished, every other trial is told to it as COMPLETE with a value:
- pending (queued, running, paused): the worst finished value (a constant liar), so that with
  parallel > 1 the pending setting is not proposed again;
- stopped early: where its curve was heading. Its value at the step it was stopped, plus the median
  gain from that step to the end among the trials that ran to the end and were seen at that step
  (`curves` holds the values the early-stopping rule judged, every trial's). Told its last value
  alone, a slow starter looked as bad as a trial that never learned, and the model steered away
  from the region of the best trials. Fewer than `MIN_PEERS` such peers: its last value;
- diverged: the worst finished value.

History cap (`HISTORY_CAP`): an exact GP costs n³ to fit, so past that many trials it sees the
pending ones, the best half of the cap and the most recent rest; the ask stays under a second at
1,000 trials.

Warm start (`kernel`) and the random stream (`stream`): run directly, GPSampler starts each fit
from the previous fit's kernel parameters and draws from one random stream across asks (its
startup trials, its acquisition's random starts). The wrapper rebuilds its sampler per ask (a
restarted tuner must propose the same), so the scheduler keeps both in the study and hands them to
the next ask. It had seeded each ask afresh from the history instead: on the LCBench bench that
alone made its runs differ from GPSampler's, with a worse tail (tests/bench/gp_wrapper.py).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

HISTORY_CAP = 150
MIN_PEERS = 3


def stopped_value(curve: Mapping[int, float], finals: Sequence[tuple[Mapping[int, float], float]]) -> float:
    """A stopped trial's told value: its last value plus the peers' median gain from that step on.

    `curve` is the stopped trial's {step: value} (not empty, no NaN); `finals` each finished trial's
    curve and final value. The gain is measured at the stopped trial's last step, on the peers seen
    there; with fewer than MIN_PEERS of them the last value stands.
    """
    step = max(curve)
    last = curve[step]
    gains = [final - c[step] for c, final in finals if step in c and math.isfinite(c[step])]
    if len(gains) < MIN_PEERS:
        return last
    return last + statistics.median(gains)


def capped(rows: list[dict], cap: int, maximize: bool, pending_state: Any) -> list[dict]:
    """At most `cap` rows (pending ones always kept): the best half of the cap, then the most recent."""
    if len(rows) <= cap:
        return rows
    pending = [r for r in rows if r["state"] == pending_state]
    told = [r for r in rows if r["state"] != pending_state and r["value"] is not None]
    room = max(cap - len(pending), 0)
    best = sorted(told, key=lambda r: (-r["value"] if maximize else r["value"], r["id"]))[:room // 2]
    chosen = {r["id"] for r in best}
    recent = [r for r in sorted(told, key=lambda r: r["id"], reverse=True) if r["id"] not in chosen]
    chosen |= {r["id"] for r in recent[:room - len(best)]}
    return [r for r in rows if r["id"] in chosen or r["state"] == pending_state]


# -- the kernel's warm start (only where torch is already imported: the worker) -----------------


def set_kernel(sampler: Any, kernel: Sequence[float] | None) -> None:
    """Start the GP's next fit from these kernel parameters (inverse squared lengthscales, scale,
    noise), as a GPSampler kept between asks does; a length that does not fit the space is ignored
    by GPSampler itself."""
    if not kernel:
        return
    import torch
    from optuna._gp.gp import GPRegressor

    dim = len(kernel) - 2
    t = torch.tensor([float(k) for k in kernel], dtype=torch.float64)
    sampler._gprs_cache_list = [GPRegressor(
        is_categorical=torch.zeros(dim, dtype=torch.bool), X_train=torch.zeros((1, dim), dtype=torch.float64),
        y_train=torch.zeros(1, dtype=torch.float64), inverse_squared_lengthscales=t[:-2].clone(),
        kernel_scale=t[-2].clone(), noise_var=t[-1].clone())]


def get_kernel(sampler: Any) -> list[float] | None:
    """The kernel parameters of the sampler's last fit, or None when it fitted nothing."""
    cache = getattr(sampler, "_gprs_cache_list", None)
    if not cache:
        return None
    g = cache[0]
    return [*(float(x) for x in g.inverse_squared_lengthscales.detach().cpu().reshape(-1)),
            float(g.kernel_scale), float(g.noise_var)]


# -- the random stream: one per study, continued from ask to ask --------------------------------


def get_stream(sampler: Any) -> dict[str, Any]:
    """The GP sampler's random state (its own and its startup sampler's) as JSON-able data."""
    return {"gp": _state(sampler._rng.rng), "startup": _state(sampler._independent_sampler._rng.rng)}


def set_stream(sampler: Any, stream: Mapping[str, Any]) -> None:
    """Continue the random stream `get_stream` saved: the next ask draws what a GPSampler kept
    between asks would draw."""
    sampler._rng.rng.set_state(_unstate(stream["gp"]))
    sampler._independent_sampler._rng.rng.set_state(_unstate(stream["startup"]))


def _state(rng: Any) -> list[Any]:
    name, keys, pos, has_gauss, cached = rng.get_state()
    return [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]


def _unstate(s: Sequence[Any]) -> tuple:
    import numpy as np

    name, keys, pos, has_gauss, cached = s
    return (name, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached))
