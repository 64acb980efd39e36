"""Control latency and fork cost of the runtime (a script, not collected by pytest).

    .venv/bin/python tests/bench/control_latency.py [--n 30] [--skip-fork]

1. On a run stepping every 10 ms (the stdlib toy trainer of the runtime tests): the median time from
   a command written to its effect observed by the runner: pause -> paused event, resume -> resumed
   event, set -> applied event. Measured twice: polling in a tight loop (the pipeline itself) and
   with the app's poll thread (Runner.start_thread(0.05), which polls fast for a moment after each
   command). Target: median under 50 ms.
2. Fork: from runner.commands.fork() called on a trainers/mlp.py run to the child's first reported step, as a
   ratio to a bare process that imports torch and loads the same checkpoint. Target: under 1.2.
   Also against a bare process that builds an optimizer too: on torch 2.13 that imports
   torch._dynamo (about 1.5 s), which the child pays before its first step whatever the tuner does.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "runtime")]

from runtime_helpers import toy_space  # noqa: E402
from space_toml import lr, param, space_toml  # noqa: E402

from tui_tuner.runtime.runner import RunEvent, Runner  # noqa: E402
from tui_tuner.search.space import parse_space  # noqa: E402
from tui_tuner.study.study import Study  # noqa: E402

MLP_PARAMS = {
    "lr": lr(default=0.05, live=True),
    "steps": param("int", low=1, high=1000000, default=1000000),
    "report_every": param("int", low=1, high=100, default=1),
    "sleep": param("float", low=0.0, high=1.0, default=0.01),
}


class Waiter:
    """Collects runner events and lets the bench wait for the first of a kind after a moment."""

    def __init__(self) -> None:
        self.events: list[tuple[float, RunEvent]] = []
        self.cond = threading.Condition()

    def __call__(self, ev: RunEvent) -> None:
        with self.cond:
            self.events.append((time.perf_counter(), ev))
            self.cond.notify_all()

    def first(self, kind: str, trial_id: int, after: float, runner: Runner | None, timeout: float = 10.0,
              pred=lambda ev: True) -> float:
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            if runner is not None:
                runner.poll()   # tight loop: the pipeline's own latency
            with self.cond:
                for t, ev in self.events:
                    if t >= after and ev.kind == kind and ev.trial_id == trial_id and pred(ev):
                        return t
                if runner is None:
                    self.cond.wait(0.005)
            if runner is not None:
                time.sleep(0.0005)
        raise TimeoutError(f"no {kind} event within {timeout}s")


def control_latency(n: int, threaded: bool) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        space = toy_space(tmp, steps=100000, delay=0.01)
        study = Study.open(tmp / "study", space)
        waiter = Waiter()
        runner = Runner(study, waiter, stop_timeout=1, term_timeout=1)
        trial = study.enqueue_manual({"steps": 100000, "delay": 0.01})
        runner.start(trial)
        tid = trial.id
        poller = None if threaded else runner
        if threaded:
            runner.start_thread(0.05)
        waiter.first("metrics", tid, 0.0, poller)
        out: dict[str, list[float]] = {"pause": [], "resume": [], "set": []}
        rng = random.Random(0)

        def jitter() -> None:
            # A random phase against the trainer's steps and the poll thread's ticks.
            time.sleep(rng.uniform(0.0, 0.06))

        for i in range(n):
            jitter()
            t0 = time.perf_counter()
            runner.commands.pause(tid)
            out["pause"].append(waiter.first("paused", tid, t0, poller) - t0)
            jitter()
            t0 = time.perf_counter()
            runner.commands.resume(tid)
            out["resume"].append(waiter.first("resumed", tid, t0, poller) - t0)
            lr = 0.05 + 0.001 * i
            jitter()
            t0 = time.perf_counter()
            runner.commands.set(tid, {"lr": lr})
            out["set"].append(waiter.first("applied", tid, t0, poller,
                                           pred=lambda ev, lr=lr: ev.data["params"].get("lr") == lr) - t0)
        runner.stop_thread()
        runner.stop_timeout = 0.0
        runner.commands.stop_all(timeout=5)
        study.close()
        return out


def fork_ratio(repeats: int) -> tuple[list[float], list[float], list[float]]:
    script = ROOT / "trainers" / "mlp.py"
    if not script.exists():
        raise SystemExit("trainers/mlp.py is missing: cannot measure the fork")
    forks, bares, optims = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        text = space_toml(MLP_PARAMS, name="bench-mlp", command=["python", str(script)])
        space = parse_space(text, str(tmp / "mlp.toml"))
        study = Study.open(tmp / "study", space)
        waiter = Waiter()
        runner = Runner(study, waiter, cwd=ROOT, stop_timeout=1, term_timeout=1)
        trial = study.enqueue_manual({})
        runner.start(trial)
        runner.start_thread(0.005)
        waiter.first("metrics", trial.id, 0.0, None, timeout=60)
        for _ in range(repeats):
            t0 = time.perf_counter()
            child = runner.commands.fork(trial.id, {"lr": 0.02}, timeout=30)
            first = waiter.first("metrics", child.id, t0, None, timeout=60)
            forks.append(first - t0)
            runner.commands.stop(child.id)
            ckpt = study.dir / child.resume
            # The bare baseline: a fresh interpreter that imports torch and loads the checkpoint.
            code = f"import torch; torch.load({str(ckpt)!r}, weights_only=False)"
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            bares.append(time.perf_counter() - t0)
            # The same plus building an optimizer: on torch 2.13 that alone imports torch._dynamo
            # (about 1.5 s on one CPU), a cost every PyTorch trainer pays before its first step.
            code = ("import torch; m = torch.nn.Linear(2, 2); torch.optim.SGD(m.parameters(), lr=0.1); "
                    f"torch.load({str(ckpt)!r}, weights_only=False)")
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            optims.append(time.perf_counter() - t0)
            time.sleep(0.5)
        runner.stop_timeout = 0.0
        runner.commands.stop_all(timeout=10)
        runner.stop_thread()
        study.close()
    return forks, bares, optims


def ms(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1e3:7.1f} ms   p90 {sorted(xs)[int(0.9 * (len(xs) - 1))] * 1e3:7.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=30, help="commands of each kind")
    ap.add_argument("--fork-repeats", type=int, default=3)
    ap.add_argument("--skip-fork", action="store_true")
    args = ap.parse_args()
    print(f"control latency, run stepping every 10 ms, {args.n} commands each (target: median < 50 ms)")
    for threaded in (False, True):
        label = "app poll thread  " if threaded else "tight poll loop  "
        res = control_latency(args.n, threaded)
        for kind, xs in res.items():
            print(f"  {label}  {kind:<6} -> {'applied' if kind == 'set' else kind + 'd':<8} {ms(xs)}")
    if not args.skip_fork:
        forks, bares, optims = fork_ratio(args.fork_repeats)
        f, b, o = statistics.median(forks), statistics.median(bares), statistics.median(optims)
        print("fork of trainers/mlp.py: request -> the child's first reported step, against fresh processes:")
        print(f"  fork                           {', '.join(f'{x:.3f}' for x in forks)} s   median {f:.3f} s")
        print(f"  bare: import torch + load      {', '.join(f'{x:.3f}' for x in bares)} s   median {b:.3f} s")
        print(f"  bare + build an optimizer      {', '.join(f'{x:.3f}' for x in optims)} s   median {o:.3f} s")
        print(f"  ratio to bare {f / b:.2f} (target < 1.2); to bare + optimizer {f / o:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
