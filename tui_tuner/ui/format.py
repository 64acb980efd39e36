"""Text for the screen: numbers, durations, unicode sparklines and bars (pure Python, no textual).

Kept apart from the widgets so the same drawing serves the tables, the run panel and the tests,
and so it can be checked without a terminal.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

# The value formatter is core's (one per purpose, shared with the CLI and headless mode); the
# narrow-table variant below is the UI's own, since only a screen has seven cells to fit.
from tui_tuner.formatting import short_value as fmt_value

# Eighth blocks, empty first: index k draws k/8 of a cell.
BLOCKS = " ▁▂▃▄▅▆▇█"
# A one-row sparkline never draws an empty cell for a real point: the lowest point is still visible.
SPARK = "▁▂▃▄▅▆▇█"
BAR_FULL = "█"
BAR_EMPTY = "·"
# Marks on a run's sparkline (the curves view's glyphs, plus one for a pause).
FORK_MARK, CHANGE_MARK, PAUSE_MARK = "◆", "▲", "‖"


def fmt_short(value: Any) -> str:
    """A value in at most about 7 cells (narrow tables): 3 significant digits, 1e6 for big ints."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return fmt_value(value)
    if isinstance(value, int) and abs(value) < 100_000:
        return str(value)
    if math.isfinite(value) and value != 0:
        if abs(value) < 0.01 or abs(value) >= 1e5:
            mant, exp = f"{value:.2e}".split("e")
            return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"
        return f"{value:.3g}"
    return fmt_value(value)


SHORT_SCALES = {"log": "log", "1-β log": "1-β", "int": "int", "int log": "ilog", "choice": "ch",
                "linear": "lin"}


def short_range(text: str) -> str:
    """A range from SearchState.ranges() for a narrow table: '= 2 (default)' -> '=2'."""
    if text.startswith("= ") and text.endswith(")") and " (" in text:
        value, why = text[2:-1].rsplit(" (", 1)
        return f"={value}" if why == "default" else f"={value} {why[:6]}"
    return text.replace(", ", ",")


def fmt_duration(seconds: float | None) -> str:
    """Elapsed time as 42s, 3m07s or 2h05m."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def finite(values: Sequence[float]) -> list[float]:
    """The finite values of a series (a diverged run reports inf or nan)."""
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def downsample(values: Sequence[float], width: int) -> list[float]:
    """At most `width` points: the mean of each equal bucket, so the shape survives and noise shrinks."""
    n = len(values)
    if width <= 0 or n == 0:
        return []
    if n <= width:
        return list(values)
    return _buckets(values, width)


def resample(values: Sequence[float], width: int) -> list[float]:
    """Exactly `width` points (for at least 2 values): bucket means, or each value repeated to fill."""
    n = len(values)
    if width <= 0 or n == 0:
        return []
    if n == 1:
        return list(values)
    if n >= width:
        return _buckets(values, width)
    return [values[min(i * n // width, n - 1)] for i in range(width)]


def _buckets(values: Sequence[float], width: int) -> list[float]:
    n = len(values)
    out = []
    for i in range(width):
        a = i * n // width
        b = max((i + 1) * n // width, a + 1)
        chunk = values[a:b]
        out.append(sum(chunk) / len(chunk))
    return out


def scaled(values: Sequence[float], *, log: bool = False,
           bounds: tuple[float, float] | None = None) -> list[float]:
    """Values mapped to [0, 1] (log10 first when asked and all are > 0); a flat series maps to 0.5."""
    vals = finite(values)
    if not vals:
        return []
    use_log = log and min(vals) > 0 and (bounds is None or bounds[0] > 0)
    f = math.log10 if use_log else float
    xs = [f(v) for v in vals]
    lo, hi = (f(bounds[0]), f(bounds[1])) if bounds else (min(xs), max(xs))
    if hi - lo <= 1e-300 * max(1.0, abs(hi)):
        return [0.5 for _ in xs]
    return [min(max((x - lo) / (hi - lo), 0.0), 1.0) for x in xs]


def spark(values: Sequence[float], width: int, *, log: bool = False,
          bounds: tuple[float, float] | None = None) -> str:
    """A one-row sparkline of at most `width` cells (left-aligned; empty for no finite values)."""
    pts = scaled(resample(finite(values), width), log=log, bounds=bounds)
    return "".join(SPARK[min(int(u * len(SPARK)), len(SPARK) - 1)] for u in pts)


def spark_rows(values: Sequence[float], width: int, height: int, *, log: bool = False,
               bounds: tuple[float, float] | None = None) -> list[str]:
    """A `height`-row block chart, top row first, each row exactly `width` cells."""
    if width <= 0 or height <= 0:
        return []
    pts = scaled(resample(finite(values), width), log=log, bounds=bounds)
    levels = [max(1, round(u * height * 8)) for u in pts]
    rows = []
    for r in range(height - 1, -1, -1):
        row = "".join(BLOCKS[min(max(lv - r * 8, 0), 8)] for lv in levels)
        rows.append(row.ljust(width))
    return rows


def mark_positions(steps: Sequence[int], marks: Iterable[tuple[int | None, str]]) -> tuple[tuple[float, str], ...]:
    """Where each (step, glyph) falls along a curve reported at `steps` (ascending), as a fraction
    0..1 of the curve's width, as `resample` spreads the points; a mark without a step is dropped."""
    n = len(steps)
    if n == 0:
        return ()
    out = [(min(bisect_left(steps, step), n - 1) / n, glyph) for step, glyph in marks if step is not None]
    return tuple(sorted(out))


def columns_by_step(points: Sequence[tuple[int, float]], width: int, step_max: float) -> list[float | None]:
    """`width` cells on a shared step axis 0..step_max: the mean value of the points in each cell,
    gaps inside the curve carried forward, None after its last point (a younger run ends sooner)."""
    cells: list[list[float]] = [[] for _ in range(max(width, 0))]
    if width <= 0 or step_max <= 0:
        return [None] * max(width, 0)
    last_col = -1
    for step, value in points:
        if value is None or not math.isfinite(value):
            continue
        col = min(int(step / step_max * width), width - 1)
        cells[col].append(value)
        last_col = max(last_col, col)
    out: list[float | None] = []
    prev: float | None = None
    for i, chunk in enumerate(cells):
        if chunk:
            prev = sum(chunk) / len(chunk)
            out.append(prev)
        else:
            out.append(prev if i <= last_col else None)
    return out


def spark_rows_by_step(points: Sequence[tuple[int, float]], width: int, height: int, step_max: float, *,
                       log: bool = False, bounds: tuple[float, float] | None = None) -> list[str]:
    """Like spark_rows, but x is the step on an axis shared by several runs (blank after a run's end)."""
    if width <= 0 or height <= 0:
        return []
    cols = columns_by_step(points, width, step_max)
    present = [v for v in cols if v is not None]
    units = iter(scaled(present, log=log, bounds=bounds))
    levels = [None if v is None else max(1, round(next(units) * height * 8)) for v in cols]
    rows = []
    for r in range(height - 1, -1, -1):
        rows.append("".join(" " if lv is None else BLOCKS[min(max(lv - r * 8, 0), 8)] for lv in levels))
    return rows


def bar(score: float | None, width: int = 6) -> str:
    """An importance score in [0, 1] as a bar of `width` cells with eighth-block resolution."""
    if score is None or not math.isfinite(score):
        return ""
    eighths = round(min(max(score, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    text = BAR_FULL * full + (BLOCKS[part] if part else "")
    return text.ljust(width, BAR_EMPTY)[:width]


def bounds_of(series: Sequence[Sequence[float]]) -> tuple[float, float] | None:
    """Shared (min, max) over several series, so several runs are drawn on one scale."""
    vals = [v for s in series for v in finite(s)]
    if not vals:
        return None
    return min(vals), max(vals)
