"""`tui-tuner recover STUDY`: rebuild a missing or empty study.db from space.toml and the run directories.

Each run directory says which trial it is and what it ran (params.json), when it started
(launch.json) and how it ended (events, exit.json, control.jsonl). The rebuilt study holds one
trial per such run, under its own id; the runs that ended are settled with the runner's own
verdict, the live ones are recorded running, so the next open re-adopts them. What no run
directory records (the queue, the search state, the seed, most trial sources) cannot come back,
and `Recovery.lost` says so. Nothing is deleted: an old study.db is moved aside first.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_tuner.errors import StudyError, TunerError
from tui_tuner.runtime.slurm import JOB_FILE
from tui_tuner.search.space import load_space
from tui_tuner.study import rundir
from tui_tuner.study.lock import StudyLock
from tui_tuner.study.opening import create
from tui_tuner.study.store import DB_NAME, RUNS_DIR, SPACE_NAME, Store
from tui_tuner.study.study import Study
from tui_tuner.study.verdict import read_json
from tui_tuner.trainer import protocol
from tui_tuner.trainer.tailing import JsonlTail

# A checkpoint inside this study: .../runs/t0003/ckpt/step-120.pt (the study may have moved since).
_IN_RUNS = re.compile(r"(?:^|/)" + RUNS_DIR + r"/(t([0-9]+))/(.+)$", re.ASCII)
_STEP = re.compile(r"step-([0-9]{1,18})\.\w+$", re.ASCII)   # 18 digits: always a step SQLite can hold


@dataclass
class Recovery:
    """What `recover` did: the trials it rebuilt, what it skipped, and what could not come back."""

    directory: Path
    statuses: dict[int, str] = field(default_factory=dict)   # trial id -> status after settling
    skipped: list[str] = field(default_factory=list)          # one line per run dir left out
    strays: list[str] = field(default_factory=list)           # names in runs/ that are no run's (t5, t٥)
    lost: list[str] = field(default_factory=list)             # what no run dir records
    moved: list[Path] = field(default_factory=list)           # the old database files, moved aside
    next_id: int = 1

    def lines(self) -> list[str]:
        """The report, a line each: counts first, then what was skipped and what is lost."""
        counts: dict[str, int] = {}
        for status in self.statuses.values():
            counts[status] = counts.get(status, 0) + 1
        n = len(self.statuses)
        out = [f"recovered {n} run{'' if n == 1 else 's'} into {self.directory / DB_NAME}"
               + (": " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) if counts else "")]
        for p in self.moved:
            out.append(f"the old {p.name.split('.lost-')[0]} is kept as {p}")
        if self.skipped:
            out.append(f"skipped {len(self.skipped)}: " + "; ".join(self.skipped))
        if self.strays:
            out.append(f"ignored {len(self.strays)} name{'' if len(self.strays) == 1 else 's'} in {RUNS_DIR}/ that "
                       f"no run has (runs are named like t0005, attempts set aside like t0005.attempt-1; "
                       f"left as they are): " + ", ".join(self.strays))
        out.extend(f"not recoverable: {what}" for what in self.lost)
        out.append(f"new trials start at id {self.next_id}; live runs are re-adopted when the study opens")
        return out


def recover(directory: str | Path) -> Recovery:
    """Rebuild DIRECTORY/study.db from its space.toml and runs/ (refused if study.db holds trials)."""
    d = Path(directory)
    if not d.is_dir():
        raise StudyError(f"{d}: no such study directory")
    space_path = d / SPACE_NAME
    if not space_path.is_file():
        raise StudyError(f"{space_path}: missing; recover needs the study's space file to rebuild {DB_NAME}")
    space = load_space(space_path)
    runs = rundir.run_paths(d / RUNS_DIR)
    strays = [f"{RUNS_DIR}/{p.name}" for p in rundir.strays(d / RUNS_DIR)]
    if not runs:
        also = f" (only {', '.join(strays)}, named as no run is)" if strays else ""
        raise StudyError(f"{d}: {RUNS_DIR}/ holds no runs{also}, so there is nothing to recover")
    lock = StudyLock(d)
    lock.acquire()
    result = Recovery(d, strays=strays)
    store: Store | None = None
    try:
        _refuse_a_live_db(d)
        result.moved = _move_aside(d)
        store = Store(d / DB_NAME, create=True)
        seed = create(d, space, store, None)
        study = Study(d, space, store, lock)
        ids = _rebuild(study, runs, result)
        highest = max([rundir.highest_id(d / RUNS_DIR), *ids], default=0)
        _reserve(store, highest)
        result.next_id = highest + 1
        from tui_tuner.runtime.runner import Runner  # the runner's own verdict settles what has ended

        Runner(study, cwd=d).settle_ended()
        result.statuses = {t.id: t.status for t in study.trials("id")}
        result.lost = _lost(space, seed, result)
        return result
    finally:
        if store is not None:
            store.close()
        lock.release()


def _refuse_a_live_db(d: Path) -> None:
    """Refuse when study.db holds a study with trials: recover rebuilds only a lost database."""
    path = d / DB_NAME
    try:
        if not path.exists() or path.stat().st_size == 0:
            return
    except OSError:
        return
    n = 0
    with contextlib.suppress(TunerError):
        store = Store(path)
        try:
            if store.initialised():
                n = int(store.query("SELECT COUNT(*) FROM trials")[0][0])
        finally:
            store.close()
    if n:
        raise StudyError(f"{path}: holds {n} trial{'' if n == 1 else 's'}; recover rebuilds only a missing or "
                         f"empty {DB_NAME} (move it aside first to rebuild it from {RUNS_DIR}/)")


def _move_aside(d: Path) -> list[Path]:
    """Rename study.db and its -wal/-shm to study.db.lost-STAMP[-wal|-shm]: never deleted, never replayed."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moved: list[Path] = []
    for suffix in ("", "-wal", "-shm"):
        src = d / f"{DB_NAME}{suffix}"
        if src.exists():
            dst = d / f"{DB_NAME}.lost-{stamp}{suffix}"
            src.replace(dst)
            moved.append(dst)
    return moved


def _rebuild(study: Study, runs: dict[int, Path], result: Recovery) -> list[int]:
    """Insert one running trial per run dir that says what it ran; the rest are skipped, with why."""
    rows: list[dict[str, Any]] = []
    for tid, run_dir in runs.items():
        where = f"{RUNS_DIR}/{run_dir.name}"
        if not run_dir.is_dir():
            result.skipped.append(f"{where} is not a directory")
            continue
        doc, problem = read_json(run_dir / protocol.PARAMS)
        if doc is None:
            result.skipped.append(f"{where}/{protocol.PARAMS} {problem or 'is missing'}")
            continue
        if doc.get("trial") != tid:
            result.skipped.append(f"{where}/{protocol.PARAMS} holds trial {doc.get('trial')!r}, not {tid}")
            continue
        params = doc.get("params")
        try:
            if not isinstance(params, dict):
                raise StudyError("holds no params")
            study.space.check_setting(dict(params))
        except TunerError as e:
            result.skipped.append(f"{where}/{protocol.PARAMS}: {e.message}")
            continue
        launched = rundir.launched(run_dir) or _queued_job(run_dir)
        if launched is None:
            result.skipped.append(f"{where} never started (no {protocol.LAUNCH})")
            continue
        pid, started = launched
        row = {"id": tid, "status": "running", "params": params, "source": "random", "pid": pid,
               "created": started or time.time(), "started": started or time.time(), "zoom_level": 0}
        row.update(_lineage(study.dir, doc.get("resume"), result, where))
        rows.append(row)
    with study.store.tx() as db:
        for row in rows:
            Store.insert(db, **row)
    return [row["id"] for row in rows]


def _queued_job(run_dir: Path) -> tuple[int, float | None] | None:
    """(no pid, when it was submitted) for a Slurm job still in the queue (job.json, no launch.json yet):
    recorded as running, and re-adopted by its job id when the study opens."""
    doc, _problem = read_json(run_dir / JOB_FILE)
    if doc is None or not isinstance(doc.get("job_id"), str):
        return None
    submitted = doc.get("submitted")
    return 0, float(submitted) if isinstance(submitted, (int, float)) and not isinstance(submitted, bool) else None


def _lineage(study_dir: Path, resume: Any, result: Recovery, where: str) -> dict[str, Any]:
    """parent, fork step and resume of a fork, from the checkpoint path params.json resumed from."""
    if not isinstance(resume, str) or not resume:
        return {}
    m = _IN_RUNS.search(resume.replace("\\", "/"))
    if m is not None and rundir.trial_of(m.group(1)) is None:
        m = None   # runs/t5/...: no run is named so
    if m is None:
        result.lost.append(f"{where} resumed from {resume}, outside this study: its parent is unknown")
        return {"source": "fork", "resume": resume}
    parent_dir, parent, inner = m.group(1), int(m.group(2)), m.group(3)
    step = _checkpoint_step(study_dir / RUNS_DIR / parent_dir, inner)
    if step is None:
        result.lost.append(f"{where}: the step of #{parent}'s checkpoint it was forked from")
    return {"source": "fork", "parent": parent, "fork_step": step, "resume": f"{RUNS_DIR}/{parent_dir}/{inner}"}


def _checkpoint_step(parent_dir: Path, inner: str) -> int | None:
    """The step of the parent's checkpoint event for that file, else the step in its name."""
    for ev in JsonlTail(parent_dir / protocol.EVENTS).read_all():
        path, step = ev.get("path"), ev.get("step")
        if ev.get("event") == protocol.EV_CHECKPOINT and isinstance(path, str) and protocol.step_of(step) is not None:
            if path == inner or str(parent_dir / path) == str(parent_dir / inner):
                return step
    m = _STEP.search(inner)
    return int(m.group(1)) if m else None


def _reserve(store: Store, highest: int) -> None:
    """Make AUTOINCREMENT hand out ids above every name in runs/, skipped ones and attempts included."""
    with store.tx() as db:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'trials'").fetchone()
        if row is None:
            db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('trials', ?)", (highest,))
        elif row[0] < highest:
            db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'trials'", (highest,))


def _lost(space: Any, seed: int, result: Recovery) -> list[str]:
    lost = [
        "the queue (queued trials had no run directory yet)",
        "the search state (zoom levels, stage, frozen parameters) and the sampler's state",
        f"the seed (this study now has seed {seed})",
        "each trial's source other than fork (recorded as random)",
    ]
    if space.config.zero_code:
        lost.append("zero-code restarts' parents (their run dirs do not name them): recorded as new trials")
    return lost + result.lost
