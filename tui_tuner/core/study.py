"""A study: one directory holding the space, the ordered queue and every trial, owned by one tuner at a time.

The directory layout and the refusals (a second owner, a space with other parameters) are a contract
(DESIGN.md, "Study directory"). Each method that changes something is one SQLite transaction, so the
study survives the tuner being killed between any two statements.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from tui_tuner.core import rundir
from tui_tuner.core.sampling import Sampler, SearchState
from tui_tuner.core.space import Space, StudyConfig, parse_space
from tui_tuner.core.status import ACTIVE, FINISHED, STATUSES, sql_in
from tui_tuner.core.store import (
    DB_NAME,
    PRIVATE_DIR,
    PRIVATE_FILE,
    RUNS_DIR,
    SOURCES,
    SPACE_NAME,
    Store,
    StudyLock,
    Trial,
    clean_objective,
    run_id,
    write_atomic,
)
from tui_tuner.errors import StudyError

__all__ = ["ACTIVE", "FINISHED", "SOURCES", "STATUSES", "Study", "Trial", "default_dir", "run_id"]

ORDERS = ("best", "start", "id")


def default_dir(space: Space, root: str | Path = "studies") -> Path:
    """The default study directory for a space: ./studies/<study name>/."""
    return Path(root) / space.config.name


def _space_file(space: Space) -> str:
    """The space's file as an absolute path when it is a real file (for exports), else its label."""
    p = Path(space.path)
    return str(p.resolve()) if p.is_file() else str(space.path)


def _space_diff(old: Space, new: Space) -> str:
    """A short description of how two spaces' parameters differ, for the refusal message."""
    a = {n: p.definition() for n, p in old.params.items()}
    b = {n: p.definition() for n, p in new.params.items()}
    gone = [n for n in a if n not in b]
    added = [n for n in b if n not in a]
    if gone:
        return f"params.{gone[0]} is missing"
    if added:
        return f"params.{added[0]} is new"
    for name in a:
        for key in sorted(set(a[name]) | set(b[name])):
            if a[name].get(key) != b[name].get(key):
                return f"params.{name}.{key} was {a[name].get(key)!r}, now {b[name].get(key)!r}"
    return "the parameters differ"


def refuse_over_runs(d: Path) -> None:
    """Refuse to make a fresh study.db where runs/ already holds runs: it would mis-credit or overwrite them."""
    n = len(rundir.entries(d / RUNS_DIR))
    if n:
        raise StudyError(f"{d}: {RUNS_DIR}/ holds {n} run{'' if n == 1 else 's'} but {DB_NAME} is missing or "
                         f"empty; run `tui-tuner recover {d}` to rebuild it")


def _empty_file(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


class Study:
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
        d = Path(directory)
        if d.exists() and not d.is_dir():
            raise StudyError(f"{d}: not a directory")
        db_path = d / DB_NAME
        try:
            exists = db_path.exists()
        except OSError as e:   # a directory the user may not enter
            raise StudyError(f"{d}: cannot read the study: {e.strerror}") from None
        if not exists:
            refuse_over_runs(d)
            if not lock:
                raise StudyError(f"{d}: no study here (no {DB_NAME})")
            if space is None:
                raise StudyError(f"{d}: no study here; pass a space file to create one")
            try:
                d.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
            except OSError as e:
                raise StudyError(f"{d}: cannot create the study directory: {e.strerror}") from None
        owner = StudyLock(d) if lock else None
        if owner is not None:
            owner.acquire()
        store: Store | None = None
        try:
            if _empty_file(db_path):
                # Checked before SQLite opens it: opening would write a header into the empty file.
                refuse_over_runs(d)
            store = Store(db_path, create=lock)
            if not store.initialised():
                refuse_over_runs(d)
                if not lock or space is None:
                    raise StudyError(f"{d}: {DB_NAME} is not a tui-tuner study (no schema)")
                cls._create(d, space, store, seed)
            store.check_schema()
            space = cls._reconcile(d, space, store, writable=lock)
            study = cls(d, space, store, owner)
            return study
        except BaseException:
            if store is not None:
                store.close()
            if owner is not None:
                owner.release()
            raise

    @staticmethod
    def _create(d: Path, space: Space, store: Store, seed: int | None) -> None:
        if not space.text.strip():
            raise StudyError(f"{d}: the space has no file text to copy to {SPACE_NAME} (load it with load_space)")
        if seed is None:
            seed = space.config.seed if space.config.seed is not None else secrets.randbelow(2**31)
        # space.toml first: a crash before the schema commits leaves an empty db, which reopens as new.
        write_atomic(d / SPACE_NAME, space.text.encode("utf-8"), mode=PRIVATE_FILE)
        (d / RUNS_DIR).mkdir(mode=PRIVATE_DIR, exist_ok=True)
        store.create_schema({
            "created": time.time(),
            "name": space.config.name,
            "signature": space.signature(),
            "space_text": space.text,
            "space_file": _space_file(space),
            "objective": space.config.objective,
            "direction": space.config.direction,
            "seed": int(seed),
        })

    @staticmethod
    def _reconcile(d: Path, space: Space | None, store: Store, *, writable: bool) -> Space:
        """The space this session uses: the stored one, or the passed one if it searches the same thing."""
        toml_path = d / SPACE_NAME
        signature = store.get_meta("signature")
        if toml_path.exists():
            try:
                text = toml_path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise StudyError(f"{toml_path}: cannot read: {e}") from None
        else:
            # The db keeps the text too, so a deleted space.toml is not a lost study.
            text = store.get_meta("space_text", "")
            if writable:
                write_atomic(toml_path, text.encode("utf-8"), mode=PRIVATE_FILE)
        stored = parse_space(text, str(toml_path), default_name=store.get_meta("name", d.name))
        if stored.signature() != signature:
            original = parse_space(store.get_meta("space_text", ""), str(toml_path))
            raise StudyError(f"{toml_path}: was edited and its parameters no longer match the study "
                             f"({_space_diff(original, stored)}); restore it or start a new study")
        if space is None:
            return stored
        if space.signature() != signature:
            raise StudyError(f"{d}: {space.path} has other parameters than this study "
                             f"({_space_diff(stored, space)}); start a new study (--study NEWDIR) "
                             f"or pass the same file")
        old, new = stored.config, space.config
        if (old.objective, old.direction) != (new.objective, new.direction):
            raise StudyError(f"{d}: this study ranks trials by {old.objective} ({old.direction}), "
                             f"{space.path} by {new.objective} ({new.direction}); start a new study "
                             f"(--study NEWDIR) or pass the same file")
        if writable and space.text and space.text != text:
            # Same parameters, other settings (command, budget, parallel): the newer file wins, so
            # reopening without a space later runs what was run last.
            write_atomic(toml_path, space.text.encode("utf-8"))
            store.set_meta({"space_text": space.text, "space_file": _space_file(space)})
        return space

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

    # -- queue ----------------------------------------------------------------------------------

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
        if source not in SOURCES:
            raise StudyError(f"unknown trial source {source!r} (allowed: {', '.join(SOURCES)})")
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
                Store._set_meta(db, meta)
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

    def requeue(self, trial_id: int, reason: str | None = None) -> Trial:
        """Put an ended trial back at the front of the queue, to run its same setting again from the
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

    def add_fork(self, parent_id: int, params: dict[str, Any], fork_step: int | None,
                 resume: str | None) -> Trial:
        """Queue a fork of a trial at the FRONT: the parent's settings with `params` over them.

        `resume` is the checkpoint (relative to the study dir) the fork starts from; a bad value
        raises SpaceError and queues nothing.
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
        return self._get(tid)

    # -- queries --------------------------------------------------------------------------------

    def trial(self, trial_id: int) -> Trial:
        """The trial with this id (StudyError if there is none)."""
        return self._get(trial_id)

    def _rank(self, t: Trial) -> float:
        assert t.objective is not None
        return -t.objective if self.config.maximize else t.objective

    def trials(self, order: str = "best") -> list[Trial]:
        """All trials. order="best": done ones best first, then active, other ended ones, queued;
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
        # Done trials lead: a stopped or failed run's best-so-far must not outrank a finished one.
        def ranked(ts: list[Trial]) -> list[Trial]:
            scored = sorted((t for t in ts if t.objective is not None), key=lambda t: (self._rank(t), t.id))
            return scored + [t for t in ts if t.objective is None]

        done = ranked([t for t in rows if t.status == "done"])
        active = ranked([t for t in rows if t.active])
        ended = ranked([t for t in rows if t.finished and t.status != "done"])
        return done + active + ended + queued

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

