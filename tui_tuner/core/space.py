"""Search spaces: load and validate a space file; map each parameter to and from [0, 1] in its own scale.

Everything that samples or zooms works in that unit space, so the scale (log, 1-beta log) is kept
for free: a zoom is a sub-box of [0, 1] per parameter, mapped back through `Param.from_unit`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import re2

from tui_tuner.core.budget import parse_duration
from tui_tuner.core.formatting import show_value
from tui_tuner.errors import SpaceError

if TYPE_CHECKING:
    from tui_tuner.core.early_stop import EarlyStopConfig
    from tui_tuner.core.pbt import PbtConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

TYPES = ("float", "int", "choice")
SCALES = {"float": ("linear", "log", "one_minus_log"), "int": ("linear", "log")}
# Model-based strategies go through Optuna (core/optuna_search.py), imported only when used.
MODEL_STRATEGIES = ("tpe", "gp", "cmaes")
STRATEGIES = ("random", "grid", "coarse_to_fine", *MODEL_STRATEGIES)
EARLY_STOP_RULES = ("asha", "median", "hyperband", "none")
PARAM_KEYS = {"type", "scale", "low", "high", "values", "default", "tier", "live", "step", "flag", "flag_style"}
FLAG_STYLES = ("space", "equals")
# A zoom keeps the best quarter of the trials and stays 15% wider than their box (tests/bench/search_quality.py).
ZOOM_TOP = 0.25
ZOOM_MARGIN = 0.15
STUDY_KEYS = {
    "name", "command", "objective", "direction", "parallel", "budget", "strategy", "seed",
    "reduce", "flag_style", "metrics", "stall_timeout", "stage", "round_size", "zoom_top",
    "zoom_margin", "early_stop", "early_stop_min_step", "early_stop_factor", "early_stop_max_step",
    "step_budget", "time_budget", "autopilot", "autopilot_interval", "autopilot_fraction", "autopilot_resample",
}
SCALE_LABELS = {"linear": "linear", "log": "log", "one_minus_log": "1-β log"}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")   # fullmatch: "$" would let a trailing newline in
# The export's table of metadata ([tuner]): a parameter of that name would collide with it.
RESERVED_NAMES = ("tuner",)
INT64 = (-(2**63), 2**63 - 1)
# The reserved metrics key naming the pattern that captures a zero-code script's step counter.
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


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _fmt(x: Any) -> str:
    """A value in an error message: like show_value, but strings quoted so '' and ' ' are visible."""
    return repr(x) if isinstance(x, str) or x is None else show_value(x)


@dataclass(frozen=True)
class Param:
    """One hyperparameter: its type, scale, range or values, default, priority tier and live flag."""

    name: str
    type: str
    scale: str = "linear"
    low: float | int | None = None
    high: float | int | None = None
    values: tuple[Any, ...] = ()
    default: Any = None
    tier: int = 1
    live: bool = False
    step: float | int | None = None
    flag: str = ""
    flag_style: str = ""   # "space" or "equals"; "" follows the study's flag_style

    # -- unit space -----------------------------------------------------------------------------

    def _edges(self) -> tuple[float, float]:
        """The continuous interval (in the scale's own coordinate) that [0, 1] spans."""
        lo, hi = float(self.low), float(self.high)
        if self.type == "int":
            # Each integer owns a unit-wide cell, so all of low..high are equally likely.
            lo, hi = lo - 0.5, hi + 0.5
        if self.scale == "log":
            return math.log(lo), math.log(hi)
        if self.scale == "one_minus_log":
            return -math.log(1.0 - lo), -math.log(1.0 - hi)
        return lo, hi

    def _coord(self, x: float) -> float:
        if self.scale == "log":
            return math.log(x)
        if self.scale == "one_minus_log":
            return -math.log(1.0 - x)
        return x

    def _uncoord(self, c: float) -> float:
        if self.scale == "log":
            return math.exp(c)
        if self.scale == "one_minus_log":
            return 1.0 - math.exp(-c)
        return c

    def _lattice(self) -> int:
        """How many points low, low + step, ... <= high a stepped parameter has."""
        return int(math.floor((float(self.high) - float(self.low)) / self.step + 1e-9)) + 1

    def to_unit(self, value: Any) -> float:
        """Map a value of this parameter to [0, 1] in its own scale."""
        if self.type == "choice":
            i = self.index_of(value)
            return (i + 0.5) / len(self.values)
        if self.step:
            # Each lattice point owns an equal cell, so the end points are as likely as the rest.
            n = self._lattice()
            k = min(max(round((float(value) - float(self.low)) / self.step), 0), n - 1)
            return (k + 0.5) / n
        a, b = self._edges()
        if b == a:
            return 0.5
        x = min(max(float(value), float(self.low)), float(self.high))
        return min(max((self._coord(x) - a) / (b - a), 0.0), 1.0)

    def value_at(self, u: float) -> float:
        """The unrounded value at unit coordinate u (for showing a zoomed range)."""
        u = min(max(float(u), 0.0), 1.0)
        if self.step:
            n = self._lattice()
            return float(self.low) + min(max(u * n - 0.5, 0.0), n - 1.0) * self.step
        a, b = self._edges()
        if self.type == "float" and u in (0.0, 1.0):
            # Exact ends: exp(log(x)) drifts in the last bit, and a range edge should print clean.
            return float(self.low if u == 0.0 else self.high)
        return self._uncoord(a + u * (b - a))

    def from_unit(self, u: float) -> Any:
        """Map u in [0, 1] back to a value: rounded to int or step, clipped to the range last."""
        if self.type == "choice":
            n = len(self.values)
            return self.values[min(int(min(max(u, 0.0), 1.0) * n), n - 1)]
        if self.step:
            n = self._lattice()
            k = min(int(min(max(u, 0.0), 1.0) * n), n - 1)
            return self.snap(self.low + k * self.step)
        return self.snap(self.value_at(u))

    def snap(self, x: float) -> Any:
        """Round x to this parameter's grid (int, step) and clip it into [low, high]."""
        lo, hi = self.low, self.high
        if self.step:
            k = round((x - lo) / self.step)
            x = lo + k * self.step
            if x > hi + 1e-12 * max(1.0, abs(hi)):
                x -= self.step
        if self.type == "int":
            return int(min(max(int(round(x)), lo), hi))
        if self.step:
            # Drop float noise from lo + k*step so 0.1 stays 0.1 in exports (then clip: rounding may overshoot).
            x = float(f"{x:.12g}")
        return float(min(max(x, lo), hi))

    # -- values ---------------------------------------------------------------------------------

    def index_of(self, value: Any) -> int:
        """Index of a choice value (bools and numbers compared by type as well as value)."""
        for i, v in enumerate(self.values):
            if type(v) is type(value) and v == value:
                return i
        for i, v in enumerate(self.values):
            if _is_number(v) and _is_number(value) and v == value:
                return i
        raise SpaceError(f"params.{self.name}: {_fmt(value)} is not among the values "
                         f"[{', '.join(_fmt(v) for v in self.values)}]")

    def check(self, value: Any) -> Any:
        """Return value coerced to this parameter's type, or raise SpaceError naming the rule."""
        where = f"params.{self.name}"
        if self.type == "choice":
            return self.values[self.index_of(value)]
        if not _is_number(value):
            raise SpaceError(f"{where}: must be a number, got {_fmt(value)}")
        if self.type == "int":
            if isinstance(value, float) and not value.is_integer():
                raise SpaceError(f"{where}: must be an integer, got {_fmt(value)}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise SpaceError(f"{where}: must be finite, got {_fmt(value)}")
        if not (self.low <= value <= self.high):
            raise SpaceError(f"{where}: {_fmt(value)} is outside [{_fmt(self.low)}, {_fmt(self.high)}]")
        return value

    def parse(self, text: str) -> Any:
        """Parse a value typed by a user (a modal field) and check it."""
        s = text.strip()
        if self.type == "choice":
            for v in self.values:
                if _fmt(v) == s or str(v) == s or (isinstance(v, bool) and s.lower() == str(v).lower()):
                    return v
            try:
                return self.check(json.loads(s))
            except (ValueError, SpaceError):
                return self.check(s)
        try:
            num: Any = int(s) if self.type == "int" else float(s)
        except ValueError:
            kind = "an integer" if self.type == "int" else "a number"
            raise SpaceError(f"params.{self.name}: must be {kind}, got {s!r}") from None
        return self.check(num)

    # -- description ----------------------------------------------------------------------------

    @property
    def numeric(self) -> bool:
        """True for float and int parameters (those that have a range to zoom)."""
        return self.type != "choice"

    @property
    def scale_label(self) -> str:
        """Short scale name for tables: log, 1-β log, int, int log, choice, linear."""
        if self.type == "choice":
            return "choice"
        if self.type == "int":
            return "int log" if self.scale == "log" else "int"
        return SCALE_LABELS[self.scale]

    def range_label(self) -> str:
        """The search range as text: [low, high] or {a, b, c}."""
        if self.type == "choice":
            return "{" + ", ".join(show_value(v) for v in self.values) + "}"
        return f"[{show_value(self.low)}, {show_value(self.high)}]"

    def definition(self) -> dict[str, Any]:
        """A plain dict of the definition, for comparing spaces and storing them."""
        d: dict[str, Any] = {"type": self.type, "tier": self.tier, "live": self.live}
        if self.type == "choice":
            d["values"] = list(self.values)
        else:
            d.update(scale=self.scale, low=self.low, high=self.high, step=self.step)
        d["default"] = self.default
        return d



@dataclass(frozen=True)
class StudyConfig:
    """The [study] table: what to run, what to optimise, and how the search is driven."""

    name: str
    command: tuple[str, ...]
    objective: str
    direction: str = "minimize"
    parallel: int = 1
    budget: int = 20
    strategy: str = "coarse_to_fine"
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
    autopilot: PbtConfig = field(default_factory=lambda: _pbt_config("none"))

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


@dataclass(frozen=True)
class Space:
    """A validated search space: the study settings and the parameters in priority order."""

    config: StudyConfig
    params: dict[str, Param]
    path: str = "<string>"
    text: str = ""

    def __iter__(self):
        return iter(self.params.values())

    def __getitem__(self, name: str) -> Param:
        return self.params[name]

    def __contains__(self, name: str) -> bool:
        return name in self.params

    def by_priority(self) -> list[Param]:
        """Parameters in tier order (tier 1 first), file order within a tier."""
        return sorted(self.params.values(), key=lambda p: p.tier)

    def defaults(self) -> dict[str, Any]:
        """Every parameter at its default."""
        return {p.name: p.default for p in self.params.values()}

    def check_setting(self, setting: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
        """Check a whole setting (or, with partial, some parameters) against the space.

        Returns the coerced values in space order; missing ones are filled from the defaults
        unless partial. Unknown names are refused.
        """
        unknown = [k for k in setting if k not in self.params]
        if unknown:
            raise SpaceError(f"params.{unknown[0]}: no such parameter in {self.path}")
        out: dict[str, Any] = {}
        for p in self.params.values():
            if p.name in setting:
                out[p.name] = p.check(setting[p.name])
            elif not partial:
                out[p.name] = p.default
        return out

    def signature(self) -> str:
        """Canonical text of the parameter definitions: equal iff two spaces search the same thing."""
        return json.dumps({n: p.definition() for n, p in self.params.items()}, sort_keys=True)


# -- loading ------------------------------------------------------------------------------------


def load_space(path: str | Path) -> Space:
    """Read and validate a space file; every problem is a one-line SpaceError naming file and rule."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpaceError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpaceError(f"{path}: cannot read: {e}") from None
    return parse_space(text, str(path), default_name=p.stem)


def parse_space(text: str, source: str = "<string>", *, default_name: str | None = None) -> Space:
    """Validate space-file text; `source` names the file in error messages (and the study by default)."""
    if default_name is None:
        default_name = Path(source).stem if not source.startswith("<") else "study"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpaceError(f"{source}: TOML syntax error: {e}") from None
    except Exception as e:  # noqa: BLE001 - odd input (e.g. lone surrogates) must still be one line
        raise SpaceError(f"{source}: cannot parse: {e}") from None
    return _build(data, source, default_name, text)


def _build(data: dict[str, Any], source: str, default_name: str, text: str) -> Space:
    def fail(where: str, rule: str) -> SpaceError:
        return SpaceError(f"{source}: {where}: {rule}")

    for key in data:
        if key not in ("study", "params"):
            raise fail(key, "unknown table (expected [study] and [params.NAME])")
    study_raw = data.get("study")
    if not isinstance(study_raw, dict):
        raise fail("study", "missing [study] table (it needs command and objective)")
    params_raw = data.get("params")
    if not isinstance(params_raw, dict) or not params_raw:
        raise fail("params", "no parameters: add at least one [params.NAME] table")

    params: dict[str, Param] = {}
    for name, raw in params_raw.items():
        params[name] = _build_param(name, raw, fail)
    study = _build_study(study_raw, params, fail, default_name)
    # Priority order is the app's order; keep it stable and explicit.
    ordered = dict(sorted(params.items(), key=lambda kv: kv[1].tier))
    return Space(config=study, params=ordered, path=source, text=text)


def _label(name: str) -> str:
    """A name as error messages show it: quoted and escaped when it holds a newline or other control."""
    return name if name.isprintable() and name.strip() == name else repr(name)


def _build_param(name: str, raw: Any, fail) -> Param:
    where = f"params.{_label(name)}"
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
        raise fail(where, f"tier must be 1, 2, 3 or 4, got {_fmt(tier)}")
    live = raw.get("live", False)
    if not isinstance(live, bool):
        raise fail(where, f"live must be true or false, got {_fmt(live)}")
    flag = raw.get("flag", f"--{name}")
    if not isinstance(flag, str) or not flag.strip() or not flag.isprintable():
        raise fail(where, f"flag must be a non-empty string without control characters, got {_fmt(flag)}")
    flag_style = raw.get("flag_style", "")   # "" follows the study's
    if "flag_style" in raw and flag_style not in FLAG_STYLES:
        raise fail(where, f"flag_style must be one of {', '.join(FLAG_STYLES)}, got {_fmt(flag_style)}")

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
                raise fail(where, f"choice values must be finite, got {_fmt(v)}")
        if len({json.dumps(v) for v in values}) != len(values):
            raise fail(where, "choice values must be distinct")
        p = Param(name=name, type="choice", scale="linear", values=tuple(values), tier=tier,
                  live=live, flag=flag, flag_style=flag_style, default=values[0])
        if "default" in raw:
            d = raw["default"]
            try:
                p = replace(p, default=p.values[p.index_of(d)])
            except SpaceError:
                raise fail(where, f"default {_fmt(d)} is not among the values "
                                  f"[{', '.join(_fmt(v) for v in values)}]") from None
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
                raise fail(where, f"int bounds must be integers, got {key}={_fmt(v)}")
            if not INT64[0] <= v <= INT64[1]:
                raise fail(where, f"int bounds must fit in 64 bits (-2**63 to 2**63-1), got {key}={v}")
    else:
        for key, v in (("low", low), ("high", high)):
            if not _is_number(v) or not math.isfinite(v):
                raise fail(where, f"{key} must be a finite number, got {key}={_fmt(v)}")
        low, high = float(low), float(high)
    if low > high:
        raise fail(where, f"low <= high must hold, got low={_fmt(low)}, high={_fmt(high)}")
    if not math.isfinite(float(high) - float(low)):
        # Every unit-space mapping divides by the width: an infinite one turns samples into nan.
        raise fail(where, f"the range is too wide: high - low must be a finite number, "
                          f"got low={_fmt(low)}, high={_fmt(high)}")
    if scale == "log" and low <= 0:
        raise fail(where, f"log scale needs low > 0, got low={_fmt(low)}")
    if scale == "one_minus_log" and not (0 <= low < high < 1):
        raise fail(where, f"one_minus_log scale needs 0 <= low < high < 1, got low={_fmt(low)}, "
                          f"high={_fmt(high)}")
    step = raw.get("step")
    if step is not None:
        if scale != "linear":
            raise fail(where, f"step cannot be used with a {scale} scale (quantise on linear only)")
        if not _is_number(step) or not step > 0 or not math.isfinite(step):
            raise fail(where, f"step must be a number > 0, got step={_fmt(step)}")
        if typ == "int" and not isinstance(step, int):
            raise fail(where, f"an int step must be an integer, got step={_fmt(step)}")
        if typ == "float":
            step = float(step)
        if step > high - low:
            raise fail(where, f"step must not be wider than the range (high - low = {_fmt(high - low)}), "
                              f"got step={_fmt(step)}")
        if high > low and not (high - low) / step <= 1e12:
            raise fail(where, f"step is too small for the range: (high - low) / step must be <= 1e12, "
                              f"got step={_fmt(step)}")
    p = Param(name=name, type=typ, scale=scale, low=low, high=high, tier=tier, live=live,
              step=step, flag=flag, flag_style=flag_style)
    if "default" in raw:
        d = raw["default"]
        try:
            d = p.check(d)
        except SpaceError:
            raise fail(where, f"default must lie in [{_fmt(low)}, {_fmt(high)}], got default={_fmt(d)}") from None
    else:
        d = p.from_unit(0.5)
    return replace(p, default=d)


def _build_study(raw: dict[str, Any], params: dict[str, Param], fail, default_name: str) -> StudyConfig:
    for key in raw:
        if key not in STUDY_KEYS:
            raise fail("study", f"unknown key {key!r} (allowed: {', '.join(sorted(STUDY_KEYS))})")
    name = raw.get("name", default_name)
    if (not isinstance(name, str) or not name.strip() or "/" in name or not name.isprintable()
            or name.strip() in (".", "..")):
        raise fail("study.name", f"must be a non-empty string without '/' or control characters (newline, "
                                 f"tab), and not . or .., got {_fmt(name)}")
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
        raise fail("study.objective", f"must be a metric name, got {_fmt(objective)}")

    def choice(key: str, allowed: tuple[str, ...], default: str) -> str:
        v = raw.get(key, default)
        if v not in allowed:
            raise fail(f"study.{key}", f"must be one of {', '.join(allowed)}, got {_fmt(v)}")
        return v

    def integer(key: str, default: int | None, minimum: int) -> int | None:
        v = raw.get(key, default)
        if v is None:
            return None
        if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
            raise fail(f"study.{key}", f"must be an integer >= {minimum}, got {_fmt(v)}")
        return v

    def number(key: str, default: float, lo: float, hi: float, lo_open: bool = True) -> float:
        v = raw.get(key, default)
        ok = _is_number(v) and (v > lo if lo_open else v >= lo) and v <= hi
        if not ok:
            bracket = "(" if lo_open else "["
            raise fail(f"study.{key}", f"must be a number in {bracket}{_fmt(lo)}, {_fmt(hi)}], got {_fmt(v)}")
        return float(v)

    metrics = raw.get("metrics", {})
    if not isinstance(metrics, dict):
        raise fail("study.metrics", "must be a table of metric name = 'regular expression'")
    for mname, pattern in metrics.items():
        where = f"study.metrics.{_label(mname)}"
        if not isinstance(pattern, str):
            raise fail(where, f"must be a regular expression string, got {_fmt(pattern)}")
        try:
            rx = compile_pattern(pattern)
        except ValueError as e:
            raise fail(where, f"{e}, got {_fmt(pattern)}") from None
        if rx.groups != 1:
            raise fail(where, f"the pattern needs exactly one capture group, got {rx.groups}")
    if metrics and objective not in metrics:
        raise fail("study.objective", f"{objective!r} is not among [study.metrics] "
                                      f"({', '.join(metrics)}), so it would never be reported")

    zoom_top = raw.get("zoom_top", ZOOM_TOP)
    if (not _is_number(zoom_top) or not math.isfinite(zoom_top) or zoom_top <= 0
            or (zoom_top >= 1 and not float(zoom_top).is_integer())):
        raise fail("study.zoom_top", f"must be a fraction in (0, 1) or a count >= 1 of best trials, "
                                     f"got {_fmt(zoom_top)}")

    stage = raw.get("stage", 4)
    if not isinstance(stage, int) or isinstance(stage, bool) or not 1 <= stage <= 4:
        raise fail("study.stage", f"must be 1, 2, 3 or 4 (search tiers <= stage), got {_fmt(stage)}")

    time_budget = raw.get("time_budget")
    if time_budget is not None:
        try:
            time_budget = parse_duration(time_budget)
        except ValueError as e:
            raise fail("study.time_budget", str(e)) from None
    rule_args = (choice("early_stop", EARLY_STOP_RULES, "none"), integer("early_stop_min_step", None, 1),
                 integer("early_stop_factor", 3, 2), integer("early_stop_max_step", None, 1))
    try:
        early_stop = early_stop_config(*rule_args)
    except SpaceError as e:
        raise fail(*e.message.split(": ", 1)) from None

    try:
        autopilot = _pbt_config(raw.get("autopilot", "none"), raw.get("autopilot_interval"),
                                raw.get("autopilot_fraction"), raw.get("autopilot_resample"))
    except SpaceError as e:
        raise fail(*e.message.split(": ", 1)) from None

    return StudyConfig(
        name=name.strip(),
        command=tuple(command),
        objective=objective,
        direction=choice("direction", ("minimize", "maximize"), "minimize"),
        parallel=integer("parallel", 1, 1),
        budget=integer("budget", 20, 1),
        strategy=choice("strategy", STRATEGIES, "coarse_to_fine"),
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
    )


def _pbt_config(*args: Any) -> PbtConfig:
    from tui_tuner.core.pbt import pbt_config  # core/pbt.py maps values through Param: imported late

    return pbt_config(*args)


def early_stop_config(rule: str, min_step: int | None = None, factor: int = 3,
                      max_step: int | None = None) -> EarlyStopConfig:
    """The [study] early-stopping keys as an EarlyStopConfig; a SpaceError "study.KEY: rule" names
    the key to set when the rule lacks one (also for a rule given as --early-stop)."""
    from tui_tuner.core.early_stop import EarlyStopConfig

    if rule not in EARLY_STOP_RULES:
        raise SpaceError(f"study.early_stop: must be one of {', '.join(EARLY_STOP_RULES)}, got {_fmt(rule)}")
    if rule == "hyperband" and max_step is None:
        raise SpaceError("study.early_stop_max_step: early_stop = 'hyperband' needs it: the most steps "
                         "one trial runs (its largest bracket reaches it)")
    if rule == "hyperband" and min_step is not None and min_step > max_step:
        raise SpaceError(f"study.early_stop_min_step: must be <= early_stop_max_step ({max_step}) for "
                         f"hyperband, got {min_step}")
    if rule != "none" and min_step is None and max_step is None:
        raise SpaceError(f"study.early_stop_min_step: early_stop = {rule!r} needs it (the first step at "
                         f"which a trial may be stopped), or early_stop_max_step to take a hundredth of")
    return EarlyStopConfig(rule, min_step, factor, max_step, where="study.early_stop")

