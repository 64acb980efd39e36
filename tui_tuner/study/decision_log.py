"""The decision log: every decision about the runs (early stop, autopilot, auto-k, a hand move, a pin,
a fork) kept in the study, with its progress and its undo on the same row.

A table of its own in study.db (created on first use; a study made before it starts with an empty
log, and one made before the progress columns gets them added). A decision is written *before* it is
carried out (state "pending"), its steps are recorded on the row as they are taken, and it ends
"done", or "void" when it could not be carried out (its run ended first: the row says why). An undo
is recorded the same way (`undo_progress`, then `undone`), at most once. So a tuner killed in the
middle of one finds the row pending and finishes or rolls back what was half done.

`Decision` is the one class for a decision, kept or not yet kept (id None).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tui_tuner.errors import StudyError
from tui_tuner.study.store import Store

TABLE = "decisions"
PENDING, DONE, VOID = "pending", "done", "void"
AUTO, USER = "auto", "user"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    t         REAL NOT NULL,
    kind      TEXT NOT NULL,
    trial_id  INTEGER,
    message   TEXT NOT NULL,
    data      TEXT NOT NULL,        -- JSON object: the decision's numbers and what it does
    undone    TEXT,                 -- what the undo did, once undone
    undone_t  REAL,
    state     TEXT,                 -- pending, done or void (NULL: a row from before states: done)
    progress  TEXT,                 -- JSON object: the steps taken so far
    by        TEXT,                 -- auto or user
    undo_progress TEXT              -- JSON object: the undo's steps, once an undo began
)
"""
_ADDED = {"state": "TEXT", "progress": "TEXT", "by": "TEXT", "undo_progress": "TEXT"}
_COLUMNS = ("id", "t", "kind", "trial_id", "message", "data", "undone", "undone_t", *_ADDED)


@dataclass(frozen=True)
class Decision:
    """One decision: its kind, the trial it is about, what it says, its numbers, and what became of it."""

    kind: str
    trial_id: int | None
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None             # its id in the study's log, once kept there
    t: float = 0.0
    state: str = DONE
    progress: Mapping[str, Any] = field(default_factory=dict)
    by: str = AUTO
    undone: str | None = None
    undone_t: float | None = None
    undo_progress: Mapping[str, Any] | None = None

    @property
    def is_undone(self) -> bool:
        """True once an undo was carried out."""
        return self.undone is not None

    @property
    def pending(self) -> bool:
        """True while it is being carried out (or an undo of it is)."""
        return self.state == PENDING or (self.undo_progress is not None and self.undone is None)

    @property
    def automatic(self) -> bool:
        """True for a decision the tuner made on its own (not a key the user pressed)."""
        return self.by != USER


def _json(text: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {}


def _row(row: tuple) -> Decision:
    id_, t, kind, trial_id, message, data, undone, undone_t, state, progress, by, undo_progress = row
    return Decision(kind, trial_id, message, _json(data), int(id_), float(t), state or DONE, _json(progress),
                    by or AUTO, undone, undone_t, _json(undo_progress) if undo_progress is not None else None)


def _blob(d: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(d or {}), default=str)


class DecisionLog:
    """The study's decisions, oldest id first; written only by the tuner that owns the study."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._columns: tuple[str, ...] | None = None

    def _present(self) -> tuple[str, ...]:
        """The table's columns ((): no table yet); a read-only reader of an old study lacks the new ones."""
        if not self._columns:
            rows = self.store.query(f"PRAGMA table_info({TABLE})")
            self._columns = tuple(r[1] for r in rows)
        return self._columns

    def _select(self) -> str:
        have = self._present()
        return ", ".join(c if c in have else "NULL" for c in _COLUMNS)

    def _create(self) -> None:
        have = self._present()
        if have and all(c in have for c in _ADDED):
            return
        with self.store.tx() as db:
            db.execute(_SCHEMA)
            present = {r[1] for r in db.execute(f"PRAGMA table_info({TABLE})")}
            for name, kind in _ADDED.items():
                if name not in present:
                    db.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {kind}")
        self._columns = None

    def add(self, kind: str, trial_id: int | None, message: str, data: Mapping[str, Any] | None = None, *,
            state: str = DONE, by: str = AUTO, progress: Mapping[str, Any] | None = None, t: float | None = None,
            also: Callable[[sqlite3.Connection], None] | None = None) -> Decision:
        """Keep one decision; returns it with its id. Numbers that are not plain JSON are kept as text.

        `also(db)` writes more in the same transaction (a decider's history, a setting), so the
        decision and what it changed are kept together or not at all.
        """
        self._create()
        with self.store.tx() as db:
            cur = db.execute(f"INSERT INTO {TABLE} (t, kind, trial_id, message, data, state, progress, by) "
                             f"VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (time.time() if t is None else t, kind, trial_id, message, _blob(data), state,
                              _blob(progress), by))
            new_id = int(cur.lastrowid)
            if also is not None:
                also(db)
        return self.get(new_id)

    def update(self, decision_id: int, *, progress: Mapping[str, Any] | None = None, state: str | None = None,
               message: str | None = None, db: sqlite3.Connection | None = None) -> None:
        """Record a step taken (progress merged in), a new state or message; `db`: inside that transaction."""
        def write(conn: sqlite3.Connection) -> None:
            row = conn.execute(f"SELECT progress FROM {TABLE} WHERE id = ?", (int(decision_id),)).fetchone()
            if row is None:
                raise StudyError(f"no decision #{decision_id} in this study")
            merged = {**_json(row[0]), **dict(progress or {})}
            conn.execute(f"UPDATE {TABLE} SET progress = ?, state = COALESCE(?, state), "
                         f"message = COALESCE(?, message) WHERE id = ?",
                         (_blob(merged), state, message, int(decision_id)))
        self._write(write, db)

    def update_undo(self, decision_id: int, progress: Mapping[str, Any],
                    db: sqlite3.Connection | None = None) -> None:
        """Record a step of an undo (progress merged in); the first call marks the undo begun."""
        def write(conn: sqlite3.Connection) -> None:
            row = conn.execute(f"SELECT undo_progress, undone FROM {TABLE} WHERE id = ?",
                               (int(decision_id),)).fetchone()
            if row is None:
                raise StudyError(f"no decision #{decision_id} in this study")
            if row[1] is not None:
                raise StudyError(f"decision #{decision_id} was already undone: {row[1]}")
            merged = {**_json(row[0]), **dict(progress)}
            conn.execute(f"UPDATE {TABLE} SET undo_progress = ? WHERE id = ?", (_blob(merged), int(decision_id)))
        self._write(write, db)

    def _write(self, write: Callable[[sqlite3.Connection], None], db: sqlite3.Connection | None) -> None:
        if db is not None:
            write(db)
            return
        self._create()
        with self.store.tx() as conn:
            write(conn)

    def get(self, decision_id: int) -> Decision:
        """One decision by its id (StudyError when there is none)."""
        rows = self.store.query(f"SELECT {self._select()} FROM {TABLE} WHERE id = ?",
                                (int(decision_id),)) if self._present() else []
        if not rows:
            raise StudyError(f"no decision #{decision_id} in this study")
        return _row(rows[0])

    def all(self, *, newest_first: bool = True, limit: int | None = None) -> list[Decision]:
        """The decisions, newest first by default."""
        if not self._present():
            return []
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT {self._select()} FROM {TABLE} ORDER BY id {order}"
        args: tuple = ()
        if limit is not None:
            sql += " LIMIT ?"
            args = (int(limit),)
        return [_row(r) for r in self.store.query(sql, args)]

    def unfinished(self) -> list[Decision]:
        """The decisions still being carried out or undone (a tuner died in the middle), oldest first."""
        return [d for d in self.all(newest_first=False) if d.pending]

    def latest(self, kind: str, trial_id: int) -> Decision | None:
        """The newest decision of a kind about a trial that is not undone, or None."""
        found = [d for d in self.all() if d.kind == kind and d.trial_id == int(trial_id) and not d.is_undone]
        return found[0] if found else None

    def check_undoable(self, decision_id: int) -> Decision:
        """The decision, or StudyError when it is unknown or already undone."""
        d = self.get(decision_id)
        if d.is_undone:
            raise StudyError(f"decision #{d.id} was already undone: {d.undone}")
        return d

    def mark_undone(self, decision_id: int, what: str) -> Decision:
        """Record that a decision was undone and what the undo did; StudyError the second time."""
        self._create()
        with self.store.tx() as db:
            cur = db.execute(f"UPDATE {TABLE} SET undone = ?, undone_t = ?, "
                             f"undo_progress = COALESCE(undo_progress, '{{}}') WHERE id = ? AND undone IS NULL",
                             (what, time.time(), int(decision_id)))
            changed = cur.rowcount
        if not changed:
            self.check_undoable(decision_id)   # says why: unknown, or undone already
        return self.get(decision_id)
