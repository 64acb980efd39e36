"""Zero-code adapters: drive a training script that knows nothing of tui-tuner.

Settings go in as command-line flags (each parameter's `flag`, in its `flag_style` or the study's),
and metrics come out of its output through the `[study.metrics]` patterns, matched by RE2 in linear
time (a user's pattern can never hang the tuner). Also holds the small pieces both kinds of run
share: the argv a trial runs (the venv's python for a leading "python", `{run_dir}` and `{trial}`
expanded) and the text reader of output.log (a protocol.Tail).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tui_tuner.core.space import STEP_METRIC, Space, compile_pattern
from tui_tuner.errors import RunError
from tui_tuner.protocol import Tail, last_lines

# A leading bare interpreter name runs in the tuner's own venv, so `python train.py` sees the same
# packages (torch, tui_tuner) as the tuner does, whatever PATH says over SSH.
_PYTHON_NAMES = ("python", "python3", f"python3.{sys.version_info.minor}")
# One output line longer than this is cut: a script printing megabytes without a newline must
# not make the tuner buffer all of it.
MAX_LINE = 64 * 1024
# Metric patterns see at most this much of a line: metrics sit in the first few hundred characters
# of a log line, and even linear-time matching costs time per character per pattern.
MATCH_CHARS = 4096
# Per-run placeholders in `command` and in flag values, so parallel and forked trials do not
# share (and overwrite) an --out_dir or a --save path.
PLACEHOLDERS = ("{run_dir}", "{trial}")


def python_argv(command: Iterable[str]) -> list[str]:
    """The study command with a leading "python"/"python3" replaced by this interpreter."""
    argv = list(command)
    if argv and argv[0] in _PYTHON_NAMES:
        argv[0] = sys.executable
    return argv


def format_value(value: Any) -> str:
    """A parameter value as a command-line word: ints exact, floats round-trip, strings as is."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        # repr is the shortest text that parses back to the same float (1e-05, 0.1, 3.0).
        return repr(value)
    return str(value)


def flag_args(space: Space, params: dict[str, Any], style: str | None = None) -> list[str]:
    """The flags that hand `params` to a zero-code script, one argv word each (never a shell).

    "space" style gives `--name value` (a boolean: `--name` when true, nothing when false);
    "equals" style gives `--name=value` (a boolean: `--name=True` / `--name=False`). A parameter's
    own `flag_style` wins over `style`, which defaults to the study's.
    """
    default = style or space.config.flag_style
    out: list[str] = []
    for name, value in params.items():
        p = space[name] if name in space else None
        flag = p.flag if p is not None else f"--{name}"
        if (p.flag_style if p is not None and p.flag_style else default) == "equals":
            out.append(f"{flag}={format_value(value)}")
        elif isinstance(value, bool):
            if value:
                out.append(flag)
        else:
            out.extend([flag, format_value(value)])
    return out


def expand(word: str, run_dir: str | os.PathLike[str] | None = None, trial: int | None = None) -> str:
    """One argv word with `{run_dir}` and `{trial}` replaced; RunError when one is used but not given.

    Only these two exact names are placeholders: other braces (a JSON value, "{epoch}.pt") stay.
    """
    if "{" not in word:
        return word
    for token, value in zip(PLACEHOLDERS, (run_dir, trial), strict=True):
        if token in word:
            if value is None:
                raise RunError(f"the command uses {token}, but no value was given for it: {word!r}")
            word = word.replace(token, str(value))
    return word


def command_argv(space: Space, params: dict[str, Any], *, run_dir: str | os.PathLike[str] | None = None,
                 trial: int | None = None, python: bool = True) -> list[str]:
    """The full argv of one trial: the study command, plus the flags for a zero-code study.

    `{run_dir}` and `{trial}` in the command and in flag values become this run's directory and
    trial id (RunError when the command uses one and it is not given). `python=False` keeps a
    leading "python" as written (for an export, which runs elsewhere) instead of this interpreter.
    """
    argv = python_argv(space.config.command) if python else list(space.config.command)
    if space.config.zero_code:
        argv += flag_args(space, params)
    return [expand(w, run_dir, trial) for w in argv]


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


class LineTail(Tail):
    """output.log read line by line as text: a protocol.Tail with carriage returns as line ends too,
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
