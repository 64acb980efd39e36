"""Reading files that grow, incrementally: Tail (lines), JsonlTail (JSON objects) and last_lines.

The one reader of events.jsonl, control.jsonl and output.log, on both sides: the runner and recover
follow a run's events and output, the trainer its control file, each from a byte offset. Standard
library only (it runs inside the user's training process too; msgspec, a faster JSON parser, is used
when it is there); tui_tuner.trainer.protocol re-exports it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    # A C JSON parser for the tuner, which reads every line every run writes (thousands a second):
    # about 5x faster a line than the standard library. Optional, so that a trainer's environment
    # without it still imports this module.
    import msgspec
except ImportError:  # pragma: no cover - the tuner's own environment has it
    msgspec = None  # type: ignore[assignment]


class Tail:
    """The one incremental reader of a growing file: each call returns only its new complete lines.

    It remembers a byte offset, keeps an unfinished last line for the next call, tolerates the file
    not existing yet, reads at most `max_bytes` a call (`behind` says more is waiting), starts over
    when the file shrinks (replaced or truncated), and hands back a "line" longer than `max_line`
    without a newline cut to that length, so a writer that never ends its line cannot make the reader
    buffer all of it. `universal` makes carriage returns line ends too (progress bars in output.log);
    otherwise only "\n" ends a line (JSONL, where a "\r" may sit inside a string). Start from offset 0
    to re-read a file from the beginning (re-adopting a run after a restart).
    """

    def __init__(self, path: str | os.PathLike[str], offset: int = 0, *, max_bytes: int = 8 << 20,
                 max_line: int = 1 << 20, universal: bool = False) -> None:
        self.path = Path(path)
        self.offset = offset            # bytes consumed from the file (partial line included)
        self.max_bytes = max_bytes      # read at most this much per call, so one poll stays short
        self.max_line = max_line        # an unfinished line longer than this is handed back cut
        self.behind = False             # True when the last call stopped at max_bytes
        self._split = _UNIVERSAL.split if universal else _split_nl
        self._partial = b""
        self._ino: int | None = None    # the file read so far: another one at the path starts over

    @property
    def position(self) -> int:
        """Byte offset just after the last complete line returned (safe to persist and resume from)."""
        return self.offset - len(self._partial)

    def grew(self) -> bool:
        """True when the file is no longer the size last read (one stat: the trainer's hot path)."""
        try:
            return os.stat(self.path).st_size != self.offset
        except OSError:
            return False

    def read_lines(self, *, final: bool = False) -> list[bytes]:
        """The complete lines (without their ends) written since the last call; empty ones included.

        With final=True (the writer has ended) an unfinished last line is returned too, once caught
        up: a line cut at the max_bytes boundary is not a finished last line.
        """
        try:
            st = os.stat(self.path)
            size = st.st_size
            # Shrunk, or replaced by a new file (a requeued Slurm job's rerun: launch.py): from its start.
            if size < self.offset or (self._ino is not None and st.st_ino != self._ino):
                self.offset, self._partial = 0, b""
            self._ino = st.st_ino
            data = b""
            if size > self.offset:
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    data = f.read(min(size - self.offset, self.max_bytes))
        except OSError:   # not there yet, or not readable: nothing new to say
            return []
        self.offset += len(data)
        self.behind = self.offset < size
        if not data and not (final and self._partial):
            return []
        lines = self._split(self._partial + data if self._partial else data)
        self._partial = lines.pop()
        if self._partial and ((final and not self.behind) or len(self._partial) > self.max_line):
            lines.append(self._partial[:self.max_line])
            self._partial = b""
        return lines


_UNIVERSAL = re.compile(rb"\r\n|\r|\n")


def _split_nl(data: bytes) -> list[bytes]:
    return data.split(b"\n")


_FAST = msgspec.json.Decoder().decode if msgspec is not None else None
_FAST_REFUSED = (msgspec.DecodeError, RecursionError) if msgspec is not None else ()


def loads_line(line: bytes) -> Any:
    """One JSON value, as `json.loads` reads it (ValueError or RecursionError when it cannot).

    msgspec reads a well-formed line; what it refuses (NaN or Infinity literals, 1e400, a lone
    surrogate, a BOM, bad JSON) goes to the standard library, which decides: so every line means
    what it always meant, only faster.
    """
    if _FAST is not None:
        try:
            return _FAST(line)
        except _FAST_REFUSED:
            pass
    return json.loads(line)


class JsonlTail(Tail):
    """A Tail of an append-only JSONL file: new complete lines decoded as JSON objects.

    Lines that are not a JSON object (bad JSON, bad UTF-8, an array, an endless line) are counted
    as garbage and skipped; blank lines are skipped.
    """

    def read_new(self, *, final: bool = False) -> tuple[list[dict[str, Any]], int]:
        """New complete JSON objects and the number of garbage lines skipped since the last call."""
        out: list[dict[str, Any]] = []
        garbage = 0
        for line in self.read_lines(final=final):
            if not line.strip():
                continue
            try:
                obj = loads_line(line)
            except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
                garbage += 1
                continue
            if isinstance(obj, dict):
                out.append(obj)
            else:
                garbage += 1
        return out, garbage

    def read_all(self, *, final: bool = True) -> Iterator[dict[str, Any]]:
        """Every object from the current offset to the end of the file as it is now, in bounded reads.

        final=True (the default: the writer has ended) takes an unterminated last line too.
        """
        while True:
            objs, _garbage = self.read_new(final=final)
            yield from objs
            if not self.behind:
                return


def last_lines(path: str | os.PathLike[str], n: int | None, *, max_bytes: int = 256 * 1024) -> list[str]:
    """The last n non-empty lines of a text file (None: all in reach), reading at most max_bytes from its end.

    Not a Tail: it seeks from the end once instead of following the file from an offset.
    A missing or unreadable file has none.
    """
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return []
    lines = [ln.decode("utf-8", "replace") for ln in _UNIVERSAL.split(data) if ln.strip()]
    if n is None:
        return lines
    return lines[-n:] if n > 0 else []
