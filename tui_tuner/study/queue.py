"""A study's ordered queue: settings waiting to start, in the order they will (mixed into Study).

Each change is one SQLite transaction; queue positions are integers, smaller first. Forks go to the
front, samples to the back unless asked otherwise.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_tuner.errors import StudyError
from tui_tuner.search.space import Space
from tui_tuner.study import rundir
from tui_tuner.study.store import Store, Trial, sources


class StudyQueue:
    """The queue operations of a Study: enqueue, fork, drop, move, edit, and what starts next."""

    dir: Path
    space: Space
    store: Store

    if TYPE_CHECKING:   # Study's own
        def _get(self, trial_id: int) -> Trial: ...
        def _writable(self) -> None: ...
        def run_dir(self, trial_id: int) -> Path: ...

    def _zoom_level(self) -> int:
        raw = self.store.get_meta("search_state")
        return len(raw.get("levels", [])) if isinstance(raw, dict) else 0

    def _get(self, trial_id: int) -> Trial:
        try:
            tid = int(trial_id)
        except (TypeError, ValueError):
            raise StudyError(f"{self.dir}: no trial {trial_id!r}") from None
        t = self.store.trial(tid)
        if t is None:
            raise StudyError(f"{self.dir}: no trial {tid}")
        return t

    def _queued(self, trial_id: int) -> Trial:
        t = self._get(trial_id)
        if t.status != "queued":
            raise StudyError(f"trial {t.id} is {t.status}, not queued: only queued trials can be "
                             f"dropped, moved or edited")
        return t

    def enqueue(self, settings: list[dict[str, Any]], source: str = "random", *, front: bool = False,
                meta: dict[str, Any] | None = None) -> list[Trial]:
        """Queue settings (each checked against the space, missing values filled from the defaults).

        All or nothing: one bad setting raises SpaceError and queues none. front=True puts them first,
        in the given order. `meta` values are written in the same transaction.
        """
        self._writable()
        if source not in sources():
            raise StudyError(f"unknown trial source {source!r} (allowed: {', '.join(sources())})")
        checked = [self.space.check_setting(dict(s)) for s in settings]
        level = self._zoom_level()
        now = time.time()
        with self.store.tx() as db:
            lo, hi = db.execute("SELECT MIN(queue_pos), MAX(queue_pos) FROM trials "
                                "WHERE status = 'queued'").fetchone()
            first = (lo if lo is not None else 0) - len(checked) if front else (hi + 1 if hi is not None else 0)
            ids = [Store.insert(db, status="queued", params=p, source=source, created=now,
                                queue_pos=first + i, zoom_level=level) for i, p in enumerate(checked)]
            if meta:
                Store.write_meta(db, meta)
        return [self._get(i) for i in ids]

    def enqueue_manual(self, setting: dict[str, Any], *, front: bool = False) -> Trial:
        """Queue one setting edited by hand (checked; missing values from the defaults)."""
        return self.enqueue([setting], "manual", front=front)[0]

    def queue(self) -> list[Trial]:
        """The queued trials in the order they will start."""
        return self.store.trials("status = 'queued'", order="queue_pos, id")

    def pop_next(self) -> Trial | None:
        """The first queued trial, or None (its status is unchanged: `mark_started` takes it off)."""
        q = self.store.trials("status = 'queued'", order="queue_pos, id LIMIT 1")
        return q[0] if q else None

    def drop(self, trial_id: int) -> None:
        """Remove a queued trial (its id is never reused)."""
        self._writable()
        with self.store.tx() as db:
            t = self._queued(trial_id)
            db.execute("DELETE FROM trials WHERE id = ?", (t.id,))

    def move(self, trial_id: int, delta: int) -> None:
        """Move a queued trial delta places (negative: towards the front), clamped at the ends."""
        self._writable()
        with self.store.tx() as db:
            t = self._queued(trial_id)
            ids = [q.id for q in self.queue()]
            i = ids.index(t.id)
            j = min(max(i + int(delta), 0), len(ids) - 1)
            ids.insert(j, ids.pop(i))
            for pos, tid in enumerate(ids):
                db.execute("UPDATE trials SET queue_pos = ? WHERE id = ?", (pos, tid))

    def edit(self, trial_id: int, changes: dict[str, Any]) -> Trial:
        """Change some settings of a queued trial; a bad value raises SpaceError and changes nothing."""
        self._writable()
        with self.store.tx() as db:
            t = self._queued(trial_id)
            checked = self.space.check_setting(dict(changes), partial=True)
            params = self.space.check_setting({**t.params, **checked})
            Store.update(db, t.id, params=params)
        return self._get(t.id)

    def add_fork(self, parent_id: int, params: dict[str, Any], fork_step: int | None,
                 resume: str | None, also: Callable[[sqlite3.Connection, int], None] | None = None) -> Trial:
        """Queue a fork of a trial at the FRONT: the parent's settings with `params` over them.

        `resume` is the checkpoint (relative to the study dir) the fork starts from; a bad value
        raises SpaceError and queues nothing. `also(db, child_id)` writes more in the same
        transaction (the decision that made the fork records its child there).
        """
        self._writable()
        parent = self._get(parent_id)
        changes = self.space.check_setting(dict(params), partial=True)
        merged = self.space.check_setting({**parent.params, **changes})
        with self.store.tx() as db:
            (lo,) = db.execute("SELECT MIN(queue_pos) FROM trials WHERE status = 'queued'").fetchone()
            tid = Store.insert(db, status="queued", params=merged, source="fork", created=time.time(),
                               queue_pos=(lo - 1 if lo is not None else 0), zoom_level=parent.zoom_level,
                               parent=parent.id, fork_step=None if fork_step is None else int(fork_step),
                               resume=resume)
            if also is not None:
                also(db, tid)
        return self._get(tid)

    def requeue(self, trial_id: int, reason: str | None = None) -> Trial:
        """Put an ended trial back at the FRONT of the queue, to run its same setting again from the
        start as if it had never run (so it no longer counts toward any budget). Its run dir is kept,
        moved aside to runs/tNNNN.attempt-K, so the next start is a fresh run."""
        self._writable()
        t = self._get(trial_id)
        if not t.finished:
            raise StudyError(f"trial {t.id} is {t.status}; only an ended trial is re-queued")
        run_dir = self.run_dir(t.id)
        if run_dir.exists() or run_dir.is_symlink():
            rundir.set_aside(run_dir)
        with self.store.tx() as db:
            (lo,) = db.execute("SELECT MIN(queue_pos) FROM trials WHERE status = 'queued'").fetchone()
            Store.update(db, t.id, status="queued", queue_pos=(lo - 1 if lo is not None else 0), pid=None,
                         started=None, ended=None, objective=None, step=None, reason=reason)
        return self._get(t.id)
