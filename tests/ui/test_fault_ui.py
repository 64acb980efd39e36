"""Issue 7 through the app's keys: the fork form's step is the one recorded, a zero-code fork is a
restart, and `s` then `q` leaves a stop that the next session carries out."""

from __future__ import annotations

from space_toml import lr, param, space_toml
from study_runs import TOY
from textual.widgets import Label
from ui_helpers import (
    make_app,
    open_study,
    piloting,
    plain,
    said,
    screen_of,
    space_text,
    wait_until,
    zero_code_space,
)

from tui_tuner.ui.screens.dialogs import ParamForm


def title(form: ParamForm) -> str:
    return plain(form.query_one("#dialog-title", Label).content)


async def reporting(pilot, app) -> None:
    await wait_until(pilot, lambda: app.main.snap and app.main.snap.focused is not None
                     and app.main.snap.focused.active and (app.main.snap.focused.step or 0) > 0,
                     15, "a run reporting")


async def test_the_fork_form_shows_the_step_the_child_is_recorded_at(study_dir, tmp_path):
    study = open_study(study_dir, space_text(parallel=1, budget=1, delay=0.005))
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await reporting(pilot, app)
        await pilot.press("f")
        form = await screen_of(pilot, ParamForm, "the fork form")
        runner = app.backend.session.runner
        ckpt = await wait_until(pilot, lambda: next(iter(runner.runs[1].checkpoints.values()), None), 10,
                                "the checkpoint taken as the form opened")
        await wait_until(pilot, lambda: title(form) == f"Fork #1 at step {ckpt['step']}", 5,
                         f"the title to say step {ckpt['step']} (it says {title(form)!r})")
        await pilot.press("enter")
        await wait_until(pilot, lambda: said(app, "into #2"), 15, "the fork message")
        assert study.trial(2).fork_step == ckpt["step"]


async def test_a_zero_code_fork_form_says_restart_and_records_no_step(study_dir, tmp_path):
    study = open_study(study_dir, zero_code_space())
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await reporting(pilot, app)
        await pilot.press("f")
        form = await screen_of(pilot, ParamForm, "the fork form")
        assert title(form) == "Restart #1 from scratch"
        form.field("lr").value = "0.01"
        await pilot.press("enter")
        await wait_until(pilot, lambda: said(app, "into #2"), 15, "the fork message")
        child = study.trial(2)
        assert (child.parent, child.fork_step, child.resume) == (1, None, None)


def slowstop_space() -> str:
    """The toy trainer ignoring the stop command and SIGTERM: only SIGKILL ends it."""
    params = {"lr": lr(low=1e-3, high=0.5, default=0.05, live=True),
              "mode": param("choice", values=["ok", "slowstop"], default="slowstop", tier=4),
              "steps": param("int", low=1, high=1000000, default=1000000, tier=4)}
    return space_toml(params, name="slow", command=["python", str(TOY)], objective="loss", parallel=1,
                      budget=1, strategy="random", stage=1, stall_timeout=300)


async def test_stop_then_quit_leaves_a_stop_the_next_session_carries_out(study_dir, tmp_path):
    study = open_study(study_dir, slowstop_space())
    app = make_app(study, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await reporting(pilot, app)
        await pilot.press("s")
        await wait_until(pilot, lambda: said(app, "stopping #1"), 5, "the stop to be sent")
        await pilot.press("q")      # quit at once, leaving the run (it has not stopped yet)
    assert study.trial(1).status == "running"
    study.close()

    study = open_study(study_dir, slowstop_space())
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await wait_until(pilot, lambda: study.trial(1).finished, 15, "the pending stop to be carried out")
        t = study.trial(1)
        assert (t.status, t.reason) == ("stopped", "stopped (SIGKILL)")
