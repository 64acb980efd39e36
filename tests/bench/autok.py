"""Auto-k against fixed k: aggregate throughput of a real study through the real tuner (a script).

    nice -n 10 python tests/bench/autok.py                       # CPU: trainers/mlp.py, k = 1, 2, 4, auto
    python tests/bench/autok.py --device cuda                    # GPU: trainers/charlm.py, k = 1, 2, 4, 8, auto
                                                                 # (5 studies of 100 s: about 9 minutes)
    python tests/bench/autok.py --seconds 120 --ks 1,2,3,4 --out autok.json

Each configuration is one `tui-tuner run SPACE --headless` (a subprocess: the real CLI, session,
scheduler, runner and launch shim) on a fresh study of many identical trials, ended by its time
budget (`--seconds`). Throughput is read afterwards from every run's events.jsonl: the steps each
run advanced between consecutive reports inside the measured span (from the study's first report
to its last), summed over runs and divided by the span. A run's first report is its baseline, so
start-up never counts as steps; the time it takes does (it is part of what k costs). Auto-k's own
search (its windows at k = 1, 2, ...) is inside its span too: the figure is what a user gets.

It prints each configuration's aggregate steps/s, auto-k's decisions (from the headless output)
and where it settled, auto-k's share of the best fixed k (target >= 90%), and the load average
before and after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def space_text(device: str, parallel: str, seconds: float, name: str, extra: list[str]) -> str:
    """A study of identical trials of the device's trainer, ended by a time budget."""
    if device == "cpu":
        # One trial takes about 25 s alone (20,000 steps), so trials still end and start during a
        # study, but start-up (importing torch: 1-3 s) is a small share of a trial, as in a real one.
        # With 4,000-step trials start-up was a third of the time, which auto-k does not measure
        # (windows open once every run has reported), so it chose k by running speed alone.
        argv = [sys.executable, str(ROOT / "trainers" / "mlp.py"), "--steps", "20000", "--report_every", "10",
                "--eval_every", "500", *extra]
    else:
        argv = [sys.executable, str(ROOT / "trainers" / "charlm.py"), "--device", device, "--steps", "1000000",
                "--report_every", "10", "--eval_every", "100000", *extra]
    par = '"auto"' if parallel == "auto" else parallel
    return (f'[study]\nname = "{name}"\ncommand = {json.dumps(argv)}\nobjective = "loss"\n'
            f'parallel = {par}\nbudget = 100000\ntime_budget = {seconds}\nstrategy = "random"\n\n'
            '[params.lr]\ntype = "float"\nscale = "log"\nlow = 1e-3\nhigh = 1e-2\ndefault = 3e-3\n'
            'tier = 1\nlive = true\n')


def read_reports(run_dir: Path) -> list[tuple[float, int]]:
    """(t, step) of every metrics line in a run's events.jsonl."""
    from tui_tuner.trainer.tailing import JsonlTail  # the runner's own reader (a missing file reads as empty)

    out = []
    for ev in JsonlTail(run_dir / "events.jsonl").read_all():
        if isinstance(ev, dict) and "metrics" in ev and isinstance(ev.get("step"), int):
            out.append((float(ev["t"]), int(ev["step"])))
    return out


def throughput(study_dir: Path) -> dict:
    """Aggregate steps/s over the span from the study's first report to its last, every run counted."""
    runs = [read_reports(d) for d in sorted((study_dir / "runs").iterdir()) if d.is_dir()]
    runs = [r for r in runs if r]
    if not runs:
        return {"steps_s": 0.0, "steps": 0, "span": 0.0, "runs": 0}
    t0 = min(r[0][0] for r in runs)
    t1 = max(r[-1][0] for r in runs)
    steps = sum(max(0, b[1] - a[1]) for r in runs for a, b in zip(r, r[1:], strict=False))
    span = max(1e-9, t1 - t0)
    return {"steps_s": steps / span, "steps": steps, "span": span, "runs": len(runs)}


def run_one(root: Path, device: str, parallel: str, seconds: float, extra: list[str]) -> dict:
    """One headless study at this parallel setting; its throughput and, for auto, its decisions."""
    name = f"k-{parallel}"
    space = root / f"{name}.toml"
    space.write_text(space_text(device, parallel, seconds, name, extra))
    study = root / name
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    t = time.time()
    out = subprocess.run([sys.executable, "-m", "tui_tuner", "run", str(space), "--headless", "--study", str(study)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=seconds + 300)
    wall = time.time() - t
    if out.returncode != 0:
        return {"parallel": parallel, "error": (out.stderr or out.stdout).strip().splitlines()[-1:]}
    r = throughput(study)
    r.update(parallel=parallel, wall=wall,
             decisions=[ln.split("auto_k: ", 1)[1] for ln in out.stdout.splitlines() if "auto_k: " in ln])
    try:
        state = json.loads(subprocess.run(
            [sys.executable, "-c", "import sqlite3,sys;print(sqlite3.connect(sys.argv[1]).execute("
             "\"SELECT value FROM meta WHERE key='auto_k'\").fetchone()[0])", str(study / "study.db")],
            capture_output=True, text=True).stdout)
        r["settled_k"] = state.get("k")
    except (ValueError, TypeError, AttributeError):
        r["settled_k"] = None
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu (trainers/mlp.py) or cuda (trainers/charlm.py)")
    ap.add_argument("--ks", default=None, help="fixed k to compare (default 1,2,4 on cpu; 1,2,4,8 on cuda)")
    ap.add_argument("--seconds", type=float, default=None, help="each study's time budget (default 90 cpu, 100 cuda)")
    ap.add_argument("--trainer-args", default="", help="more flags for the trainer, e.g. '--d_model 128'")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    cpu = args.device == "cpu"
    ks = args.ks or ("1,2,4" if cpu else "1,2,4,8")
    seconds = args.seconds or (90.0 if cpu else 100.0)
    root = Path(tempfile.mkdtemp(prefix="autok-bench-"))
    load0 = os.getloadavg()
    print(f"device {args.device}, {os.cpu_count()} CPUs, {seconds:g} s a study, "
          f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}", flush=True)
    results = []
    try:
        for parallel in [*ks.split(","), "auto"]:
            r = run_one(root, args.device, parallel.strip(), seconds, args.trainer_args.split())
            results.append(r)
            if "error" in r:
                print(f"k={r['parallel']:>4}: failed: {r['error']}", flush=True)
                continue
            print(f"k={r['parallel']:>4}: {r['steps_s']:9,.1f} steps/s aggregate ({r['steps']:,} steps over "
                  f"{r['span']:.1f} s, {r['runs']} runs)", flush=True)
            for d in r.get("decisions", []):
                print(f"          {d}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load1 = os.getloadavg()
    fixed = [r for r in results if "error" not in r and r["parallel"] != "auto"]
    auto = next((r for r in results if r["parallel"] == "auto" and "error" not in r), None)
    if fixed and auto:
        best = max(fixed, key=lambda r: r["steps_s"])
        share = auto["steps_s"] / best["steps_s"] if best["steps_s"] else float("nan")
        print(f"auto-k: {auto['steps_s']:,.1f} steps/s, settled at k {auto['settled_k']}; best fixed k "
              f"{best['parallel']}: {best['steps_s']:,.1f} steps/s; auto-k's share {share:.0%} (target >= 90%)")
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"device": args.device, "seconds": seconds, "load_before": load0,
                                              "load_after": load1, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
