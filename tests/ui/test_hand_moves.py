"""The babysitter's hand moves, one key each, against a real Study + Runner and a real trainer: marks on
the run panel's sparkline where a live change, a pause or a fork happened."""

from __future__ import annotations

from ui_helpers import make_app, open_study, piloting, screen_of, space_text, wait_until

from tui_tuner.ui.format import CHANGE_MARK, FORK_MARK, PAUSE_MARK, mark_positions
from tui_tuner.ui.screens.dialogs import ParamForm
from tui_tuner.ui.widgets.chart import Chart


def chart_text(app) -> str:
    """The run panel's loss chart as drawn."""
    return app.main.query_one("#chart-loss", Chart).render().plain


def test_mark_positions_follow_the_reported_steps():
    steps = [10, 20, 30, 40]
    assert mark_positions(steps, [(30, CHANGE_MARK), (None, PAUSE_MARK), (5, FORK_MARK), (99, PAUSE_MARK)]) == (
        (0.0, FORK_MARK), (0.5, CHANGE_MARK), (0.75, PAUSE_MARK))
    assert mark_positions([], [(1, CHANGE_MARK)]) == ()


async def test_sparkline_marks_a_pause_a_live_change_and_a_fork(study_dir, tmp_path):
    study = open_study(study_dir, space_text(parallel=1, budget=1, delay=0.01))
    app = make_app(study, tmp_path)
    async with piloting(app, size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.main.snap and app.main.snap.focused
                         and len(app.main.snap.focused.loss) > 20, 15, "a curve")
        assert not ({PAUSE_MARK, CHANGE_MARK, FORK_MARK} & set(chart_text(app)))
        await pilot.press("p")
        await wait_until(pilot, lambda: PAUSE_MARK in chart_text(app), 10, "the pause mark")
        await pilot.press("p")
        await pilot.press("a")
        form = await screen_of(pilot, ParamForm, "the adjust form")
        form.field("lr").value = "0.0123"
        await pilot.press("enter")
        await wait_until(pilot, lambda: CHANGE_MARK in chart_text(app), 10, "the live-change mark")
        await pilot.press("f")
        form = await screen_of(pilot, ParamForm, "the fork form")
        await pilot.press("enter")
        await wait_until(pilot, lambda: study.trial(1).status == "running" and any(
            t.parent == 1 for t in study.trials("id")), 15, "the fork")
        # The child is focused now; back on the parent its curve carries the fork mark.
        app.backend.follow(1)
        await wait_until(pilot, lambda: FORK_MARK in chart_text(app), 10, "the fork mark")
        top = chart_text(app).splitlines()[1]
        assert top.index(PAUSE_MARK) <= top.index(CHANGE_MARK) <= top.index(FORK_MARK)
