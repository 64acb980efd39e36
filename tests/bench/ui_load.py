"""Load benchmark of the app: 8 runs each reporting 1,000 steps a second (not collected by pytest).

    .venv/bin/python tests/bench/ui_load.py                 # headless app (App.run_test), 60 s
    .venv/bin/python tests/bench/ui_load.py --seconds 15    # shorter
    .venv/bin/python tests/bench/ui_load.py --tmux          # the real `tui-tuner` in a tmux terminal
    .venv/bin/python tests/bench/ui_load.py --view curves   # main screen, then the curves view, same run
    .venv/bin/python tests/bench/ui_load.py --view search   # the same with the search view (runs churn)

Prints the app's CPU share (of one core), its resident memory, and the lag from a report to the
screen. Targets: CPU under 25 %, RSS under 200 MB, lag under 250 ms. With a view open the lag runs
from the report to the picture build that shows it landing on screen (the view rebuilds its plot at
most 5 times a second, off the event loop).

Lag: each trainer reports its wall clock as a metric (`wall`). Headless, the lag is measured when a
frame showing the focused run is drawn (now - the latest `wall` on it). In tmux, the screen is read
every 20 ms: the lag is when a step first appears on screen minus when the trainer reported it
(from events.jsonl), so it includes the terminal's own drawing, at 20 ms resolution. Either way the
lag includes the trainer API's own write buffering (it flushes events every 100 ms).

The search view draws no step: only a run's start and end move its picture. With `--churn S` (the
default with `--view search`: 8 s) each run lasts about S seconds (0.5 to 1.5 S) and the next one
starts as it ends, and the search view's lag runs from a run's end (its exit.json) to the build
that shows it finished.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from space_toml import lr, param, space_toml  # noqa: E402

TRAINER = r'''
import math, sys, time
from tui_tuner import trainer

hp = trainer.params(lr=0.01, rate=1000, seconds=60, churn=0.0)
t0 = time.time()
step = 0
seconds = hp["seconds"]
if hp["churn"] > 0:   # runs of different lengths, so they end (and the next ones start) one by one
    import os, random
    seconds = hp["churn"] * (0.5 + random.Random(os.environ.get("TUI_TUNER_RUN_DIR", "")).random())
end = int(seconds * hp["rate"])
while step < end and not trainer.should_stop():
    step += 1
    loss = 1.0 / (1.0 + hp["lr"] * step) + 0.01 * math.sin(step)
    trainer.report(step, loss=loss, val_loss=loss * 1.1, wall=time.time())
    if step % 10 == 0:
        ahead = t0 + step / hp["rate"] - time.time()
        if ahead > 0:
            time.sleep(ahead)
'''

def space_text(script: Path, runs: int, rate: int, run_seconds: float, churn: float = 0.0) -> str:
    """`runs` runs at once of the load trainer, each reporting `rate` steps a second for `run_seconds`
    (with `churn`: for about `churn` seconds each, and a new one starting as one ends)."""
    params = {
        "lr": lr(default=0.01, tier=1, live=True),
        "rate": param("int", low=1, high=100000, default=rate, tier=4),
        "seconds": param("float", low=1.0, high=100000.0, default=run_seconds, tier=4),
        "churn": param("float", low=0.0, high=100000.0, default=churn, tier=4),
    }
    return space_toml(params, name="ui-load", command=["python", str(script)], parallel=runs,
                      budget=100_000 if churn else runs, strategy="random", stage=1)


def rss_mb(pid: int | None = None) -> float:
    """Current resident memory of a process in MB (from /proc)."""
    path = f"/proc/{pid or 'self'}/status"
    with open(path) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (from /proc)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process, by thread name (from /proc)."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError, ValueError):
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                data = f.read()
            fields = data[data.rindex(b")") + 2:].split()
            name = names.get(int(tid), f"thread {tid}")
            if name == "MainThread":
                name = "event loop (UI)"
            elif name.startswith("asyncio"):
                name = "asyncio workers"
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def setup(tmp: Path, runs: int, rate: int, seconds: float, churn: float = 0.0) -> Path:
    """Write the trainer and the space; returns the space file."""
    script = tmp / "load_trainer.py"
    script.write_text(TRAINER)
    space = tmp / "ui_load.toml"
    space.write_text(space_text(script, runs, rate, seconds + 60, churn))
    return space


def ended_at(study_dir: Path, trial_id: int) -> float | None:
    """When a run's process ended (its exit.json), or None."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        return float(json.loads((study_dir / "runs" / f"t{trial_id:04d}" / "exit.json").read_text())["ended"])
    return None


def summary(name: str, values: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    """Median, p95 and max of some samples, as one line."""
    if not values:
        return f"{name}: no samples"
    v = sorted(values)
    p95 = v[min(len(v) - 1, int(0.95 * len(v)))]
    return (f"{name}: median {statistics.median(v) * scale:.0f} {unit}, p95 {p95 * scale:.0f} {unit}, "
            f"max {v[-1] * scale:.0f} {unit} ({len(v)} samples)")


def report(cpu: float, rss: float, peak: float, lags: list[float], steps_per_s: float, runs: int) -> int:
    """Print the figures against the targets; 0 when all are met."""
    print(f"reports: {steps_per_s:,.0f} steps/s in total over {runs} runs")
    print(f"CPU: {cpu * 100:.1f} % of one core (target < 25 %)")
    print(f"memory: {rss:.0f} MB resident at the end, peak {peak:.0f} MB (target < 200 MB)")
    print(summary("lag report -> screen", lags) + " (target < 250 ms)")
    ok = cpu < 0.25 and peak < 200 and bool(lags) and max(lags) < 0.25
    print("PASS" if ok else "over target")
    return 0 if ok else 1


# -- headless ---------------------------------------------------------------------------------------


async def headless(args: argparse.Namespace, tmp: Path) -> int:
    """The app in this process through App.run_test (no terminal).

    With --view, the same run is measured twice: first on the main screen, then with the view open,
    so the two figures share the machine's load of the moment.
    """
    from tui_tuner.runtime.session import Session
    from tui_tuner.search.space import load_space
    from tui_tuner.study.study import Study
    from tui_tuner.ui.app import TunerApp
    from tui_tuner.ui.backend import Backend
    from tui_tuner.ui.screens.main import MainScreen
    from tui_tuner.ui.widgets.plots import PicturePlot

    space = load_space(setup(tmp, args.runs, args.rate, args.seconds * (2 if args.view else 1), args.churn))
    study = Study.open(tmp / "study", space)
    backend = Backend(Session(study, runner_options={"cwd": tmp}), gpu=False)
    app = TunerApp(backend)
    lags: list[float] = []
    measuring = False
    original_show, original_draw, original_start, original_build = (
        MainScreen.show, PicturePlot.draw, PicturePlot._start, PicturePlot._build)

    def focused_wall() -> float | None:
        snap = app.main.snap
        run = snap.focused if snap else None
        return dict(run.metrics).get("wall") if run is not None and run.active else None

    def show(self, snap):
        original_show(self, snap)
        wall = focused_wall()
        # Under a view the main screen is not redrawn: its lag is the view's, measured below.
        if measuring and wall and self.picture_view() is None:
            lags.append(time.time() - wall)

    def finished() -> frozenset[int]:
        points = app.main.snap.points if app.main.snap else None
        return frozenset(p.id for p in points or () if p.status not in ("running", "paused"))

    # A view's lag: from the report to the build that shows it landing on screen; in the search view,
    # from a run's end to the build that shows it finished.
    def draw(self, key, drawer):
        self._bench_wall, self._bench_done = focused_wall(), finished()
        original_draw(self, key, drawer)

    def start(self):
        self._bench_flight = getattr(self, "_bench_wall", None), getattr(self, "_bench_done", frozenset())
        original_start(self)

    async def build(self, *a):
        await original_build(self, *a)
        wall, done = getattr(self, "_bench_flight", (None, frozenset()))
        shown, self._bench_shown = getattr(self, "_bench_shown", None), done
        if not measuring:
            return
        if args.view == "search":
            for tid in done - (shown or done):
                ended = ended_at(tmp / "study", tid)
                if ended is not None:
                    lags.append(time.time() - ended)
        elif wall:
            lags.append(time.time() - wall)

    MainScreen.show, PicturePlot.draw, PicturePlot._start, PicturePlot._build = show, draw, start, build

    async def measure(pilot, what: str) -> int:
        nonlocal measuring
        lags.clear()
        frames0, steps0 = app.frames, sum(t.step or 0 for t in app.main.snap.trials)
        view = app.main.picture_view()
        builds0 = view.plot.builds if view else 0
        measuring = True
        c0, w0 = time.process_time(), time.monotonic()
        t0 = thread_cpu()
        peak = rss_mb()
        while time.monotonic() - w0 < args.seconds:
            await pilot.pause(0.5)
            peak = max(peak, rss_mb())
        wall = time.monotonic() - w0
        cpu = (time.process_time() - c0) / wall
        t1 = thread_cpu()
        split = {k: (v - t0.get(k, 0.0)) / wall for k, v in t1.items()}
        rate = (sum(t.step or 0 for t in app.main.snap.trials) - steps0) / wall
        measuring = False
        drawn = (f"{view.plot.builds - builds0} pictures built ({(view.plot.builds - builds0) / wall:.1f}/s)"
                 if view else f"{app.frames - frames0} frames drawn")
        print(f"\n== {what}: headless app {args.width}x{args.height}, {args.seconds:g} s measured, {drawn}")
        code = report(cpu, rss_mb(), max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      list(lags), rate, args.runs)
        print("CPU by thread: " + ", ".join(f"{k} {v * 100:.1f} %" for k, v in
                                             sorted(split.items(), key=lambda kv: -kv[1]) if v >= 0.001))
        return code

    try:
        async with app.run_test(size=(args.width, args.height)) as pilot:
            end = time.monotonic() + 60
            while time.monotonic() < end:
                snap = app.main.snap
                if snap and len(snap.active_ids) >= args.runs and all((t.step or 0) > 100 for t in snap.trials):
                    break
                await pilot.pause(0.2)
            else:
                print("the runs did not all start within 60 s", file=sys.stderr)
                return 2
            code = await measure(pilot, "main screen")
            if args.view:
                await pilot.press({"curves": "c", "search": "x"}[args.view])
                while app.main.picture_view() is None or not app.main.picture_view().plot.builds:
                    await pilot.pause(0.1)
                await pilot.pause(1.0)
                code = max(code, await measure(pilot, f"{args.view} view open"))
            await asyncio.to_thread(backend.session.stop_all, 10)
    finally:
        MainScreen.show, PicturePlot.draw, PicturePlot._start, PicturePlot._build = (
            original_show, original_draw, original_start, original_build)
        study.close()
    return code


# -- tmux ---------------------------------------------------------------------------------------------


def step_times(run_dir: Path) -> dict[int, float]:
    """step -> the time the trainer reported it, from events.jsonl."""
    out: dict[int, float] = {}
    with contextlib.suppress(FileNotFoundError), open(run_dir / "events.jsonl") as f:
        for line in f:
            with contextlib.suppress(ValueError):
                ev = json.loads(line)
                if "step" in ev and "metrics" in ev:
                    out[int(ev["step"])] = float(ev["metrics"].get("wall", ev.get("t", 0)))
    return out


def in_tmux(args: argparse.Namespace, tmp: Path) -> int:
    """The real `tui-tuner` command in a tmux terminal, measured from outside."""
    if shutil.which("tmux") is None:
        print("tmux is not installed", file=sys.stderr)
        return 2
    space = setup(tmp, args.runs, args.rate, args.seconds)
    sock = tmp / "tmux.sock"
    tmux = ["tmux", "-S", str(sock)]
    exe = Path(sys.executable).with_name("tui-tuner")
    env = {**os.environ, "TERM": "xterm-256color"}
    subprocess.run([*tmux, "new-session", "-d", "-s", "load", "-x", str(args.width), "-y", str(args.height),
                    "-c", str(tmp), f"{exe} {space} --study {tmp / 'study'}"], check=True, env=env)
    header = re.compile(r"#(\d+) running\s+step (\d+)")
    try:
        pane_pid = int(subprocess.run([*tmux, "display", "-p", "-t", "load", "#{pane_pid}"],
                                      capture_output=True, text=True, check=True).stdout.strip())
        end = time.monotonic() + 60
        while time.monotonic() < end:
            text = subprocess.run([*tmux, "capture-pane", "-p", "-t", "load"], capture_output=True,
                                  text=True).stdout
            if f"running {args.runs}" in text:
                break
            time.sleep(0.2)
        else:
            print("the runs did not all start within 60 s", file=sys.stderr)
            return 2
        time.sleep(1.0)
        runs_dir = tmp / "study" / "runs"

        def reported() -> int:
            return sum(max(step_times(d).keys(), default=0) for d in runs_dir.iterdir())

        steps0 = reported()
        shown: list[tuple[float, int, int]] = []       # (seen at, trial, step)
        c0, w0 = cpu_seconds(pane_pid), time.monotonic()
        peak = rss_mb(pane_pid)
        last_rss = time.monotonic()
        while time.monotonic() - w0 < args.seconds:
            text = subprocess.run([*tmux, "capture-pane", "-p", "-t", "load"], capture_output=True,
                                  text=True).stdout
            now = time.time()
            m = header.search(text)
            if m:
                shown.append((now, int(m.group(1)), int(m.group(2))))
            if time.monotonic() - last_rss > 0.5:
                peak, last_rss = max(peak, rss_mb(pane_pid)), time.monotonic()
            time.sleep(0.02)
        cpu = (cpu_seconds(pane_pid) - c0) / (time.monotonic() - w0)
        rate = (reported() - steps0) / (time.monotonic() - w0)
        rss = rss_mb(pane_pid)
        lags: list[float] = []
        times: dict[int, dict[int, float]] = {}
        first_seen: dict[tuple[int, int], float] = {}
        for seen, trial, step in shown:
            first_seen.setdefault((trial, step), seen)
        for (trial, step), seen in first_seen.items():
            if trial not in times:
                times[trial] = step_times(tmp / "study" / "runs" / f"t{trial:04d}")
            if step in times[trial]:
                lags.append(seen - times[trial][step])
        print(f"tui-tuner in tmux {args.width}x{args.height} (pid {pane_pid}), {args.seconds:g} s measured")
        return report(cpu, rss, peak, lags, rate, args.runs)
    finally:
        subprocess.run([*tmux, "send-keys", "-t", "load", "Q"], capture_output=True)
        time.sleep(0.5)
        subprocess.run([*tmux, "send-keys", "-t", "load", "y"], capture_output=True)
        time.sleep(3)
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        _kill_leftovers(tmp / "study")


def _kill_leftovers(study_dir: Path) -> None:
    from tui_tuner.study.study import Study

    with contextlib.suppress(Exception), Study.open(study_dir, lock=False) as study:
        for t in study.active():
            if t.pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(t.pid, signal.SIGKILL)


def main() -> int:
    """Parse the options and run one benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="how long to measure (default 60)")
    p.add_argument("--runs", type=int, default=8, help="runs at once (default 8)")
    p.add_argument("--rate", type=int, default=1000, help="steps a second per run (default 1000)")
    p.add_argument("--width", type=int, default=80)
    p.add_argument("--height", type=int, default=24)
    p.add_argument("--tmux", action="store_true", help="the real tui-tuner in tmux instead of headless")
    p.add_argument("--view", choices=("curves", "search"),
                   help="headless: measure the main screen, then again with this view open (same run)")
    p.add_argument("--churn", type=float, default=None,
                   help="runs last about this many seconds each, new ones starting as they end "
                        "(default: 8 with --view search, else 0: the runs last the whole benchmark)")
    args = p.parse_args()
    if args.churn is None:
        args.churn = 8.0 if args.view == "search" else 0.0
    with tempfile.TemporaryDirectory(prefix="ui-load-") as d:
        tmp = Path(d)
        try:
            if args.tmux:
                return in_tmux(args, tmp)
            return asyncio.run(headless(args, tmp))
        finally:
            _kill_leftovers(tmp / "study")


if __name__ == "__main__":
    sys.exit(main())
