"""The argv one trial runs: the study command, then (zero-code) the tuned flags, placeholders expanded.

A leading bare "python" becomes the tuner's own interpreter (unless the space says
`python = "path"`); flags follow each parameter's `flag_style` (or the study's); `{run_dir}` and
`{trial}` expand per run. Pure: the runner spawns it, the export writes it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tui_tuner.errors import RunError

if TYPE_CHECKING:   # core/study_config.py uses this module's names, and core/space.py uses it
    from tui_tuner.core.space import Space

# A leading bare interpreter name runs in the tuner's own venv, so `python train.py` sees the same
# packages (torch, tui_tuner) as the tuner does, whatever PATH says over SSH.
_PYTHON_NAMES = ("python", "python3", f"python3.{sys.version_info.minor}")
# Per-run placeholders in `command` and in flag values, so parallel and forked trials do not
# share (and overwrite) an --out_dir or a --save path.
PLACEHOLDERS = ("{run_dir}", "{trial}")


def python_names() -> tuple[str, ...]:
    """The bare interpreter names a leading command word is replaced for."""
    return _PYTHON_NAMES


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
    leading "python" as written (for an export, which runs elsewhere) instead of this interpreter;
    so does the space's `python = "path"`.
    """
    command, flags = command_parts(space, params, run_dir=run_dir, trial=trial, python=python)
    return command + flags


def command_parts(space: Space, params: dict[str, Any], *, run_dir: str | os.PathLike[str] | None = None,
                  trial: int | None = None, python: bool = True) -> tuple[list[str], list[str]]:
    """`command_argv` in its two parts: the command words, and the flags a zero-code study adds."""
    swap = python and space.config.python == "tuner"
    command = python_argv(space.config.command) if swap else list(space.config.command)
    flags = flag_args(space, params) if space.config.zero_code else []
    return [expand(w, run_dir, trial) for w in command], [expand(w, run_dir, trial) for w in flags]
