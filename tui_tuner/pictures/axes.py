"""Axes of the pictures: round tick values, and each parameter's axis in its own sampling scale.

A parameter's axis is its unit space (`Param.to_unit`, where the sampler and the zoom work), with
ticks at round values: decades for a log learning rate, β = 0.9, 0.99, 0.999 for a 1-β log
momentum, one cell per choice. Pure Python; no plotting library here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tui_tuner.formatting import show_value
from tui_tuner.search.param import Param
from tui_tuner.search.space import Space


@dataclass(frozen=True)
class Axis:
    """A parameter's axis in unit space [0, 1]: tick positions and their labels in value space."""

    name: str
    label: str
    ticks: tuple[float, ...]
    labels: tuple[str, ...]


def tick_label(v: float) -> str:
    """A tick value, short: 1.5k, 2M, 0.003, 1e-4."""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if a >= div:
                return f"{v / div:.3g}{suffix}"
    if a < 1e-3:
        mant, exp = f"{v:.1e}".split("e")
        mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{int(exp)}"
    return f"{v:.3g}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round values (steps of 1, 2, 2.5 or 5 times a power of ten) covering lo..hi."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10)), key=lambda st: abs(math.log(st / raw)))
    first = math.ceil(lo / step - 1e-9)
    out = []
    k = first
    while k * step <= hi + 1e-9 * step:
        out.append(round(k * step, 12))
        k += 1
    return out


def log_ticks(lo: float, hi: float, base: int = 10) -> list[float]:
    """Tick values for a log axis over lo..hi (both > 0): powers of the base, with 2 and 5 when few."""
    if lo <= 0 or hi <= lo:
        return [lo] if lo > 0 else []
    a, b = math.floor(math.log(lo, base) + 1e-9), math.ceil(math.log(hi, base) - 1e-9)
    powers = [float(base) ** k for k in range(a, b + 1)]
    out = [t for t in powers if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
    if len(out) < 3 and base == 10:
        out = sorted({t * m for t in powers for m in (1, 2, 5) if lo * (1 - 1e-9) <= t * m <= hi * (1 + 1e-9)})
    return out if len(out) >= 2 else [lo, hi]


def axis_of(p: Param) -> Axis:
    """The axis of a parameter in its sampling scale (unit space), with ticks at round values."""
    if p.type == "choice":
        return Axis(p.name, f"{p.name} (choice)", tuple(p.to_unit(v) for v in p.values),
                    tuple(show_value(v) for v in p.values))
    lo, hi = float(p.low), float(p.high)
    label = p.name if p.scale == "linear" else f"{p.name} ({p.scale_label})"
    if p.scale == "log":
        values = log_ticks(lo, hi, 2 if p.type == "int" and hi / lo <= 2 ** 12 else 10)
    elif p.scale == "one_minus_log":
        # 1-β on a log axis: ticks at β = 0.9, 0.99, 0.999 ... (and 0.95, 0.98 ... when few).
        values = sorted(1 - t for t in log_ticks(1 - hi, 1 - lo))
    else:
        values = nice_ticks(lo, hi, 5)
        if p.type == "int":
            values = sorted({int(round(v)) for v in values if lo <= round(v) <= hi})
    values = [v for v in values if lo - 1e-12 <= v <= hi + 1e-12] or [lo, hi]
    if p.type == "int":
        values = [int(v) for v in values]
    return Axis(p.name, label, tuple(p.to_unit(v) for v in values), tuple(tick_label(v) for v in values))


def axis_pairs(space: Space) -> list[tuple[str, str]]:
    """(x, y) pairs in priority order: the learning rate against each tier-2 parameter first."""
    names = [p.name for p in space.by_priority()]
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
