"""How long an ask takes as the study grows: from a trial's end to the next setting, at 20, 300, 1,000 trials.

    nice -n 10 .venv/bin/python tests/bench/ask_scale.py [--sizes 20,300,1000] [--strategy gp]

Not collected by pytest. A real study (SQLite) on the LCBench bench's space (7 parameters) holds N
finished trials with a smooth synthetic objective; one ask is then timed the way the scheduler makes
it: the trials read from the study, the model built from them (the tuner's side), and the ask
answered by the model worker (a warm process: one ask first, unmeasured, so its imports are done).
Goal (issue 20): under 1 s at 1,000 trials (it was 0.24 s at 20 and 0.52 s at 300); GP sees at most
`HISTORY_CAP` trials (search/gp_told.py).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

from tui_tuner.runtime.model_worker import ModelWorker
from tui_tuner.search.gp_told import HISTORY_CAP
from tui_tuner.search.optuna_search import OptunaSearch
from tui_tuner.search.sampling import Sampler
from tui_tuner.search.space import load_space
from tui_tuner.study.study import Study

SPACE = Path(__file__).resolve().parent / "lcbench.toml"


def objective(s: dict) -> float:
    """A smooth surface (the bench adds noise, as real results have): best near lr 1e-2.5, few layers, little dropout."""
    return 90 - 5 * (math.log10(s["lr"]) + 2.5) ** 2 - s["num_layers"] - 4 * s["max_dropout"]


def main(argv: list[str] | None = None) -> int:
    """Time one ask per history size; print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20,300,1000")
    ap.add_argument("--strategy", default="gp")
    ap.add_argument("--noise", type=float, default=0.5, help="sd of the objective's noise (points)")
    args = ap.parse_args(argv)
    space = load_space(SPACE)
    worker = ModelWorker()
    rows = []
    try:
        for n in [int(x) for x in args.sizes.split(",")]:
            with tempfile.TemporaryDirectory() as d, Study.open(Path(d) / "st", space, seed=1) as study:
                settings = Sampler(space, n).random(study.search_state, n)
                noise = random.Random(n)
                for t in study.enqueue(settings, "random"):
                    study.finish(t.id, "done", objective=objective(t.params) + noise.gauss(0, args.noise))
                warm = worker.submit("k", OptunaSearch(space, study.search_state, 1, study.trials("id"),
                                                       strategy=args.strategy).job(), 1)
                warm.wait()
                warm.result()
                t0 = time.perf_counter()
                model = OptunaSearch(space, study.search_state, 1, study.trials("id"), strategy=args.strategy)
                t1 = time.perf_counter()
                job = worker.submit("k", model.job(), 1)
                job.wait()
                job.result()
                t2 = time.perf_counter()
                rows.append((n, model.used, t1 - t0, t2 - t1, t2 - t0))
                print(f"{n} trials: {t2 - t0:.2f} s", file=sys.stderr, flush=True)
    finally:
        worker.close()
    print(f"{'trials':>7}{'seen':>7}{'tuner s':>9}{'worker s':>10}{'total s':>9}   "
          f"({args.strategy}; the model sees at most {HISTORY_CAP} finished trials)")
    for n, seen, a, b, c in rows:
        print(f"{n:>7}{seen:>7}{a:>9.2f}{b:>10.2f}{c:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
