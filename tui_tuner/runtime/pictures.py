"""`tui-tuner plot`: the app's two pictures of a study, drawn without the app.

Read from the study directory (the database and each run's events or output, as a reopened app
reads them), then drawn as text to the terminal or a .txt file (the curves with the app's own
BrailleFigure, the search picture with plotext), or with matplotlib (the optional `plot` extra) to
PNG, SVG or PDF for a report or a paper. No textual here.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

from tui_tuner.core.braille import BrailleFigure
from tui_tuner.core.plot_axes import axis_of
from tui_tuner.core.plotting import (
    Box,
    Curves,
    Point,
    box_span,
    boxes_of,
    draw_curves,
    draw_search,
    legend_text,
    line_of,
    position,
    ranked,
)
from tui_tuner.core.printable import printable
from tui_tuner.errors import PlotError

FILE_FORMATS = (".png", ".svg", ".pdf")
TEXT_FORMATS = (".txt",)


def study_curves(study: Any, reader: Any, metric: str | None = None) -> Curves:
    """Every started trial's curve of `metric` (default: the objective), read through `reader`
    (a Runner: `series`, `metric_names`, `changes`)."""
    cfg = study.space.config
    metric = metric or cfg.objective
    trials = [t for t in study.trials("id") if t.status != "queued"]
    names: list[str] = []
    lines = []
    for t in trials:
        for n in reader.metric_names(t.id):
            if n not in names:
                names.append(n)
        series = reader.series(t.id, metric)
        if series:
            lines.append(line_of(t, series, reader.changes(t.id)))
    if cfg.objective not in names:
        names.insert(0, cfg.objective)
    best = study.best(1)
    return Curves(metric=metric, metrics=tuple(names), lines=tuple(lines),
                  best_id=best[0].id if best else None, maximize=cfg.maximize)


def study_points(study: Any) -> list[Point]:
    """Every started trial as a point of the search picture."""
    return [Point(id=t.id, status=t.status, objective=t.objective, params=dict(t.params))
            for t in study.trials("id") if t.status != "queued"]


def check_search(space: Any, names: list[str] | None) -> tuple[str, str]:
    """The (x, y) parameters asked for, checked against the space."""
    from tui_tuner.core.plot_axes import axis_pairs

    if not names:
        pairs = axis_pairs(space)
        if not pairs:
            raise PlotError("the search picture needs at least 2 parameters; this space has 1")
        return pairs[0]
    for n in names:
        if n not in space:
            raise PlotError(f"--search: no parameter {n!r} (parameters: {', '.join(space.params)})")
    if names[0] == names[1]:
        raise PlotError(f"--search: x and y must differ, got {names[0]!r} twice")
    return names[0], names[1]


def _color_wanted(out: TextIO) -> bool:
    return "NO_COLOR" not in os.environ and hasattr(out, "isatty") and out.isatty()


def text_picture(study: Any, *, metric: str | None = None, search: list[str] | None = None,
                 log: bool = False, width: int = 100, height: int = 30, color: bool = False) -> str:
    """One picture as text: a title line, the plot and a legend line (ANSI colours when `color`)."""
    import plotext as plt

    from tui_tuner.runtime.runner import Runner

    if search is not None:
        x, y = check_search(study.space, search)
        pic = draw_search(plt, study.space, study_points(study), boxes_of(study.search_state), x, y,
                          width, height - 2, maximize=study.space.config.maximize, color=color)
        body = plt.build()
    else:
        # The app's own curves figure, so the terminal shows the picture the app does.
        fig = BrailleFigure()
        curves = checked_curves(study, Runner(study), metric)
        pic = draw_curves(fig, curves, width, height - 2, log=log, color=color)
        body = fig.build()
    if not color:
        body = printable(plt.uncolorize(body), newlines=True)
    # The title names the metric as the trainer wrote it: shown, never acted on by the terminal.
    return "\n".join([printable(f"{study.name}: {pic.title}"), body, printable(legend_text(pic))]) + "\n"


def checked_curves(study: Any, reader: Any, metric: str | None) -> Curves:
    """study_curves, refusing a metric no trial reported."""
    curves = study_curves(study, reader, metric)
    if not curves.lines:
        known = ", ".join(curves.metrics) or "none yet"
        raise PlotError(f"{study.dir}: no trial has reported {curves.metric!r} (metrics: {known})")
    return curves


def plot_study(study_dir: str, *, metric: str | None = None, search: list[str] | None = None,
               output: str | None = None, log: bool = False, out: TextIO | None = None) -> int:
    """The `plot` command: draw to the terminal, or write FILE (.txt, .png, .svg, .pdf); `-o -` is the
    text picture on standard output. A FILE is written by core/output_file.py: never into the study."""
    from tui_tuner.core.output_file import STDOUT, check_output, write_output
    from tui_tuner.core.study import Study

    out = out or sys.stdout
    suffix = Path(output).suffix.lower() if output and output != STDOUT else ""
    if output and output != STDOUT and suffix not in FILE_FORMATS + TEXT_FORMATS:
        raise PlotError(f"{output}: -o: unknown format {suffix or '(no suffix)'!r} "
                        f"(use {', '.join(TEXT_FORMATS + FILE_FORMATS)}, or - for standard output)")
    with Study.open(study_dir, lock=False) as study:
        rules = {"study_dir": study.dir, "protected": (study.space_file,)}
        if output == STDOUT:
            out.write(text_picture(study, metric=metric, search=search, log=log))
        elif output:
            check_output(output, **rules)   # before drawing: a refused path costs no picture
            if suffix in FILE_FORMATS:
                data = save_picture(study, suffix, metric=metric, search=search, log=log)
            else:
                data = text_picture(study, metric=metric, search=search, log=log).encode("utf-8")
            out.write(f"{write_output(output, data, **rules)}\n")
        else:
            cols, rows = shutil.get_terminal_size((100, 30))
            out.write(text_picture(study, metric=metric, search=search, log=log, width=cols,
                                   height=max(rows - 2, 12), color=_color_wanted(out)))
    out.flush()
    return 0


# -- PNG / SVG / PDF with matplotlib -------------------------------------------------------------


def _figure() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError("PNG, SVG and PDF need matplotlib: pip install 'tui-tuner[plot]' "
                        "(or -o FILE.txt for text)") from None
    # A Figure of its own, not pyplot: no global state, no GUI backend.
    return Figure(figsize=(9, 5.5), layout="constrained")


def save_picture(study: Any, suffix: str, *, metric: str | None = None, search: list[str] | None = None,
                 log: bool = False) -> bytes:
    """One picture drawn with matplotlib, as the bytes of a file of that suffix (.png, .svg, .pdf)."""
    fig = _figure()
    ax = fig.add_subplot()
    if search is not None:
        x, y = check_search(study.space, search)
        mpl_search(ax, fig, study.space, study_points(study), boxes_of(study.search_state), x, y,
                   study.space.config.maximize)
    else:
        from tui_tuner.runtime.runner import Runner

        mpl_curves(ax, checked_curves(study, Runner(study), metric), log)
    ax.set_title(f"{study.name}", loc="left", fontsize=10)
    # Into memory, not to the path: savefig would follow a symlink and write over whatever it names.
    buffer = io.BytesIO()
    fig.savefig(buffer, format=suffix.lstrip("."))
    return buffer.getvalue()


def mpl_curves(ax: Any, curves: Curves, log: bool) -> None:
    """The curves picture on a matplotlib Axes."""
    lines = ranked([ln for ln in curves.lines if ln.points], curves.maximize)
    use_log = log and all(v > 0 for ln in lines for _, v in ln.points)
    for ln in reversed(lines):
        xs, ys = [s for s, _ in ln.points], [v for _, v in ln.points]
        best = ln.id == curves.best_id
        ax.plot(xs, ys, lw=2.2 if best else 0.9, alpha=1.0 if best else 0.55, zorder=3 if best else 2,
                color="tab:green" if best else None,
                label=f"best #{ln.id} ({ln.objective:.4g})" if best and ln.objective is not None else None)
        for glyph, step, v in ln.marks():
            style = {"◆": ("D", "tab:blue", "fork"), "▲": ("^", "tab:orange", "live change"),
                     "✕": ("x", "tab:red", "stopped")}[glyph]
            ax.plot([step], [v], marker=style[0], color=style[1], ms=6, ls="none", zorder=4, label=style[2])
    if use_log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(curves.metric + (" (log)" if use_log else ""))
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    seen: dict[str, Any] = {}
    for h, lab in zip(handles, labels, strict=True):
        seen.setdefault(lab, h)
    if seen:
        ax.legend(seen.values(), seen.keys(), fontsize=8)


def mpl_search(ax: Any, fig: Any, space: Any, points: list[Point], boxes: tuple[Box, ...], x: str, y: str,
               maximize: bool) -> None:
    """The search picture on a matplotlib Axes: the same unit-space axes as the terminal's."""
    from matplotlib.patches import Rectangle

    px, py = space[x], space[y]
    ax_x, ax_y = axis_of(px), axis_of(py)
    zooms = 0
    for i, box in enumerate(boxes):
        (x0, x1), (y0, y1) = box_span(px, box), box_span(py, box)
        current = i == len(boxes) - 1
        zooms += box.kind == "zoom"
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.6 if current else 0.9,
                               ls="-" if current else "--", ec="tab:red" if current else "0.5", zorder=1))
        # As in the terminal: the current box named at its top-left corner, earlier ones at their top-right.
        ax.annotate(f"z{zooms}" if box.kind == "zoom" else "stage", (x0 if current else x1, y1),
                    xytext=(2 if current else -2, -10), textcoords="offset points", fontsize=8,
                    ha="left" if current else "right", color="tab:red" if current else "0.4")
    done = [p for p in points if p.status not in ("running", "paused") and p.objective is not None
            and math.isfinite(p.objective)]
    pos = {p.id: (position(px, p.params.get(x, px.default), p.id), position(py, p.params.get(y, py.default), p.id))
           for p in points}
    shown = [p for p in done if None not in pos[p.id]]
    if shown:
        from matplotlib.colors import LogNorm, Normalize
        from matplotlib.ticker import FuncFormatter

        values = [p.objective for p in shown]
        # Losses span decades, and one diverging trial would wash out a linear scale.
        norm = LogNorm() if min(values) > 0 and max(values) > 3 * min(values) else Normalize()
        sc = ax.scatter([pos[p.id][0] for p in shown], [pos[p.id][1] for p in shown], c=values, norm=norm,
                        cmap="viridis" if maximize else "viridis_r", s=28, zorder=3, edgecolors="none")
        bar = fig.colorbar(sc, ax=ax, label="objective" + (" (higher is better)" if maximize else " (lower is better)"))
        plain = FuncFormatter(lambda v, _: f"{v:.3g}")
        bar.ax.yaxis.set_major_formatter(plain)
        bar.ax.yaxis.set_minor_formatter(plain)
        best = min(shown, key=lambda p: -p.objective if maximize else p.objective)
        ax.scatter(*pos[best.id], marker="*", s=220, c="gold", edgecolors="black", zorder=5,
                   label=f"best #{best.id} ({best.objective:.4g})")
    running = [p for p in points if p.status in ("running", "paused") and None not in pos[p.id]]
    if running:
        ax.scatter([pos[p.id][0] for p in running], [pos[p.id][1] for p in running], facecolors="none",
                   edgecolors="black", s=40, zorder=4, label="running")
    placed = {p.id for p in done} | {p.id for p in running}
    failed = [p for p in points if p.id not in placed and None not in pos[p.id]]
    if failed:
        ax.scatter([pos[p.id][0] for p in failed], [pos[p.id][1] for p in failed], marker="x", c="0.5",
                   s=24, zorder=2, label="no objective")
    ax.set_xticks(ax_x.ticks, ax_x.labels)
    ax.set_yticks(ax_y.ticks, ax_y.labels)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(ax_x.label)
    ax.set_ylabel(ax_y.label)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
