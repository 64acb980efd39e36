"""Snapshot tests of the main screen and the dialogs at 80x24 and 160x48.

Deterministic: the study is built through the Study API with a fixed clock (nine finished trials, a
fork, a failure, two queued settings, curves on disk), the back end does not start (no live runs,
no GPU probe, no clocks in view), and the first frame is built before the app runs.
Update the SVGs with `pytest tests/ui/test_snapshots.py --snapshot-update` after a deliberate change.
"""

from __future__ import annotations

import math

import pytest
from ui_helpers import finished_study, make_app

from tui_tuner.ui.screens.dialogs import ParamForm
from tui_tuner.ui.widgets.tables import TrialsTable

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


@pytest.fixture
def snap_app(study_dir, tmp_path, monkeypatch):
    """The app on the finished study, its first frame already built."""
    studies = []

    def make():
        study = finished_study(study_dir, monkeypatch)
        studies.append(study)
        app = make_app(study, tmp_path, live=False, autostart=False)
        app.backend.compute_importance_now()
        app.backend.refresh(curve_budget=math.inf)
        return app

    yield make
    for s in studies:
        s.close()


async def _noop(_: object) -> str:
    return ""


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare, snap_app, size):
    assert snap_compare(snap_app(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, snap_app, size):
    assert snap_compare(snap_app(), press=["question_mark"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_fork_form(snap_compare, snap_app, size):
    app = snap_app()
    study = app.backend.study

    async def open_form(pilot):
        await pilot.pause()
        trial = study.trial(9)
        fields = [(p, trial.params[p.name]) for p in study.space.by_priority()]
        pilot.app.push_screen(ParamForm("Fork #9 at step 400", fields, _noop, allow_empty=True,
                                        intro="The child starts from a checkpoint of this run, with these "
                                              "settings."))
        await pilot.pause()

    assert snap_compare(app, run_before=open_form, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_adjust_form_with_a_refused_value(snap_compare, snap_app, size):
    app = snap_app()
    study = app.backend.study

    async def open_form(pilot):
        await pilot.pause()
        trial = study.trial(9)
        fields = [(p, trial.params[p.name]) for p in study.space.by_priority() if p.live]
        pilot.app.push_screen(ParamForm("Adjust #9 while it trains", fields, _noop,
                                        intro="Live parameters only; the trainer applies them at its next "
                                              "report."))
        await pilot.pause()
        await pilot.press("9", "enter")

    assert snap_compare(app, run_before=open_form, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_export_prompt(snap_compare, snap_app, size):
    async def open_prompt(pilot):
        await pilot.pause()
        await pilot.press("e")
        for _ in range(100):
            await pilot.pause(0.02)
            if pilot.app.screen.id == "export":
                break
        pilot.app.screen.query_one("#prompt-input").value = "best.toml"   # not the tmp path
        await pilot.pause()

    assert snap_compare(snap_app(), run_before=open_prompt, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_output_of_a_failed_trial(snap_compare, snap_app, size):
    async def open_output(pilot):
        await pilot.pause()
        pilot.app.main.query_one(TrialsTable).select_key("6")
        await pilot.press("v")
        for _ in range(100):
            await pilot.pause(0.02)
            if pilot.app.screen.id == "output":
                break

    assert snap_compare(snap_app(), run_before=open_output, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_sample_prompt_and_quit_confirmation(snap_compare, snap_app, size):
    assert snap_compare(snap_app(), press=["n", "escape", "Q"], terminal_size=size)
