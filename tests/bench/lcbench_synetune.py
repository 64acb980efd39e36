"""Syne Tune's Hyper-Tune (a GP across rungs, with ASHA's brackets) on the LCBench surrogate, for tests/bench/lcbench.py.

Hyper-Tune (Li et al., VLDB 2022) is in Syne Tune up to 0.13 (`pip install 'syne-tune[gpsearchers]==0.13.0'`,
Apache-2.0; 0.14 and later dropped it). It runs in-process on a simulated pair of workers, each
epoch one tick: two trials advance an epoch at a time (what `tui-tuner --parallel 2` runs), each
result goes to the scheduler, which continues, stops or pauses the trial; a free worker asks for a
new trial or a paused one to resume (promotion), until the epochs of 20 full trials are spent. The
space and its scales are the bench's (log, log on 1-momentum, log ints); the first rung is epoch 5
and eta 3, as tui-tuner's asha on this space. The pick is the best trial that reached epoch 52.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from lcbench_surrogate import EPOCHS, OBJECTIVE

GRACE = 5       # tui-tuner's asha on 52 epochs: max_step // eta², eta 3


def config_space(space: Any) -> dict[str, Any]:
    """The bench's space in Syne Tune's terms (one_minus_log: log on 1-momentum, as Optuna's runs)."""
    from syne_tune.config_space import lograndint, loguniform, randint, uniform

    cs: dict[str, Any] = {"epochs": EPOCHS}
    for p in space:
        if p.type == "int":
            cs[p.name] = (lograndint if p.scale == "log" else randint)(int(p.low), int(p.high))
        elif p.scale == "one_minus_log":
            cs[f"1-{p.name}"] = loguniform(1 - p.high, 1 - p.low)
        else:
            cs[p.name] = (loguniform if p.scale == "log" else uniform)(p.low, p.high)
    return cs


def setting(space: Any, config: dict[str, Any]) -> dict[str, Any]:
    """A Syne Tune config as the bench's setting."""
    return {p.name: (1 - config[f"1-{p.name}"] if p.scale == "one_minus_log" else config[p.name]) for p in space}


def run_hypertune(b: Any, method: str, task: str, seed: int) -> tuple[dict[str, Any], int, float, int]:
    """(the pick, epochs spent, wall seconds, trials) for one Hyper-Tune study."""
    from syne_tune.backend.trial_status import Trial
    from syne_tune.optimizer.baselines import HyperTune
    from syne_tune.optimizer.scheduler import SchedulerDecision

    logging.getLogger("syne_tune").setLevel(logging.ERROR)
    sched = HyperTune(config_space(b.space), metric=OBJECTIVE, mode="max", resource_attr="epoch",
                      max_resource_attr="epochs", grace_period=GRACE, reduction_factor=3, random_seed=seed,
                      search_options={"debug_log": False})
    t0 = time.perf_counter()
    trials: dict[int, Any] = {}
    curves: dict[int, list[float]] = {}
    reached: dict[int, int] = {}
    workers: list[int | None] = [None] * max(1, b.asha_parallel)
    spent, next_id, now = 0, 0, 0
    finished: list[int] = []
    while spent < b.step_budget:
        for w in range(len(workers)):
            if workers[w] is not None:
                continue
            sug = sched.suggest(trial_id=next_id)
            if sug is None:
                continue
            if sug.spawn_new_trial_id:
                tr = Trial(trial_id=next_id, config=sug.config, creation_time=None)
                sched.on_trial_add(tr)
                trials[next_id] = tr
                curves[next_id] = b.surrogate.curves(task, setting(b.space, sug.config))[OBJECTIVE]
                reached[next_id] = 0
                workers[w] = next_id
                next_id += 1
            else:   # a paused trial promoted: it resumes where it stopped
                tid = sug.checkpoint_trial_id
                if sug.config is not None:
                    trials[tid].config = sug.config
                workers[w] = tid
        if all(w is None for w in workers):
            break
        now += 1
        for w, tid in enumerate(workers):
            if tid is None or spent >= b.step_budget:
                continue
            reached[tid] += 1
            spent += 1
            epoch = reached[tid]
            result = {"epoch": epoch, OBJECTIVE: float(curves[tid][epoch - 1]), "epochs": EPOCHS}
            if epoch >= EPOCHS:
                sched.on_trial_complete(trials[tid], result)
                finished.append(tid)
                workers[w] = None
                continue
            decision = sched.on_trial_result(trials[tid], result)
            if decision in (SchedulerDecision.STOP, SchedulerDecision.PAUSE):
                sched.on_trial_remove(trials[tid])   # as Syne Tune's Tuner does for both
                workers[w] = None
    wall = time.perf_counter() - t0
    if finished:
        pick = max(finished, key=lambda t: curves[t][EPOCHS - 1])
    else:   # no trial reached the last epoch: the one that got furthest, best there
        pick = max(reached, key=lambda t: (reached[t], curves[t][reached[t] - 1] if reached[t] else -1))
    return setting(b.space, trials[pick].config), spent, wall, len(trials)
