"""Pilot tests of the search, queue, trial and view keys on a study with finished trials.

The study is built through the Study API (nine finished trials, one of them failed, one a fork, two
settings queued); the scheduler is off so the queue stays as the test leaves it, but the runner is
real, so "run now" starts a real trainer.
"""

from __future__ import annotations

import io

import pytest
import tomllib
from rich.console import Console
from ui_helpers import (
    finished_study,
    header,
    make_app,
    open_study,
    param_cell,
    piloting,
    plain,
    said,
    screen_of,
    status,
    wait_until,
    zero_code_space,
)

from tui_tuner.ui.app import TunerApp
from tui_tuner.ui.screens.dialogs import ParamForm, Prompt
from tui_tuner.ui.screens.help import HelpScreen
from tui_tuner.ui.widgets.chart import Chart
from tui_tuner.ui.widgets.tables import ParamsTable, QueueTable, TrialsTable


@pytest.fixture
def app(study_dir, tmp_path, monkeypatch) -> TunerApp:
    """The app on the finished study, the scheduler off."""
    return make_app(finished_study(study_dir, monkeypatch), tmp_path, autostart=False)


def queue_ids(app) -> list[int]:
    table = app.main.query_one(QueueTable)
    return [int(row.key.value) for row in table.ordered_rows]


def queue_setting(app, trial_id: int) -> str:
    return plain(app.main.query_one(QueueTable).get_cell(str(trial_id), "setting"))


async def test_sample_refuses_a_bad_count_then_queues(app):
    async with piloting(app) as pilot:
        assert len(queue_ids(app)) == 2
        await pilot.press("n")
        prompt = await screen_of(pilot, Prompt, "prompt")
        await pilot.press(*"lots", "enter")
        await wait_until(pilot, lambda: "whole number" in prompt.error_text, 5, "the count refused")
        prompt.query_one("#prompt-input").value = "3"
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(queue_ids(app)) == 5, 5, "three more queued")
        assert "Queue (5)" in app.main.query_one(QueueTable).border_title
        assert "queued 5" in status(app)
        await wait_until(pilot, lambda: said(app, "queued 3 setting(s)"), 10, "said: queued 3 setting(s)")


async def test_queue_move_drop_edit_and_run_now(app):
    async with piloting(app) as pilot:
        first, second = queue_ids(app)
        await pilot.press("tab")
        assert isinstance(app.focused, QueueTable)
        await pilot.press("J")                     # move the first one down
        await wait_until(pilot, lambda: queue_ids(app) == [second, first], 5, "the move down")
        await pilot.press("K")                     # and back up (the cursor follows it)
        await wait_until(pilot, lambda: queue_ids(app) == [first, second], 5, "the move up")
        await pilot.press("enter")                 # edit
        form = await screen_of(pilot, ParamForm, "form")
        form.field("lr").value = "7"
        await pilot.press("enter")
        await wait_until(pilot, lambda: "outside [0.001, 0.5]" in form.error_text, 5, "the range error")
        form.field("lr").value = "0.2"
        await pilot.press("enter")
        await wait_until(pilot, lambda: "lr=0.2 " in queue_setting(app, first) + " ", 5, "the edit shown")
        assert app.backend.session.study.trial(first).params["lr"] == 0.2
        await pilot.press("d")                     # drop
        await wait_until(pilot, lambda: queue_ids(app) == [second], 5, "the drop")
        await pilot.press("r")                     # run now
        await wait_until(pilot, lambda: not queue_ids(app), 5, "the queue to empty")
        await wait_until(pilot, lambda: header(app).startswith(f"#{second} running"), 10, "the run started")


async def test_zoom_narrows_the_ranges_and_unzoom_restores_them(app):
    async with piloting(app) as pilot:
        assert "zoom 0" in status(app)
        assert param_cell(app, "lr", "range") == "[0.001,0.5]"
        await pilot.press("z")
        await wait_until(pilot, lambda: "zoom 1" in status(app), 5, "zoom 1")
        zoomed = param_cell(app, "lr", "range")
        assert zoomed != "[0.001,0.5]" and zoomed.startswith("[")
        await wait_until(pilot, lambda: said(app, "zoom 1: lr ["), 10, "said: zoom 1: lr [")          # the new ranges are spelled out
        await wait_until(pilot, lambda: said(app, "re-sampled 2 queued"), 10, "said: re-sampled 2 queued")
        await pilot.press("Z")
        await wait_until(pilot, lambda: "zoom 0" in status(app), 5, "zoom 0")
        assert param_cell(app, "lr", "range") == "[0.001,0.5]"
        assert app.main.check_action("unzoom", ()) is None


async def test_stage_and_freeze(app):
    async with piloting(app) as pilot:
        assert "stage 2" in status(app)
        await pilot.press("t")
        prompt = await screen_of(pilot, Prompt, "prompt")
        prompt.query_one("#prompt-input").value = "9"
        await pilot.press("enter")
        await wait_until(pilot, lambda: "1, 2, 3 or 4" in prompt.error_text, 5, "the stage refused")
        prompt.query_one("#prompt-input").value = "1"
        await pilot.press("enter")
        await wait_until(pilot, lambda: "stage 1" in status(app), 5, "stage 1")
        # momentum (tier 2) is no longer searched: it shows the value it is pinned at.
        assert param_cell(app, "momentum", "range").startswith("=")
        await wait_until(pilot, lambda: said(app, "stage 1: searching lr"), 10, "said: stage 1: searching lr")

        await pilot.press("shift+tab")
        assert isinstance(app.focused, ParamsTable)
        await pilot.press("F")                       # freeze lr (the selected row) at the best value
        await wait_until(pilot, lambda: "frozen" in param_cell(app, "lr", "range"), 5, "lr frozen")
        assert param_cell(app, "lr", "range") == "=0.01 frozen"   # the best trial (#9) has lr 0.01
        await pilot.press("F")
        await wait_until(pilot, lambda: param_cell(app, "lr", "range") == "[0.001,0.5]", 5, "lr searched")


async def test_export_writes_the_selected_trial(app, tmp_path):
    async with piloting(app) as pilot:
        best = app.main.query_one(TrialsTable).selected_key
        assert best == "9"                        # best first: the fork child
        await pilot.press("e")
        prompt = await screen_of(pilot, Prompt, "prompt")
        assert prompt.query_one("#prompt-input").value.endswith("export-t0009.toml")
        prompt.query_one("#prompt-input").value = str(tmp_path / "nowhere" / "x.toml")
        await pilot.press("enter")
        await wait_until(pilot, lambda: "no such directory" in prompt.error_text, 5, "the path error")
        out = tmp_path / "best.toml"
        prompt.query_one("#prompt-input").value = str(out)
        await pilot.press("enter")
        await wait_until(pilot, lambda: said(app, f"wrote {out}"), 5, "the written path")
        doc = tomllib.loads(out.read_text())
        assert doc["lr"] == 0.01 and doc["hidden"] == 64 and doc["layers"] == 3
        assert doc["tuner"]["trial"] == 9 and doc["tuner"]["objective"] == "val_loss"


async def test_views_order_log_watch_help_and_resize(app):
    async with piloting(app) as pilot:
        trials = app.main.query_one(TrialsTable)
        assert [r.key.value for r in trials.ordered_rows][:3] == ["9", "3", "7"]
        await pilot.press("o")
        await wait_until(pilot, lambda: [r.key.value for r in trials.ordered_rows][0] == "1", 5, "by start")
        assert "by start" in trials.border_title
        await pilot.press("o")
        await wait_until(pilot, lambda: [r.key.value for r in trials.ordered_rows][0] == "9", 5, "best first")

        assert header(app).startswith("#9 done")   # no run going: the best trial is shown
        await pilot.press("down", "enter")         # watch trial 3
        await wait_until(pilot, lambda: header(app).startswith("#3 done"), 5, "trial 3 in the run panel")

        chart = app.main.query_one("#chart-loss", Chart)
        assert not chart.log_y
        await pilot.press("l")
        assert chart.log_y and "log" in plain(chart.render())

        await pilot.press("question_mark")
        help_screen = await screen_of(pilot, HelpScreen, "help")
        console = Console(record=True, width=100, file=io.StringIO())
        console.print(help_screen.query_one("#help-table").content)
        text = console.export_text()
        for words in ("Pause", "Adjust", "Fork", "Freeze/unfreeze", "Run now", "Move up", "Stop all+quit"):
            assert words in text, words
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

        assert not app.main.has_class("-wide")
        await pilot.resize_terminal(160, 48)
        await wait_until(pilot, lambda: app.main.has_class("-wide"), 5, "the wide layout")
        assert app.main.query_one(ParamsTable).compact is False
        assert param_cell(app, "momentum", "scale") == "1-β log"
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: not app.main.has_class("-wide"), 5, "the narrow layout")


async def test_keys_that_do_not_apply_are_greyed(study_dir, tmp_path):
    app = make_app(open_study(study_dir, zero_code_space()), tmp_path, autostart=False)
    async with piloting(app) as pilot:
        main = app.main
        # An empty study: nothing to pause, zoom or export.
        for action in ("pause", "adjust", "fork", "stop", "zoom", "unzoom", "export", "output", "next_run"):
            assert main.check_action(action, ()) is None, action
        assert main.check_action("sample", ()) is True
        await pilot.press("z", "e", "p")           # greyed keys do nothing, and nothing breaks
        assert app.screen is main
        await pilot.press("a")                     # except say why adjust is off
        await wait_until(pilot, lambda: said(app, "no run is going to adjust"), 5, "why adjust is off")
        assert app.screen is main


async def test_zero_code_run_pauses_but_cannot_be_adjusted(study_dir, tmp_path):
    app = make_app(open_study(study_dir, zero_code_space()), tmp_path)
    async with piloting(app) as pilot:
        await wait_until(pilot, lambda: header(app).startswith("#1 running") and "step -" not in header(app),
                         15, "the zero-code run reporting")
        assert "(no live adjust)" in header(app)
        assert app.main.check_action("adjust", ()) is None
        assert app.main.check_action("fork", ()) is True
        await pilot.press("a")
        assert app.screen is app.main             # no form for a zero-code run ...
        # ... but the key says why, and what to do instead; the footer still shows it greyed.
        await wait_until(pilot, lambda: said(app, "cannot be adjusted; fork it instead (f"), 5, "why not")
        shown = app.main.active_bindings["a"]
        assert (shown.binding.action, shown.enabled) == ("adjust", False)
        await pilot.press("p")
        await wait_until(pilot, lambda: header(app).startswith("#1 paused"), 5, "paused (SIGSTOP)")
        await pilot.press("p")
        await wait_until(pilot, lambda: header(app).startswith("#1 running"), 5, "running (SIGCONT)")
