"""A study's one owner: an exclusive flock on the study directory itself, and on STUDY/.lock, which
names the holder for the refusal.

The kernel drops an flock when the owning process dies, however it dies, so a crashed tuner never
leaves its study locked; a second tuner is refused with one line naming the holder (pid, host,
command), read from the lock file that only the holder writes. The lock that counts is the one on
the directory: a file can be deleted out from under a running tuner (`rm STUDY/.lock`, a cleanup
script), and a second tuner would then lock a new .lock and get in; the directory stays in place as
long as the study does. (.lock is flocked too, so a tuner from before this still sees the study in
use. Where the file system refuses an flock on a directory, .lock alone is the lock, as before.)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from tui_tuner.errors import StudyError
from tui_tuner.protocol import PRIVATE_FILE

LOCK_NAME = ".lock"


def holder_line() -> str:
    """Who we are, as written into the lock file: pid, host and command."""
    cmd = " ".join([Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]])
    if len(cmd) > 200:
        cmd = cmd[:197] + "..."
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": cmd,
                       "since": time.time()})


def describe_holder(text: str) -> str:
    """The holder named from the lock file's text, for the refusal message."""
    try:
        d = json.loads(text)
        return f"pid {d['pid']} on {d['host']} ({d['command']})"
    except (ValueError, KeyError, TypeError, RecursionError):
        return "another process"


class StudyLock:
    """An exclusive flock on STUDY/.lock, held for the life of the owner (the kernel frees it on death)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fd: int | None = None
        self._dir_fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise StudyError naming the process that holds it."""
        self._lock_directory()
        try:
            self._lock_file()
        except BaseException:
            self._unlock_directory()
            raise

    def _lock_directory(self) -> None:
        try:
            fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise StudyError(f"{self.path.parent}: cannot open the study directory: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StudyError(self._in_use(deleted_ok=True)) from None
            return   # no flock on directories here (some network file systems): .lock alone, as before
        self._dir_fd = fd

    def _unlock_directory(self) -> None:
        if self._dir_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._dir_fd, fcntl.LOCK_UN)
            os.close(self._dir_fd)
            self._dir_fd = None

    def _in_use(self, text: str | None = None, *, deleted_ok: bool = False) -> str:
        """The refusal: the study is in use by its holder, named from the lock file's text."""
        if text is None:
            try:
                with open(self.path, "rb") as f:
                    text = f.read(4096).decode("utf-8", "replace")
            except OSError:
                text = ""
        who = describe_holder(text)
        if deleted_ok and not text:
            who += f" (its {LOCK_NAME}, which names the holder, is gone)"
        return f"{self.path.parent}: study is in use by {who}; close that tuner first, or use another --study"

    def _lock_file(self) -> None:
        try:
            # os.open fds are non-inheritable (PEP 446): a trainer we spawn must never keep the lock alive.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        except OSError as e:
            raise StudyError(f"{self.path}: cannot create the lock file: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            text = ""
            with contextlib.suppress(OSError):
                text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StudyError(self._in_use(text)) from None
            raise StudyError(f"{self.path}: cannot lock: {e.strerror}") from None
        # Only the holder writes the file, and only after it has the lock.
        line = holder_line().encode()
        try:
            os.ftruncate(fd, 0)
            if os.pwrite(fd, line, 0) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as e:
            # A full disk (or quota) shows up here first; the study could not record anything either.
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            hint = " (the disk is full: free some space)" if e.errno in (errno.ENOSPC, errno.EDQUOT) else ""
            raise StudyError(f"{self.path}: cannot record this tuner as the study's owner: {e.strerror or e}{hint}") from None
        self._fd = fd

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._unlock_directory()

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None
