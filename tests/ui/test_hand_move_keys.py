"""The babysitter's hand moves, one key each, against a real Study + Runner and a real trainer: lr ×0.5 / ×2,
train longer, marks on the run panel's sparkline, and auto-k on the status line with its override key."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import tomllib
from space_toml import lr, param, space_toml
from study_runs import TOY
from ui_helpers import make_app, open_study, piloting, said, screen_of, space_text, status, wait_until

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


async def running(pilot, app, trial_id: int = 1) -> None:
    runner = app.backend.session.runner
    await wait_until(pilot, lambda: runner.queries.is_live(trial_id) and (runner.queries.latest(trial_id).get("step") or 0) > 3,
                     60, f"#{trial_id} reporting")


async def test_lr_keys_halve_and_double_the_watched_runs_lr_without_a_form(study_dir, tmp_path):
    study = open_study(study_dir, space_text(parallel=1, budget=1))
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await running(pilot, app)
        lr0 = app.backend.session.runner.queries.latest(1)["params"]["lr"]
        await pilot.press("greater_than_sign")
        await wait_until(pilot, lambda: app.backend.session.runner.queries.latest(1)["params"]["lr"] == lr0 * 2, 10, "lr ×2")
        assert not isinstance(app.screen, ParamForm)
        await wait_until(pilot, lambda: said(app, "(×2 of its lr now)"), 10, "said: (×2 of its lr now)")
        await pilot.press("less_than_sign", "less_than_sign")
        await wait_until(pilot, lambda: app.backend.session.runner.queries.latest(1)["params"]["lr"] == lr0 / 2, 10, "lr ×0.5 twice")
        assert study.trial(1).params["lr"] == lr0 / 2


async def test_lr_keys_say_so_when_the_space_has_no_live_lr(study_dir, tmp_path):
    text = space_toml({"lr": lr(low=1e-3, high=0.5, default=0.05, live=False),
                       "momentum": param("float", low=0.5, high=0.99, default=0.9, live=True),
                       "steps": param("int", low=1, high=10**6, default=10**6, tier=4),
                       "delay": param("float", low=0.0, high=1.0, default=0.005, tier=4)},
                      name="nolr", command=["python", str(TOY)], parallel=1, budget=1, strategy="random")
    study = open_study(study_dir, text)
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await running(pilot, app)
        lr0 = app.backend.session.runner.queries.latest(1)["params"]["lr"]
        await pilot.press("greater_than_sign")
        await wait_until(pilot, lambda: said(app, "params.lr is not live"), 10, "the refusal")
        assert app.backend.session.runner.queries.latest(1)["params"]["lr"] == lr0


async def test_train_longer_extends_the_step_limit(study_dir, tmp_path):
    # 10 s to the old limit: a loaded box must see it running before it ends (then it is held).
    study = open_study(study_dir, space_text(parallel=1, budget=1, steps=200, delay=0.05))
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await running(pilot, app)
        await wait_until(pilot, lambda: app.backend.session.runner.runs[1].state.max_steps == 200, 10, "the limit said")
        # The run held (SIGSTOP) until the key is carried out: a loaded box could otherwise reach the
        # key after the run reached its limit and ended. It reads the command when it goes on.
        os.killpg(study.trial(1).pid, signal.SIGSTOP)
        try:
            await pilot.press("L")
            await wait_until(pilot, lambda: said(app, "train longer, steps 200 → 300"), 10, "the message")
        finally:
            os.killpg(study.trial(1).pid, signal.SIGCONT)
        await wait_until(pilot, lambda: app.backend.session.runner.runs[1].state.max_steps == 300, 10, "the new limit")
        await wait_until(pilot, lambda: (app.backend.session.runner.queries.latest(1).get("step") or 0) > 200, 60,
                         "training past the old limit")
        await wait_until(pilot, lambda: CHANGE_MARK in chart_text(app), 10, "the mark of the change")

        # The export keeps the longer limit, and a standalone rerun with --config trains to it.
        out = tmp_path / "longer.toml"
        app.backend.submit(app.backend.session.export, 1, str(out)).result(timeout=10)
        doc = tomllib.loads(out.read_text())
        assert doc["tuner"]["max_steps"] == 300 and doc["tuner"]["max_steps_default"] == 200
        run = subprocess.run([sys.executable, str(TOY), "--config", str(out), "--delay", "0"], capture_output=True,
                             text=True, timeout=60, env={k: v for k, v in os.environ.items()
                                                         if k != "TUI_TUNER_RUN_DIR"})
        assert run.returncode == 0, run.stderr
        steps = [int(m) for m in re.findall(r"step (\d+)", run.stdout)]
        assert max(steps) == 300, run.stdout[-300:]
        app.backend.submit(app.backend.session.stop_all, 10).result(timeout=30)


async def test_status_line_shows_auto_k_and_the_k_key_overrides_it(study_dir, tmp_path):
    study = open_study(study_dir, space_text(parallel="auto", budget=6, delay=0.01))
    app = make_app(study, tmp_path)
    async with piloting(app, size=(160, 40)) as pilot:
        session = app.backend.session
        await wait_until(pilot, lambda: session.k_status() is not None, 10, "auto-k")
        session.automation.autok.window = 0.3
        await wait_until(pilot, lambda: re.search(r"k \d+ auto", status(app)), 10, "k on the status line")
        await wait_until(pilot, lambda: "steps/s" in status(app), 30, "a measurement on the status line")
        await wait_until(pilot, lambda: session.scheduler.parallel >= 2, 30, "k to rise")
        await pilot.press("k")
        await wait_until(pilot, lambda: " fixed" in status(app), 20, "k fixed by hand")
        fixed = session.scheduler.parallel
        await pilot.press("plus")
        await wait_until(pilot, lambda: f"k {fixed + 1} fixed" in status(app), 20, "k one higher")
        await pilot.pause(0.5)
        # One toast for one key: not the command's message and a notice of the same change.
        assert sum(f"k {fixed} → {fixed + 1}" in m for _, _, m in app.said_log) == 1, list(app.said_log)
        assert session.scheduler.parallel == fixed + 1
        await pilot.press("minus", "minus")
        lower = max(1, fixed - 1)
        await wait_until(pilot, lambda: f"k {lower} fixed" in status(app), 20, "k two lower")
        await pilot.press("k")
        await wait_until(pilot, lambda: " auto" in status(app), 20, "back to auto")
        await wait_until(pilot, lambda: said(app, "back to auto"), 10, "said: back to auto")


async def test_k_is_not_on_the_status_line_of_a_fixed_study_until_the_key(study_dir, tmp_path):
    study = open_study(study_dir, space_text(parallel=1, budget=1))
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await running(pilot, app)
        assert " k 1" not in status(app)
        await pilot.press("k")
        await wait_until(pilot, lambda: "k 1 auto" in status(app), 10, "auto-k switched on")
