"""What asha's trusted rungs cost and buy, offline: a minute on the LCBench surrogate, not a bench day.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python tests/bench/rung_trust.py [--pool top5|good|uniform] [--orders 200]

Not collected by pytest. Each study draws settings in a random order from a pool of a task's 4,000
random configurations (`top5`, the default: the best 5 % at epoch 52, roughly where a model-based
search proposes after its startup; `good`: the best 20 %; `uniform`: all) and runs them one at a time through asha's
rungs at epochs 5, 15 and 45 (eta 3, the cut-off `promotion_cutoff` the tuner uses) until the epochs
of 20 full trials (1,040) are spent; its pick is the best trial that reached epoch 52. Regret is the
task's best at epoch 52 minus the pick, in validation-accuracy points, over all 34 tasks and, apart,
over the 10 that tests/bench/lcbench.py tunes on.

The variants separate the two halves of the trusted rungs (search/early_stop.py, `Decider._held`):

- `full`: 20 full trials, no early stopping;
- `asha`: asha as Optuna has it;
- `startup M`: no rung stops a trial before M trials finished (or a fourth of the budget is spent);
- `gate`: a rung that would stop the best finished trial stops none from then on;
- `startup M + gate`: both (M = 3 is the tuner's default);
- `startup 3 + eased`: after the startup, a rung never stops a trial at least as good there as the
  best finished trial was (its cut-off falls to that trial's value instead of the rung going off).

There is no model here: a search that learns from stopped trials (gp+asha) loses its best trial in
ways a random order does not, so this says what each rule costs a study where the settings do not
depend on each other, and where a rung misranks the best. lcbench.py measures the real thing.

Measured (pool top5, 200 orders per task), all 34 tasks, mean / median regret: full 1.61 / 1.00, asha
1.03 / 0.37, startup 3 1.06 / 0.39, gate 1.07 / 0.39, startup 2 + gate 1.22 / 0.52, startup 3 + gate
1.31 / 0.66, startup 3 + eased 1.07 / 0.43; on the bench's 10 tasks asha 0.62 / 0.17 and startup 3 +
gate 1.00 / 0.32. Each half alone is nearly free; together
the gate fires on the best of the first three (unjudged) trials as soon as later ones raise a rung's
cut-off, and the rung goes off for the rest of the study. On the tasks where asha loses to full trials
(189354: 7.38 full, 9.15 asha; 168329: 1.97 and 2.32) only startup 3 + gate gets back to full trials'
figure (7.38, 1.99).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from lcbench import SPACE, TASKS  # noqa: E402
from lcbench_surrogate import OBJECTIVE, Surrogate, data_dir, layout_path  # noqa: E402

from tui_tuner.search.early_stop_numbers import promotion_cutoff  # noqa: E402
from tui_tuner.search.early_stop_records import STARTUP_SHARE  # noqa: E402
from tui_tuner.search.space import load_space  # noqa: E402

RUNGS = (5, 15, 45)
EPOCHS = 52
ETA = 3
BUDGET = 20 * EPOCHS
POOLS = {"uniform": 0.0, "good": 0.8, "top5": 0.95}
# name: (startup M, gate, eased)
VARIANTS = {
    "asha": (0, False, False),
    "startup 3": (3, False, False),
    "gate": (0, True, False),
    "startup 2 + gate": (2, True, False),
    "startup 3 + gate": (3, True, False),
    "startup 3 + eased": (3, False, True),
}


def study(curves: np.ndarray, order: np.ndarray, startup: int, gate: bool, eased: bool) -> float:
    """One study over the settings in `order` (rows of `curves`: accuracy at RUNGS then at EPOCHS);
    the accuracy at EPOCHS of its pick."""
    spent, seen, off = 0, [[] for _ in RUNGS], set()
    finished = 0
    best: int | None = None       # the finished trial with the best accuracy at EPOCHS (the first of ties)
    for i in order:
        if spent >= BUDGET:
            break
        held = finished < startup and spent * STARTUP_SHARE < BUDGET
        stopped = False
        for r, step in enumerate(RUNGS):
            seen[r].append(curves[i, r])
            if held or r in off:
                continue
            cut = promotion_cutoff(seen[r], ETA, True)
            if eased and best is not None:
                cut = min(cut, curves[best, r])
            if curves[i, r] < cut:
                spent, stopped = spent + step, True
                break
        if stopped:
            continue
        spent += EPOCHS
        finished += 1
        if best is None or curves[i, -1] > curves[best, -1]:
            best = i
        if gate:
            off |= {r for r in range(len(RUNGS)) if curves[best, r] < promotion_cutoff(seen[r], ETA, True)}
    return curves[best, -1]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool", choices=sorted(POOLS), default="top5")
    ap.add_argument("--orders", type=int, default=200, help="random orders per task")
    args = ap.parse_args(argv)
    surrogate = Surrogate(layout_path(data_dir()))
    space = list(load_space(SPACE))
    units = np.random.default_rng(0).random((4000, len(space)))
    configs = [{p.name: p.from_unit(float(u[j])) for j, p in enumerate(space)} for u in units]
    names = ["full", *VARIANTS]
    every: dict[str, list[float]] = {n: [] for n in names}
    bench: dict[str, list[float]] = {n: [] for n in names}
    for task in surrogate.tasks:
        y = surrogate.evaluate(task, configs, [*RUNGS, EPOCHS])
        curves = y[:, :, surrogate.layout["y_names"].index(OBJECTIVE)].astype(float)
        top = curves[:, -1].max()
        pool = np.where(curves[:, -1] >= np.quantile(curves[:, -1], POOLS[args.pool]))[0]
        regret: dict[str, list[float]] = {n: [] for n in names}
        for seed in range(args.orders):
            order = np.random.default_rng(seed).permutation(pool)
            regret["full"].append(top - curves[order[:20], -1].max())
            for name, how in VARIANTS.items():
                regret[name].append(top - study(curves, order, *how))
        print(f"{task:>7} " + " ".join(f"{n}={np.mean(regret[n]):.2f}" for n in names), flush=True)
        for n in names:
            every[n] += regret[n]
            if task in TASKS:
                bench[n] += regret[n]
    for title, table in ((f"all {len(surrogate.tasks)} tasks", every), (f"the bench's {len(TASKS)} tasks", bench)):
        print(f"\n{title}, pool {args.pool}, {args.orders} orders each: mean / median / 90th percentile regret")
        for n in names:
            v = table[n]
            print(f"  {n:18} {np.mean(v):5.2f} / {np.median(v):4.2f} / {np.quantile(v, 0.9):4.1f}")


if __name__ == "__main__":
    main()
