"""The tuner's memory: peak RSS of `tui-tuner run --headless` in a 30-trial gp study, and of its model worker.

    nice -n 10 .venv/bin/python tests/bench/rss.py [--trials 30] [--parallel 2] [--src DIR]

Not collected by pytest. The trainer is tests/scripts/toy.py (stdlib only, a few hundred ms a trial),
on a space of four parameters (log lr, 1-β momentum, hidden units, layers), so GP fits from trial 11
on. The tuner's process is sampled every 20 ms (/proc/PID/status: VmHWM is the peak so far), its
model worker too (a child whose command line names tui_tuner.runtime.model_worker), and whether
torch was ever mapped into the tuner (/proc/PID/maps). `--src DIR` runs the tui_tuner found in DIR
(another checkout, e.g. main before the worker) with this interpreter.

Goal (issue 20): the tuner stays under 150 MB; before the worker it went from ~53 MB to 316-390 MB
at trial 11, when GP's first fit imported torch.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOY = HERE.parent / "scripts" / "toy.py"
SPACE = """
[study]
name = "rss"
command = [{python!r}, {toy!r}]
objective = "loss"
strategy = "gp"
stage = 3            # steps and delay (tier 4) stay at their defaults

[params.lr]
type = "float"
scale = "log"
low = 1e-3
high = 0.9
default = 0.1

[params.momentum]
type = "float"
scale = "one_minus_log"
low = 0.5
high = 0.999
default = 0.9

[params.hidden]
type = "int"
scale = "log"
low = 16
high = 1024
default = 64

[params.layers]
type = "int"
low = 1
high = 5
default = 2

[params.steps]
type = "int"
low = 1
high = 1000
default = 20
tier = 4

[params.delay]
type = "float"
low = 0.0
high = 1.0
default = 0.01
tier = 4
"""


def status_kb(pid: int, field: str) -> int | None:
    """A field of /proc/PID/status in kB (VmRSS, VmHWM), or None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def has_torch(pid: int) -> bool:
    """True when libtorch is mapped into the process."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def workers(pid: int) -> list[int]:
    """The model worker processes among the tuner's children."""
    out = []
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            ids = [int(x) for x in child.read_text().split()]
        except (OSError, ValueError):
            continue
        for c in ids:
            try:
                cmd = Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "tui_tuner.runtime.model_worker" in cmd:
                out.append(c)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the study, sample memory, print one table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--src", help="run the tui_tuner of this checkout (prepended to PYTHONPATH)")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="rss-"))
    space = work / "space.toml"
    space.write_text(SPACE.format(python=sys.executable, toy=str(TOY)))
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(args.src).resolve()), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [sys.executable, "-m", "tui_tuner", "run", str(space), "--headless", "--trials", str(args.trials),
           "--parallel", str(args.parallel), "--seed", "1", "--study", str(work / "study")]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tuner_peak = worker_peak = 0
    torch_in_tuner = False
    seen_workers: set[int] = set()
    while proc.poll() is None:
        tuner_peak = max(tuner_peak, status_kb(proc.pid, "VmHWM") or 0)
        torch_in_tuner = torch_in_tuner or has_torch(proc.pid)
        for w in workers(proc.pid):
            seen_workers.add(w)
            worker_peak = max(worker_peak, status_kb(w, "VmHWM") or 0)
        time.sleep(0.02)
    out = proc.stdout.read() if proc.stdout else ""
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(out[-2000:])
        print(f"rss: the study exited {proc.returncode}", file=sys.stderr)
        return 1
    done = sum(1 for line in out.splitlines() if line.startswith("#") or "done" in line.split()[:3])
    print(f"{'what':<34}{'peak RSS MB':>12}")
    print(f"{'tuner (tui-tuner run --headless)':<34}{tuner_peak / 1024:>12.0f}")
    print(f"{'model worker':<34}{(worker_peak / 1024 if seen_workers else 0):>12.0f}"
          f"   ({len(seen_workers)} process{'es' if len(seen_workers) != 1 else ''})")
    print(f"\n{args.trials} gp trials, --parallel {args.parallel}, {wall:.0f} s; torch loaded in the tuner: "
          f"{'yes' if torch_in_tuner else 'no'}; {done} result lines; src: {args.src or 'this checkout'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
