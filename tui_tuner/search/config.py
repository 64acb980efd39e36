"""The [study] table of a space file: StudyConfig, its keys and their validation.

What to run, what to optimise and how the search is driven (strategy, budgets, zoom, early
stopping, zero-code metric patterns). Every refusal is one line naming the file, key and rule.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import re2

from tui_tuner.errors import SpaceError
from tui_tuner.formatting import quoted_name, quoted_value
from tui_tuner.search import strategies
from tui_tuner.search.budget import parse_duration
from tui_tuner.search.devices import check_devices
from tui_tuner.search.early_stop_records import RULES, EarlyStopConfig
from tui_tuner.search.param import Param, is_number
from tui_tuner.search.pbt_config import PbtConfig, pbt_config
from tui_tuner.search.run_setup import PYTHON_MODES, check_cwd, check_env
from tui_tuner.search.slurm_config import SlurmConfig, executor_config
from tui_tuner.search.space_params import FLAG_STYLES, Fail, whole_number

# The strategies (their names, needs and the default) are search/strategies/'s: nothing here lists them.
EARLY_STOP_RULES = RULES
# A zoom keeps the best quarter of the trials and stays 15% wider than their box (tests/bench/search_quality.py).
ZOOM_TOP = 0.25
ZOOM_MARGIN = 0.15
STUDY_KEYS = {
    "name", "command", "objective", "direction", "parallel", "budget", "strategy", "seed",
    "reduce", "flag_style", "metrics", "stall_timeout", "stage", "round_size", "zoom_top",
    "zoom_margin", "early_stop", "early_stop_min_step", "early_stop_factor", "early_stop_max_step",
    "early_stop_trust_after",
    "step_budget", "time_budget", "autopilot", "autopilot_interval", "autopilot_fraction", "autopilot_resample",
    "cwd", "env", "python", "step_pattern", "fail_fast", "devices", "executor", "slurm",
}
# The reserved metrics key naming the pattern that captures a zero-code script's step counter
# (also `[study] step_pattern`, or a group named `step` in a metric's own pattern).
STEP_METRIC = "step"


def compile_pattern(pattern: str) -> Any:
    """A metric pattern compiled by RE2 (linear-time matching); ValueError saying why RE2 refuses it.

    RE2 has no backtracking, so no pattern can make matching a line hang the tuner; in exchange it
    lacks backreferences, lookahead, lookbehind and \\Z.
    """
    options = re2.Options()
    options.log_errors = False   # else RE2 logs each refusal to stderr on top of our one line
    try:
        return re2.compile(pattern, options)
    except re2.error as e:
        why = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
    try:
        re.compile(pattern)
    except re.error:
        raise ValueError(f"invalid regular expression: {why}") from None
    raise ValueError(f"uses syntax RE2 lacks ({why}); patterns are matched by RE2 in linear time, so "
                     f"backreferences, lookahead, lookbehind and \\Z are not available") from None


@dataclass(frozen=True)
class StudyConfig:
    """The [study] table: what to run, what to optimise, and how the search is driven."""

    name: str
    command: tuple[str, ...]
    objective: str
    direction: str = "minimize"
    parallel: int = 1                  # runs at once (1 to start with when auto_k)
    auto_k: bool = False               # parallel = "auto": auto-k chooses it from measured throughput
    budget: int = 20
    strategy: str = field(default_factory=lambda: strategies.default()[0])
    seed: int | None = None
    reduce: str = "best"
    flag_style: str = "space"
    metrics: dict[str, str] = field(default_factory=dict)
    stall_timeout: float = 300.0
    stage: int = 4
    round_size: int = 0
    zoom_top: float = ZOOM_TOP
    zoom_margin: float = ZOOM_MARGIN
    early_stop: EarlyStopConfig = field(default_factory=lambda: early_stop_config("none"))
    step_budget: int | None = None     # the total of steps all trials may report
    time_budget: float | None = None   # seconds of wall clock since the study first started a trial
    autopilot: PbtConfig = field(default_factory=lambda: pbt_config("none"))
    cwd: str | None = None             # where trials run, relative to the space file (None: where the tuner started)
    env: dict[str, str] = field(default_factory=dict)   # [study.env]: added to each trial's environment
    python: str = "tuner"              # "tuner": a leading bare python is the tuner's own; "path": PATH's
    fail_fast: bool = True             # pause the queue on one repeated mistake (study/fail_fast.py)
    # The GPUs runs go to, one each (search/devices.py): "auto", the listed indices, or None (no
    # CUDA_VISIBLE_DEVICES set, as before). `parallel` then counts runs per device.
    devices: tuple[str, ...] | str | None = None
    executor: str = "local"            # where trials run: "local" processes or "slurm" jobs
    slurm: SlurmConfig | None = None   # [study.slurm], with executor = "slurm"
    # No strategy named and the default's packages missing: why another one searches ("" = none).
    strategy_fallback: str = ""

    @property
    def zero_code(self) -> bool:
        """True when the trainer knows nothing of tui-tuner (metrics come from its output)."""
        return bool(self.metrics)

    @property
    def maximize(self) -> bool:
        """True when larger objective values are better."""
        return self.direction == "maximize"

    def better(self, a: float, b: float) -> bool:
        """True when objective a is strictly better than b in this study's direction."""
        return a > b if self.maximize else a < b


NAME_MAX = 255   # bytes in one file name (ext4, xfs, btrfs): the study name is its directory's


def build_study_config(raw: dict[str, Any], params: dict[str, Param], fail: Fail,
                       default_name: str) -> StudyConfig:
    """The [study] table as a StudyConfig; `fail(where, rule)` makes the error raised for bad input."""
    for key in raw:
        if key not in STUDY_KEYS:
            raise fail("study", f"unknown key {key!r} (allowed: {', '.join(sorted(STUDY_KEYS))})")
    name = raw.get("name", default_name)
    if isinstance(name, str) and len(name.strip().encode("utf-8", "replace")) > NAME_MAX:
        # It names the study's directory (studies/NAME/): a longer one is no file name.
        raise fail("study.name", f"must be at most {NAME_MAX} bytes (it names the study's directory), "
                                 f"got {len(name.strip())} characters starting {name.strip()[:20]!r}")
    if (not isinstance(name, str) or not name.strip() or "/" in name or not name.isprintable()
            or name.strip() in (".", "..")):
        raise fail("study.name", f"must be a non-empty string without '/' or control characters (newline, "
                                 f"tab), and not . or .., got {quoted_value(name)}")
    if "command" not in raw:
        raise fail("study.command", "missing: the argv list that runs one trial, e.g. "
                                    "[\"python\", \"train.py\"]")
    command = raw["command"]
    if isinstance(command, str):
        raise fail("study.command", "must be an argv list like [\"python\", \"train.py\"], "
                                    "not a shell string")
    if (not isinstance(command, list) or not command
            or not all(isinstance(c, str) and c for c in command)):
        raise fail("study.command", "must be a non-empty list of non-empty strings")
    if "objective" not in raw:
        raise fail("study.objective", "missing: the metric trials are ranked by, e.g. \"val_loss\"")
    objective = raw["objective"]
    if not isinstance(objective, str) or not objective.strip():
        raise fail("study.objective", f"must be a metric name, got {quoted_value(objective)}")

    def choice(key: str, allowed: tuple[str, ...], default: str) -> str:
        v = raw.get(key, default)
        if v not in allowed:
            raise fail(f"study.{key}", f"must be one of {', '.join(allowed)}, got {quoted_value(v)}")
        return v

    def integer(key: str, default: int | None, minimum: int) -> int | None:
        return whole_number(raw.get(key, default), f"study.{key}", minimum, fail)

    def flag(key: str, default: bool) -> bool:
        v = raw.get(key, default)
        if not isinstance(v, bool):
            raise fail(f"study.{key}", f"must be true or false, got {quoted_value(v)}")
        return v

    def number(key: str, default: float, lo: float, hi: float, lo_open: bool = True) -> float:
        v = raw.get(key, default)
        ok = is_number(v) and (v > lo if lo_open else v >= lo) and v <= hi
        if not ok:
            bracket = "(" if lo_open else "["
            raise fail(f"study.{key}", f"must be a number in {bracket}{quoted_value(lo)}, {quoted_value(hi)}], got {quoted_value(v)}")
        return float(v)

    metrics = raw.get("metrics", {})
    if not isinstance(metrics, dict):
        raise fail("study.metrics", "must be a table of metric name = 'regular expression'")
    for mname, pattern in metrics.items():
        where = f"study.metrics.{quoted_name(mname)}"
        if not isinstance(pattern, str):
            raise fail(where, f"must be a regular expression string, got {quoted_value(pattern)}")
        try:
            rx = compile_pattern(pattern)
        except ValueError as e:
            raise fail(where, f"{e}, got {quoted_value(pattern)}") from None
        check_groups(rx, where, fail, step_group=mname != STEP_METRIC)
    step_pattern = raw.get("step_pattern")
    if step_pattern is not None:
        if not isinstance(step_pattern, str):
            raise fail("study.step_pattern", f"must be a regular expression string, got {quoted_value(step_pattern)}")
        if not metrics:
            raise fail("study.step_pattern", "reads the step from a zero-code script's output: it needs [study.metrics]")
        if STEP_METRIC in metrics:
            raise fail("study.step_pattern", f"and study.metrics.{STEP_METRIC} both give the step: keep one")
        try:
            check_groups(compile_pattern(step_pattern), "study.step_pattern", fail, step_group=False)
        except ValueError as e:
            raise fail("study.step_pattern", f"{e}, got {quoted_value(step_pattern)}") from None
        metrics = {**metrics, STEP_METRIC: step_pattern}
    if metrics and objective not in metrics:
        raise fail("study.objective", f"{objective!r} is not among [study.metrics] "
                                      f"({', '.join(metrics)}), so it would never be reported")

    zoom_top = raw.get("zoom_top", ZOOM_TOP)
    if (not is_number(zoom_top) or not math.isfinite(zoom_top) or zoom_top <= 0
            or (zoom_top >= 1 and not float(zoom_top).is_integer())):
        raise fail("study.zoom_top", f"must be a fraction in (0, 1) or a count >= 1 of best trials, "
                                     f"got {quoted_value(zoom_top)}")

    stage = raw.get("stage", 4)
    if not isinstance(stage, int) or isinstance(stage, bool) or not 1 <= stage <= 4:
        raise fail("study.stage", f"must be 1, 2, 3 or 4 (search tiers <= stage), got {quoted_value(stage)}")

    time_budget = raw.get("time_budget")
    if time_budget is not None:
        try:
            time_budget = parse_duration(time_budget)
        except ValueError as e:
            raise fail("study.time_budget", str(e)) from None
    rule_args = (choice("early_stop", EARLY_STOP_RULES, "none"), integer("early_stop_min_step", None, 1),
                 integer("early_stop_factor", 3, 2), integer("early_stop_max_step", None, 1),
                 integer("early_stop_trust_after", None, 0))
    try:
        early_stop = early_stop_config(*rule_args)
    except SpaceError as e:
        raise fail(e.where or "study", e.rule or e.message) from None

    parallel = raw.get("parallel", 1)
    auto_k = parallel == "auto"
    default = default_strategy()
    if not auto_k and (not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1):
        raise fail("study.parallel", f'must be an integer >= 1 or "auto", got {quoted_value(parallel)}')

    try:
        autopilot = pbt_config(raw.get("autopilot", "none"), raw.get("autopilot_interval"),
                               raw.get("autopilot_fraction"), raw.get("autopilot_resample"))
    except SpaceError as e:
        raise fail(e.where or "study", e.rule or e.message) from None

    env = check_env(raw.get("env"), fail)
    executor, slurm = executor_config(raw, fail)
    devices = check_devices(raw.get("devices"), env, fail)
    if devices is not None and executor == "slurm":
        raise fail("study.devices", 'is for the local executor: on Slurm each job gets its GPUs from '
                                    '[study.slurm] gpus_per_trial, so leave devices out')

    return StudyConfig(
        name=name.strip(),
        command=tuple(command),
        objective=objective,
        direction=choice("direction", ("minimize", "maximize"), "minimize"),
        parallel=1 if auto_k else parallel,
        auto_k=auto_k,
        budget=integer("budget", 20, 1),
        strategy=choice("strategy", strategies.names(), default[0]),
        strategy_fallback="" if "strategy" in raw else default[1],
        seed=integer("seed", None, 0),
        reduce=choice("reduce", ("best", "last"), "best"),
        flag_style=choice("flag_style", FLAG_STYLES, "space"),
        metrics=dict(metrics),
        stall_timeout=number("stall_timeout", 300.0, 0.0, 1e9),
        stage=stage,
        round_size=integer("round_size", 0, 0),
        zoom_top=float(zoom_top),
        zoom_margin=number("zoom_margin", ZOOM_MARGIN, 0.0, 1.0, lo_open=False),
        early_stop=early_stop,
        step_budget=integer("step_budget", None, 1),
        time_budget=time_budget,
        autopilot=autopilot,
        cwd=check_cwd(raw.get("cwd"), fail),
        env=env,
        python=choice("python", PYTHON_MODES, "tuner"),
        fail_fast=flag("fail_fast", True),
        devices=devices,
        executor=executor,
        slurm=slurm,
    )


def check_groups(rx: Any, where: str, fail: Fail, *, step_group: bool) -> None:
    """A metric pattern captures one value; with `step_group`, it may also name a group `step`
    that captures the step the value belongs to (the x axis of the curves)."""
    named_step = step_group and STEP_METRIC in getattr(rx, "groupindex", {})
    if rx.groups != 1 + named_step:
        extra = f" (and optionally one named (?P<{STEP_METRIC}>...))" if step_group else ""
        raise fail(where, f"the pattern needs exactly one capture group{extra}, got {rx.groups}")


def default_strategy() -> tuple[str, str]:
    """The strategy of a space that names none, and why it is not the first choice ("" when it is):
    the registry's most preferred strategy whose packages are installed (gp, else tpe, else
    coarse_to_fine; `strategy_fallback` says why, and the session tells the user once)."""
    return strategies.default()


def early_stop_config(rule: str, min_step: int | None = None, factor: int = 3,
                      max_step: int | None = None, trust_after: int | None = None) -> EarlyStopConfig:
    """The [study] early-stopping keys as an EarlyStopConfig; a SpaceError "study.KEY: rule" names
    the key that is wrong (also for a rule given as --early-stop).

    Neither step given: the most steps a trial runs is taken at run time, from the trainer's
    `max_steps` where it says one, else from the first trial that finishes (as Optuna's "auto")."""
    if rule not in EARLY_STOP_RULES:
        raise SpaceError.at("study.early_stop", f"must be one of {', '.join(EARLY_STOP_RULES)}, got {quoted_value(rule)}")
    if rule == "hyperband" and min_step is not None and max_step is not None and min_step > max_step:
        raise SpaceError.at("study.early_stop_min_step", f"must be <= early_stop_max_step ({max_step}) for "
                         f"hyperband, got {min_step}")
    return EarlyStopConfig(rule, min_step, factor, max_step, where="study.early_stop", trust_after=trust_after)
