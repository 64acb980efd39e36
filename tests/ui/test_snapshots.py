"""Snapshot tests of the main screen and the dialogs at 80x24 and 160x48.

Deterministic: the study is built through the Study API with a fixed clock (nine finished trials, a
fork, a failure, two queued settings, curves on disk), the back end does not start (no live runs,
no GPU probe, no clocks in view), and the first frame is built before the app runs.
Update the SVGs with `pytest tests/ui/test_snapshots.py --snapshot-update` after a deliberate change.

`test_readme_screenshot` is the README's picture, __snapshots__/test_snapshots/test_readme_screenshot.svg:
spaces/mlp.toml with a study as a user would have run it, so CI proves the picture is current.
Regenerate it with `pytest tests/ui/test_snapshots.py -k readme --snapshot-update`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from textual.widgets import Input
from ui_helpers import FixedClock, open_study, record_run, wait_until

from tui_tuner.search.region import set_stage, zoom
from tui_tuner.study.study import Study
from tui_tuner.ui.screens.dialogs import ParamForm
from tui_tuner.ui.widgets.tables import TrialsTable

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


async def _noop(_: object) -> str:
    return ""


async def steady_cursors(pilot) -> None:
    """Stop the inputs' cursors blinking (shown, steadily): a blinking one is caught on or off by
    chance, and the snapshot with it."""
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare, snap_app, size):
    assert snap_compare(snap_app(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, snap_app, size):
    assert snap_compare(snap_app(), press=["question_mark"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_fork_form(snap_compare, snap_app, size):
    app = snap_app()
    study = app.backend.session.study

    async def open_form(pilot):
        await pilot.pause()
        trial = study.trial(9)
        fields = [(p, trial.params[p.name]) for p in study.space.by_priority()]
        pilot.app.push_screen(ParamForm("Fork #9 at step 400", fields, _noop, allow_empty=True,
                                        intro="The child starts from a checkpoint of this run, with these "
                                              "settings."))
        await pilot.pause()
        await steady_cursors(pilot)

    assert snap_compare(app, run_before=open_form, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_adjust_form_with_a_refused_value(snap_compare, snap_app, size):
    app = snap_app()
    study = app.backend.session.study

    async def open_form(pilot):
        await pilot.pause()
        trial = study.trial(9)
        fields = [(p, trial.params[p.name]) for p in study.space.by_priority() if p.live]
        pilot.app.push_screen(ParamForm("Adjust #9 while it trains", fields, _noop,
                                        intro="Live parameters only; the trainer applies them at its next "
                                              "report."))
        await pilot.pause()
        await pilot.press("9", "enter")
        await steady_cursors(pilot)

    assert snap_compare(app, run_before=open_form, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_export_prompt(snap_compare, snap_app, size):
    async def open_prompt(pilot):
        await pilot.pause()
        await pilot.press("e")
        await wait_until(pilot, lambda: pilot.app.screen.id == "export" and pilot.app.screen.is_mounted, 10,
                         "the export prompt")
        pilot.app.screen.query_one("#prompt-input").value = "best.toml"   # not the tmp path
        await pilot.pause()
        await steady_cursors(pilot)

    assert snap_compare(snap_app(), run_before=open_prompt, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_output_of_a_failed_trial(snap_compare, snap_app, size):
    async def open_output(pilot):
        await pilot.pause()
        pilot.app.main.query_one(TrialsTable).select_key("6")
        await pilot.press("v")
        await wait_until(pilot, lambda: pilot.app.screen.id == "output" and pilot.app.screen.is_mounted, 10,
                         "the output screen")
        await pilot.pause()

    assert snap_compare(snap_app(), run_before=open_output, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_sample_prompt_and_quit_confirmation(snap_compare, snap_app, size):
    assert snap_compare(snap_app(), press=["n", "escape", "Q"], terminal_size=size)


# -- the README's screenshot ----------------------------------------------------------------------

MLP_SPACE = Path(__file__).parents[2] / "spaces" / "mlp.toml"
STEPS, EVAL_EVERY, REPORT_EVERY, TRAIN_SIZE = 1500, 50, 10, 1438   # as trainers/mlp.py runs
CHANCE = math.log(10)   # the cross-entropy of a guess among 10 digits


def mlp_final_loss(params: dict[str, Any], rng: np.random.Generator) -> float:
    """A plausible best val_loss of trainers/mlp.py: a bowl in the log of the effective step size
    (lr / (1 - momentum) for SGD, lr for Adam), steeper on the unstable side, plus small terms."""
    if params["optimizer"] == "adam":
        e, best = math.log10(params["lr"]), -2.7
    else:
        e, best = math.log10(params["lr"] / (1 - params["momentum"])), -0.6
    loss = 0.072 + (0.09 if e < best else 0.35) * (e - best) ** 2
    loss += 0.03 * (100 - params["hidden"]) / 50 + 0.004 * math.log2(128 / params["batch_size"])
    loss += {2: 0.0, 3: -0.012, 4: 0.01}[params["layers"]] + 0.03 * (params["lr_decay"] - 0.25) ** 2
    return min(loss * (1 + 0.04 * rng.standard_normal()), CHANCE - 0.1)


def mlp_reports(params: dict[str, Any], final: float, rng: np.random.Generator, *,
                start: int = 0, stop: int = STEPS, begin: float = CHANCE) -> list[tuple[int, dict[str, float]]]:
    """What trainers/mlp.py reports from `start` to `stop`: loss and lr every 10 steps, val_loss and
    val_acc every 50; val_loss falls from `begin` towards `final`, faster with a larger step size."""
    effective = params["lr"] * (300 if params["optimizer"] == "adam" else 1 / (1 - params["momentum"]))
    tau = min(max(120 * (0.25 / effective) ** 0.6, 25), 3000)
    noise = 0.04 * math.sqrt(32 / params["batch_size"])   # a report averages 10 mini-batches
    reports = []
    for step in range(start + REPORT_EVERY, stop + 1, REPORT_EVERY):
        # A fast drop, then a slow tail.
        t = (step - start) / tau
        level = final + (begin - final) * (0.8 * math.exp(-t) + 0.2 * math.exp(-t / 6))
        epoch = step * params["batch_size"] // TRAIN_SIZE
        metrics = {"loss": 0.6 * level * (1 + noise * rng.standard_normal()),
                   "lr": params["lr"] / (1 + params["lr_decay"] * epoch)}
        if step % EVAL_EVERY == 0:
            val = level * (1 + 0.02 * rng.standard_normal())
            metrics["val_loss"] = val
            metrics["val_acc"] = 0.1 + 0.89 / (1 + (val / 0.9) ** 3)
        reports.append((step, metrics))
    return reports


def _best_val(reports: list[tuple[int, dict[str, float]]]) -> float:
    return min(m["val_loss"] for _, m in reports if "val_loss" in m)


def _val_at(reports: list[tuple[int, dict[str, float]]], step: int) -> float:
    return next(m["val_loss"] for s, m in reports if s == step)


def mlp_study(directory: Path, monkeypatch: Any) -> Study:
    """spaces/mlp.toml as a user would have tuned it: a first round at stage 2, the stage raised to 3
    and a second round (one run killed), a fork of the best run with half its lr, one zoom, and two
    settings queued from the zoomed region."""
    import time as time_module

    clock = FixedClock()
    with monkeypatch.context() as m:
        m.setattr(time_module, "time", clock)
        study = open_study(directory, MLP_SPACE.read_text(), seed=1)
        curves: dict[int, list] = {}

        def run(trial: Any, final: float | None = None, stop: int = STEPS, **kw: Any) -> None:
            rng = np.random.default_rng(trial.id)
            if final is None:
                final = mlp_final_loss(trial.params, rng)
            curves[trial.id] = r = mlp_reports(trial.params, final, rng, stop=stop, **kw)
            # About 0.1 s a report (the space's --sleep 0.1) and a few seconds of startup and data.
            seconds = 3 + 0.11 * len(r)
            record_run(study, trial.id, r, _best_val(r), clock=clock, seconds=seconds, output="",
                       reason="killed by SIGKILL" if stop < STEPS else None)

        study.search_state = set_stage(study.space, study.search_state, 2)
        for t in study.sample(8):
            run(t)
        study.search_state = set_stage(study.space, study.search_state, 3, study.best(1)[0].params)
        for i, t in enumerate(study.sample(4)):
            run(t, stop=430 if i == 2 else STEPS)
        # The runner-up, forked with half its lr where its curve flattened: better, not the best.
        parent = study.best(2)[1]
        child = study.add_fork(parent.id, {"lr": parent.params["lr"] / 2}, 800,
                               f"runs/t{parent.id:04d}/checkpoints/ckpt-800.pt")
        run(child, final=0.92 * parent.objective, start=800, begin=_val_at(curves[parent.id], 800))
        done = [t for t in study.finished() if t.status == "done"]
        study.search_state = zoom(study.space, study.search_state, [(t.params, t.objective) for t in done],
                                  maximize=False, ids=[t.id for t in done], force=True)   # asked first
        study.sample(2)
    return study


def test_readme_screenshot(snap_compare, snap_app):
    """The README's picture of the main screen (120x36); regenerate with --snapshot-update."""
    assert snap_compare(snap_app(mlp_study), terminal_size=(120, 36))
