"""The study database: SQLite (stdlib, WAL) rows for trials and meta values.

Every write is one transaction (BEGIN IMMEDIATE ... COMMIT), so a tuner killed at any moment leaves a
database that opens and reads; WAL lets `show`/`export` read while the tuner writes. The one owner
of a study is settled by its lock (study/lock.py).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tui_tuner.errors import StudyError
from tui_tuner.search.trials import ACTIVE, FINISHED, STATUSES, Trial
from tui_tuner.trainer.protocol import PRIVATE_DIR, PRIVATE_FILE, run_id, write_atomic

__all__ = ["ACTIVE", "FINISHED", "PRIVATE_DIR", "PRIVATE_FILE", "STATUSES", "Store",
           "Trial", "clean_objective", "first_line", "run_id", "sources", "write_atomic"]

# Where a trial came from besides a strategy's draw (search/strategies/ names those): the user.
USER_SOURCES = ("manual", "fork", "default")


def sources() -> tuple[str, ...]:
    """Every source a trial may have: a strategy's draw, or the user's (manual, fork, default)."""
    from tui_tuner.search import strategies

    return (*strategies.sources(), *USER_SOURCES)

DB_NAME = "study.db"
SPACE_NAME = "space.toml"
RUNS_DIR = "runs"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL              -- JSON
);
CREATE TABLE IF NOT EXISTS trials (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused, so run dirs never collide
    status     TEXT NOT NULL,
    params     TEXT NOT NULL,        -- JSON object, space order, types kept
    objective  REAL,
    parent     INTEGER,
    fork_step  INTEGER,
    resume     TEXT,
    source     TEXT NOT NULL,
    created    REAL NOT NULL,
    started    REAL,
    ended      REAL,
    reason     TEXT,
    step       INTEGER,
    queue_pos  INTEGER,              -- set while queued only
    zoom_level INTEGER NOT NULL DEFAULT 0,
    pid        INTEGER
);
CREATE INDEX IF NOT EXISTS trials_status ON trials (status);
"""

_COLUMNS = ("id", "status", "params", "objective", "parent", "fork_step", "resume", "source", "created",
            "started", "ended", "reason", "step", "queue_pos", "zoom_level", "pid")


def clean_objective(value: float | None) -> float | None:
    """An objective fit to store: a float, or None for missing and NaN (SQLite would store NaN as NULL)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def first_line(text: str | None, width: int) -> str:
    """The first line of a text (a trial's reason), spaces squeezed, cut to `width` with an ellipsis."""
    lines = (text or "").strip().splitlines()
    line = " ".join(lines[0].split()) if lines else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _why(e: BaseException) -> str:
    """An error's own words, without the errno prefix."""
    return getattr(e, "strerror", None) or str(e)


def _create_private(path: Path) -> None:
    """Create an empty database file readable by its owner only (SQLite would create it 0644)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def _row_to_trial(row: sqlite3.Row | tuple) -> Trial:
    d = dict(zip(_COLUMNS, row, strict=True))
    d["params"] = json.loads(d["params"])
    return Trial(**d)


class Store:
    """The SQLite side of a study: schema, transactions, trial rows and JSON meta values.

    Thread-safe: one connection guarded by a lock, so a UI worker thread and the event loop may share it.
    """

    def __init__(self, path: str | Path, *, create: bool = False, read_only: bool | None = None) -> None:
        """Open the database: the owner (create) may create and write it; anyone else reads it only.

        read_only (default: not create) opens it so that `show` and `export` work on a study the user
        cannot write (see `_connect_read_only`). A database this creates is private (0600), and so are
        the -wal and -shm files SQLite gives the same mode.
        """
        self.path = Path(path)
        self.read_only = (not create) if read_only is None else read_only
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        if self.read_only:
            self._db = self._connect_read_only()
            return
        try:
            if create:
                _create_private(self.path)
            self._db = self._connect(str(self.path))
            if create:
                self._db.execute("PRAGMA journal_mode = WAL")
        except (sqlite3.Error, OSError) as e:
            self.close()
            raise StudyError(f"{self.path}: cannot open the study database: {_why(e)}") from None

    @staticmethod
    def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly one call.
        db = sqlite3.connect(target, isolation_level=None, check_same_thread=False, timeout=10.0, uri=uri)
        try:
            db.execute("PRAGMA busy_timeout = 10000")
            # NORMAL in WAL mode: a killed process loses nothing committed; only power loss may drop the
            # last commits, never corrupt the file.
            db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _connect_read_only(self) -> sqlite3.Connection:
        """A read-only connection, also to a study whose files or directory the user cannot write.

        `mode=ro` reads through the WAL while a tuner writes; it needs the -shm file to exist or to be
        creatable. When it is not (a directory the user cannot write, no tuner running), `immutable=1`
        reads the database file alone, which is all there is as long as no -wal file exists; with
        one, reading the file alone could miss committed trials, so that is refused instead.
        """
        if not os.access(self.path, os.R_OK):
            raise StudyError(f"{self.path}: cannot read the study database: permission denied")
        uri = self.path.resolve().as_uri()
        try:
            return self._probe(uri + "?mode=ro")
        except sqlite3.Error as e:
            first = e
        wal = Path(f"{self.path}-wal")
        if wal.exists():
            raise StudyError(f"{self.path}: cannot read it here ({_why(first)}): {wal.name} holds changes a "
                             f"reader without write access to {self.path.parent} cannot merge; ask its owner "
                             f"to open the study once, or copy the study directory") from None
        try:
            return self._probe(uri + "?mode=ro&immutable=1")
        except sqlite3.Error as e:
            raise StudyError(f"{self.path}: cannot open the study database: {_why(e)}") from None

    def _probe(self, uri: str) -> sqlite3.Connection:
        db = self._connect(uri, uri=True)
        try:
            # The WAL's -shm is opened at the first read, not at connect: fail here, not later.
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            db.close()
            raise
        return db

    # -- transactions ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything inside commits together or not at all."""
        with self._lock:
            self._open()
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StudyError(f"{self.path}: cannot write: {e}") from None
            try:
                yield self._db
            except sqlite3.Error as e:
                # Disk full, an I/O error, a lock held too long: a study error, not a crash. A failing
                # ROLLBACK must not hide it (SQLite may have rolled back on its own).
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise StudyError(f"{self.path}: database error: {e}") from None
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise StudyError(f"{self.path}: cannot write: {e}") from None

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Run a read-only query and return all rows."""
        with self._lock:
            self._open()
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise StudyError(f"{self.path}: cannot read: {e}") from None

    def _open(self) -> None:
        if self._db is None:
            raise StudyError(f"{self.path}: the study is closed")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None  # type: ignore[assignment]

    # -- schema ---------------------------------------------------------------------------------

    def initialised(self) -> bool:
        """True when the database holds a study (a meta table with a schema version)."""
        rows = self.query("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'")
        if not rows:
            return False
        return bool(self.query("SELECT 1 FROM meta WHERE key='schema_version'"))

    def create_schema(self, meta: dict[str, Any]) -> None:
        """Create the tables and write the first meta values, in one transaction."""
        with self.tx() as db:
            # Statement by statement: executescript would COMMIT and split the transaction.
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            self.write_meta(db, {"schema_version": SCHEMA_VERSION, **meta})

    def check_schema(self) -> None:
        """Refuse a database written by a newer tui-tuner; older versions would be migrated here."""
        version = self.get_meta("schema_version", 0)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise StudyError(f"{self.path}: schema version {version} is newer than this tui-tuner "
                             f"understands ({SCHEMA_VERSION}); upgrade tui-tuner")

    # -- meta -----------------------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        """A JSON meta value, or default when it was never set."""
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_meta(self, values: dict[str, Any]) -> None:
        """Write some meta values in one transaction."""
        with self.tx() as db:
            self.write_meta(db, values)

    @staticmethod
    def write_meta(db: sqlite3.Connection, values: dict[str, Any]) -> None:
        """Write meta values inside a transaction already open (see tx)."""
        for key, value in values.items():
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, json.dumps(value)))

    # -- trials ---------------------------------------------------------------------------------

    def trial(self, trial_id: int) -> Trial | None:
        """The trial with this id, or None."""
        rows = self.query(f"SELECT {', '.join(_COLUMNS)} FROM trials WHERE id = ?", (int(trial_id),))
        return _row_to_trial(rows[0]) if rows else None

    def trials(self, where: str = "", args: tuple = (), order: str = "id") -> list[Trial]:
        """Trials matching an SQL condition, in an SQL order."""
        sql = f"SELECT {', '.join(_COLUMNS)} FROM trials"
        if where:
            sql += f" WHERE {where}"
        sql += f" ORDER BY {order}"
        return [_row_to_trial(r) for r in self.query(sql, args)]

    @staticmethod
    def insert(db: sqlite3.Connection, **fields: Any) -> int:
        """Insert one trial row inside a transaction; returns its id."""
        fields = dict(fields)
        fields["params"] = json.dumps(fields["params"])
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cur = db.execute(f"INSERT INTO trials ({names}) VALUES ({marks})", tuple(fields.values()))
        return int(cur.lastrowid)

    @staticmethod
    def update(db: sqlite3.Connection, trial_id: int, **fields: Any) -> None:
        """Update some columns of one trial inside a transaction."""
        if "params" in fields:
            fields["params"] = json.dumps(fields["params"])
        sets = ", ".join(f"{k} = ?" for k in fields)
        db.execute(f"UPDATE trials SET {sets} WHERE id = ?", (*fields.values(), int(trial_id)))
