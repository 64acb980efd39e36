"""Zero-code adapters: drive a training script that knows nothing of tui-tuner.

Settings go in as command-line flags (each parameter's `flag`, in its `flag_style` or the study's),
and metrics come out of its output through the `[study.metrics]` patterns, matched by RE2 in linear
time (a user's pattern can never hang the tuner). Also holds an incremental line reader for
output.log. The argv a trial runs is built in core/argv.py (re-exported here).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from tui_tuner.core.space import STEP_METRIC, compile_pattern

# One output line longer than this is cut: a script printing megabytes without a newline must
# not make the tuner buffer all of it.
MAX_LINE = 64 * 1024
# Metric patterns see at most this much of a line: metrics sit in the first few hundred characters
# of a log line, and even linear-time matching costs time per character per pattern.
MATCH_CHARS = 4096


class MetricParser:
    """Turns output lines into metric events with the study's [study.metrics] patterns.

    Each pattern has one capture group and is searched in each line. The step is the value the
    reserved `step` pattern captured last, or, without one, the count of lines that matched a metric.
    """

    def __init__(self, patterns: dict[str, str]) -> None:
        # RE2, never `re`: a pattern like (?:a+)+(x)$ backtracks for ages on "aaaa...!" under `re`
        # (with Ctrl-C only setting a flag, the tuner hung for good); RE2 is linear in the line.
        self.patterns = {name: compile_pattern(rx) for name, rx in patterns.items()}
        self.step_pattern = self.patterns.pop(STEP_METRIC, None)
        self.step: int | None = None
        self.matched_lines = 0

    def parse(self, line: str) -> dict[str, float]:
        """Metrics found in one line (non-numeric captures skipped); does not change the step."""
        line = line[:MATCH_CHARS]
        found: dict[str, float] = {}
        for name, rx in self.patterns.items():
            m = rx.search(line)
            if m is None:
                continue
            value = _number(m.group(1))
            if value is not None:
                found[name] = value
        return found

    def feed(self, line: str) -> dict[str, Any] | None:
        """One output line -> an event like the Protocol's {"step", "metrics"}, or None."""
        metrics = self.parse(line)
        step_seen = False
        if self.step_pattern is not None:
            m = self.step_pattern.search(line[:MATCH_CHARS])
            value = _number(m.group(1)) if m else None
            if value is not None and math.isfinite(value):
                self.step = int(value)
                step_seen = True
        if not metrics and not step_seen:
            return None
        if metrics:
            self.matched_lines += 1
        if self.step_pattern is None:
            self.step = self.matched_lines
        return {"step": self.step if self.step is not None else 0, "metrics": metrics}


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip().replace("_", ""))
    except ValueError:
        return None


class LineTail:
    """Reads a growing text file line by line; keeps a partial last line until it is completed.

    Carriage returns count as line ends too, so progress bars (tqdm) give one line per refresh.
    """

    def __init__(self, path: str | Path, offset: int = 0, *, max_bytes: int = 8 << 20) -> None:
        self.path = Path(path)
        self.offset = offset
        self.max_bytes = max_bytes   # read at most this much per call, so one poll stays short
        self.behind = False          # True when the last call stopped at max_bytes
        self._partial = b""

    def read_new(self) -> list[str]:
        """The complete lines written since the last call (empty when nothing new)."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            # Truncated or replaced: start over rather than read garbage offsets.
            self.offset, self._partial = 0, b""
        if size == self.offset:
            self.behind = False
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(min(size - self.offset, self.max_bytes))
        self.offset += len(data)
        self.behind = self.offset < size
        parts = re.split(rb"\r\n|\r|\n", self._partial + data)
        self._partial = parts.pop()
        if len(self._partial) > MAX_LINE:
            parts.append(self._partial[:MAX_LINE])
            self._partial = b""
        return [p[:MAX_LINE].decode("utf-8", "replace") for p in parts if p.strip()]

    def flush(self) -> list[str]:
        """New lines plus the unterminated last line (call once the writer has ended)."""
        lines = self.read_new()
        if self._partial.strip():
            lines.append(self._partial[:MAX_LINE].decode("utf-8", "replace"))
        self._partial = b""
        return lines


def tail_lines(path: str | Path, n: int = 20, *, max_bytes: int = 256 * 1024) -> list[str]:
    """The last n non-empty lines of a text file (reads at most max_bytes from its end)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except FileNotFoundError:
        return []
    lines = [ln.decode("utf-8", "replace") for ln in re.split(rb"\r\n|\r|\n", data) if ln.strip()]
    return lines[-n:] if n > 0 else []
