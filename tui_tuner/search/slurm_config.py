"""The `[study] executor` key and its `[study.slurm]` table: where trials run, and what a Slurm job asks for.

`executor = "local"` (the default) runs each trial as a process on this machine; `"slurm"` submits
each one as a Slurm job (runtime/slurm.py, through submitit). Pure: no processes, no files; every
refusal is one line naming the key and the rule, like the rest of the [study] table.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from tui_tuner.formatting import quoted_value
from tui_tuner.search.space_params import Fail, whole_number

EXECUTORS = ("local", "slurm")
SLURM_KEYS = ("partition", "gpus_per_trial", "cpus_per_trial", "mem", "time", "account", "extra")
# sbatch options the executor sets itself: a job that changed them would lose its log, its name in the
# run directory, or (--signal=USR2, submitit's default) kill the launch shim before its time limit.
OWN_OPTIONS = ("output", "error", "open-mode", "job-name", "signal", "chdir", "wrap", "array", "parsable")
_MEM = re.compile(r"^[1-9][0-9]*[KMGT]?$")
# Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_TIME = re.compile(r"^(?:(?P<d>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?"
                   r"|(?P<a>\d+)(?::(?P<b>\d+)(?::(?P<c>\d+))?)?)$")


@dataclass(frozen=True)
class SlurmConfig:
    """What each trial's job asks Slurm for ([study.slurm])."""

    time: int                          # the job's time limit, in minutes
    partition: str | None = None
    gpus_per_trial: int = 1
    cpus_per_trial: int | None = None
    mem: str | None = None             # as sbatch takes it: "32G", "500M"
    account: str | None = None
    extra: tuple[str, ...] = ()        # any other sbatch option, long form: "--qos=high", "--exclusive"

    def extra_options(self) -> dict[str, str | bool]:
        """The extra options as submitit's additional_parameters: "--qos=high" -> {"qos": "high"}."""
        out: dict[str, str | bool] = {}
        for opt in self.extra:
            key, eq, value = opt[2:].partition("=")
            out[key] = value if eq else True
        return out


def executor_config(raw: dict[str, Any], fail: Fail) -> tuple[str, SlurmConfig | None]:
    """(`[study] executor`, its `[study.slurm]` table or None) from the raw [study] table."""
    executor = raw.get("executor", "local")
    if executor not in EXECUTORS:
        raise fail("study.executor", f"must be one of {', '.join(EXECUTORS)}, got {quoted_value(executor)}")
    table = raw.get("slurm")
    if executor != "slurm":
        if table is not None:
            raise fail("study.slurm", 'is only read with executor = "slurm" in [study]')
        return executor, None
    if table is None:
        raise fail("study.slurm", 'missing: executor = "slurm" needs a [study.slurm] table with at least '
                                  'time (each job\'s time limit, e.g. time = "4:00:00")')
    if not isinstance(table, dict):
        raise fail("study.slurm", "must be a table ([study.slurm])")
    return executor, slurm_config(table, fail)


def slurm_config(table: dict[str, Any], fail: Fail) -> SlurmConfig:
    """The [study.slurm] table, checked."""
    for key in table:
        if key not in SLURM_KEYS:
            raise fail("study.slurm", f"unknown key {key!r} (allowed: {', '.join(SLURM_KEYS)}; "
                                      f"any other sbatch option goes in extra = [\"--name=value\"])")

    def text(key: str) -> str | None:
        v = table.get(key)
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip() or not v.isprintable() or v != v.strip():
            raise fail(f"study.slurm.{key}", f"must be a non-empty string without spaces around it, got {quoted_value(v)}")
        return v

    def count(key: str, default: int | None, minimum: int) -> int | None:
        return whole_number(table.get(key, default), f"study.slurm.{key}", minimum, fail)

    if "time" not in table:
        raise fail("study.slurm.time", 'missing: each job\'s time limit, as minutes (240) or as Slurm writes it '
                                       '("4:00:00", "1-00:00:00")')
    mem = text("mem")
    if mem is not None and not _MEM.match(mem):
        raise fail("study.slurm.mem", f'must be a size as sbatch takes it, like "32G" or "500M", got {quoted_value(mem)}')
    return SlurmConfig(time=minutes(table["time"], fail), partition=text("partition"),
                       gpus_per_trial=count("gpus_per_trial", 1, 0) or 0,
                       cpus_per_trial=count("cpus_per_trial", None, 1), mem=mem, account=text("account"),
                       extra=extra_options(table.get("extra", []), fail))


def minutes(value: Any, fail: Fail) -> int:
    """A Slurm time limit (minutes as an integer, or "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S") in whole minutes."""
    rule = 'must be minutes (240) or a Slurm time ("4:00:00", "1-00:00:00") of at least a minute'
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise fail("study.slurm.time", f"{rule}, got {quoted_value(value)}")
        return value
    m = _TIME.match(value) if isinstance(value, str) else None
    if m is None:
        raise fail("study.slurm.time", f"{rule}, got {quoted_value(value)}")
    g = {k: int(v) for k, v in m.groupdict().items() if v is not None}
    if "d" in g:
        seconds = g["d"] * 86400 + g["dh"] * 3600 + g.get("dm", 0) * 60 + g.get("ds", 0)
    elif "c" in g:
        seconds = g["a"] * 3600 + g["b"] * 60 + g["c"]
    else:
        seconds = g["a"] * 60 + g.get("b", 0)
    if seconds < 60:
        raise fail("study.slurm.time", f"{rule}, got {quoted_value(value)}")
    return math.ceil(seconds / 60)


def extra_options(extra: Any, fail: Fail) -> tuple[str, ...]:
    """`extra = ["--qos=high", "--exclusive"]`: sbatch options in long form, none the executor sets itself."""
    if not isinstance(extra, list) or not all(isinstance(o, str) for o in extra):
        raise fail("study.slurm.extra", f'must be a list of sbatch options like ["--qos=high"], got {quoted_value(extra)}')
    for opt in extra:
        key = opt[2:].partition("=")[0]
        if not opt.startswith("--") or not re.fullmatch(r"[a-z][a-z0-9-]*", key) or not opt.isprintable():
            raise fail("study.slurm.extra", f"write each sbatch option in long form (--name or --name=value), "
                                            f"got {quoted_value(opt)}")
        if key in OWN_OPTIONS:
            raise fail("study.slurm.extra", f"--{key} is set by tui-tuner for every job (its log, name and "
                                            f"warning signal), got {quoted_value(opt)}")
        if key in ("partition", "time", "account", "mem", "gpus-per-node", "cpus-per-task"):
            raise fail("study.slurm.extra", f"--{key} has its own key in [study.slurm], got {quoted_value(opt)}")
    return tuple(extra)
