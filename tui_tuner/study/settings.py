"""What the user turned on stays on: the settings given by flag or key, kept in the study.

A flag (`--early-stop asha`, `--trials 40`, `--parallel auto`, ...) or a key in the app (`A`: the
autopilot) changes a setting of the [study] table for this study: it is kept in the study (meta
"settings") and wins over the space file on this open and every later one, until a flag or key
changes it again. `apply` is the one place where they meet the space's [study] table: it returns
the study's configuration with them applied (`dataclasses.replace`), and the lines that say what
was kept and what a flag changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from tui_tuner.errors import SpaceError, StudyError
from tui_tuner.search import strategies
from tui_tuner.search.config import StudyConfig, early_stop_config
from tui_tuner.search.early_stop_records import EarlyStopConfig
from tui_tuner.search.pbt_config import pbt_config

META = "settings"
KEYS = ("budget", "parallel", "strategy", "early_stop", "early_stop_min_step", "early_stop_max_step",
        "autopilot", "step_budget", "time_budget")
LABELS = {"budget": "trial budget", "parallel": "parallel", "strategy": "strategy",
          "early_stop": "early stop", "early_stop_min_step": "early-stop min step",
          "early_stop_max_step": "early-stop max step", "autopilot": "autopilot",
          "step_budget": "step budget", "time_budget": "time budget"}
FLAGS = {"budget": "--trials", "parallel": "--parallel", "strategy": "--strategy", "early_stop": "--early-stop",
         "early_stop_min_step": "--early-stop-min-step", "early_stop_max_step": "--early-stop-max-step",
         "autopilot": "--autopilot", "step_budget": "--step-budget", "time_budget": "--time-budget"}


def kept(study: Any) -> dict[str, Any]:
    """The settings the study keeps (given by flag or key in an earlier session or this one)."""
    stored = study.meta(META, {}) or {}
    return {k: v for k, v in stored.items() if k in KEYS and v is not None} if isinstance(stored, dict) else {}


def configured(config: StudyConfig, settings: Mapping[str, Any]) -> StudyConfig:
    """The [study] configuration with these settings applied; a one-line error for a bad value."""
    s = dict(settings)
    changes: dict[str, Any] = {}
    if "budget" in s:
        changes["budget"] = _whole(s["budget"], "budget", 1)
    if "parallel" in s:
        if s["parallel"] == "auto":
            changes.update(auto_k=True, parallel=1)
        else:
            changes.update(auto_k=False, parallel=_whole(s["parallel"], "parallel", 1))
    if "strategy" in s:
        if s["strategy"] not in strategies.names():
            raise StudyError(f"unknown strategy {s['strategy']!r} (allowed: {', '.join(strategies.names())})")
        changes.update(strategy=s["strategy"], strategy_fallback="")
    if {"early_stop", "early_stop_min_step", "early_stop_max_step"} & s.keys():
        es = config.early_stop
        rule = s.get("early_stop", es.rule)
        lo = s.get("early_stop_min_step", es.min_step)
        hi = s.get("early_stop_max_step", es.max_step)
        changes["early_stop"] = early_stop_config(rule, None if lo is None else _whole(lo, "early-stop min step", 1),
                                                  es.reduction_factor,
                                                  None if hi is None else _whole(hi, "early-stop max step", 1),
                                                  es.trust_after)
    if "autopilot" in s:
        ap = config.autopilot
        changes["autopilot"] = pbt_config(s["autopilot"], ap.interval, ap.fraction, ap.resample)
    if "step_budget" in s:
        changes["step_budget"] = _whole(s["step_budget"], "step budget", 1)
    if "time_budget" in s:
        from tui_tuner.search.budget import parse_duration

        try:
            changes["time_budget"] = parse_duration(s["time_budget"])
        except ValueError as e:
            raise StudyError(f"time budget {e}") from None
    return replace(config, **changes)


def _whole(value: Any, what: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise StudyError(f"{what} must be a whole number >= {least}, got {value!r}")
    return value


def apply(study: Any, given: Mapping[str, Any] | None = None) -> list[str]:
    """Apply the kept settings and the ones `given` now (None: not given) to the study's configuration,
    keep them in the study, and return what to say: what was kept from before, what a flag changed.

    The study's space gets the resulting configuration, so everything that reads `study.config`
    (scheduler, runner, policies) sees the same settings. A read-only study keeps nothing.
    """
    before = kept(study)
    now = {k: v for k, v in (given or {}).items() if k in KEYS and v is not None}
    merged = {**before, **now}
    try:
        config = configured(study.space.config, merged)
    except SpaceError as e:
        raise StudyError(e.message) from None
    study.space = replace(study.space, config=config)
    if merged != before and not study.readonly:
        study.set_meta(META, merged)
    lines = []
    changed = [k for k in now if k in before and before[k] != now[k]]
    for k in changed:
        lines.append(f"{LABELS[k]} {before[k]} → {now[k]} ({FLAGS[k]}; kept in the study from now on)")
    carried = [k for k in before if k not in now]
    if carried:
        lines.append("kept from an earlier session: " + ", ".join(f"{LABELS[k]} {before[k]}" for k in carried)
                     + " (a flag changes it)")
    return lines


def remember(study: Any, key: str, value: Any) -> None:
    """Keep one setting changed in the app (the autopilot key, a budget raised), and apply it."""
    if key not in KEYS:
        raise StudyError(f"not a setting the study keeps: {key!r}")
    merged = {**kept(study), key: value}
    study.space = replace(study.space, config=configured(study.space.config, merged))
    if not study.readonly:
        study.set_meta(META, merged)


def describe_early_stop(es: EarlyStopConfig) -> str:
    """'asha (rungs at steps 11, 33, 100)', 'asha (steps from the first trial to finish)' or 'off'."""
    if es.rule == "none":
        return "off"
    if not es.resolved:
        return f"{es.rule} (its steps come from the trainer's max_steps or the first trial to finish)"
    rungs = es.rungs()
    where = "checks at steps" if es.rule == "median" else "rungs at steps"
    more = ", …" if len(rungs) >= 12 else ""
    return f"{es.rule} ({where} {', '.join(str(r) for r in rungs)}{more})"


def short_early_stop(es: EarlyStopConfig, off: Iterable[int] = ()) -> str:
    """The status line's early stop: 'off', 'asha 11·33·99', 'asha 33·99 (11 off)' where the rung at
    step 11 stops no more, or 'asha (steps: auto)'."""
    if es.rule == "none":
        return "off"
    if not es.resolved:
        return f"{es.rule} (steps: auto)"
    off = set(off)
    rungs = es.rungs()
    stopping = [r for r in rungs if r not in off]
    shown = "·".join(str(r) for r in stopping[:4]) + ("…" if len(stopping) > 4 else "")
    gone = "·".join(str(r) for r in rungs if r in off)
    return " ".join(x for x in (es.rule, shown, f"({gone} off)" if gone else "") if x)
