"""Opening a study directory: create it, or reopen it and reconcile its space; the refusals.

A new study gets space.toml, runs/ and the schema (space.toml first: a crash before the schema
commits leaves an empty db, which reopens as new). Reopening checks the stored space against
space.toml and the space passed, and refuses a second owner, a study.db lost over existing runs, a
space with other parameters or another objective (README.md, "Commands" and "When things go wrong").
"""

from __future__ import annotations

import secrets
import shlex
import time
from pathlib import Path

from tui_tuner.errors import StudyError
from tui_tuner.search.space import Space, parse_space
from tui_tuner.study import rundir
from tui_tuner.study.lock import StudyLock
from tui_tuner.study.store import (
    DB_NAME,
    PRIVATE_DIR,
    PRIVATE_FILE,
    RUNS_DIR,
    SPACE_NAME,
    Store,
    write_atomic,
)


def open_parts(directory: str | Path, space: Space | None, *, lock: bool,
               seed: int | None) -> tuple[Path, Space, Store, StudyLock | None]:
    """Create or reopen the study in `directory`: its path, space, open store and lock (see Study.open)."""
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
            create(d, space, store, seed)
        store.check_schema()
        space = reconcile(d, space, store, writable=lock)
        return d, space, store, owner
    except BaseException:
        if store is not None:
            store.close()
        if owner is not None:
            owner.release()
        raise


def create(d: Path, space: Space, store: Store, seed: int | None) -> int:
    """Make a new study in d: space.toml, runs/ and the schema; returns the seed recorded."""
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
        "space_file": space_file(space),
        "objective": space.config.objective,
        "direction": space.config.direction,
        "seed": int(seed),
    })
    return int(seed)


def reconcile(d: Path, space: Space | None, store: Store, *, writable: bool) -> Space:
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
                         f"({space_diff(original, stored)}); restore it or start a new study")
    if space is None:
        return stored
    if space.signature() != signature:
        raise StudyError(f"{d}: {space.path} has other parameters than this study "
                         f"({space_diff(stored, space)}); start a new study (--study NEWDIR) "
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
        store.set_meta({"space_text": space.text, "space_file": space_file(space)})
    return space


def space_file(space: Space) -> str:
    """The space's file as an absolute path when it is a real file (for exports), else its label."""
    p = Path(space.path)
    return str(p.resolve()) if p.is_file() else str(space.path)


def space_diff(old: Space, new: Space) -> str:
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
                         f"empty; run `tui-tuner recover {shlex.quote(str(d))}` to rebuild it")


def _empty_file(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False
