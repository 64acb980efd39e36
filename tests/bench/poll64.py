"""The tuner's poll of many run directories: CPU of the tuner process with 64 live runs (not collected by pytest).

    .venv/bin/python tests/bench/poll64.py [--runs 64] [--rate 20] [--seconds 30]

Starts `--runs` real runs of the toy trainer (tests/scripts/toy.py, on the trainer API) under the launch
shim, each reporting `--rate` lines a second to its events.jsonl in a local study folder, and follows
them with the runner's own poll thread at the app's interval (50 ms), as `tui-tuner run` does. Over
`--seconds` once every run is reporting, it measures the CPU the tuner process spent (every thread of
it; the trainers are other processes) and prints it as a share of one core, with the lines the runner
read a second. Target: under 10 % of a core for 64 runs at 20 lines/s.

The trainers themselves take most of this 2-core box's CPU, so the figure is an upper bound: the
tuner's threads wait for a core more than they would on a quiet machine, which costs them wall time
but not CPU time.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1]))          # tests/: space_toml, study_runs
sys.path.insert(0, str(HERE.parents[2]))          # the repository

from space_toml import param, space_toml  # noqa: E402
from study_runs import TOY, kill_runs  # noqa: E402

from tui_tuner.runtime.runner import Runner  # noqa: E402
from tui_tuner.search.space import parse_space  # noqa: E402
from tui_tuner.study.study import Study  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=64)
    ap.add_argument("--rate", type=float, default=20.0, help="lines a second each run writes")
    ap.add_argument("--seconds", type=float, default=30.0, help="how long to measure")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="poll64-") as d:
        tmp = Path(d)
        params = {
            "lr": param("float", scale="log", low=1e-3, high=0.9, default=0.001, live=True),
            "steps": param("int", low=1, high=10_000_000, default=10_000_000, tier=4),
            "delay": param("float", low=0.0, high=5.0, default=1.0 / args.rate, tier=4),
        }
        text = space_toml(params, name="poll64", command=[sys.executable, str(TOY)], objective="loss",
                          parallel=args.runs, budget=args.runs, strategy="random", stall_timeout=3600)
        (tmp / "space.toml").write_text(text)
        space = parse_space(text, str(tmp / "space.toml"))
        study = Study.open(tmp / "study", space, seed=1)
        runner = Runner(study, None, cwd=tmp, stop_timeout=2.0, term_timeout=2.0)
        try:
            t0 = time.monotonic()
            ids = []
            for _ in range(args.runs):
                trial = study.enqueue_manual({})
                runner.start(trial)
                ids.append(trial.id)
            runner.start_thread(0.05)
            # Wait until every run reports (64 interpreters starting on 2 cores take a while).
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                reporting = sum(1 for i in ids if _size(study.run_dir(i) / "events.jsonl") > 0)
                if reporting == len(ids):
                    break
                time.sleep(0.5)
            else:
                print(f"only {reporting} of {len(ids)} runs reported within 300 s", file=sys.stderr)
                return 1
            print(f"{len(ids)} runs reporting after {time.monotonic() - t0:.1f} s; measuring {args.seconds:.0f} s")
            time.sleep(2.0)    # the runner catches up on what was written while the others started
            lines0 = _lines(study, ids)
            cpu0, w0 = time.process_time(), time.monotonic()
            time.sleep(args.seconds)
            cpu1, w1 = time.process_time(), time.monotonic()
            lines1 = _lines(study, ids)
            live = sum(1 for i in ids if not study.trial(i).finished)
            share = (cpu1 - cpu0) / (w1 - w0)
            rate = (lines1 - lines0) / (w1 - w0)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"tuner CPU: {share * 100:.1f} % of a core for {live} live runs, "
                  f"{rate:.0f} lines/s written ({rate / max(live, 1):.1f} a run); "
                  f"{(cpu1 - cpu0) / max(lines1 - lines0, 1) * 1e6:.0f} us of tuner CPU a line; "
                  f"tuner max RSS {rss:.0f} MB")
            print("target: under 10 % of a core", "(met)" if share < 0.10 else "(MISSED)")
        finally:
            runner.stop_thread()
            runner.commands.stop_all(timeout=10)
            study.close()
            kill_runs(tmp / "study")
    return 0


def _lines(study: Study, ids: list[int]) -> int:
    """Lines written so far across the runs' events files (counted by the bench, not the tuner)."""
    total = 0
    for i in ids:
        try:
            total += (study.run_dir(i) / "events.jsonl").read_bytes().count(b"\n")
        except OSError:
            pass
    return total


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
