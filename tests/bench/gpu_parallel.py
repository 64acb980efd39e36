"""Caviar on one GPU: aggregate throughput of k concurrent charlm runs, and fork latency (a script).

    python tests/bench/gpu_parallel.py [--device cuda] [--ks 1,2,4,8] [--window 20] [--forks 3]

For each k, k identical runs of trainers/charlm.py (its default model) are started through the real
runtime (Study + Runner + launch shim). Once every run has reported and a warm-up has passed, each
run's steps over a common window are read from its events.jsonl; the sum over runs, divided by the
window, is the aggregate steps/s (tokens/s = steps/s x batch x context). GPU memory and utilisation
are read from nvidia-smi at the end of the window when it exists.

Fork: one run trains; at intervals runner.commands.fork() checkpoints it and starts a child with unchanged
settings. Latency is from the fork request to the child's first reported step. The child's first
losses are compared with the parent's at the same steps (the parent keeps training after the fork
from the same state, so on deterministic kernels they match).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
if str(ROOT) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    # The trainers import tui_tuner: let them find this checkout even where it is not installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

from tui_tuner.runtime.runner import RunEvent, Runner  # noqa: E402
from tui_tuner.search.space import parse_space  # noqa: E402
from tui_tuner.study.study import Study  # noqa: E402
from tui_tuner.trainer.tailing import JsonlTail  # noqa: E402

CONTEXT, BATCH = 128, 64


EXTRA: list[str] = []   # --model-args: more charlm flags (e.g. a smaller model for a CPU smoke run)


def space_text(device: str, name: str) -> str:
    argv = [sys.executable, str(ROOT / "trainers" / "charlm.py"), "--device", device,
            "--steps", "1000000", "--report_every", "10", "--eval_every", "100000",
            "--context", str(CONTEXT), "--batch_size", str(BATCH), *EXTRA]
    return (f'[study]\nname = "{name}"\ncommand = {json.dumps(argv)}\nobjective = "loss"\n\n'
            '[params.lr]\ntype = "float"\nscale = "log"\nlow = 1e-4\nhigh = 1e-2\ndefault = 1e-3\n'
            'tier = 1\nlive = true\n')


class Events:
    """Collects runner events so the bench can wait on them."""

    def __init__(self) -> None:
        self.items: list[tuple[float, RunEvent]] = []
        self.cond = threading.Condition()

    def __call__(self, ev: RunEvent) -> None:
        with self.cond:
            self.items.append((time.perf_counter(), ev))
            self.cond.notify_all()


def read_steps(run_dir: Path) -> list[tuple[float, int, float]]:
    """(t, step, loss) of every metrics line in a run's events.jsonl."""
    out = []
    for ev in JsonlTail(run_dir / "events.jsonl").read_all():
        if isinstance(ev, dict) and "metrics" in ev and "step" in ev:
            out.append((float(ev["t"]), int(ev["step"]), float(ev["metrics"].get("loss", float("nan")))))
    return out


def steps_at(points: list[tuple[float, int, float]], t: float) -> float:
    """The step count at time t, interpolated between reports."""
    prev = None
    for p in points:
        if p[0] >= t:
            if prev is None:
                return float(p[1])
            frac = (t - prev[0]) / max(1e-9, p[0] - prev[0])
            return prev[1] + frac * (p[1] - prev[1])
        prev = p
    return float(points[-1][1]) if points else 0.0


def gpu_memory() -> str:
    if shutil.which("nvidia-smi") is None:
        return "-"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used,utilization.gpu",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
        used, util = out.stdout.strip().splitlines()[0].split(",")
        return f"{int(used):,} MiB used, {int(util)}% util"
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return "-"


def poll_until(runner: Runner, pred, timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        runner.poll()
        if pred():
            return True
        time.sleep(0.05)
    return False


def measure_k(device: str, k: int, warmup: float, window: float, root: Path) -> dict:
    space = parse_space(space_text(device, f"gpu-k{k}"), str(root / f"k{k}.toml"))
    study = Study.open(root / f"k{k}", space, seed=0)
    runner = Runner(study, Events(), stop_timeout=5.0, term_timeout=3.0)
    try:
        t_spawn = time.time()
        for trial in study.enqueue([{"lr": 1e-3}] * k, "manual"):
            runner.start(trial)
        dirs = [study.run_dir(t.id) for t in study.trials("id")]
        ok = poll_until(runner, lambda: all(read_steps(d) for d in dirs)
                        or any(t.finished for t in study.trials("id")), 180)
        ended = [t for t in study.trials("id") if t.finished]
        if ended:
            return {"k": k, "error": f"trial {ended[0].id} {ended[0].status}: {ended[0].reason}"}
        if not ok:
            return {"k": k, "error": "not every run reported within 180 s"}
        first_step = time.time() - t_spawn
        time.sleep(warmup)
        t0 = time.time()
        poll_until(runner, lambda: time.time() - t0 >= window, window + 5)
        mem = gpu_memory()
        t1 = time.time()
        time.sleep(0.5)   # let the last reports in the window be flushed
        per_run = []
        for d in dirs:
            pts = read_steps(d)
            per_run.append((steps_at(pts, t1) - steps_at(pts, t0)) / (t1 - t0))
        return {"k": k, "agg_steps_s": sum(per_run), "per_run": per_run, "first_step_s": first_step,
                "gpu": mem}
    finally:
        runner.commands.stop_all(timeout=20)
        study.close()


def measure_fork(device: str, forks: int, root: Path) -> dict:
    space = parse_space(space_text(device, "gpu-fork"), str(root / "fork.toml"))
    study = Study.open(root / "fork", space, seed=0)
    events = Events()
    runner = Runner(study, events, stop_timeout=5.0, term_timeout=3.0)
    latencies, diffs = [], []
    try:
        (parent,) = study.enqueue([{"lr": 1e-3}], "manual")
        runner.start(parent)
        pdir = study.run_dir(parent.id)
        poll_until(runner, lambda: len(read_steps(pdir)) >= 30, 180)
        for _ in range(forks):
            t_req = time.perf_counter()
            child = runner.commands.fork(parent.id, {}, timeout=60)
            cdir = study.run_dir(child.id)
            ok = poll_until(runner, lambda cdir=cdir: len(read_steps(cdir)) >= 1, 120)
            if not ok:
                latencies.append(float("nan"))
                continue
            # the first metrics event of the child, as the runner saw it
            with events.cond:
                t_first = next((t for t, ev in events.items
                                if ev.trial_id == child.id and ev.kind == "metrics"), time.perf_counter())
            latencies.append(t_first - t_req)
            poll_until(runner, lambda cdir=cdir: len(read_steps(cdir)) >= 5, 60)
            child_pts = {s: loss for _, s, loss in read_steps(cdir)}
            parent_pts = {s: loss for _, s, loss in read_steps(pdir)}
            common = sorted(set(child_pts) & set(parent_pts))[:5]
            if common:
                diffs.append(max(abs(child_pts[s] - parent_pts[s]) for s in common))
            runner.commands.stop(child.id)
            poll_until(runner, lambda cid=child.id: not runner.queries.is_live(cid), 30)
        return {"latencies": latencies, "max_loss_diff": diffs}
    finally:
        runner.commands.stop_all(timeout=20)
        study.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--ks", default="1,2,4,8")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--window", type=float, default=20.0)
    ap.add_argument("--forks", type=int, default=3)
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    ap.add_argument("--model-args", default="", help="more charlm flags, e.g. '--d_model 64 --layers 1'")
    args = ap.parse_args()
    EXTRA[:] = args.model_args.split()
    # A timeout's SIGTERM must still stop the runs (they live in their own sessions and outlive us).
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    root = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    results: dict = {"device": args.device, "ks": []}
    print(f"charlm default model, context {CONTEXT}, batch {BATCH}, device {args.device}", flush=True)
    base = None
    for k in [int(x) for x in args.ks.split(",")]:
        r = measure_k(args.device, k, args.warmup, args.window, root)
        results["ks"].append(r)
        if "error" in r:
            print(f"k={k}: {r['error']}", flush=True)
            continue
        base = base or r["agg_steps_s"]
        print(f"k={k}: {r['agg_steps_s']:8.1f} steps/s aggregate ({r['agg_steps_s'] * CONTEXT * BATCH:,.0f} tok/s),"
              f" x{r['agg_steps_s'] / base:.2f} of k=1; per run "
              f"{', '.join(f'{x:.1f}' for x in r['per_run'])}; first step after {r['first_step_s']:.1f} s;"
              f" GPU {r['gpu']}", flush=True)
    if args.forks:
        f = measure_fork(args.device, args.forks, root)
        results["fork"] = f
        lat = [x for x in f["latencies"] if x == x]
        med = statistics.median(lat) if lat else float("nan")
        print(f"fork: request -> child's first step: median {med:.2f} s "
              f"({', '.join(f'{x:.2f}' for x in f['latencies'])}); "
              f"max |child - parent| loss over the first common reports: {f['max_loss_diff']}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
