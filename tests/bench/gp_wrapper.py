"""Where does tui-tuner's GP wrapper differ from Optuna's GPSampler run directly? One difference at a time.

    nice -n 10 .venv-bench/bin/python tests/bench/gp_wrapper.py [--tasks ...] [--seeds 5] [--variants ...]

Not collected by pytest. In-process and sequential (parallel 1: each ask after the previous result
is known, so no pending trial), 20 trials, on the LCBench surrogate's tasks (tests/bench/lcbench.py:
same space, same reference, same regret). Every variant is scored the same way: the best finished
trial's accuracy at epoch 52 against the best of 4,000 random configurations.

Variants, each one step from Optuna's GPSampler run directly (`direct`):
- `direct`: one study, one GPSampler(seed) for all 20 asks: one random stream, and the GP's kernel
  parameters cached from one fit to the next (GPSampler keeps them as a warm start);
- `direct-nocache`: the same, the kernel cache emptied before each ask (every fit starts cold);
- `direct-reseed`: a new GPSampler per ask, seeded from the history (as the wrapper seeds), its kernel
  cache carried over: the seeding alone;
- `direct-fresh`: a new study and GPSampler per ask with the history added (the wrapper's rebuild):
  seeding and a cold fit together;
- `direct-linear`: GPSampler direct, momentum linear and the ints linear (the surrogate's own sampling
  scales), instead of 1-β log and log ints: the space's transforms;
- `direct-startup5`: 5 random startup trials instead of 10;
- `wrapper`: tui-tuner's OptunaSearch as the scheduler calls it (what `--strategy gp` runs);
- `wrapper-warm`: OptunaSearch handed the previous fit's kernel parameters (`kernel=`);
- `wrapper-stream`: handed the kernel and the random stream the previous ask left (`stream=`), as the
  scheduler now does: the same proposals as `direct` up to float noise;
- `p2-lie`, `p2-pending`: two trials at a time (each ask with one trial pending), the pending one told
  as the worst finished value (the wrapper's lie) or given to GPSampler as RUNNING (its own batch
  acquisition, qLogEI).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lcbench  # noqa: E402
from lcbench_surrogate import Surrogate, data_dir, layout_path  # noqa: E402

from tui_tuner.search.space import load_space  # noqa: E402
from tui_tuner.search.state import SearchState  # noqa: E402
from tui_tuner.study.store import Trial  # noqa: E402

VARIANTS = ("direct", "direct-nocache", "direct-reseed", "direct-fresh", "direct-linear", "direct-startup5",
            "wrapper", "wrapper-warm", "wrapper-stream", "p2-lie", "p2-pending")


def linear_suggest(trial: Any, space: Any) -> dict[str, Any]:
    """The space on the surrogate's own scales: every parameter linear (lr, weight decay stay log)."""
    s: dict[str, Any] = {}
    for p in space:
        if p.type == "int":
            s[p.name] = trial.suggest_int(p.name, p.low, p.high)
        elif p.scale == "one_minus_log":
            s[p.name] = trial.suggest_float(p.name, p.low, p.high)
        else:
            s[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.scale == "log")
    return s


def run_direct(b: lcbench.Bench, variant: str, task: str, seed: int, trials: int) -> dict[str, Any]:
    """Optuna's GPSampler asked and told in one study (with the variant's one change)."""
    import optuna

    from tui_tuner.search.optuna_search import OptunaSearch

    startup = 5 if variant == "direct-startup5" else 10
    sampler = optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    suggest = linear_suggest if variant == "direct-linear" else lcbench.suggest
    settings: dict[int, dict[str, Any]] = {}
    hist: list[Trial] = []
    for i in range(trials):
        if variant == "direct-nocache":
            sampler._gprs_cache_list = None
        elif variant == "direct-reseed":
            cache = sampler._gprs_cache_list
            ask_seed = OptunaSearch.history_seed(seed, len(hist), len(hist))
            study.sampler = sampler = optuna.samplers.GPSampler(seed=ask_seed, n_startup_trials=startup)
            sampler._gprs_cache_list = cache
        elif variant == "direct-fresh":
            ask_seed = OptunaSearch.history_seed(seed, len(hist), len(hist))
            old = study.trials
            study = optuna.create_study(direction="maximize",
                                        sampler=optuna.samplers.GPSampler(seed=ask_seed, n_startup_trials=startup))
            study.add_trials(old)
        trial = study.ask()
        settings[trial.number] = hp = suggest(trial, b.space)
        acc = float(b.surrogate.accuracy(task, [hp])[0])
        study.tell(trial, acc)
        hist.append(Trial(id=i + 1, status="done", params=hp))
    pick = settings[study.best_trial.number]
    return {"pick": pick}


def run_wrapper(b: lcbench.Bench, variant: str, task: str, seed: int, trials: int) -> dict[str, Any]:
    """tui-tuner's OptunaSearch, one ask per trial (parallel 1), or one trial pending (p2-*)."""
    from tui_tuner.search.optuna_search import OptunaSearch

    hist: list[Trial] = []
    state = SearchState()
    kernel = stream = None
    pending = variant.startswith("p2")

    def ask() -> dict[str, Any]:
        nonlocal kernel, stream
        kw: dict[str, Any] = {}
        if variant in ("wrapper-warm", "wrapper-stream", "p2-lie", "p2-pending"):
            kw["kernel"] = kernel
        if variant in ("wrapper-stream", "p2-lie", "p2-pending"):
            kw["stream"] = stream
        if variant == "p2-pending":
            kw["pending"] = "running"
        model = OptunaSearch(b.space, state, seed, hist, strategy="gp", **kw)
        (setting,) = model.ask(1)
        kernel = model.kernel if model.kernel is not None else kernel
        stream = model.stream
        return setting

    def tell(t: Trial) -> None:
        t.status, t.objective = "done", float(b.surrogate.accuracy(task, [t.params])[0])

    first = None
    for i in range(trials):
        t = Trial(id=i + 1, status="running", params=ask(), created=float(i + 1))
        hist.append(t)
        if not pending:
            tell(t)
            continue
        if first is not None:
            tell(first)
        first = t
    if first is not None:
        tell(first)
    best = max((t for t in hist if t.objective is not None), key=lambda t: t.objective)
    return {"pick": best.params}


def main(argv: list[str] | None = None) -> int:
    """Run each variant on each task and seed; print median, mean, runs > 1 point off, bounds hit."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default=",".join(lcbench.TASKS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    tasks, variants = args.tasks.split(","), args.variants.split(",")
    surrogate = Surrogate(layout_path(data_dir()))
    b = lcbench.Bench(surrogate, layout_path(data_dir()), load_space(lcbench.SPACE), Path(), args.trials, 1, 1,
                      0.0, {})
    for t in tasks:
        b.reference[t] = lcbench.reference(b, t)
    rows: dict[str, list[tuple[float, int]]] = {v: [] for v in variants}
    t0 = time.perf_counter()
    for task in tasks:
        for seed in range(args.seeds):
            for v in variants:
                run = run_direct if v.startswith("direct") else run_wrapper
                out = run(b, v, task, seed, args.trials)
                r = lcbench.regret(b, task, out["pick"])
                rows[v].append((r, lcbench.bounds_hit(b.space, out["pick"])))
                print(f"{task} seed {seed} {v}: regret {r:.2f}", file=sys.stderr, flush=True)
    print(f"\n{'variant':<18}{'median':>8}{'mean':>8}{'>1 off':>9}{'bounds':>8}   "
          f"({len(tasks)} tasks x {args.seeds} seeds, {args.trials} sequential trials, "
          f"{time.perf_counter() - t0:.0f} s)")
    for v in variants:
        reg = [r for r, _ in rows[v]]
        off = sum(r > 1.0 for r in reg)
        print(f"{v:<18}{statistics.median(reg):>8.2f}{statistics.mean(reg):>8.2f}{f'{off}/{len(reg)}':>9}"
              f"{statistics.mean(h for _, h in rows[v]):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
