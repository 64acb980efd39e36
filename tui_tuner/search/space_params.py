"""Parsing and validating one [params.NAME] table of a space file into a Param.

Every refusal is one line naming the file, the parameter and the rule (through the caller's `fail`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tui_tuner.errors import SpaceError
from tui_tuner.formatting import quoted_name, quoted_value
from tui_tuner.search.param import Param, is_number

TYPES = ("float", "int", "choice")
SCALES = {"float": ("linear", "log", "one_minus_log"), "int": ("linear", "log")}
PARAM_KEYS = {"type", "scale", "low", "high", "values", "default", "tier", "live", "step", "flag", "flag_style"}
FLAG_STYLES = ("space", "equals")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")   # fullmatch: "$" would let a trailing newline in
# The export's table of metadata ([tuner]): a parameter of that name would collide with it.
RESERVED_NAMES = ("tuner",)
INT64 = (-(2**63), 2**63 - 1)

Fail = Callable[[str, str], SpaceError]   # (where, rule) -> the one-line error naming the file


def whole_number(v: Any, where: str, minimum: int, fail: Fail) -> int | None:
    """A key's value as an integer >= minimum (None stays None: the key is unset); else fail(where, rule)."""
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise fail(where, f"must be an integer >= {minimum}, got {quoted_value(v)}")
    return v


def build_param(name: str, raw: Any, fail: Fail) -> Param:
    """A [params.NAME] table as a Param; `fail(where, rule)` makes the error raised for bad input."""
    where = f"params.{quoted_name(name)}"
    if not _NAME_RE.fullmatch(name):
        raise fail(where, f"a parameter name must start with a letter or _ and hold only letters, "
                          f"digits, _ . -, got {name!r}")
    if name in RESERVED_NAMES:
        raise fail(where, f"the name is reserved for the [{name}] table of metadata in an export; rename "
                          f"the parameter, got {name!r}")
    if not isinstance(raw, dict):
        raise fail(where, "must be a table ([params.NAME])")
    for key in raw:
        if key not in PARAM_KEYS:
            raise fail(where, f"unknown key {key!r} (allowed: {', '.join(sorted(PARAM_KEYS))})")
    if "type" not in raw:
        raise fail(where, "type is required (float, int or choice)")
    typ = raw["type"]
    if typ not in TYPES:
        raise fail(where, f"unknown type {typ!r} (allowed: float, int, choice)")

    tier = raw.get("tier", 1)
    if not isinstance(tier, int) or isinstance(tier, bool) or not 1 <= tier <= 4:
        raise fail(where, f"tier must be 1, 2, 3 or 4, got {quoted_value(tier)}")
    live = raw.get("live", False)
    if not isinstance(live, bool):
        raise fail(where, f"live must be true or false, got {quoted_value(live)}")
    flag = raw.get("flag", f"--{name}")
    if not isinstance(flag, str) or not flag.strip() or not flag.isprintable():
        raise fail(where, f"flag must be a non-empty string without control characters, got {quoted_value(flag)}")
    flag_style = raw.get("flag_style", "")   # "" follows the study's
    if "flag_style" in raw and flag_style not in FLAG_STYLES:
        raise fail(where, f"flag_style must be one of {', '.join(FLAG_STYLES)}, got {quoted_value(flag_style)}")

    if typ == "choice":
        for key in ("scale", "low", "high", "step"):
            if key in raw:
                raise fail(where, f"{key} does not apply to a choice (give values)")
        values = raw.get("values")
        if not isinstance(values, list):
            raise fail(where, "a choice needs values = [...]")
        if not values:
            raise fail(where, "a choice needs at least one value, got values = []")
        for v in values:
            if not isinstance(v, (str, int, float, bool)):
                raise fail(where, f"choice values must be strings, numbers or booleans, got {v!r}")
            if isinstance(v, float) and not math.isfinite(v):
                raise fail(where, f"choice values must be finite, got {quoted_value(v)}")
            if isinstance(v, str) and not v.isprintable():
                # A value is printed in tables, lines and flags: an escape sequence in it would act on the terminal.
                raise fail(where, f"choice values must be printable (no control characters or escape "
                                  f"sequences), got {quoted_value(v)}")
        if len({json.dumps(v) for v in values}) != len(values):
            raise fail(where, "choice values must be distinct")
        p = Param(name=name, type="choice", scale="linear", values=tuple(values), tier=tier,
                  live=live, flag=flag, flag_style=flag_style, default=values[0])
        if "default" in raw:
            d = raw["default"]
            try:
                p = replace(p, default=p.values[p.index_of(d)])
            except SpaceError:
                raise fail(where, f"default {quoted_value(d)} is not among the values "
                                  f"[{', '.join(quoted_value(v) for v in values)}]") from None
        return p

    if "values" in raw:
        raise fail(where, f"values does not apply to type {typ} (give low and high, or use type = \"choice\")")
    scale = raw.get("scale", "linear")
    if scale not in SCALES[typ]:
        allowed = ", ".join(SCALES[typ])
        raise fail(where, f"unknown scale {scale!r} for {typ} (allowed: {allowed})")
    for key in ("low", "high"):
        if key not in raw:
            raise fail(where, f"{key} is required for a {typ}")
    low, high = raw["low"], raw["high"]
    if typ == "int":
        for key, v in (("low", low), ("high", high)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise fail(where, f"int bounds must be integers, got {key}={quoted_value(v)}")
            if not INT64[0] <= v <= INT64[1]:
                raise fail(where, f"int bounds must fit in 64 bits (-2**63 to 2**63-1), got {key}={v}")
    else:
        for key, v in (("low", low), ("high", high)):
            if not is_number(v) or not math.isfinite(v):
                raise fail(where, f"{key} must be a finite number, got {key}={quoted_value(v)}")
        low, high = float(low), float(high)
    if low > high:
        raise fail(where, f"low <= high must hold, got low={quoted_value(low)}, high={quoted_value(high)}")
    if not math.isfinite(float(high) - float(low)):
        # Every unit-space mapping divides by the width: an infinite one turns samples into nan.
        raise fail(where, f"the range is too wide: high - low must be a finite number, "
                          f"got low={quoted_value(low)}, high={quoted_value(high)}")
    if scale == "log" and low <= 0:
        raise fail(where, f"log scale needs low > 0, got low={quoted_value(low)}")
    if scale == "one_minus_log" and not (0 <= low < high < 1):
        raise fail(where, f"one_minus_log scale needs 0 <= low < high < 1, got low={quoted_value(low)}, "
                          f"high={quoted_value(high)}")
    step = raw.get("step")
    if step is not None:
        if scale != "linear":
            raise fail(where, f"step cannot be used with a {scale} scale (quantise on linear only)")
        if not is_number(step) or not step > 0 or not math.isfinite(step):
            raise fail(where, f"step must be a number > 0, got step={quoted_value(step)}")
        if typ == "int" and not isinstance(step, int):
            raise fail(where, f"an int step must be an integer, got step={quoted_value(step)}")
        if typ == "float":
            step = float(step)
        if step > high - low:
            raise fail(where, f"step must not be wider than the range (high - low = {quoted_value(high - low)}), "
                              f"got step={quoted_value(step)}")
        if high > low and not (high - low) / step <= 1e12:
            raise fail(where, f"step is too small for the range: (high - low) / step must be <= 1e12, "
                              f"got step={quoted_value(step)}")
    p = Param(name=name, type=typ, scale=scale, low=low, high=high, tier=tier, live=live,
              step=step, flag=flag, flag_style=flag_style)
    if "default" in raw:
        d = raw["default"]
        try:
            d = p.check(d)
        except SpaceError:
            raise fail(where, f"default must lie in [{quoted_value(low)}, {quoted_value(high)}], got default={quoted_value(d)}") from None
    else:
        d = p.from_unit(0.5)
    return replace(p, default=d)
