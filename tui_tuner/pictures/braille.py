"""A small text figure for the curves picture: braille lines on a framed canvas with ticks.

Why not plotext here: plotext builds a braille picture through a full-resolution matrix of the
whole canvas (every dot, drawn or not, is grouped, transposed and joined) and then an ANSI string
that the app decodes again. With eight live curves at 80x24 that is ~20-30 ms of pure Python per
build, five builds a second, a tenth of a core, for a picture of a few hundred dots. This draws
only the dots of the lines (a 2x4-dot grid per cell), and hands its rows over as styled runs. It
takes the subset of plotext's figure API that `draw_curves` uses, so the same function draws with
either; the search picture (scatter, rectangles, labels) stays with plotext.

Colours are plotext's names ("cyan", "blue+", ...) as their ANSI 16-colour numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# plotext's colour names and their ANSI numbers; "yellow" is plotext's "orange" (ANSI 3).
COLOR_CODES = {"black": 0, "red": 1, "green": 2, "yellow": 3, "orange": 3, "blue": 4, "magenta": 5, "cyan": 6,
               "gray+": 7, "gray": 8, "red+": 9, "green+": 10, "yellow+": 11, "orange+": 11, "blue+": 12,
               "magenta+": 13, "cyan+": 14, "white": 15}
# The bit of each dot of a braille cell, by (row 0..3, column 0..1) inside the cell.
DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
BRAILLE = 0x2800
Run = tuple[str, int | None, bool]   # (text, ANSI colour or None, bold)


class BrailleFigure:
    """The figure calls `draw_curves` makes (plot, text, ticks, limits, size), drawn cheaply."""

    def __init__(self) -> None:
        self.clear_figure()

    # -- plotext's figure API (the part draw_curves uses) ------------------------------------------

    def clear_figure(self) -> None:
        """Forget everything drawn and set."""
        self.width, self.height = 80, 20
        self._lines: list[tuple[list[float], list[float], str | None, int | None, bool]] = []
        self._texts: list[tuple[str, float, float, int | None, str, bool]] = []
        self._xticks: tuple[list[float], list[str]] | None = None
        self._yticks: tuple[list[float], list[str]] | None = None
        self._xlim: tuple[float, float] | None = None
        self._ylim: tuple[float, float] | None = None

    def limit_size(self, *_: Any) -> None:
        """plotext clamps to the terminal's size; this figure is always the size asked."""

    def plotsize(self, width: int, height: int) -> None:
        """The whole figure's size in cells, frame and tick labels included."""
        self.width, self.height = int(width), int(height)

    def theme(self, _: str) -> None:
        """Only plotext's "clear" theme is drawn: no background, uncoloured frame."""

    def plot(self, xs: Sequence[float], ys: Sequence[float], *, marker: str | None = None,
             color: str | None = None, style: str | None = None) -> None:
        """A line through the points: braille dots, or `marker` in each cell it passes."""
        self._lines.append((list(xs), list(ys), None if marker in (None, "braille") else marker,
                            _code(color), style == "bold"))

    def text(self, label: str, x: float, y: float, *, color: str | None = None, alignment: str = "center",
             style: str | None = None) -> None:
        """A label at (x, y), over the lines."""
        self._texts.append((label, x, y, _code(color), alignment, style == "bold"))

    def xticks(self, ticks: Sequence[float], labels: Sequence[str] | None = None) -> None:
        """Ticks on the step axis, with their labels."""
        self._xticks = (list(ticks), [str(t) for t in (labels if labels is not None else ticks)])

    def yticks(self, ticks: Sequence[float], labels: Sequence[str] | None = None) -> None:
        """Ticks on the value axis, with their labels."""
        self._yticks = (list(ticks), [str(t) for t in (labels if labels is not None else ticks)])

    def xlim(self, lo: float, hi: float) -> None:
        """The step axis' range."""
        self._xlim = (float(lo), float(hi))

    def ylim(self, lo: float, hi: float) -> None:
        """The value axis' range."""
        self._ylim = (float(lo), float(hi))

    def build(self) -> str:
        """The figure as text with ANSI colours (what plotext's build returns)."""
        out = []
        for row in self.rows():
            parts = []
            for text, code, bold in row:
                if code is None and not bold:
                    parts.append(text)
                    continue
                sgr = ";".join(([f"38;5;{code}"] if code is not None else []) + (["1"] if bold else []))
                parts.append(f"\x1b[{sgr}m{text}\x1b[0m")
            out.append("".join(parts))
        return "\n".join(out)

    # -- drawing ----------------------------------------------------------------------------------------

    def rows(self) -> list[list[Run]]:
        """The figure's rows, each as runs of equally styled text; exactly `height` rows of `width` cells."""
        width, height = max(self.width, 4), max(self.height, 4)
        ylabels = self._yticks[1] if self._yticks else []
        left = max((len(s) for s in ylabels), default=0)
        cw, ch = max(width - left - 2, 1), max(height - 3, 1)
        grid = _Grid(cw, ch, self._xlim or self._auto(0), self._ylim or self._auto(1))
        for xs, ys, marker, code, bold in self._lines:
            if marker is None:
                grid.braille(xs, ys, code)
            else:
                grid.marker(xs, ys, marker, code, bold)
        for label, x, y, code, alignment, bold in self._texts:
            grid.label(label, x, y, code, alignment, bold)
        # The frame: y tick labels and marks on the left, x tick marks below, x tick labels under them.
        ymarks: dict[int, str] = {}
        if self._yticks:
            for t, s in zip(*self._yticks, strict=False):
                r = grid.row_of(t)
                if r is not None:
                    ymarks[r] = s
        xmarks = []
        if self._xticks:
            xmarks = [(c, s) for t, s in zip(*self._xticks, strict=False) if (c := grid.col_of(t)) is not None]
        out: list[list[Run]] = [[(" " * left + "┌" + "─" * cw + "┐", None, False)]]
        for r in range(ch):
            lead = ymarks[r].rjust(left) + "┤" if r in ymarks else " " * left + "│"
            out.append([(lead, None, False), *grid.row_runs(r), ("│", None, False)])
        bottom = ["─"] * cw
        labels = [" "] * (cw + 2)
        free = 0
        for c, s in xmarks:
            bottom[c] = "┬"
            start = min(max(c + 1 - len(s) // 2, 0), cw + 2 - len(s))
            if start >= free:   # a label that would run into the one before it is left out
                labels[start:start + len(s)] = s
                free = start + len(s) + 1
        out.append([(" " * left + "└" + "".join(bottom) + "┘", None, False)])
        out.append([(" " * left + "".join(labels)[:cw + 2].ljust(cw + 2), None, False)])
        return out

    def _auto(self, axis: int) -> tuple[float, float]:
        values = [v for line in self._lines for v in line[axis]]
        if not values:
            return (0.0, 1.0)
        lo, hi = min(values), max(values)
        return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


class _Grid:
    """The canvas inside the frame: braille dots with a colour per cell, and characters over them."""

    def __init__(self, cols: int, rows: int, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
        self.cols, self.rows = cols, rows
        self.x0, self.y1 = xlim[0], ylim[1]
        self.xspan = (xlim[1] - xlim[0]) or 1.0
        self.yspan = (ylim[1] - ylim[0]) or 1.0
        self.bits = [0] * (cols * rows)
        self.color: list[int | None] = [None] * (cols * rows)
        self.owner = [0] * (cols * rows)   # which line's dots a cell shows (0: none)
        self.lines = 0
        self.chars: dict[int, tuple[str, int | None, bool]] = {}

    def col_of(self, x: float) -> int | None:
        """The canvas column of a step (None outside)."""
        c = round((x - self.x0) / self.xspan * (self.cols - 1))
        return c if 0 <= c < self.cols else None

    def row_of(self, y: float) -> int | None:
        """The canvas row of a value, 0 at the top (None outside)."""
        r = round((self.y1 - y) / self.yspan * (self.rows - 1))
        return r if 0 <= r < self.rows else None

    def braille(self, xs: list[float], ys: list[float], code: int | None) -> None:
        """Set the dots of the line through the points; a cell it passes shows its dots alone, in its colour.

        One line per cell, the last drawn (as plotext does): where curves cross, a cell keeps a
        readable stroke instead of filling up with every curve's dots.
        """
        self.lines += 1
        me = self.lines
        dw, dh = self.cols * 2, self.rows * 4
        fx, fy = (dw - 1) / self.xspan, (dh - 1) / self.yspan
        pts = [(round((x - self.x0) * fx), round((self.y1 - y) * fy)) for x, y in zip(xs, ys, strict=False)
               if math.isfinite(x) and math.isfinite(y)]
        bits, color, owner, cols = self.bits, self.color, self.owner, self.cols
        px, py = pts[0] if pts else (0, 0)
        for i, (x, y) in enumerate(pts):
            n = max(abs(x - px), abs(y - py)) if i else 0
            for k in range(n + 1):
                if n:
                    dx, dy = px + (x - px) * k // n, py + (y - py) * k // n
                else:
                    dx, dy = x, y
                if 0 <= dx < dw and 0 <= dy < dh:
                    cell = (dy >> 2) * cols + (dx >> 1)
                    if owner[cell] != me:
                        owner[cell], bits[cell], color[cell] = me, 0, code
                    bits[cell] |= DOT_BITS[dy & 3][dx & 1]
            px, py = x, y

    def marker(self, xs: list[float], ys: list[float], glyph: str, code: int | None, bold: bool) -> None:
        """The glyph in every cell the line through the points passes."""
        fx, fy = (self.cols - 1) / self.xspan, (self.rows - 1) / self.yspan
        pts = [(round((x - self.x0) * fx), round((self.y1 - y) * fy)) for x, y in zip(xs, ys, strict=False)
               if math.isfinite(x) and math.isfinite(y)]
        px, py = pts[0] if pts else (0, 0)
        for i, (x, y) in enumerate(pts):
            n = max(abs(x - px), abs(y - py)) if i else 0
            for k in range(n + 1):
                cx, cy = (px + (x - px) * k // n, py + (y - py) * k // n) if n else (x, y)
                if 0 <= cx < self.cols and 0 <= cy < self.rows:
                    self.chars[cy * self.cols + cx] = (glyph, code, bold)
            px, py = x, y

    def label(self, text: str, x: float, y: float, code: int | None, alignment: str, bold: bool) -> None:
        """Text at (x, y): starting there (left), ending there (right) or centred; cut at the frame."""
        c = round((x - self.x0) / self.xspan * (self.cols - 1))
        r = round((self.y1 - y) / self.yspan * (self.rows - 1))
        if not 0 <= r < self.rows:
            return
        start = c if alignment == "left" else c - len(text) + 1 if alignment == "right" else c - len(text) // 2
        for i, ch in enumerate(text):
            col = start + i
            if 0 <= col < self.cols:
                self.chars[r * self.cols + col] = (ch, code, bold)

    def row_runs(self, r: int) -> list[Run]:
        """One canvas row as runs of equally styled text."""
        runs: list[Run] = []
        text: list[str] = []
        style: tuple[int | None, bool] = (None, False)
        base = r * self.cols
        for i in range(base, base + self.cols):
            over = self.chars.get(i)
            if over is not None:
                ch, st = over[0], (over[1], over[2])
            elif self.bits[i]:
                ch, st = chr(BRAILLE + self.bits[i]), (self.color[i], False)
            else:
                ch, st = " ", (None, False)
            if st != style and text:
                runs.append(("".join(text), *style))
                text = []
            style = st
            text.append(ch)
        if text:
            runs.append(("".join(text), *style))
        return runs


def _code(color: str | None) -> int | None:
    return COLOR_CODES.get(color) if color else None
