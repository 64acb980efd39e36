"""Pilot tests of the run keys against a real Study + Runner and a real trainer process.

Each test drives the app with key presses and reads what the user would read: the run panel's
header, the tables' cells, the dialogs' error lines, the messages shown.
"""

from __future__ import annotations

import os

from ui_helpers import (
    header,
    make_app,
    open_study,
    param_cell,
    piloting,
    plain,
    said,
    screen_of,
    space_text,
    status,
    wait_until,
)

from tui_tuner.ui.screens.dialogs import Confirm, OutputView, ParamForm
from tui_tuner.ui.widgets.tables import TrialsTable


def trial_cells(app, trial_id: int) -> list[str]:
    """The trials table row of a trial, as shown."""
    return [plain(c).strip() for c in app.main.query_one(TrialsTable).get_row(str(trial_id))]


def step_of(app) -> int | None:
    """The focused run's step, as the header shows it."""
    words = header(app).split()
    if "step" not in words:
        return None
    value = words[words.index("step") + 1]
    return int(value) if value.isdigit() else None


async def running(pilot, app, n: int = 1) -> None:
    """Wait until n runs are running and the focused one has reported a step."""
    await wait_until(pilot, lambda: app.main.snap and len(app.main.snap.active_ids) >= n and (step_of(app) or 0) > 0,
                     60, f"{n} run(s) reporting")


async def test_first_frame_is_fast_and_runs_start_at_once(study_dir, tmp_path):
    study = open_study(study_dir, space_text(parallel=2, budget=2))
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        # The first frame is drawn from the study before the back end starts (how fast: tests/bench/ui_load.py).
        assert app.frames >= 1
        await running(pilot, app, 2)
        line = status(app)
        assert "ui-test" in line and "running 2" in line
        first = step_of(app)
        await wait_until(pilot, lambda: (step_of(app) or 0) > first, 10, "the step to advance")
        assert "running" in header(app)
        assert trial_cells(app, 1)[1] == "run" and trial_cells(app, 2)[1] == "run"
        # Both runs side by side in the strip.
        assert app.main.query_one("#strip").display


async def test_pause_stops_the_step_and_resume_restarts_it(study_dir, tmp_path):
    study = open_study(study_dir, space_text())
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await running(pilot, app)
        await pilot.press("p")
        await wait_until(pilot, lambda: "paused" in header(app), 10, "the run to show paused")
        assert trial_cells(app, 1)[1] == "pause"
        assert "paused 1" in status(app)
        held = step_of(app)
        await pilot.pause(0.5)
        assert step_of(app) == held, "a paused run must not advance"
        await pilot.press("p")
        await wait_until(pilot, lambda: "running" in header(app), 10, "the run to resume")
        await wait_until(pilot, lambda: (step_of(app) or 0) > held, 10, "the step to advance again")


async def test_adjust_applies_a_live_value_and_refuses_a_bad_one(study_dir, tmp_path):
    study = open_study(study_dir, space_text())
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await running(pilot, app)
        await pilot.press("a")
        form = await screen_of(pilot, ParamForm, "the form")
        # Only live parameters are offered.
        assert [p.name for p, _ in form.fields] == ["lr", "momentum"]
        await pilot.press(*"5", "enter")     # select-on-focus: typing replaces the value
        await wait_until(pilot, lambda: "outside" in form.error_text, 5, "the range error")
        assert "params.lr" in form.error_text and "[0.001, 0.5]" in form.error_text
        assert app.screen is form, "a refused value keeps the form open"
        form.field("lr").value = "0.0123"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ParamForm), 5, "the form to close")
        await wait_until(pilot, lambda: param_cell(app, "lr", "run") == "0.0123", 10,
                         "the applied lr in the table")
        await wait_until(pilot, lambda: said(app, "lr → 0.0123"), 10, "said: lr → 0.0123")
        assert app.backend.session.runner.queries.latest(1)["params"]["lr"] == 0.0123


async def test_fork_starts_a_child_with_its_lineage(study_dir, tmp_path):
    study = open_study(study_dir, space_text(parallel=1, budget=1))
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await running(pilot, app)
        await pilot.press("f")
        form = await screen_of(pilot, ParamForm, "the form")
        assert [p.name for p, _ in form.fields][:3] == ["lr", "momentum", "hidden"]
        form.field("hidden").value = "100"
        await pilot.press("enter")
        await wait_until(pilot, lambda: said(app, "into #2"), 15, "the fork message")
        await wait_until(pilot, lambda: app.main.snap.trial(2) is not None, 5, "the child in the table")
        cells = trial_cells(app, 2)
        assert cells[5].startswith("#1@"), cells
        child = study.trial(2)
        assert child.parent == 1 and child.params["hidden"] == 100 and child.resume
        # The child is focused and running from the parent's checkpoint.
        await wait_until(pilot, lambda: header(app).startswith("#2 running"), 10, "the child running")
        assert app.main.query_one("#run").border_title.startswith("Run #2 · fork of #1@")


async def test_fork_form_forks_the_moment_it_opened_even_if_the_run_ends_meanwhile(study_dir, tmp_path):
    # The run ends while the user is still filling in the form (stopped from outside the app: a run
    # that ends on its own could, on a loaded box, end before the key).
    study = open_study(study_dir, space_text(parallel=1, budget=1, steps=100_000, delay=0.01))
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await running(pilot, app)
        pressed_at = step_of(app)
        await pilot.press("f")
        form = await screen_of(pilot, ParamForm, "the form")
        app.backend.submit(app.backend.session.stop, 1).result(timeout=30)
        await wait_until(pilot, lambda: study.trial(1).finished, 15, "the parent to end")
        form.field("lr").value = "0.01"
        await pilot.press("enter")
        await wait_until(pilot, lambda: said(app, "into #2"), 15, "the fork message")
        child = study.trial(2)
        assert child.parent == 1 and child.params["lr"] == 0.01 and child.resume
        # Forked from the checkpoint taken as the form opened, not from the end of the run.
        assert pressed_at <= child.fork_step <= study.trial(1).step

async def test_stop_and_next_previous_run(study_dir, tmp_path):
    study = open_study(study_dir, space_text(parallel=2, budget=2))
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await running(pilot, app, 2)
        assert header(app).startswith("#1 ")
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: header(app).startswith("#2 "), 5, "focus on #2")
        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: header(app).startswith("#1 "), 5, "focus back on #1")
        await pilot.press("s")
        await wait_until(pilot, lambda: header(app).startswith("#1 stopped"), 10, "#1 stopped")
        await wait_until(pilot, lambda: trial_cells(app, 1)[1] == "stop", 10, "#1 stopped in Trials")
        # From a stopped run, next goes to the one still running; then there is nowhere else to go.
        await wait_until(pilot, lambda: app.main.snap.active_ids == [2], 5, "one active run")
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: header(app).startswith("#2 "), 5, "focus on #2")
        assert app.main.check_action("next_run", ()) is None
        assert app.main.check_action("adjust", ()) is True


async def test_a_failed_run_shows_its_reason_and_output(study_dir, tmp_path):
    study = open_study(study_dir, space_text(fail=20))
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await wait_until(pilot, lambda: app.main.snap.trial(1) and app.main.snap.trial(1).status == "failed",
                         15, "the run to fail")
        assert trial_cells(app, 1)[1] == "FAIL"
        await wait_until(pilot, lambda: said(app, "select #1 in Trials, press v"), 5, "the failure notice")
        # v shows the trial under the Trials cursor; rows re-sort as trials start, so put it on #1.
        app.main.query_one(TrialsTable).select_key("1")
        await pilot.press("v")
        view = await screen_of(pilot, OutputView, "output")
        text = plain(view.query_one("#output-text").content)
        assert "RuntimeError: boom at step 20" in text
        assert "about to fail" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, OutputView)


async def test_quit_leaves_runs_going_and_reopening_adopts_them(study_dir, tmp_path):
    study = open_study(study_dir, space_text())
    app = make_app(study, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await running(pilot, app)
        await pilot.press("q")
    pid = study.trial(1).pid
    study.close()
    os.killpg(pid, 0)   # still alive: raises if the group is gone

    study = open_study(study_dir, space_text())
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await wait_until(pilot, lambda: said(app, "re-adopted 1"), 10, "the re-adoption")
        first = await wait_until(pilot, lambda: step_of(app), 10, "the adopted run's step")
        assert header(app).startswith("#1 running")
        await wait_until(pilot, lambda: (step_of(app) or 0) > first, 10, "the adopted run to advance")


async def test_stop_all_and_quit_asks_first(study_dir, tmp_path):
    study = open_study(study_dir, space_text())
    app = make_app(study, tmp_path)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await running(pilot, app)
            await pilot.press("Q")
            await wait_until(pilot, lambda: isinstance(app.screen, Confirm), 5, "the confirmation")
            await pilot.press("n")
            assert not isinstance(app.screen, Confirm)
            assert app.main.snap.active_ids == [1]
            await pilot.press("Q")
            await wait_until(pilot, lambda: isinstance(app.screen, Confirm), 5, "the confirmation")
            await pilot.press("y")
            await wait_until(pilot, lambda: app._exit_renderables is not None or not app.is_running, 15,
                             "the app to exit")
        assert study.trial(1).status == "stopped"
        # Nothing was started from the queue (budget 4) while the runs were being stopped.
        assert study.active() == [] and study.budget_used() == 1
    finally:
        study.close()
