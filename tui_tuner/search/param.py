"""One hyperparameter (Param): its unit-space mapping in its own scale, and checking typed values.

Everything that samples or zooms works in the unit space [0, 1] per parameter, so the scale (log,
1-beta log) is kept for free: a zoom is a sub-box of [0, 1], mapped back through `Param.from_unit`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from tui_tuner.errors import SpaceError
from tui_tuner.formatting import quoted_value, show_value

SCALE_LABELS = {"linear": "linear", "log": "log", "one_minus_log": "1-β log"}


def is_number(x: Any) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


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
            if is_number(v) and is_number(value) and v == value:
                return i
        raise SpaceError(f"params.{self.name}: {quoted_value(value)} is not among the values "
                         f"[{', '.join(quoted_value(v) for v in self.values)}]")

    def check(self, value: Any) -> Any:
        """Return value coerced to this parameter's type, or raise SpaceError naming the rule."""
        where = f"params.{self.name}"
        if self.type == "choice":
            return self.values[self.index_of(value)]
        if not is_number(value):
            raise SpaceError(f"{where}: must be a number, got {quoted_value(value)}")
        if self.type == "int":
            if isinstance(value, float) and not value.is_integer():
                raise SpaceError(f"{where}: must be an integer, got {quoted_value(value)}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise SpaceError(f"{where}: must be finite, got {quoted_value(value)}")
        if not (self.low <= value <= self.high):
            raise SpaceError(f"{where}: {quoted_value(value)} is outside [{quoted_value(self.low)}, {quoted_value(self.high)}]")
        return value

    def parse(self, text: str) -> Any:
        """Parse a value typed by a user (a modal field) and check it."""
        s = text.strip()
        if self.type == "choice":
            for v in self.values:
                if quoted_value(v) == s or str(v) == s or (isinstance(v, bool) and s.lower() == str(v).lower()):
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
