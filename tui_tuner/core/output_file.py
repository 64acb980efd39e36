"""The one writer of a file the user names (`export -o`, `plot -o`, the app's export).

A user-named path may be anything: a symlink into the study (`ln -s STUDY/study.db p.txt`), a
device (/dev/full), a FIFO, a directory, a hard link. So the path is resolved first, and a symlink
is judged by what it points to, exactly like a direct path:

- a target inside the study directory is refused (its database, space file, runs), except the
  names the caller allows there (the default STUDY/export-tNNNN.toml);
- only a regular file is written: a device, FIFO, socket or directory in its place is refused;
- the new text goes to a temporary file beside the resolved target, which then replaces that
  target whole (fsync, rename): a full disk leaves the old file as it was, the symlink itself stays
  a symlink, and a file hard-linked elsewhere keeps its other name's contents.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from tui_tuner.errors import StudyError
from tui_tuner.protocol import PRIVATE_FILE, write_atomic

STDOUT = "-"   # `-o -`: standard output, for every command that takes -o


def resolved(path: str | os.PathLike[str]) -> Path:
    """The path with every symlink followed (a dangling one: the path it would create)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def check_output(path: str | os.PathLike[str], *, study_dir: str | os.PathLike[str] | None = None,
                 allowed_in_study: Iterable[str] = (), protected: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """The resolved target that writing `path` would replace, or StudyError saying why it may not be.

    `allowed_in_study`: shell patterns of names a target may have directly inside `study_dir`;
    `protected`: more files (the study's space file) never to be written.
    """
    shown = os.fspath(path)
    try:
        target = resolved(path)
    except (OSError, ValueError) as e:   # a symlink loop, a NUL in the name
        raise StudyError(f"{shown}: cannot use this path: {getattr(e, 'strerror', None) or e}") from None
    if study_dir is not None:
        home = resolved(study_dir)
        if target == home or home in target.parents:
            allowed = target.parent == home and any(fnmatch.fnmatchcase(target.name, p) for p in allowed_in_study)
            if not allowed:
                where = "" if target == Path(os.path.abspath(shown)) else f" (it leads to {target})"
                raise StudyError(f"{shown}: is inside the study directory {study_dir}{where}; the study's own files "
                                 f"are never written over: write it elsewhere")
    for p in protected:
        if target == resolved(p):
            raise StudyError(f"{shown}: is the study's space file ({target}); write it elsewhere")
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise StudyError(f"{shown}: cannot write: {e.strerror or e}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise StudyError(f"{shown}: is a directory; give a file name like {Path(shown) / 'best.toml'}")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise StudyError(f"{shown}: is not a regular file ({_kind(st.st_mode)}); only a regular file is written")
    if not target.parent.is_dir():
        raise StudyError(f"{shown}: no such directory {Path(shown).parent}")
    return target


def write_output(path: str | os.PathLike[str], data: bytes, *, study_dir: str | os.PathLike[str] | None = None,
                 allowed_in_study: Iterable[str] = (), protected: Iterable[str | os.PathLike[str]] = (),
                 mode: int | None = None) -> Path:
    """Write `data` to the file `path` names, under the rules above; returns the file written (resolved).

    An existing file keeps its mode; a new one gets `mode` (None: 0666 less the umask), except that a
    new file inside the study is private (0600) like everything else there.
    """
    target = check_output(path, study_dir=study_dir, allowed_in_study=allowed_in_study, protected=protected)
    if study_dir is not None and resolved(study_dir) in target.parents:
        mode = PRIVATE_FILE
    try:
        write_atomic(target, data, mode=mode)
    except OSError as e:
        raise StudyError(f"{os.fspath(path)}: cannot write: {e.strerror or e}") from None
    return target


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"
