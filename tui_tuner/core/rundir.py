"""Run directories as the record of what ran: which runs exist, whose they are, and moving one aside.

A run directory is never deleted or overwritten: a previous attempt that cannot be settled is moved
to runs/tNNNN.attempt-K (K = 1, 2, ...) and stays readable there. Before a tuner adopts or settles a
run as one of its trials, `params_mismatch` checks that the run's params.json is that trial's.

Names are read one way only: trial N's run is exactly `protocol.run_id(N)` (t0005, t12345) and a run
set aside is that name plus `.attempt-K`, ASCII digits only. Anything else in runs/ (t5, t00005,
t٥ with an Arabic-Indic digit, notes.txt) is a stray: listed by `strays`, reported by `recover`,
and never taken for a trial's run, so it can never displace one.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from tui_tuner import protocol
from tui_tuner.core.verdict import read_json

# \d would take any Unicode digit (int("٥") == 5): run names are ASCII.
RUN_NAME = re.compile(r"t([0-9]+)", re.ASCII)                         # runs/t0001
ATTEMPT_NAME = re.compile(r"(t[0-9]+)\.attempt-([1-9][0-9]*)", re.ASCII)   # runs/t0001.attempt-1
_APPLIED = b'"applied"'


def entries(runs: Path) -> list[Path]:
    """Everything in runs/ but hidden names (the run dirs, attempts set aside, strays)."""
    try:
        return sorted(p for p in runs.iterdir() if not p.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError:
        return []


def trial_of(name: str) -> int | None:
    """The trial whose run a name in runs/ is (t0005 -> 5), or None (an attempt set aside, a stray)."""
    m = RUN_NAME.fullmatch(name)
    if m is None:
        return None
    tid = int(m.group(1))
    return tid if tid > 0 and protocol.run_id(tid) == name else None


def attempt_of(name: str) -> int | None:
    """The trial whose set-aside attempt a name is (t0005.attempt-2 -> 5), or None."""
    m = ATTEMPT_NAME.fullmatch(name)
    return trial_of(m.group(1)) if m else None


def run_paths(runs: Path) -> dict[int, Path]:
    """The run paths in runs/ by trial id, from their names (a path may be a stray file)."""
    out: dict[int, Path] = {}
    for p in entries(runs):
        tid = trial_of(p.name)
        if tid is not None:
            out[tid] = p
    return dict(sorted(out.items()))


def strays(runs: Path) -> list[Path]:
    """What runs/ holds that is named neither as a run nor as an attempt set aside."""
    return [p for p in entries(runs) if trial_of(p.name) is None and attempt_of(p.name) is None]


def highest_id(runs: Path) -> int:
    """The highest trial id any run or attempt in runs/ uses (0 when none); strays do not count."""
    best = 0
    for p in entries(runs):
        tid = trial_of(p.name) or attempt_of(p.name)
        if tid is not None:
            best = max(best, tid)
    return best


def set_aside(run_dir: Path) -> Path:
    """Move a run dir (or whatever is in its place) to runs/tNNNN.attempt-K; returns the new path."""
    k = 1
    while True:
        target = run_dir.with_name(f"{run_dir.name}.attempt-{k}")
        if not (target.exists() or target.is_symlink()):
            break
        k += 1
    os.replace(run_dir, target)   # atomic on one file system, and never over an existing attempt
    return target


def launched(run_dir: Path) -> tuple[int, float | None] | None:
    """(shim pid, start time) from launch.json, or None when no shim ever started in this run dir."""
    info, _problem = read_json(run_dir / protocol.LAUNCH)
    pid = info.get("pid") if info else None
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:   # a pid_t
        return None
    started = info.get("started")
    if isinstance(started, int) and not isinstance(started, bool) and abs(started) < 2**53:
        started = float(started)   # math.isfinite(10**400) would raise
    ok = isinstance(started, float) and math.isfinite(started)
    return pid, (started if ok else None)


def params_mismatch(run_dir: Path, trial: Any, live: set[str]) -> str | None:
    """Why the run in run_dir is not `trial` (params.json's trial id and settings), or None if it is.

    A live parameter may differ by a value the run's events say it applied: the study records live
    changes as the trial's setting, params.json keeps what the run started with.
    """
    where = run_dir / protocol.PARAMS
    doc, problem = read_json(where)
    if doc is None:
        return f"{where} {problem or 'is missing'}"
    if doc.get("trial") != trial.id:
        return f"{where} holds trial {doc.get('trial')!r}, not trial {trial.id}"
    params = doc.get("params")
    if not isinstance(params, dict):
        return f"{where} holds no params"
    applied: dict[str, list[Any]] | None = None
    for name in list(params) + [n for n in trial.params if n not in params]:
        ran, recorded = params.get(name, _MISSING), trial.params.get(name, _MISSING)
        if _same(ran, recorded):
            continue
        if name in live and recorded is not _MISSING:
            if applied is None:
                applied = applied_values(run_dir)
            if any(_same(v, recorded) for v in applied.get(name, ())):
                continue
        return (f"{where} holds {name}={_show(ran)} but the study's trial {trial.id} has "
                f"{name}={_show(recorded)}")
    return None


def applied_values(run_dir: Path) -> dict[str, list[Any]]:
    """Every value each live parameter took through the run's `applied` events."""
    out: dict[str, list[Any]] = {}

    def take(line: bytes) -> None:
        # Only the few lines that can be an applied event are parsed: a long run has millions.
        if _APPLIED not in line:
            return
        try:
            ev = json.loads(line)
        except (ValueError, RecursionError):
            return
        if isinstance(ev, dict) and ev.get("event") == protocol.EV_APPLIED and isinstance(ev.get("params"), dict):
            for k, v in ev["params"].items():
                out.setdefault(k, []).append(v)

    try:
        with open(run_dir / protocol.EVENTS, "rb") as f:
            rest = b""
            for chunk in iter(lambda: f.read(1 << 20), b""):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    take(line)
            take(rest)
    except OSError:
        pass
    return out


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


_MISSING = _Missing()


def _same(a: Any, b: Any) -> bool:
    # 1 == 1.0 == True in Python; a setting's type is part of it (a choice of True vs 1).
    return a is b or (type(a) is type(b) and a == b) or (
        isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool)
        and not isinstance(b, bool) and a == b)


def _show(v: Any) -> str:
    return repr(v) if v is _MISSING or isinstance(v, str) else str(v)
