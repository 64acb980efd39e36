"""Snapshot tests of the curves and search views at 80x24 and 160x48, in colour and with NO_COLOR.

Deterministic as tests/ui/test_snapshots.py is: a study built through the Study API with a fixed
clock, the back end not started (each view builds its frame on the spot), the plot awaited.
`test_readme_curves` and `test_readme_search` are README.md's pictures of the two views, on the same
study as its picture of the main screen. Update the SVGs with
`pytest tests/ui/test_view_snapshots.py --snapshot-update` after a deliberate change.
"""

from __future__ import annotations

import time

import pytest
from test_snapshots import mlp_study

from tui_tuner.ui.screens.picture import PictureScreen

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


def opening(key: str, *keys: str):
    """run_before: press `key` (it opens the view), and once the view is up the other keys, then wait
    until the view's plot and its title are drawn."""
    async def drawn_view(pilot, what: str) -> PictureScreen:
        # However loaded the box: a key pressed before the view is up goes to the main screen (its
        # `[` focuses another run), and a snapshot taken before the plot is drawn would differ (this
        # is not a wait that may run out and take the picture anyway).
        end = time.monotonic() + 60
        while True:
            await pilot.pause(0.02)
            screen = pilot.app.screen
            if (isinstance(screen, PictureScreen) and screen.is_mounted and screen.plot.builds and screen.plot.idle
                    and str(screen.query_one("#picture-title").content)):
                return screen
            assert time.monotonic() < end, f"{what} within 60 s"

    async def run(pilot):
        await pilot.pause()
        await pilot.press(key)
        await drawn_view(pilot, "the view was not drawn")
        for k in keys:
            await pilot.press(k)
        await drawn_view(pilot, "the view's plot was not drawn again after the keys")
        await pilot.pause()
    return run


@pytest.mark.parametrize("size", SIZES)
def test_curves_view(snap_compare, snap_app, size):
    # The watched run moved off the best one, and one trial marked: every kind of curve is drawn.
    assert snap_compare(snap_app(), run_before=opening("c", "left_square_bracket", "space",
                                                       "left_square_bracket"), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_search_view(snap_compare, snap_app, size):
    assert snap_compare(snap_app(mlp_study), run_before=opening("x"), terminal_size=size)


def test_curves_view_no_color(snap_compare, snap_app):
    assert snap_compare(snap_app(no_color=True), run_before=opening("c", "left_square_bracket"),
                        terminal_size=(80, 24))


def test_search_view_no_color(snap_compare, snap_app):
    assert snap_compare(snap_app(mlp_study, no_color=True), run_before=opening("x"), terminal_size=(80, 24))


def test_readme_curves(snap_compare, snap_app):
    """README's picture of the curves view (120x36); regenerate with --snapshot-update."""
    assert snap_compare(snap_app(mlp_study), run_before=opening("c", "l"), terminal_size=(120, 36))


def test_readme_search(snap_compare, snap_app):
    """README's picture of the search view (120x36)."""
    assert snap_compare(snap_app(mlp_study), run_before=opening("x"), terminal_size=(120, 36))
