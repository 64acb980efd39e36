"""A study: one directory holding the space, the ordered queue and every trial, owned by one tuner at a time.

The directory layout and the refusals (a second owner, a space with other parameters) are a contract
that scripts and the other commands rely on (README.md, "Commands" and "When things go wrong"). Each method that changes something is one SQLite transaction, so the
study survives the tuner being killed between any two statements.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tui_tuner.errors import StudyError
from tui_tuner.search.config import StudyConfig
from tui_tuner.search.sampling import Sampler
from tui_tuner.search.space import Space
from tui_tuner.search.state import SearchState
from tui_tuner.search.trials import ACTIVE, FINISHED, STATUSES, sql_in
from tui_tuner.study.lock import StudyLock
from tui_tuner.study.opening import open_parts
from tui_tuner.study.queue import StudyQueue
from tui_tuner.study.store import (
    RUNS_DIR,
    SPACE_NAME,
    Store,
    Trial,
    clean_objective,
    run_id,
)

__all__ = ["ACTIVE", "FINISHED", "STATUSES", "Study", "Trial", "default_dir", "run_id"]

ORDERS = ("best", "start", "id")
# The study meta key of the forks that do not continue their parent exactly: {"trial id": why}.
INEXACT_META = "inexact_forks"


def default_dir(space: Space, root: str | Path = "studies") -> Path:
    """The default study directory for a space: ./studies/<study name>/."""
    return Path(root) / space.config.name


class Study(StudyQueue):
    """A study directory: its space, queue and trials. Open it with `Study.open`."""

    def __init__(self, directory: Path, space: Space, store: Store, lock: StudyLock | None) -> None:
        self.dir = directory
        self.space = space
        self.store = store
        self._lock = lock
        self._sampler: Sampler | None = None

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: str | Path, space: Space | None = None, *, lock: bool = True,
             seed: int | None = None) -> Study:
        """Create or reopen the study in `directory`.

        A new study needs `space`; its text is copied to space.toml. Reopening without a space uses
        space.toml; a space with other parameters is refused. With lock (the default) this process
        becomes the study's one owner; lock=False opens read-only (for `show` and `export`). `seed`
        is recorded when the study is created (else the space's seed, else a random one) and
        ignored on reopen: a study keeps its seed.
        """
        return cls(*open_parts(directory, space, lock=lock, seed=seed))

    def close(self) -> None:
        """Close the database and release the lock (idempotent)."""
        self.store.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- basics ---------------------------------------------------------------------------------

    @property
    def config(self) -> StudyConfig:
        """The [study] settings of this session's space."""
        return self.space.config

    @property
    def name(self) -> str:
        """The study's name (from the space it was created with)."""
        return str(self.store.get_meta("name", self.space.config.name))

    @property
    def seed(self) -> int:
        """The seed recorded when the study was created."""
        return int(self.store.get_meta("seed", 0))

    @property
    def readonly(self) -> bool:
        """True when opened with lock=False: reading only."""
        return self._lock is None

    @property
    def space_file(self) -> str:
        """The path of the space file the study was created or last opened with."""
        return str(self.store.get_meta("space_file", self.dir / SPACE_NAME))

    def run_dir(self, trial_id: int) -> Path:
        """The run directory of a trial: STUDY/runs/tNNNN (created by the runner, not here)."""
        return self.dir / RUNS_DIR / run_id(trial_id)

    def meta(self, key: str, default: Any = None) -> Any:
        """A JSON meta value stored in the study (seed, sampler state, ...), or default."""
        return self.store.get_meta(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable meta value."""
        self._writable()
        self.store.set_meta({key: value})

    def mark_inexact(self, trial_id: int, reason: str) -> None:
        """Record that a forked trial does not continue its parent exactly (its trainer said why)."""
        marks = dict(self.meta(INEXACT_META) or {})
        if marks.get(str(trial_id)) != reason:
            marks[str(trial_id)] = reason
            self.set_meta(INEXACT_META, marks)

    def inexact(self) -> dict[int, str]:
        """The forked trials that do not continue their parent exactly: {trial id: why}."""
        marks = self.meta(INEXACT_META) or {}
        return {int(k): str(v) for k, v in marks.items() if str(k).isdigit()} if isinstance(marks, dict) else {}

    def _writable(self) -> None:
        if self._lock is None:
            raise StudyError(f"{self.dir}: opened read-only (without the lock); cannot change the study")

    # -- search state and sampler ---------------------------------------------------------------

    @property
    def search_state(self) -> SearchState:
        """The persisted search state (stage, frozen, anchors, zoom levels); a fresh copy each time."""
        raw = self.store.get_meta("search_state")
        if raw is None:
            return SearchState(stage=self.config.stage)
        return SearchState.from_json(raw)

    @search_state.setter
    def search_state(self, state: SearchState) -> None:
        self._writable()
        self.store.set_meta({"search_state": state.to_dict()})

    def sampler(self) -> Sampler:
        """The study's sampler: seeded with the study's seed, its generator state restored from the db."""
        if self._sampler is None:
            sampler = Sampler(self.space, self.seed)
            state = self.store.get_meta("sampler_state")
            if state is not None:
                sampler.set_state(state)
            self._sampler = sampler
        return self._sampler

    def sample(self, n: int, *, front: bool = False) -> list[Trial]:
        """Queue n random settings from the current search state; the sampler state is saved with them.

        Queueing and the generator state commit together, so a reopened study draws what comes next.
        """
        self._writable()
        sampler = self.sampler()
        before = sampler.get_state()
        try:
            settings = sampler.random(self.search_state, n)
            return self.enqueue(settings, "random", front=front, meta={"sampler_state": sampler.get_state()})
        except BaseException:
            sampler.set_state(before)
            raise

    # -- lifecycle ------------------------------------------------------------------------------

    def mark_started(self, trial_id: int, pid: int, started: float | None = None) -> Trial:
        """A queued trial's process was launched (at `started`, default now): it is running and off the queue."""
        self._writable()
        with self.store.tx() as db:
            t = self._get(trial_id)
            if t.status != "queued":
                raise StudyError(f"trial {t.id} is {t.status}; only a queued trial can start")
            Store.update(db, t.id, status="running", started=time.time() if started is None else started,
                         ended=None, pid=int(pid), queue_pos=None)
        return self._get(t.id)

    def set_status(self, trial_id: int, status: str, reason: str | None = None) -> Trial:
        """Change a trial's status: running <-> paused, back to the queue, or ended (see `finish`)."""
        if status not in STATUSES:
            raise StudyError(f"unknown status {status!r} (allowed: {', '.join(STATUSES)})")
        if status in FINISHED:
            return self.finish(trial_id, status, reason=reason)
        self._writable()
        with self.store.tx() as db:
            t = self._get(trial_id)
            if t.finished:
                raise StudyError(f"trial {t.id} already ended ({t.status})")
            if status == "queued":
                if t.status != "queued":
                    (hi,) = db.execute("SELECT MAX(queue_pos) FROM trials WHERE status = 'queued'").fetchone()
                    Store.update(db, t.id, status="queued", pid=None, queue_pos=(hi + 1 if hi is not None else 0),
                                 reason=reason)
            else:
                if t.status not in ACTIVE:
                    raise StudyError(f"trial {t.id} is {t.status}; start it before marking it {status}")
                Store.update(db, t.id, status=status, **({"reason": reason} if reason is not None else {}))
        return self._get(t.id)

    def update_progress(self, trial_id: int, step: int | None, objective: float | None) -> None:
        """Record the last step seen and the objective so far (None leaves a value unchanged).

        The caller reduces the objective (`reduce = best|last`); NaN is stored as no objective.
        """
        self._writable()
        fields: dict[str, Any] = {}
        if step is not None:
            fields["step"] = int(step)
        if objective is not None:
            fields["objective"] = clean_objective(objective)
        if not fields:
            return
        with self.store.tx() as db:
            t = self._get(trial_id)
            Store.update(db, t.id, **fields)

    def apply_live(self, trial_id: int, changes: dict[str, Any]) -> Trial:
        """Record live changes that took effect in an active run: the trial's setting is its current one.

        Export and fork then use what the run trains with now, not what it started with.
        """
        self._writable()
        changes = self.space.check_setting(dict(changes), partial=True)
        with self.store.tx() as db:
            t = self._get(trial_id)
            if not t.active:
                raise StudyError(f"trial {t.id} is {t.status}; live changes apply only to a running trial")
            Store.update(db, t.id, params={**t.params, **changes})
        return self._get(t.id)

    def finish(self, trial_id: int, status: str, objective: float | None = None,
               reason: str | None = None, ended: float | None = None) -> Trial:
        """End a trial (done, failed, stopped or diverged); objective None keeps the one recorded so far.

        `ended` is when the run ended (default now): a run settled after the tuner was away ended earlier.
        """
        self._writable()
        if status not in FINISHED:
            raise StudyError(f"{status!r} is not an end status (allowed: {', '.join(FINISHED)})")
        with self.store.tx() as db:
            t = self._get(trial_id)
            if t.finished:
                raise StudyError(f"trial {t.id} already ended ({t.status})")
            fields: dict[str, Any] = {"status": status, "ended": time.time() if ended is None else ended,
                                      "pid": None, "queue_pos": None,
                                      "reason": reason}
            if objective is not None:
                fields["objective"] = clean_objective(objective)
            Store.update(db, t.id, **fields)
        return self._get(t.id)

    def annotate(self, trial_id: int, reason: str) -> Trial:
        """Replace an ended trial's reason (an automatic decision names itself there)."""
        self._writable()
        with self.store.tx() as db:
            t = self._get(trial_id)
            if not t.finished:
                raise StudyError(f"trial {t.id} is {t.status}; only an ended trial's reason is annotated")
            Store.update(db, t.id, reason=reason)
        return self._get(t.id)

    # -- queries --------------------------------------------------------------------------------

    def trial(self, trial_id: int) -> Trial:
        """The trial with this id (StudyError if there is none)."""
        return self._get(trial_id)

    def _rank(self, t: Trial) -> float:
        assert t.objective is not None
        return -t.objective if self.config.maximize else t.objective

    def trials(self, order: str = "best") -> list[Trial]:
        """All trials. order="best": done and stopped ones best first, then active, other ended ones, queued;
        "start": by start time, queued last in queue order; "id": by id."""
        if order not in ORDERS:
            raise StudyError(f"unknown order {order!r} (allowed: {', '.join(ORDERS)})")
        rows = self.store.trials()
        if order == "id":
            return rows
        queued = sorted((t for t in rows if t.status == "queued"), key=lambda t: (t.queue_pos, t.id))
        rows = [t for t in rows if t.status != "queued"]
        if order == "start":
            started = sorted((t for t in rows if t.started is not None), key=lambda t: (t.started, t.id))
            return started + [t for t in rows if t.started is None] + queued
        # Done and stopped trials lead, ranked by their value together: a trial stopped early (by
        # early stopping, the autopilot or a hand) was judged on it, and a good one must be seen
        # (the screens mark it stopped). Failed and diverged runs' values come after the running ones.
        def ranked(ts: list[Trial]) -> list[Trial]:
            scored = sorted((t for t in ts if t.objective is not None), key=lambda t: (self._rank(t), t.id))
            return scored + [t for t in ts if t.objective is None]

        judged = ranked([t for t in rows if t.status in ("done", "stopped") and t.objective is not None])
        active = ranked([t for t in rows if t.active])
        ids = {t.id for t in judged}
        ended = ranked([t for t in rows if t.finished and t.id not in ids])
        return judged + active + ended + queued

    def best(self, n: int = 1) -> list[Trial]:
        """Up to n done trials with an objective, best first in the study's direction."""
        done = self.store.trials("status = 'done' AND objective IS NOT NULL")
        return sorted(done, key=lambda t: (self._rank(t), t.id))[:max(int(n), 0)]

    def finished(self) -> list[Trial]:
        """Ended trials (done, failed, stopped, diverged), in the order they ended."""
        return self.store.trials(sql_in(FINISHED), order="ended, id")

    def active(self) -> list[Trial]:
        """Running and paused trials, by id."""
        return self.store.trials(sql_in(ACTIVE))

    def counts(self) -> dict[str, int]:
        """The number of trials in each status (every status present, zero included)."""
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self.store.query("SELECT status, COUNT(*) FROM trials GROUP BY status"):
            out[status] = n
        return out

    def budget_used(self) -> int:
        """Trials that have started at least once (all but the queued ones)."""
        (n,) = self.store.query("SELECT COUNT(*) FROM trials WHERE status != 'queued'")[0]
        return int(n)

    def lineage(self, trial_id: int) -> list[Trial]:
        """The trial and its ancestors through forks, the trial first."""
        chain = [self._get(trial_id)]
        seen = {chain[0].id}
        while chain[-1].parent is not None and chain[-1].parent not in seen:
            parent = self.store.trial(chain[-1].parent)
            if parent is None:
                break
            chain.append(parent)
            seen.add(parent.id)
        return chain

    def children(self, trial_id: int) -> list[Trial]:
        """The forks made from a trial, by id."""
        return self.store.trials("parent = ?", (int(trial_id),))

