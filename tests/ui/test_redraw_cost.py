"""What keeps the main screen cheap to redraw under load: work skipped when nothing visible changed.

Each test drives the real app (the still back end of the snapshot tests) with hand-made snapshots,
and counts the expensive calls rather than timing them.
"""

from __future__ import annotations

from dataclasses import replace

from ui_helpers import plain

from tui_tuner.ui.model import TrialRow
from tui_tuner.ui.screens.main import TABLE_SLOW
from tui_tuner.ui.widgets.chart import Chart
from tui_tuner.ui.widgets.strip import RunStrip
from tui_tuner.ui.widgets.tables import TrialsTable


def running(trial_id: int) -> TrialRow:
    return TrialRow(id=trial_id, status="running", objective=0.5, step=100, source="random", parent=None,
                    fork_step=None)


async def test_runs_starting_and_ending_recheck_the_footer_only_when_a_key_changes(snap_app, monkeypatch):
    # Each re-check recomposes the footer (tens of milliseconds): eight runs coming and going must
    # not cost one per start and end.
    app = snap_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        main = app.main
        base = main.snap
        assert base.focused is not None and not base.focused.active and not base.active_ids
        checks: list[int] = []
        monkeypatch.setattr(main, "refresh_bindings", lambda: checks.append(1))

        def show(**changes):
            main.show(replace(main.snap, seq=main.snap.seq + 1, **changes))

        show(trials=(*base.trials, running(20)))                 # a run starts: ] and [ apply now
        assert len(checks) == 1
        show(trials=(*base.trials, running(20), running(21)))    # another one: nothing new applies
        show(trials=(*base.trials, running(21)))                 # the first one ends: still nothing
        assert len(checks) == 1
        show(focused=replace(base.focused, id=21, status="running"))   # a running run focused: p, s, f
        assert len(checks) == 2


async def test_the_trials_table_takes_new_numbers_once_a_second_and_a_new_shape_at_once(snap_app):
    # ~10 ms a redraw at 80x24 (every visible cell: DataTable re-renders them all on any update).
    app = snap_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        main = app.main
        table = main.query_one(TrialsTable)
        base = main.snap
        live = running(20)

        def show(*rows: TrialRow) -> None:
            main.show(replace(main.snap, seq=main.snap.seq + 1, trials=(*base.trials, *rows)))

        def step_cell() -> str:
            return plain(table.get_row("20")[3]).strip()

        show(live)                                      # a new row: drawn at once
        assert step_cell() == "100"
        show(replace(live, step=200))                   # only a number changed: not yet
        assert step_cell() == "100"
        main._table_at -= TABLE_SLOW                    # a second later: it is
        show(replace(live, step=300))
        assert step_cell() == "300"
        show(replace(live, step=400, status="paused"))  # a status changed: at once
        assert step_cell() == "400"


async def test_the_strip_and_charts_keep_their_styles_until_the_theme_changes(snap_app):
    # Looked up once, not at every repaint (Textual forgets them at each one); a new theme is seen.
    app = snap_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        chart, strip = app.main.query_one("#chart-loss", Chart), app.main.query_one(RunStrip)
        before = chart._styles(), strip._styles()
        chart.refresh()
        strip.refresh()
        await pilot.pause()
        assert chart._styles() is before[0] and strip._styles() is before[1]
        app.theme = "textual-light" if app.theme != "textual-light" else "nord"
        await pilot.pause()
        assert chart._styles() != before[0] and strip._styles()["best"] != before[1]["best"]
