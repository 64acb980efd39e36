"""Run directories as the record of what ran: which runs exist, whose they are, and moving one aside.

A run directory is never deleted or overwritten: a previous attempt that cannot be settled is moved
to runs/tNNNN.attempt-K (K = 1, 2, ...) and stays readable there. Before a tuner adopts or settles a
run as one of its trials, `params_mismatch` checks that the run's params.json is that trial's.
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

RUN_NAME = re.compile(r"t(\d+)")      # runs/t0001; not runs/t0001.attempt-1
_APPLIED = b'"applied"'


def entries(runs: Path) -> list[Path]:
    """Everything in runs/ but hidden names (the run dirs, attempts set aside, strays)."""
    try:
        return sorted(p for p in runs.iterdir() if not p.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError:
        return []


def run_paths(runs: Path) -> dict[int, Path]:
    """The run paths in runs/ by trial id, from their names (a path may be a stray file)."""
    out: dict[int, Path] = {}
    for p in entries(runs):
        m = RUN_NAME.fullmatch(p.name)
        if m:
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def highest_id(runs: Path) -> int:
    """The highest trial id any name in runs/ uses, attempts set aside included (0 when none)."""
    best = 0
    for p in entries(runs):
        m = re.match(r"t(\d+)(?:\.attempt-\d+)?$", p.name)
        if m:
            best = max(best, int(m.group(1)))
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
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    started = info.get("started")
    ok = isinstance(started, (int, float)) and not isinstance(started, bool) and math.isfinite(started)
    return pid, (float(started) if ok else None)


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
