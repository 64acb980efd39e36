"""The decision log: every automatic decision (early stop, autopilot, auto-k) kept in the study, with an id.

A table of its own in study.db (created on first use, so studies made before it simply start with
an empty log), written in one transaction per decision like everything else in the study: a tuner
that dies loses none, and the next one lists the same decisions and knows which were undone. A
decision is undone at most once: `mark_undone` refuses a second time, atomically.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tui_tuner.core.store import Store
from tui_tuner.errors import StudyError

TABLE = "decisions"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    t         REAL NOT NULL,
    kind      TEXT NOT NULL,
    trial_id  INTEGER,
    message   TEXT NOT NULL,
    data      TEXT NOT NULL,        -- JSON object: the decision's numbers
    undone    TEXT,                 -- what the undo did, once undone
    undone_t  REAL
)
"""
_COLUMNS = "id, t, kind, trial_id, message, data, undone, undone_t"


@dataclass(frozen=True)
class Logged:
    """One decision as the study keeps it."""

    id: int
    t: float
    kind: str
    trial_id: int | None
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    undone: str | None = None
    undone_t: float | None = None

    @property
    def is_undone(self) -> bool:
        """True once an undo was carried out."""
        return self.undone is not None


def _row(row: tuple) -> Logged:
    id_, t, kind, trial_id, message, data, undone, undone_t = row
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = {}
    return Logged(int(id_), float(t), kind, trial_id, message, parsed if isinstance(parsed, dict) else {},
                  undone, undone_t)


class DecisionLog:
    """The study's decisions, oldest id first; written only by the tuner that owns the study."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ready = False

    def _exists(self) -> bool:
        if not self._ready:
            self._ready = bool(self.store.query(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)))
        return self._ready

    def _create(self) -> None:
        if not self._exists():
            with self.store.tx() as db:
                db.execute(_SCHEMA)
            self._ready = True

    def add(self, kind: str, trial_id: int | None, message: str, data: dict[str, Any] | None = None,
            t: float | None = None) -> Logged:
        """Keep one decision; returns it with its id. Numbers that are not plain JSON are kept as text."""
        self._create()
        blob = json.dumps(dict(data or {}), default=str)
        with self.store.tx() as db:
            cur = db.execute(f"INSERT INTO {TABLE} (t, kind, trial_id, message, data) VALUES (?, ?, ?, ?, ?)",
                             (time.time() if t is None else t, kind, trial_id, message, blob))
            new_id = cur.lastrowid
        return self.get(int(new_id))

    def get(self, decision_id: int) -> Logged:
        """One decision by its id (StudyError when there is none)."""
        rows = self.store.query(f"SELECT {_COLUMNS} FROM {TABLE} WHERE id = ?",
                                (int(decision_id),)) if self._exists() else []
        if not rows:
            raise StudyError(f"no decision #{decision_id} in this study")
        return _row(rows[0])

    def all(self, *, newest_first: bool = True, limit: int | None = None) -> list[Logged]:
        """The decisions, newest first by default."""
        if not self._exists():
            return []
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT {_COLUMNS} FROM {TABLE} ORDER BY id {order}"
        args: tuple = ()
        if limit is not None:
            sql += " LIMIT ?"
            args = (int(limit),)
        return [_row(r) for r in self.store.query(sql, args)]

    def latest(self, kind: str, trial_id: int) -> Logged | None:
        """The newest decision of a kind about a trial that is not undone, or None."""
        if not self._exists():
            return None
        rows = self.store.query(f"SELECT {_COLUMNS} FROM {TABLE} WHERE kind = ? AND trial_id = ? "
                                f"AND undone IS NULL ORDER BY id DESC LIMIT 1", (kind, int(trial_id)))
        return _row(rows[0]) if rows else None

    def check_undoable(self, decision_id: int) -> Logged:
        """The decision, or StudyError when it is unknown or already undone."""
        d = self.get(decision_id)
        if d.is_undone:
            raise StudyError(f"decision #{d.id} was already undone: {d.undone}")
        return d

    def mark_undone(self, decision_id: int, what: str) -> Logged:
        """Record that a decision was undone and what the undo did; StudyError the second time."""
        self._create()
        with self.store.tx() as db:
            cur = db.execute(f"UPDATE {TABLE} SET undone = ?, undone_t = ? WHERE id = ? AND undone IS NULL",
                             (what, time.time(), int(decision_id)))
            changed = cur.rowcount
        if not changed:
            self.check_undoable(decision_id)   # says why: unknown, or undone already
        return self.get(decision_id)
