"""Pilot tests of the two picture views (the curves view, caviar; the search view, coarse to fine) and
of the plot widget under them.

The finished study is built through the Study API (nine trials, one failed, one a fork); the back
end runs (live) with the scheduler off, so zoom goes through the real command and view threads.
One test watches a real trainer's curve grow in the curves view.
"""

from __future__ import annotations

import time

import pytest
from textual.app import App
from ui_helpers import (
    finished_study,
    make_app,
    open_study,
    piloting,
    plain,
    screen_of,
    space_text,
    wait_until,
)

from tui_tuner.pictures.plotting import BEST, WATCHED, Picture
from tui_tuner.ui.app import TunerApp
from tui_tuner.ui.screens.curves import CurvesScreen, parse_trial
from tui_tuner.ui.screens.dialogs import Prompt
from tui_tuner.ui.screens.main import MainScreen
from tui_tuner.ui.screens.search_view import SearchScreen
from tui_tuner.ui.widgets import plots
from tui_tuner.ui.widgets.plots import DUTY, FRESH, MIN_INTERVAL, PicturePlot


@pytest.fixture
def app(study_dir, tmp_path, monkeypatch) -> TunerApp:
    """The app on the finished study, the scheduler off."""
    return make_app(finished_study(study_dir, monkeypatch), tmp_path, autostart=False)


def title(screen) -> str:
    return plain(screen.query_one("#picture-title").content)


def legend(screen) -> str:
    return plain(screen.query_one("#picture-legend").content)


def plot_text(screen) -> str:
    return screen.plot.render().plain


async def shows(pilot, screen, *words: str, timeout: float = 10) -> str:
    """Wait until the view's plot is drawn and its title line holds every word."""
    def ready():
        t = title(screen)
        return screen.plot.idle and all(w in t for w in words) and t
    try:
        return await wait_until(pilot, ready, timeout, f"the title to show {words}")
    except AssertionError as e:
        raise AssertionError(f"{e}; it shows {title(screen)!r}") from None


def test_parse_trial_accepts_what_tables_show():
    assert parse_trial("7") == parse_trial("#7") == parse_trial("t0007") == 7
    with pytest.raises(Exception, match="must be a number like 7"):
        parse_trial("seven")


async def test_curves_view_cycles_metric_log_marks_and_jumps(app):
    async with piloting(app) as pilot:
        await pilot.press("c")
        view = await screen_of(pilot, CurvesScreen, "the curves view")
        await wait_until(pilot, lambda: app.backend.view == "curves", 5, "the back end to gather curves")
        # Every started trial has a curve (the failed one too); the watched one is the best here.
        await shows(pilot, view, "val_loss · all: 9 curve(s)", "watching #9")
        text = plot_text(view)
        assert f"{BEST}#9 0.16" in text and WATCHED in text and "◆" in text   # #9 is a fork
        assert "• #9 watched" in legend(view) and "◆ fork" in legend(view)

        await pilot.press("m")                   # the next metric the runs report
        await shows(pilot, view, "· loss · all")
        assert app.backend.curve_metric == "loss"
        await pilot.press("m")
        await shows(pilot, view, "· val_loss · all")
        await pilot.press("l")                   # log y
        await shows(pilot, view, "val_loss", "· log")

        await pilot.press("space")               # mark the watched trial
        await shows(pilot, view, "1 marked")
        assert view.marked == {9}
        await pilot.press("right_square_bracket")   # watch the next curve (by number, round the end)
        await shows(pilot, view, "watching #1")
        assert app.backend.focus == 1               # the main screen follows
        await pilot.press("left_square_bracket", "left_square_bracket")
        await shows(pilot, view, "watching #8")
        await pilot.press("space")
        await pilot.press("a")                   # only the marked (and the watched)
        await shows(pilot, view, "marked: 2 curve(s)", "2 marked")
        assert view.drawn_ids() == [8, 9]
        await pilot.press("space")               # unmark #8: it stays drawn while it is watched
        await shows(pilot, view, "1 marked", "marked: 2 curve(s)")
        await pilot.press("a")
        await shows(pilot, view, "all: 9 curve(s)")

        await pilot.press("g")                   # jump to a trial by number
        prompt = await screen_of(pilot, Prompt, "the go-to prompt")
        await pilot.press("9", "9", "enter")
        await wait_until(pilot, lambda: "no started trial #99" in prompt.error_text, 5, "the refusal")
        prompt.query_one("#prompt-input").value = "#3"
        await pilot.press("enter")
        await shows(pilot, view, "watching #3")

        await pilot.press("escape")              # back: the main screen shows the trial watched
        await screen_of(pilot, MainScreen, "the main screen")
        assert app.backend.view is None
        await wait_until(pilot, lambda: app.main.snap.focused.id == 3, 5, "the main screen to follow #3")
        await pilot.press("c")                   # the marks are kept
        view = await screen_of(pilot, CurvesScreen, "the curves view again")
        assert view.marked == {9}


async def test_search_view_cycles_the_parameters_and_zooms(app):
    async with piloting(app) as pilot:
        await pilot.press("x")
        view = await screen_of(pilot, SearchScreen, "the search view")
        await shows(pilot, view, "momentum (1-β log) against lr (log)", "8 finished", "no zoom yet")
        text = plot_text(view)
        assert "0.001" in text and "0.99" in text and f"{BEST}#9" in text
        # The space's priority order: lr, then the tier-2 parameters, then the rest.
        await pilot.press("right_square_bracket")
        await shows(pilot, view, "hidden against lr (log)")
        await pilot.press("right_square_bracket")
        await shows(pilot, view, "layers (choice) against lr (log)")
        await pilot.press("left_square_bracket", "left_square_bracket")
        await shows(pilot, view, "momentum (1-β log) against lr (log)")
        await pilot.press("y")                   # y cycles on its own, never onto x
        await shows(pilot, view, "hidden against lr (log)")
        await pilot.press("x")                   # x skips the y parameter
        await shows(pilot, view, "hidden against momentum (1-β log)")
        await pilot.press("x", "x", "x", "x", "x")
        await shows(pilot, view, "hidden against lr (log)")

        await pilot.press("z")                   # zoom here: the box appears
        await shows(pilot, view, "zoom 1")
        assert "zoom box (z1 now)" in legend(view) and "z1" in plot_text(view)
        await pilot.press("z")
        await shows(pilot, view, "zoom 2")
        assert "zoom box (z2 now)" in legend(view) and "earlier" in legend(view)
        await pilot.press("Z", "Z")              # and back out
        await shows(pilot, view, "no zoom yet")
        assert "zoom box" not in legend(view)
        await pilot.press("escape")
        await screen_of(pilot, MainScreen, "the main screen")
        assert app.backend.view is None
        await wait_until(pilot, lambda: app.backend.snapshot.points is None, 5, "the view's data to be dropped")


async def test_curves_view_follows_a_live_run_and_hands_the_screen_back(study_dir, tmp_path):
    study = open_study(study_dir, space_text(budget=1, delay=0.01))
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await wait_until(pilot, lambda: app.main.snap and app.main.snap.active_ids, 15, "a run to start")
        await pilot.press("c")
        view = await screen_of(pilot, CurvesScreen, "the curves view")
        await shows(pilot, view, "watching #1", "all: 1 curve(s)")

        def last_step() -> int:
            curves = view.snap.curves
            return curves.lines[0].points[-1][0] if curves and curves.lines and curves.lines[0].points else 0

        first, builds = last_step(), view.plot.builds
        await wait_until(pilot, lambda: last_step() > first + 20 and view.plot.builds > builds, 15,
                         "the curve to grow on screen")
        # The main screen does not redraw under the view; it catches up when it is back.
        main_header = plain(app.main.query_one("#run-header").content)
        await pilot.pause(0.5)
        assert plain(app.main.query_one("#run-header").content) == main_header
        await pilot.press("escape")
        await wait_until(pilot, lambda: plain(app.main.query_one("#run-header").content) != main_header, 5,
                         "the main screen to redraw")
        await app.call(app.backend.session.stop_all, 10)


@pytest.mark.parametrize("key", ["c", "x"])
async def test_a_covered_main_screen_is_not_gathered_nor_redrawn_and_catches_up_when_shown(app, key):
    async with piloting(app) as pilot:
        trials = app.main.query_one("#trials")

        def curve_cells() -> list:
            return [trials.get_row(k)[4] for k, _ in trials._rows]

        await wait_until(pilot, lambda: app.main.snap and app.main.snap.focused and app.main.snap.focused.loss
                         and any(plain(c).strip() for c in curve_cells()), 10, "a full frame, table curves drawn")
        cells = curve_cells()
        frames = app.main.snap.seq

        await pilot.press(key)
        await wait_until(pilot, lambda: app.backend.snapshot.view is not None and app.backend.snapshot.seq > frames,
                         10, "a frame built for the view")
        # Built for the view: none of the main screen's curves (charts, cards, table cells) ...
        snap = app.backend.snapshot
        assert snap.focused is not None and snap.focused.loss == () and snap.focused.objective == ()
        assert snap.cards == () and all(t.curve == () for t in snap.trials)
        # ... and the main screen under the view is left as it was, not emptied.
        assert curve_cells() == cells
        app.main.on_screen_resume()                      # even asked to draw the view's frame: no
        assert curve_cells() == cells

        await pilot.press("escape")
        await screen_of(pilot, MainScreen, "the main screen")
        await wait_until(pilot, lambda: app.main.snap.view is None and app.main.snap.focused.loss, 10,
                         "the main screen's own frame")
        assert app.main.snap.seq > snap.seq and any(t.curve for t in app.main.snap.trials)
        await wait_until(pilot, lambda: [plain(c) for c in curve_cells()] == [plain(c) for c in cells], 5,
                         "the table's curves again")


# -- the plot widget ----------------------------------------------------------------------------------


class PlotApp(App):
    """Just a PicturePlot."""

    def compose(self):
        yield PicturePlot()


def drawer(tag: str, log: list, cpu: float = 0.0):
    """A drawer that records when it ran and burns `cpu` seconds of its thread's CPU time."""
    def draw(fig, width, height):
        log.append((tag, time.monotonic()))
        end = time.thread_time() + cpu
        while time.thread_time() < end:
            pass
        fig.clear_figure()
        fig.plotsize(width, height)
        fig.plot([1, 2, 3], [1, 4, 9])
        return Picture(tag, [(tag, "legend")])
    return draw


async def test_a_due_build_waits_a_frame_for_fresher_data_and_no_longer(monkeypatch):
    # While runs report, a request (a snapshot) comes every frame: a build that falls due with a
    # request a frame old builds the next one as soon as it comes; with none coming, the old one.
    # The pause between builds and the wait are widened (from 0.2 s and 0.1 s) so that a test polling
    # on a loaded machine cannot step over either; the rule is the same.
    monkeypatch.setattr(plots, "MIN_INTERVAL", 2.0)
    monkeypatch.setattr(plots, "NEXT_WAIT", 1.0)
    app = PlotApp()
    async with app.run_test(size=(60, 20)) as pilot:
        plot = app.query_one(PicturePlot)
        log: list = []
        plot.draw("a", drawer("a", log))
        await wait_until(pilot, lambda: plot.idle and plot.builds == 1, 10, "the first build")
        plot.draw("b", drawer("b", log))          # during the pause after "a": due at MIN_INTERVAL
        await wait_until(pilot, lambda: plot._waiting, 10, "the build to fall due")
        due = time.monotonic()
        assert time.monotonic() - plot._asked > FRESH and plot.builds == 1
        plot.draw("c", drawer("c", log))          # the next frame's request: built at once
        await wait_until(pilot, lambda: plot.idle and plot.builds == 2, 10, "the fresh build")
        assert [t for t, _ in log] == ["a", "c"] and log[1][1] - due < plots.NEXT_WAIT
        assert log[1][1] - log[0][1] >= plots.MIN_INTERVAL - 0.01

        plot.draw("d", drawer("d", log))          # nothing comes after it: built after NEXT_WAIT
        await wait_until(pilot, lambda: plot.idle and plot.builds == 3, 10, "the build of the old request")
        assert [t for t, _ in log] == ["a", "c", "d"]
        assert log[2][1] - log[1][1] >= plots.MIN_INTERVAL + plots.NEXT_WAIT - 0.02


async def test_the_plot_builds_the_latest_request_off_the_loop_at_a_bounded_rate():
    app = PlotApp()
    async with app.run_test(size=(60, 20)) as pilot:
        plot = app.query_one(PicturePlot)
        log: list = []
        plot.draw("a", drawer("a", log, cpu=0.06))
        await wait_until(pilot, lambda: plot._busy, 5, "a build")
        plot.draw("b", drawer("b", log))          # asked while "a" builds ...
        plot.draw("a", drawer("a", log))          # ... and taken back: nothing more to build
        await wait_until(pilot, lambda: plot.idle, 10, "the build to land")
        assert [t for t, _ in log] == ["a"] and plot.picture.title == "a" and plot.builds == 1
        assert "┤" in plot.render().plain         # the plot itself, from plotext

        # As if a build had just started, so "b" is not due for the next 0.5 s whatever the box's load
        # (on a loaded box the steps above could take longer than that, and "b", due, built at once).
        plot._last = time.monotonic()
        plot.draw("b", drawer("b", log))
        plot.draw("c", drawer("c", log))          # replaces "b" before it starts: only "c" is built
        assert not plot._busy
        await wait_until(pilot, lambda: plot.idle and plot.builds == 2, 30, "the second build")
        assert [t for t, _ in log] == ["a", "c"] and plot.picture.title == "c"
        # Spaced out: at least MIN_INTERVAL, and a build of 60 ms of CPU is followed by a pause
        # that keeps building under DUTY of the time.
        assert log[1][1] - log[0][1] >= max(MIN_INTERVAL, 0.06 / DUTY) - 0.01

        plot.draw("c", drawer("c", log))          # the same key again: nothing to do
        await pilot.press("_")
        assert plot.idle and plot.builds == 2

        def broken(fig, width, height):
            raise ValueError("no data")
        plot.draw("d", broken)                    # a drawing bug is shown, not raised
        await wait_until(pilot, lambda: "cannot draw this picture: ValueError: no data" in plot.render().plain,
                         10, "the error to show")
