"""Search quality: median best-found regret of grid, linear-uniform, random, coarse-to-fine and TPE.

Run as `.venv/bin/python tests/bench/search_quality.py` (not collected by pytest). Options:
`--seeds N` (default 60), `--budgets 20,50`, `--sweep` (also tries other zoom settings, slower).

Each objective imitates a training run's final validation loss as a function of its settings:
a learning rate with a sharp optimum on a log scale (and a divergence cliff above it), a beta whose
best value is near 0.99 (so 1-beta matters on a log scale), weak parameters, and discrete ones.
Observations carry noise; the regret of a method is the noise-free loss of the trial it would pick
(its best *observed* trial) minus the known optimum, so a lucky noisy draw is not rewarded.

Methods: a coarse grid in the right scales sized to the budget (fixed, and with a random offset per
seed so that where the optimum happens to fall between grid points averages out), uniform sampling
on a linear scale (what ignoring log and 1-beta scales costs), random in the right scales
(Sampler.random), coarse-to-fine (stratified rounds from coarse_to_fine_rounds, region.zoom after
each with the module defaults) and Optuna's TPE with default settings, given the right scales.
TPE and random runs of 50 trials are scored after 20 as well (both are sequential, so that is the
same as a run of 20).
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from space_toml import hidden, layers, lr, momentum, param, space_toml  # noqa: E402

from tui_tuner.search.config import ZOOM_MARGIN, ZOOM_TOP  # noqa: E402
from tui_tuner.search.region import zoom  # noqa: E402
from tui_tuner.search.sampling import Sampler, auto_round_size, coarse_to_fine_rounds  # noqa: E402
from tui_tuner.search.space import Space, parse_space  # noqa: E402
from tui_tuner.search.state import SearchState  # noqa: E402

NOISE = 0.01


@dataclass
class Problem:
    """A synthetic objective over a space, with its known optimum."""

    name: str
    space: Space
    loss: Callable[[dict], float]  # noise-free
    optimum: float


# -- objectives ------------------------------------------------------------------------------------


def _diverge(x: float, cliff: float, value: float) -> float | None:
    """Training blows up when the (effective) learning rate is too far above its optimum."""
    return value if x > cliff else None


SGD_SPACE = parse_space(space_toml({"lr": lr(tier=1), "momentum": momentum(), "hidden": hidden(), "layers": layers()}),
                        "sgd.toml")


def sgd_loss(s: dict) -> float:
    """SGD with momentum: the effective step lr/(1-beta) has a sharp optimum; beta best at 0.99."""
    x = math.log10(s["lr"] / (1 - s["momentum"])) - math.log10(0.3)
    if (d := _diverge(x, 0.8, 2.5)) is not None:
        return d
    return (0.1 + 0.6 * x * x + 0.25 * (math.log10(1 - s["momentum"]) + 2) ** 2
            + 0.01 * ((s["hidden"] - 80) / 50) ** 2 + {2: 0.03, 3: 0.0, 4: 0.015}[s["layers"]])


ADAM_SPACE = parse_space(space_toml({
    "lr": lr(low=1e-5, high=1e-1, default=1e-3, tier=1),
    "batch": param("int", scale="log", low=16, high=512, default=64, tier=2),
    "beta2": param("float", scale="one_minus_log", low=0.9, high=0.9999, default=0.999, tier=4),
    "beta1": param("float", scale="one_minus_log", low=0.5, high=0.99, default=0.9, tier=4),
    "weight_decay": param("float", scale="log", low=1e-6, high=1e-1, default=1e-4, tier=3),
    "dropout": param("float", low=0.0, high=0.5, default=0.1, tier=3),
}), "adam.toml")


def adam_loss(s: dict) -> float:
    """Adam: lr optimum moves with sqrt(batch), steep on the high side; beta2 best at 0.99; weak rest."""
    x = math.log10(s["lr"]) - (-3 + 0.5 * math.log10(s["batch"] / 64))
    if (d := _diverge(x, 1.2, 3.0)) is not None:
        return d
    lr_term = 0.3 * x * x if x < 0 else 0.9 * x * x
    return (0.2 + lr_term + 0.15 * (math.log10(1 - s["beta2"]) + 2) ** 2
            + 0.04 * (math.log10(1 - s["beta1"]) + 1) ** 2
            + 0.01 * math.log2(s["batch"] / 64) ** 2
            + 0.012 * (math.log10(s["weight_decay"]) + 4) ** 2
            + 0.02 * ((s["dropout"] - 0.2) / 0.3) ** 2)


OPT_SPACE = parse_space(space_toml({
    "optimizer": param("choice", values=["sgd", "adam", "rmsprop"], tier=1),
    "lr": lr(low=1e-5, default=1e-3, tier=1),
    "momentum": momentum(),
    "width": param("int", scale="log", low=32, high=512, tier=2),
    "layers": layers(values=[1, 2, 3, 4]),
    "smoothing": param("float", low=0.0, high=0.3, tier=4),
}), "optim.toml")

_OPT = {"sgd": (math.log10(0.05), 0.0), "adam": (-3.0, 0.01), "rmsprop": (math.log10(3e-4), 0.04)}


def optim_loss(s: dict) -> float:
    """An optimizer choice that moves the lr optimum (multi-modal in lr); beta near 0.99; weak width."""
    centre, base = _OPT[s["optimizer"]]
    x = math.log10(s["lr"]) - centre
    if (d := _diverge(x, 1.0, 2.5)) is not None:
        return d
    return (0.15 + base + 0.5 * x * x + 0.2 * (math.log10(1 - s["momentum"]) + 2) ** 2
            + 0.03 * math.exp(-s["width"] / 96) + {1: 0.06, 2: 0.02, 3: 0.0, 4: 0.01}[s["layers"]]
            + 0.01 * ((s["smoothing"] - 0.1) / 0.2) ** 2)


def problems() -> list[Problem]:
    """The three objectives; each optimum is known by construction."""
    return [
        Problem("sgd", SGD_SPACE, sgd_loss, 0.1),
        Problem("adam", ADAM_SPACE, adam_loss, 0.2),
        Problem("optim", OPT_SPACE, optim_loss, 0.15 + 0.03 * math.exp(-512 / 96)),
    ]


# -- methods ---------------------------------------------------------------------------------------


def _observe(prob: Problem, rng: np.random.Generator, settings: list[dict]) -> list[float]:
    return [prob.loss(s) + float(rng.normal(0, NOISE)) for s in settings]


def _pick(prob: Problem, settings: list[dict], observed: list[float]) -> float:
    """Regret of the trial with the best observed value."""
    i = int(np.argmin(observed))
    return prob.loss(settings[i]) - prob.optimum


def grid_counts(prob: Problem, budget: int) -> list[int]:
    """Points per axis (priority order): grown one axis at a time, tier 1 first, while the grid fits."""
    params = prob.space.by_priority()
    counts = [1] * len(params)
    grown = True
    while grown:
        grown = False
        for i, p in enumerate(params):
            cap = len(p.values) if p.type == "choice" else (p.high - p.low + 1 if p.type == "int" else 10**9)
            if counts[i] < cap and math.prod(counts) // counts[i] * (counts[i] + 1) <= budget:
                counts[i] += 1
                grown = True
    return counts


def grid_size(prob: Problem, budget: int) -> int:
    """Trials the coarse grid uses at this budget."""
    return math.prod(grid_counts(prob, budget))


def run_grid(prob: Problem, budget: int, seed: int, shifted: bool = False) -> float:
    """A coarse grid in the right scales, sized to the budget: points per axis grow by priority.

    Points sit at the centres of equal unit-space cells. A fixed grid is the same for every seed, so
    its regret says mostly where the optimum happens to fall between its points; `shifted` moves
    each axis by a random fraction of a cell per seed, which averages that luck out.
    """
    params = prob.space.by_priority()
    counts = grid_counts(prob, budget)
    rng = np.random.default_rng(seed)
    shift = rng.uniform(-0.5, 0.5, size=len(params)) if shifted else np.zeros(len(params))
    axes = [[p.from_unit(((k + 0.5 + d) / c) % 1.0) for k in range(c)]
            for p, c, d in zip(params, counts, shift, strict=True)]
    names = [p.name for p in params]
    settings = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]
    return _pick(prob, settings, _observe(prob, rng, settings))


def run_linear(prob: Problem, budget: int, seed: int) -> float:
    """Uniform on a linear scale for every numeric parameter (ignoring log and 1-beta scales)."""
    rng = np.random.default_rng(seed)
    settings = []
    for _ in range(budget):
        s = {}
        for p in prob.space:
            if p.type == "choice":
                s[p.name] = p.values[int(rng.integers(len(p.values)))]
            elif p.type == "int":
                s[p.name] = int(rng.integers(p.low, p.high + 1))
            else:
                s[p.name] = float(rng.uniform(p.low, p.high))
        settings.append(s)
    return _pick(prob, settings, _observe(prob, rng, settings))


def run_random(prob: Problem, budget: int, seed: int) -> float:
    """Random in each parameter's own scale (tui_tuner.search.sampling.Sampler.random)."""
    settings = Sampler(prob.space, seed).random(SearchState(), budget)
    return _pick(prob, settings, _observe(prob, np.random.default_rng(seed + 10**6), settings))


def run_c2f(prob: Problem, budget: int, seed: int, *, round_size: int = 0, top: float = ZOOM_TOP,
            margin: float = ZOOM_MARGIN, stratified: bool = True) -> float:
    """Coarse to fine: a random round over the full space, then zoom after each round and sample there."""
    sampler = Sampler(prob.space, seed)
    noise = np.random.default_rng(seed + 10**6)
    state = SearchState()
    settings: list[dict] = []
    observed: list[float] = []
    for n in coarse_to_fine_rounds(budget, round_size):
        if settings:
            state = zoom(prob.space, state, list(zip(settings, observed, strict=True)), maximize=False,
                         top=top, margin=margin)
        batch = sampler.random(state, n, stratified=stratified)
        settings += batch
        observed += _observe(prob, noise, batch)
    return _pick(prob, settings, observed)


def run_tpe(prob: Problem, budget: int, seed: int) -> list[float]:
    """Optuna's TPE (default settings) given the right scales; returns regret after each trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    noise = np.random.default_rng(seed + 10**6)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    settings: list[dict] = []
    observed: list[float] = []
    out = []
    for _ in range(budget):
        trial = study.ask()
        s = {}
        for p in prob.space:
            if p.type == "choice":
                s[p.name] = trial.suggest_categorical(p.name, list(p.values))
            elif p.type == "int":
                s[p.name] = trial.suggest_int(p.name, p.low, p.high, log=p.scale == "log")
            elif p.scale == "one_minus_log":
                s[p.name] = 1 - trial.suggest_float(p.name, 1 - p.high, 1 - p.low, log=True)
            else:
                s[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.scale == "log")
        y = _observe(prob, noise, [s])[0]
        study.tell(trial, y)
        settings.append(s)
        observed.append(y)
        out.append(_pick(prob, settings, observed))
    return out


def have_optuna() -> bool:
    """True when optuna is importable (TPE column)."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


# -- report ----------------------------------------------------------------------------------------


def evaluate(prob: Problem, budgets: list[int], seeds: list[int], sweep: bool) -> dict:
    """Median regret per (method, budget)."""
    res: dict[tuple[str, int], list[float]] = {}

    def add(name: str, b: int, v: float) -> None:
        res.setdefault((name, b), []).append(v)

    for seed in seeds:
        tpe = run_tpe(prob, max(budgets), seed) if have_optuna() else None
        for b in budgets:
            add("grid (fixed)", b, run_grid(prob, b, seed))
            add("grid (random offset)", b, run_grid(prob, b, seed, shifted=True))
            add("uniform (linear)", b, run_linear(prob, b, seed))
            add("random (scaled)", b, run_random(prob, b, seed))
            add("coarse-to-fine", b, run_c2f(prob, b, seed))
            if tpe is not None:
                add("TPE (optuna)", b, tpe[b - 1])
            if sweep:
                # What was tried to pick the defaults (the first round is twice the round size).
                for r in (3, 4, 6, 8):
                    for top in (0.2, 0.25, 0.34):
                        for margin in (0.05, 0.1, 0.15, 0.2):
                            add(f"c2f r={r} top={top} m={margin}", b,
                                run_c2f(prob, b, seed, round_size=r, top=top, margin=margin))
                add("c2f defaults, not stratified", b, run_c2f(prob, b, seed, stratified=False))
    return {k: statistics.median(v) for k, v in res.items()}


def main(argv: list[str] | None = None) -> int:
    """Print the regret table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=60)
    ap.add_argument("--budgets", default="20,50")
    ap.add_argument("--sweep", action="store_true")
    args = ap.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    seeds = list(range(args.seeds))
    warnings.filterwarnings("ignore", category=Warning, module="optuna")
    t0 = time.perf_counter()
    probs = problems()
    tables = {p.name: evaluate(p, budgets, seeds, args.sweep) for p in probs}
    methods = list(dict.fromkeys(m for t in tables.values() for m, _ in t))
    print(f"median regret of the best-observed trial over {len(seeds)} seeds (noise sd {NOISE}; lower is "
          f"better); zoom defaults: round_size auto ({', '.join(f'{b}->{auto_round_size(b)}' for b in budgets)}), "
          f"top={ZOOM_TOP}, margin={ZOOM_MARGIN}")
    for p in probs:
        print(f"  {p.name}: {len(p.space.params)} params; {p.loss.__doc__}")
    print(f"  grid uses {', '.join(str(grid_size(probs[0], b)) for b in budgets)} trials on sgd at budgets "
          f"{', '.join(map(str, budgets))} (a grid cannot use the whole budget)")
    cols = [(p.name, b) for p in probs for b in budgets]
    head = f"{'method':<30}" + "".join(f"{n + ' @' + str(b):>12}" for n, b in cols)
    print(head)
    print("-" * len(head))
    rows = methods
    if args.sweep:
        # Rank the sweep by mean over columns of regret relative to random, best first.
        def score(m: str) -> float:
            return statistics.mean(tables[n][(m, b)] / max(tables[n][("random (scaled)", b)], 1e-9)
                                   for n, b in cols)
        base = [m for m in methods if not m.startswith("c2f ")]
        rows = base + sorted((m for m in methods if m.startswith("c2f ")), key=score)[:25]
    for m in rows:
        print(f"{m:<30}" + "".join(f"{tables[n][(m, b)]:>12.4f}" for n, b in cols))
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
