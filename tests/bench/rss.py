"""The tuner's memory: peak RSS of `tui-tuner run --headless` in a 30-trial gp study, and of its model worker.

    nice -n 10 .venv/bin/python tests/bench/rss.py [--trials 30] [--parallel 2] [--src DIR] [--app]

Not collected by pytest. The trainer is tests/scripts/toy.py (stdlib only, a few hundred ms a trial),
on a space of four parameters (log lr, 1-β momentum, hidden units, layers), so GP fits from trial 11
on. The tuner's process is sampled every 20 ms (/proc/PID/status: VmHWM is the peak so far), its
model worker too (a child whose command line names tui_tuner.runtime.model_worker), and whether
torch was ever mapped into the tuner (/proc/PID/maps). `--src DIR` runs the tui_tuner found in DIR
(another checkout, e.g. main before the worker) with this interpreter. `--app` runs the app instead
(`tui-tuner run SPACE`, in a detached tmux session of its own, 160x48), until the study has its trials.

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


class Peaks:
    """The peak RSS of a tuner process and of its model workers, sampled."""

    def __init__(self) -> None:
        self.tuner = self.worker = 0
        self.torch = False
        self.workers: set[int] = set()

    def sample(self, pid: int) -> None:
        self.tuner = max(self.tuner, status_kb(pid, "VmHWM") or 0)
        self.torch = self.torch or has_torch(pid)
        for w in workers(pid):
            self.workers.add(w)
            self.worker = max(self.worker, status_kb(w, "VmHWM") or 0)


def finished(study: Path) -> int:
    """Trials of the study that ended (read-only, while the app holds it)."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{study / 'study.db'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM trials WHERE status IN "
                              "('done', 'failed', 'stopped', 'diverged')").fetchone()[0]
    except sqlite3.Error:
        return 0


def run_app(cmd: list[str], work: Path, env: dict, trials: int, t0: float) -> int:
    """The app in a detached tmux session (its own server socket) until the study has its trials."""
    import shlex

    tmux = ["tmux", "-S", str(work / "tmux.sock")]
    line = " ".join(shlex.quote(c) for c in cmd)
    subprocess.run([*tmux, "new-session", "-d", "-x", "160", "-y", "48", "-c", str(work),
                    f"env PYTHONPATH={shlex.quote(env.get('PYTHONPATH', ''))} {line}"], check=True)
    try:
        pid = int(subprocess.run([*tmux, "list-panes", "-F", "#{pane_pid}"], capture_output=True, text=True,
                                 check=True).stdout.split()[0])
        peaks = Peaks()
        deadline = time.perf_counter() + 900
        while finished(work / "study") < trials and time.perf_counter() < deadline:
            peaks.sample(pid)
            time.sleep(0.05)
        for _ in range(20):   # a few more samples: the last results drawn
            peaks.sample(pid)
            time.sleep(0.05)
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    print(f"{'what':<34}{'peak RSS MB':>12}")
    print(f"{'the app (tui-tuner run, in tmux)':<34}{peaks.tuner / 1024:>12.0f}")
    print(f"{'model worker':<34}{peaks.worker / 1024:>12.0f}   ({len(peaks.workers)} processes)")
    print(f"\n{trials} gp trials, {finished(work / 'study')} ended, {time.perf_counter() - t0:.0f} s; "
          f"torch loaded in the app: {'yes' if peaks.torch else 'no'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the study, sample memory, print one table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--src", help="run the tui_tuner of this checkout (prepended to PYTHONPATH)")
    ap.add_argument("--app", action="store_true", help="the app in tmux instead of headless mode")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="rss-"))
    space = work / "space.toml"
    space.write_text(SPACE.format(python=sys.executable, toy=str(TOY)))
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(args.src).resolve()), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [sys.executable, "-m", "tui_tuner", "run", str(space), "--trials", str(args.trials),
           "--parallel", str(args.parallel), "--seed", "1", "--study", str(work / "study")]
    t0 = time.perf_counter()
    if args.app:
        return run_app(cmd, work, env, args.trials, t0)
    proc = subprocess.Popen([*cmd, "--headless"], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    sampler = Peaks()
    while proc.poll() is None:
        sampler.sample(proc.pid)
        time.sleep(0.02)
    out = proc.stdout.read() if proc.stdout else ""
    wall = time.perf_counter() - t0
    tuner_peak, worker_peak, torch_in_tuner, seen_workers = (sampler.tuner, sampler.worker, sampler.torch,
                                                             sampler.workers)
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
