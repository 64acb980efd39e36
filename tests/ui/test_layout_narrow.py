"""At 80 columns the parameters table takes what its columns need and the run panel the rest, so the
run's lines are not cut while the table has room; a wide table still leaves the run panel RUN_MIN."""

from __future__ import annotations

import math

from rich.cells import cell_len
from space_toml import lr, param, space_toml
from ui_helpers import finished_study, make_app, open_study, piloting, plain

from tui_tuner.ui.screens.main import RUN_MIN
from tui_tuner.ui.widgets.tables import ParamsTable


def fits(widget) -> bool:
    """True when the one-line Static's text is not cut."""
    return cell_len(plain(widget.content)) <= widget.content_size.width


async def test_at_80_columns_the_run_panel_gets_the_room_the_parameters_leave(study_dir, tmp_path, monkeypatch):
    app = make_app(finished_study(study_dir, monkeypatch), tmp_path, live=False, autostart=False)
    app.backend.compute_importance_now()
    app.backend.refresh(curve_budget=math.inf)
    async with piloting(app, (80, 24)) as pilot:
        await pilot.pause()
        main = app.main
        params = main.query_one(ParamsTable)
        assert params.max_scroll_x == 0                  # every column of the table shows ...
        header, metrics = main.query_one("#run-header"), main.query_one("#run-metrics")
        assert plain(metrics.content).startswith("loss 0.1554  val_loss 0.1726")
        assert fits(header) and fits(metrics), (plain(header.content), plain(metrics.content))   # ... and the run's lines
        assert main.query_one("#run").border_title == "Run #9 · fork of #3@200"
        assert params.outer_size.width + main.query_one("#run").outer_size.width == 80


async def test_a_wide_parameters_table_leaves_the_run_panel_its_minimum(study_dir, tmp_path):
    long = {f"a_rather_long_parameter_name_{i}": param("float", low=0.0, high=1.0, default=0.5) for i in range(3)}
    app = make_app(open_study(study_dir, space_toml({"lr": lr(), **long}, name="wide")), tmp_path, live=False,
                   autostart=False)
    app.backend.refresh()
    async with piloting(app, (80, 24)) as pilot:
        await pilot.pause()
        params, run = app.main.query_one(ParamsTable), app.main.query_one("#run")
        assert params.max_scroll_x > 0                   # the table scrolls ...
        assert run.outer_size.width == RUN_MIN           # ... and the run panel keeps its minimum
        assert params.outer_size.width + run.outer_size.width == 80
        await pilot.resize_terminal(160, 48)             # wide: the stylesheet's widths again
        await pilot.pause()
        assert params.outer_size.width == 84
