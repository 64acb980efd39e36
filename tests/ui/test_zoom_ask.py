"""Zoom never on too little: `z` on fewer finished trials than a sound zoom needs asks first.

The space searches lr, momentum and hidden (stage 2), so a zoom needs 6 finished trials; the study
has 3 (built through the Study API, the scheduler off). y zooms anyway (forced), n or esc cancels
with nothing changed; with enough finished trials `z` zooms without asking. Both the main screen's
`z` and the search view's go through the same question.
"""

from __future__ import annotations

import pytest
from ui_helpers import (
    SETTINGS,
    curve,
    finished_study,
    loss_reports,
    make_app,
    open_study,
    piloting,
    plain,
    record_run,
    said,
    screen_of,
    space_text,
    status,
    wait_until,
)

from tui_tuner.ui.app import TunerApp
from tui_tuner.ui.screens.dialogs import Confirm
from tui_tuner.ui.screens.main import MainScreen
from tui_tuner.ui.screens.search_view import SearchScreen

QUESTION = "Zoom on 3 finished trials? A sound zoom needs 6 (twice the 3 searched parameters)."


@pytest.fixture
def few(study_dir, tmp_path) -> TunerApp:
    """The app on a study with 3 finished trials and one queued setting, the scheduler off."""
    study = open_study(study_dir, space_text(name="few"))
    for t, obj in zip(study.enqueue(SETTINGS[:3], "random"), (0.3, 0.2, 0.4), strict=True):
        record_run(study, t.id, loss_reports(curve(obj)), obj)
    study.enqueue([{"lr": 0.02}], "random")
    return make_app(study, tmp_path, autostart=False)


def dialog_text(dialog: Confirm) -> str:
    """Everything the dialog says: title, question and hint."""
    return " | ".join(plain(w.render()) for w in dialog.query("Label, Static"))


def levels(app: TunerApp) -> int:
    return len(app.backend.session.study.search_state.levels)


def queued(app: TunerApp) -> list[tuple[int, dict]]:
    return [(t.id, t.params) for t in app.backend.session.study.queue()]


async def ask(pilot, key: str = "z") -> Confirm:
    """Press the zoom key and return the question it asks (checking its words)."""
    await pilot.press(key)
    dialog = await screen_of(pilot, Confirm, "the zoom question")
    assert dialog.id == "zoom-confirm"
    text = dialog_text(dialog)
    assert QUESTION in text and "y: zoom anyway · n: cancel" in text
    return dialog


async def test_zoom_on_too_few_asks_and_n_or_esc_cancels_with_nothing_changed(few):
    async with piloting(few) as pilot:
        before = queued(few)
        await ask(pilot)
        await pilot.press("n")
        await screen_of(pilot, MainScreen, "the main screen after n")
        await ask(pilot)
        await pilot.press("escape")
        await screen_of(pilot, MainScreen, "the main screen after esc")
        await pilot.pause(0.3)   # a zoom sent by mistake would have landed by now
        assert levels(few) == 0 and "zoom 0" in status(few)
        assert queued(few) == before
        assert not said(few, "zoom 1") and not said(few, "zoom needs")   # no error toast either


async def test_zoom_on_too_few_y_zooms_anyway(few):
    async with piloting(few) as pilot:
        before = queued(few)
        await ask(pilot)
        await pilot.press("y")
        await wait_until(pilot, lambda: "zoom 1" in status(few), 5, "zoom 1")
        assert levels(few) == 1 and isinstance(few.screen, MainScreen)
        await wait_until(pilot, lambda: said(few, "zoom 1: lr [") and said(few, "re-sampled 1 queued"), 10,
                         "the zoom and the re-sample said")
        assert queued(few) != before


async def test_search_view_zoom_asks_the_same(few):
    async with piloting(few) as pilot:
        await pilot.press("x")
        view = await screen_of(pilot, SearchScreen, "the search view")
        await ask(pilot)
        await pilot.press("n")
        await screen_of(pilot, SearchScreen, "back on the search view")
        await pilot.pause(0.3)
        assert levels(few) == 0
        await ask(pilot)
        await pilot.press("y")
        await wait_until(pilot, lambda: "zoom 1" in plain(view.query_one("#picture-title").content), 10,
                         "the view to show zoom 1")
        assert levels(few) == 1 and isinstance(few.screen, SearchScreen)


async def test_zoom_with_enough_trials_does_not_ask(study_dir, tmp_path, monkeypatch):
    # Eight done trials, three searched parameters: 6 are enough, so z zooms at once.
    app = make_app(finished_study(study_dir, monkeypatch), tmp_path, autostart=False)
    async with piloting(app) as pilot:
        await pilot.press("z")
        await wait_until(pilot, lambda: "zoom 1" in status(app), 5, "zoom 1 without a question")
        assert isinstance(app.screen, MainScreen)
        assert not any(isinstance(s, Confirm) for s in app.screen_stack)
