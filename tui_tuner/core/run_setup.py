"""Where and how a trial's command runs: `[study] cwd`, `[study.env]` and `[study] python`.

Pure: the space file's keys checked (one line naming the key and the rule), then turned into one
trial's working directory and extra environment, with `{run_dir}` and `{trial}` expanded for it.
The runner spawns with them; `record` is what it writes to the run's command.json, which the export
reads to write the command that really ran (`tui-tuner export --format command`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tui_tuner.core.argv import expand, python_names
from tui_tuner.core.formatting import quoted_name, quoted_value
from tui_tuner.core.space_params import Fail
from tui_tuner.protocol import ENV_RUN_DIR

# `[study] python`: "tuner" runs a leading bare python/python3 with the tuner's own interpreter (so
# the trial sees the packages the tuner sees, whatever PATH says over SSH); "path" runs whatever
# PATH finds, like any other command.
PYTHON_MODES = ("tuner", "path")
COMMAND_FILE = "command.json"   # in the run dir: the argv, cwd and extra environment it ran with
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_cwd(value: Any, fail: Fail) -> str | None:
    """`[study] cwd`: a non-empty path string (relative to the space file), or None when absent."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise fail("study.cwd", f"must be a directory path (relative to the space file), got {quoted_value(value)}")
    return value


def check_env(value: Any, fail: Fail) -> dict[str, str]:
    """`[study.env]`: a table of variable name = string value."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail("study.env", "must be a table of NAME = \"value\" (e.g. [study.env] then PYTHONPATH = \"src\")")
    for name, v in value.items():
        where = f"study.env.{quoted_name(name)}"
        if not _ENV_NAME.match(name):
            raise fail(where, "a variable name is letters, digits and _ and does not start with a digit")
        if name == ENV_RUN_DIR:
            raise fail(where, "is set by the tuner for every run (its run directory); use {run_dir} instead")
        if not isinstance(v, str) or "\0" in v:
            raise fail(where, f"must be a string (quote numbers: \"1\"), got {quoted_value(v)}")
    return dict(value)


def trial_cwd(cwd: str | None, space_file: str | os.PathLike[str], default: Path,
              run_dir: str | os.PathLike[str], trial: int) -> Path:
    """The directory a trial runs in: `default` (where the tuner was started) when the space sets none,
    else its `cwd` with placeholders expanded, a relative one taken from the space file's directory."""
    if cwd is None:
        return Path(default).resolve()
    path = Path(expand(cwd, run_dir, trial)).expanduser()
    if not path.is_absolute():
        path = Path(space_file).resolve().parent / path
    return path.resolve()


def trial_env(env: Mapping[str, str], run_dir: str | os.PathLike[str], trial: int) -> dict[str, str]:
    """The extra environment of a trial: `[study.env]` with placeholders expanded."""
    return {name: expand(value, run_dir, trial) for name, value in env.items()}


def interpreter(argv: list[str], env: Mapping[str, str], cwd: Path) -> str | None:
    """The program argv[0] names, as an absolute path (found on the run's PATH), or None when not found."""
    if not argv:
        return None
    first = argv[0]
    # Absolute, but symlinks kept: a venv's bin/python is a link out of the venv, and only the
    # link's own path runs with the venv's packages.
    if os.sep in first:
        return os.path.normpath(os.path.join(cwd, os.path.expanduser(first)))
    found = shutil.which(first, path=env.get("PATH", os.defpath))
    return os.path.normpath(os.path.join(cwd, found)) if found else None


def record(command: list[str], flags: list[str], cwd: Path, extra_env: Mapping[str, str],
           env: Mapping[str, str]) -> dict[str, Any]:
    """The command.json of a run: its command words and flags as spawned, the program that ran,
    the directory and the extra environment (the space's [study.env], not the whole environment)."""
    argv = [*command, *flags]
    return {"command": command, "flags": flags, "executable": interpreter(argv, env, cwd),
            "python": command[0] in python_names() or Path(command[0]).name in python_names(),
            "cwd": str(cwd), "env": dict(extra_env)}
