"""Zero-code adapters: drive a training script that knows nothing of tui-tuner.

Settings go in as command-line flags (each parameter's `flag`, in its `flag_style` or the study's),
and metrics come out of its output through the `[study.metrics]` patterns, matched by RE2 in linear
time (a user's pattern can never hang the tuner). Also holds the text reader of output.log (a
tailing.Tail). The argv a trial runs is built in core/argv.py.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from tui_tuner.core.study_config import STEP_METRIC, compile_pattern
from tui_tuner.protocol import STEP_MAX, step_of
from tui_tuner.tailing import Tail, last_lines

# One output line longer than this is cut: a script printing megabytes without a newline must
# not make the tuner buffer all of it.
MAX_LINE = 64 * 1024
# Metric patterns see at most this much of a line: metrics sit in the first few hundred characters
# of a log line, and even linear-time matching costs time per character per pattern.
MATCH_CHARS = 4096


class MetricParser:
    """Turns output lines into metric events with the study's [study.metrics] patterns.

    Each pattern has one capture group (the value) and is searched in each line; it may also name a
    group `step` that captures the step of that value (`loss = 'iter (?P<step>\\d+): loss ([0-9.]+)'`).
    The step is the one captured on the line, else the value the reserved `step` pattern (or
    `[study] step_pattern`) captured last, or, with neither, the count of lines that matched a metric.
    """

    def __init__(self, patterns: dict[str, str]) -> None:
        # RE2, never `re`: a pattern like (?:a+)+(x)$ backtracks for ages on "aaaa...!" under `re`
        # (with Ctrl-C only setting a flag, the tuner hung for good); RE2 is linear in the line.
        self.patterns = {name: compile_pattern(rx) for name, rx in patterns.items()}
        self.step_pattern = self.patterns.pop(STEP_METRIC, None)
        # name -> (the value's group, the step's group or 0)
        self.groups: dict[str, tuple[int, int]] = {}
        for name, rx in self.patterns.items():
            step = rx.groupindex.get(STEP_METRIC, 0)
            self.groups[name] = (2 if step == 1 else 1, step)
        self.real_steps = self.step_pattern is not None or any(s for _, s in self.groups.values())
        self.step: int | None = None
        self.matched_lines = 0

    def parse(self, line: str) -> dict[str, float]:
        """Metrics found in one line (non-numeric captures skipped); does not change the step.

        BadNumber when a capture is a number too big for a float (`val_loss 1e999`, 400 digits) or a
        step outside 0..2**63-1.
        """
        return self._scan(line)[0]

    def _scan(self, line: str) -> tuple[dict[str, float], int | None]:
        """The metrics in one line, and the step a metric's own `step` group captured there (or None)."""
        line = line[:MATCH_CHARS]
        found: dict[str, float] = {}
        step: int | None = None
        for name, rx in self.patterns.items():
            m = rx.search(line)
            if m is None:
                continue
            value_group, step_group = self.groups[name]
            value = _number(m.group(value_group))
            if value is not None:
                if math.isinf(value) and not _INFINITY.search(m.group(value_group)):
                    raise BadNumber(f"metric {name!r} is {_cut(m.group(value_group))}, too big for a number")
                found[name] = value
                if step_group:
                    s = _number(m.group(step_group))
                    if s is not None and math.isfinite(s):
                        step = step_of(s)
                        if step is None:
                            raise BadNumber(f"step {_cut(m.group(step_group))} is outside 0..{STEP_MAX}")
        return found, step

    def feed(self, line: str) -> dict[str, Any] | None:
        """One output line -> an event like the Protocol's {"step", "metrics"}, or None.

        A line whose step is outside 0..2**63-1 or whose metric overflows is {"bad": why}: skipped,
        the step unchanged.
        """
        try:
            metrics, line_step = self._scan(line)
        except BadNumber as e:
            return {"bad": str(e)}
        step_seen = line_step is not None
        if step_seen:
            self.step = line_step
        elif self.step_pattern is not None:
            m = self.step_pattern.search(line[:MATCH_CHARS])
            value = _number(m.group(1)) if m else None
            if value is not None and math.isfinite(value):
                step = step_of(value)
                if step is None:
                    return {"bad": f"step {_cut(m.group(1))} is outside 0..{STEP_MAX}"}
                self.step = step
                step_seen = True
        if not metrics and not step_seen:
            return None
        if metrics:
            self.matched_lines += 1
        if not self.real_steps:
            self.step = self.matched_lines
        return {"step": self.step if self.step is not None else 0, "metrics": metrics}


class BadNumber(ValueError):
    """A number in a metric line that no run can hold."""


_INFINITY = re.compile(r"inf", re.IGNORECASE)   # "inf", "-Infinity": a trainer's own non-finite value


def _cut(text: str, n: int = 30) -> str:
    text = text.strip()
    return text if len(text) <= n else f"{text[:n]}… ({len(text)} characters)"


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip().replace("_", ""))
    except ValueError:
        return None


class LineTail(Tail):
    """output.log read line by line as text: a tailing.Tail with carriage returns as line ends too,
    so progress bars (tqdm) give one line per refresh; each line cut to MAX_LINE characters."""

    def __init__(self, path: str | Path, offset: int = 0, *, max_bytes: int = 8 << 20) -> None:
        super().__init__(path, offset, max_bytes=max_bytes, max_line=MAX_LINE, universal=True)

    def read_new(self, *, final: bool = False) -> list[str]:
        """The non-blank lines written since the last call (final: the unterminated last one too)."""
        return [ln[:MAX_LINE].decode("utf-8", "replace") for ln in self.read_lines(final=final) if ln.strip()]

    def flush(self) -> list[str]:
        """New lines plus the unterminated last line (call once the writer has ended)."""
        lines: list[str] = []
        while True:
            lines += self.read_new(final=True)
            if not self.behind:
                return lines


def tail_lines(path: str | Path, n: int = 20, *, max_bytes: int = 256 * 1024) -> list[str]:
    """The last n non-empty lines of a text file (reads at most max_bytes from its end)."""
    return last_lines(path, n, max_bytes=max_bytes)
