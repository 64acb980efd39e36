"""The two pictures of a study, as plain data and as plotext drawings (no textual here).

- Curves (the caviar picture): every trial's learning curve of one metric overlaid on a step axis,
  the watched run highlighted, fork points, live changes and stops marked, the best one labelled.
- Search (the coarse-to-fine picture): finished trials over two parameters, each axis in the
  parameter's own sampling scale (lr on a log axis, β on the 1-β log axis: the unit space of
  `Param.to_unit`), points shaded by objective, the best starred, running trials hollow, and
  each zoom level's box.

The app draws them into a textual-plotext figure, `tui-tuner plot` into plotext's own; both go
through `draw_curves` / `draw_search` here. Every distinction is a shape as well as a colour,
so the pictures survive NO_COLOR and a 16-colour terminal (the colours are ANSI names).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tui_tuner.formatting import show_value
from tui_tuner.pictures.axes import axis_of, log_ticks, nice_ticks, tick_label
from tui_tuner.search.param import Param

# Shapes. Plotext draws a line with its marker character; braille is its finest line.
from tui_tuner.search.space import Space

# Shapes. Plotext draws a line with its marker character; braille is its finest line.
THIN = "braille"
WATCHED = "•"
FORK, CHANGE, STOP = "◆", "▲", "✕"
BEST = "★"
RUNNING = "○"
NO_VALUE = "x"
SHADES = "█▓▒░"                                # best quarter of the objectives .. worst quarter
SHADE_COLORS = ("green+", "green", "yellow", "red")
CURVE_COLORS = ("cyan", "blue+", "magenta", "yellow", "green", "red", "cyan+", "magenta+")
MAX_LINES = 24                                 # curves drawn at once; the rest are counted
CURVE_POINTS = 200                             # points kept per curve (a wide plot is ~300 dots)


# -- data -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One trial's curve of the selected metric, with what happened to the run along it."""

    id: int
    status: str
    points: tuple[tuple[int, float], ...]
    objective: float | None = None
    parent: int | None = None
    fork_step: int | None = None
    changes: tuple[tuple[int, str], ...] = ()      # (step, "lr 0.003") per applied live change
    reason: str | None = None

    def value_at(self, step: int) -> float | None:
        """The curve's value at the last point at or before `step` (its first point before that)."""
        if not self.points:
            return None
        best = self.points[0][1]
        for s, v in self.points:
            if s > step:
                break
            best = v
        return best

    def marks(self) -> list[tuple[str, int, float]]:
        """(glyph, step, value) of the fork point, each live change and a stop, on the curve."""
        if not self.points:
            return []
        out = []
        if self.parent is not None:
            out.append((FORK, self.points[0][0], self.points[0][1]))
        for step, _ in self.changes:
            v = self.value_at(step)
            if v is not None:
                out.append((CHANGE, step, v))
        if self.status == "stopped":
            out.append((STOP, *self.points[-1]))
        return out


@dataclass(frozen=True)
class Curves:
    """Every trial's curve of one metric (the data of the curves view and of `plot`)."""

    metric: str
    metrics: tuple[str, ...]
    lines: tuple[Line, ...]
    best_id: int | None = None
    maximize: bool = False


@dataclass(frozen=True)
class Point:
    """One trial in the search picture: its setting, status and objective."""

    id: int
    status: str
    objective: float | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Box:
    """One zoom level: unit-space bounds of the numeric parameters, values kept of the choices."""

    kind: str
    bounds: tuple[tuple[str, float, float], ...] = ()
    choices: tuple[tuple[str, tuple[Any, ...]], ...] = ()


def thin(points: Sequence[tuple[int, float]], n: int = CURVE_POINTS) -> tuple[tuple[int, float], ...]:
    """At most n finite points of a curve, evenly picked, its last point always kept.

    Picking, not averaging: the runner's series are already means of merged neighbours, and this runs
    for every live curve at every frame.
    """
    pts = [(s, v) for s, v in points if v is not None and math.isfinite(v)]
    if len(pts) <= n:
        return tuple(pts)
    k = -(-len(pts) // max(n, 1))
    return tuple(pts[len(pts) - 1::-k][::-1])


def line_of(trial: Any, series: Sequence[tuple[int, float]], applied: Sequence[dict[str, Any]] = (), *,
            points: int = CURVE_POINTS) -> Line:
    """A trial's Line from its curve and its applied live changes ({"step", "params"} each)."""
    changes = tuple((int(a["step"]), change_text(a.get("params") or {})) for a in applied
                    if isinstance(a.get("step"), int))
    return Line(id=trial.id, status=trial.status, points=thin(series, points), objective=trial.objective,
                parent=trial.parent, fork_step=trial.fork_step, changes=changes, reason=trial.reason)


def change_text(params: dict[str, Any]) -> str:
    """A live change as a short label: 'lr 0.003, momentum 0.95'."""
    return ", ".join(f"{k} {show_value(v)}" for k, v in params.items())


def boxes_of(state: Any) -> tuple[Box, ...]:
    """The zoom stack of a SearchState as immutable boxes, oldest first."""
    return tuple(Box(kind=lv.kind, bounds=tuple((k, float(a), float(b)) for k, (a, b) in sorted(lv.bounds.items())),
                     choices=tuple((k, tuple(v)) for k, v in sorted(lv.choices.items())))
                 for lv in state.levels)


# -- choosing what to draw ----------------------------------------------------------------------------


def ranked(lines: Iterable[Line], maximize: bool) -> list[Line]:
    """Lines best objective first; those without one last (by id)."""
    def key(line: Line) -> tuple[int, float, int]:
        if line.objective is None or not math.isfinite(line.objective):
            return (1, 0.0, line.id)
        return (0, -line.objective if maximize else line.objective, line.id)
    return sorted(lines, key=key)


def pick_lines(curves: Curves, watched: int | None = None, marked: Iterable[int] = (), *,
               only_marked: bool = False, limit: int = MAX_LINES) -> tuple[list[Line], int]:
    """The lines to draw, bottom first (the watched one last, on top), and how many were left out.

    All trials, or with `only_marked` the marked ones and the watched one. Over `limit`, the watched,
    the marked, the running and then the best are kept.
    """
    marks = set(marked)
    pool = [ln for ln in curves.lines if ln.points]
    if only_marked:
        pool = [ln for ln in pool if ln.id in marks or ln.id == watched]
    order = ranked(pool, curves.maximize)
    order.sort(key=lambda ln: (ln.id != watched, ln.id not in marks, ln.status not in ("running", "paused")))
    kept = order[:limit]
    kept.sort(key=lambda ln: (ln.id == watched, ln.id == curves.best_id, ln.id in marks, ln.id))
    return kept, len(order) - len(kept)


def position(p: Param, value: Any, key: int = 0) -> float | None:
    """Where a value sits on the parameter's axis (unit space); a choice is spread inside its cell
    by `key` (the trial id) so that trials with the same value do not hide each other."""
    try:
        u = p.to_unit(p.check(value))
    except Exception:  # noqa: BLE001 - a value from an older space: not drawn
        return None
    if p.type == "choice":
        spread = ((key * 0.6180339887) % 1.0 - 0.5) * 0.6 / len(p.values)
        u += spread
    return u


def box_span(p: Param, box: Box) -> tuple[float, float]:
    """A zoom level's extent on one parameter's axis (the whole axis when the level leaves it alone)."""
    for name, a, b in box.bounds:
        if name == p.name:
            return a, b
    if p.type == "choice":
        for name, kept in box.choices:
            if name == p.name and kept:
                idx = [p.index_of(v) for v in kept if _known_choice(p, v)]
                if idx:
                    n = len(p.values)
                    return min(idx) / n, (max(idx) + 1) / n
    return 0.0, 1.0


def _known_choice(p: Param, v: Any) -> bool:
    try:
        p.index_of(v)
        return True
    except Exception:  # noqa: BLE001 - a value the space no longer has
        return False


def shade_of(rank: int, n: int) -> int:
    """Which quarter (0 best .. 3 worst) the rank-th best of n objectives falls in."""
    return min(3, rank * 4 // max(n, 1))


# -- drawing ------------------------------------------------------------------------------------------


@dataclass
class Picture:
    """What a drawing left for the caller: a title and the legend entries (glyph, text)."""

    title: str
    legend: list[tuple[str, str]]
    note: str = ""


def _frame(fig: Any, width: int, height: int) -> None:
    fig.clear_figure()
    # Plotext clamps a figure to the size of the terminal it guesses; these are drawn to a given size
    # (the widget's, or the file's). The module has limit_size, a figure object only the method under it.
    limit = getattr(fig, "limit_size", None) or fig._limit_size
    limit(False, False)
    fig.plotsize(max(width, 10), max(height, 5))
    fig.theme("clear")


def draw_curves(fig: Any, curves: Curves, width: int, height: int, *, watched: int | None = None,
                marked: Iterable[int] = (), only_marked: bool = False, log: bool = False,
                color: bool = True) -> Picture:
    """Draw the overlaid curves into a plotext figure (cleared first); `fig.build()` renders it."""
    _frame(fig, width, height)
    marks = set(marked)
    lines, hidden = pick_lines(curves, watched, marks, only_marked=only_marked)
    values = [v for ln in lines for _, v in ln.points]
    use_log = log and bool(values) and min(values) > 0
    scope = "marked" if only_marked else "all"
    title = f"{curves.metric} · {scope}: {len(lines)} curve(s)"
    if hidden:
        title += f" (+{hidden} not drawn)"
    if log:
        title += " · log" if use_log else " · log n/a (values <= 0)"
    if not lines:
        fig.xticks([], [])
        fig.yticks([], [])
        return Picture(title, [], note=f"no curve of {curves.metric} yet")
    f = math.log10 if use_log else float
    others = 0
    legend: list[tuple[str, str]] = []
    for ln in lines:
        # About a point per column (two for the watched curve, a braille cell's dots): plotext's cost
        # grows with the segments it draws, and more would not show.
        pts = thin(ln.points, 2 * width if ln.id == watched else width)
        xs = [s for s, _ in pts]
        ys = [f(v) for _, v in pts]
        if ln.id == watched:
            fig.plot(xs, ys, marker=WATCHED, color="white" if color else None, style="bold")
        else:
            fig.plot(xs, ys, marker=THIN, color=CURVE_COLORS[others % len(CURVE_COLORS)] if color else None)
            others += 1
    kinds: set[str] = set()
    for ln in lines:
        for glyph, step, v in ln.marks():
            fig.text(glyph, step, f(v), color=("red+" if glyph == STOP else "yellow+") if color else None)
            kinds.add(glyph)
    step_max = max(s for ln in lines for s, _ in ln.points) or 1
    lo, hi = min(values), max(values)
    ticks = log_ticks(lo, hi) if use_log else nice_ticks(lo, hi, max(3, min(6, height // 4)))
    fig.yticks([f(t) for t in ticks], [tick_label(t) for t in ticks])
    pad = (f(hi) - f(lo)) * 0.02 or 0.5
    fig.ylim(f(lo) - pad, f(hi) + pad)
    xt = nice_ticks(0, step_max, max(3, min(8, width // 12)))
    fig.xticks(xt, [tick_label(t) for t in xt])
    fig.xlim(0, step_max)
    # Names at the curves' ends: the best first, then the watched and the marked ones. Curves often
    # end together, so a name whose row is taken moves to the nearest free row (rows of the canvas:
    # the figure less its frame and the step axis).
    rows = max(height - 3, 2)
    y0, y1 = f(lo) - pad, f(hi) + pad
    taken: set[tuple[int, bool]] = set()
    named = sorted((ln for ln in lines if ln.id in (curves.best_id, watched) or ln.id in marks),
                   key=lambda ln: (ln.id != curves.best_id, ln.id != watched, ln.id))
    for ln in named:
        if ln.id == curves.best_id and ln.objective is not None:
            tag = f"{BEST}#{ln.id} {tick_label(ln.objective)}"
        else:
            tag = f"{BEST}#{ln.id}" if ln.id == curves.best_id else f"#{ln.id}"
        s, v = ln.points[-1]
        right = s > step_max * 0.6
        row = round((f(v) - y0) / (y1 - y0) * (rows - 1))
        for dr in sorted(range(-rows, rows + 1), key=abs):
            if 0 <= row + dr < rows and (row + dr, right) not in taken:
                row += dr
                break
        taken.add((row, right))
        fig.text(tag, s, y0 + row / (rows - 1) * (y1 - y0), alignment="right" if right else "left",
                 color="green+" if color and ln.id == curves.best_id else None, style="bold")
    if watched is not None and any(ln.id == watched for ln in lines):
        legend.append((WATCHED, f"#{watched} watched"))
    legend.append(("⠉", "others"))
    if curves.best_id is not None and any(ln.id == curves.best_id for ln in lines):
        legend.append((BEST, "best"))
    for glyph, text in ((FORK, "fork"), (CHANGE, "live change"), (STOP, "stopped")):
        if glyph in kinds:
            legend.append((glyph, text))
    return Picture(title, legend)


def draw_search(fig: Any, space: Space, points: Sequence[Point], boxes: Sequence[Box], x: str, y: str,
                width: int, height: int, *, maximize: bool = False, color: bool = True) -> Picture:
    """Draw the scatter of two parameters, each in its own scale, with the zoom boxes."""
    _frame(fig, width, height)
    px, py = space[x], space[y]
    ax, ay = axis_of(px), axis_of(py)
    fig.xticks(list(ax.ticks), list(ax.labels))
    fig.yticks(list(ay.ticks), list(ay.labels))
    fig.xlim(-0.02, 1.02)
    fig.ylim(-0.03, 1.03)
    fig.xlabel(ax.label)
    legend: list[tuple[str, str]] = []
    zooms = 0
    for i, box in enumerate(boxes):
        (x0, x1), (y0, y1) = box_span(px, box), box_span(py, box)
        current = i == len(boxes) - 1
        if box.kind == "zoom":
            zooms += 1
        tag = f"z{zooms}" if box.kind == "zoom" else "stage"
        tone = ("red+" if current else "gray") if color else None
        fig.rectangle([x0, x1], [y0, y1], marker="•" if current else "·", color=tone)
        # The current box is named at its top-left corner, earlier ones at their top-right, so
        # nested boxes that share a corner do not write over each other's names.
        fig.text(tag, x0 if current else x1, y1, alignment="left" if current else "right", color=tone)
    if boxes:
        legend.append(("•", f"zoom box (z{zooms} now)" if zooms else "stage box"))
        if len(boxes) > 1:
            legend.append(("·", "earlier"))
    scored = [pt for pt in points if pt.status not in ("running", "paused") and pt.objective is not None
              and math.isfinite(pt.objective)]
    scored.sort(key=lambda pt: (-pt.objective if maximize else pt.objective, pt.id))
    rank = {pt.id: i for i, pt in enumerate(scored)}
    best = scored[0].id if scored else None
    groups: dict[tuple[str, str | None], tuple[list[float], list[float]]] = {}
    for pt in points:
        u, v = position(px, pt.params.get(x, px.default), pt.id), position(py, pt.params.get(y, py.default), pt.id)
        if u is None or v is None:
            continue
        if pt.id == best:
            continue
        if pt.status in ("running", "paused"):
            key = (RUNNING, "white")
        elif pt.id in rank:
            q = shade_of(rank[pt.id], len(scored))
            key = (SHADES[q], SHADE_COLORS[q])
        else:
            key = (NO_VALUE, "gray")
        xs, ys = groups.setdefault(key, ([], []))
        xs.append(u)
        ys.append(v)
    # Worst first, so the better points and the running ones are drawn over them.
    order = [NO_VALUE, *reversed(SHADES), RUNNING]
    for (glyph, col), (xs, ys) in sorted(groups.items(), key=lambda kv: order.index(kv[0][0])):
        fig.scatter(xs, ys, marker=glyph, color=col if color else None)
    if best is not None:
        pt = scored[0]
        u, v = position(px, pt.params.get(x, px.default), pt.id), position(py, pt.params.get(y, py.default), pt.id)
        if u is not None and v is not None:
            # One text, star first: a separate label would be written over the star.
            right = u > 0.7
            fig.text(f"#{pt.id}{BEST}" if right else f"{BEST}#{pt.id}", u, v, alignment="right" if right else "left",
                     color="green+" if color else None, style="bold")
    if scored:
        legend.insert(0, (SHADES, "objective best→worst"))
        legend.insert(1, (BEST, f"best #{best} {tick_label(scored[0].objective)}"))
    if any(pt.status in ("running", "paused") for pt in points):
        legend.append((RUNNING, "running"))
    if any(pt.status not in ("running", "paused") and pt.id not in rank for pt in points):
        legend.append((NO_VALUE, "no objective"))
    done = len(scored)
    title = f"{ay.label} against {ax.label} · {done} finished"
    return Picture(title, legend, note="" if points else "no trial has started yet")


def legend_text(picture: Picture) -> str:
    """The legend as one plain line."""
    return "   ".join(f"{g} {t}" for g, t in picture.legend)
