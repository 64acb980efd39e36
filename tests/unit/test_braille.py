"""The curves' own text figure (pictures/braille.py): frame, ticks, braille dots, markers and labels."""

from __future__ import annotations

import re
import time

import plotext

from tui_tuner.pictures.braille import BrailleFigure
from tui_tuner.pictures.plotting import Curves, Line, draw_curves

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def figure(width: int = 20, height: int = 8) -> BrailleFigure:
    fig = BrailleFigure()
    fig.plotsize(width, height)
    fig.xlim(0, 10)
    fig.ylim(0, 1)
    return fig


def plain(fig: BrailleFigure) -> list[str]:
    return ["".join(text for text, _, _ in row) for row in fig.rows()]


def test_frame_ticks_and_size():
    fig = figure()
    fig.yticks([0, 0.5, 1], ["0", "0.5", "1"])
    fig.xticks([0, 5, 10], ["0", "5", "10"])
    rows = plain(fig)
    assert len(rows) == 8 and {len(r) for r in rows} == {20}
    assert rows[0] == "   ┌" + "─" * 15 + "┐"
    # value ticks on the left at their rows (top = 1, bottom = 0), step ticks below the canvas
    assert rows[1].startswith("  1┤") and rows[5].startswith("  0┤") and rows[3].startswith("0.5┤")
    assert rows[6] == "   └┬" + "─" * 6 + "┬" + "─" * 6 + "┬┘"
    assert rows[7].split() == ["0", "5", "10"]


def test_a_line_sets_only_its_dots():
    fig = figure(height=7)                   # no tick labels: a canvas of 18 x 4 cells, 36 x 16 dots
    fig.plot([0, 10], [0, 0])                # along the bottom row of dots
    canvas = [r[1:-1] for r in plain(fig)[1:5]]
    assert canvas[-1] == "⣀" * 18 and not "".join(canvas[:-1]).strip()
    fig.clear_figure()
    fig.plotsize(20, 7)
    fig.xlim(0, 10)
    fig.ylim(0, 1)
    fig.plot([0, 10], [1, 0])                # a diagonal: one dot in every column of dots
    dots = sum(bin(ord(ch) - 0x2800).count("1") for r in plain(fig)[1:5] for ch in r[1:-1] if ord(ch) >= 0x2800)
    assert dots == 36


def test_a_cell_shows_the_last_line_drawn_through_it_in_its_colour():
    fig = figure(height=7)
    fig.plot([0, 10], [0, 0], color="cyan")
    fig.plot([0, 10], [0.07, 0.07], color="red+")   # the row of dots above, in the same cells
    row = fig.rows()[4]
    cells = [(text, code) for text, code, _ in row if code is not None]
    assert cells == [("⠤" * 18, 9)]          # red+ is ANSI 9; cyan's dots gave way


def test_markers_and_labels_go_over_the_dots_and_stop_at_the_frame():
    fig = figure(height=7)
    fig.plot([0, 10], [0.5, 0.5])
    fig.plot([0, 10], [0, 0], marker="•", color="white", style="bold")
    fig.text("LONG LABEL", 10, 1, alignment="left", color="green+")
    fig.text("#7", 10, 1, alignment="right")
    rows = plain(fig)
    assert rows[4][1:-1] == "•" * 18          # the marker in every cell the line passes
    assert rows[1].endswith("#7│")           # right-aligned at the last column; the left one is cut
    assert ("•" * 18, 15, True) in fig.rows()[4]


def test_ansi_build_uses_the_16_colours_and_nothing_when_uncoloured():
    fig = figure()
    fig.plot([0, 10], [0, 1], color="blue+")
    codes = re.findall(r"\x1b\[([0-9;]*)m", fig.build())
    assert "38;5;12" in codes
    fig.clear_figure()
    fig.plot([0, 10], [0, 1])
    assert "\x1b" not in fig.build()


def test_draw_curves_is_several_times_cheaper_than_through_plotext():
    # The reason this figure exists: the curves view at 80x24 with eight live curves.
    lines = tuple(Line(i, "running", tuple((s * 30, 1 / (1 + 0.001 * i * s * 30)) for s in range(1, 201)), 0.1)
                  for i in range(1, 9))
    curves = Curves("loss", ("loss",), lines, best_id=3)

    def cost(fig) -> float:
        t0 = time.thread_time()
        for _ in range(5):
            draw_curves(fig, curves, 80, 21, watched=2, marked={5})
            fig.rows() if isinstance(fig, BrailleFigure) else fig.build()
        return time.thread_time() - t0

    plotext.clear_figure()
    try:
        assert cost(BrailleFigure()) * 3 < cost(plotext)
    finally:
        plotext.clear_figure()
    assert len(ANSI.sub("", BrailleFigure().build()).splitlines()) == 20
