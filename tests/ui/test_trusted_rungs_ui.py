"""asha's trusted rungs (`early_stop_trust_after = 3`), the way a user meets them: no run is stopped
before three finished, and a rung that would have stopped the best finished run (a slow starter)
stops no more. The app says so once, the status line shows the rung off, a reopened study still has
it off (its decider rebuilt from the kept history), and e exports the slow starter. Real toy runs
under a Pilot."""

from __future__ import annotations

from pathlib import Path

import tomllib
from space_toml import lr, param, space_toml
from study_runs import TOY, kill_runs
from ui_helpers import make_app, open_study, piloting, plain, said, screen_of, status, wait_until

from tui_tuner.study.study import Study
from tui_tuner.ui.screens.dialogs import Prompt


def slow_starter_space() -> str:
    # The toy's loss is (10 (1 - lr)^step)^2, its lr multiplied by `decay` every `decay_every` steps:
    # decay > 1 makes a slow starter (behind at step 5, ahead from step 10, loss 0 from step 11).
    params = {
        "lr": lr(low=1e-3, high=1.0, default=0.05, live=True),
        "steps": param("int", low=1, high=10**6, default=40, tier=4),
        "delay": param("float", low=0.0, high=5.0, default=0.02, tier=4),
        "decay": param("float", low=0.1, high=10.0, default=1.0, tier=4),
        "decay_every": param("int", low=1, high=1000, default=10, tier=4),
    }
    return space_toml(params, name="trust", command=["python", str(TOY)], objective="loss", strategy="random",
                      stage=1, parallel=1, budget=4, early_stop="asha", early_stop_min_step=5,
                      early_stop_factor=2, early_stop_trust_after=3)


async def test_a_rung_that_would_stop_the_winning_slow_starter_stops_no_more_across_a_reopen(study_dir, tmp_path):
    study = open_study(study_dir, slow_starter_space())
    # One at a time, in this order; the last would run for a long while. At step 5 (rung 0) the losses are 34.9, 27.8, 66.5 and 90.4; at
    # step 10 (rung 1) 12.2, 7.8, 7.1 and 81.8.
    fast, faster, slow, hopeless = study.enqueue(
        [{"lr": 0.1}, {"lr": 0.12}, {"lr": 0.04, "decay": 5.0, "decay_every": 5}, {"lr": 0.01, "steps": 10**5}],
        "manual")
    app = make_app(study, tmp_path)
    try:
        async with piloting(app, (160, 40)) as pilot:
            await wait_until(pilot, lambda: study.trial(hopeless.id).status == "stopped", 60, "the last run stopped")
            # The slow starter, behind at rung 0 before three had finished, was kept and finished first.
            assert [study.trial(t.id).status for t in (fast, faster, slow)] == ["done"] * 3
            assert study.trial(slow.id).objective == 0.0
            # The last one, far behind at rung 0, went on: rung 0 would have stopped the slow starter.
            # Rung 1 ranked the slow starter first, so it still stops.
            reason = study.trial(hopeless.id).reason
            assert "at rung 1 (step 10)" in reason, reason
            why = f"the rung at step 5 stops no more: it would stop #{slow.id}, the best finished trial (66.48 there)"
            await wait_until(pilot, lambda: said(app, why), 10, "the rung off said")
            await wait_until(pilot, lambda: "(5 off)" in status(app), 10, "the status line")
            assert "asha 10·20·40·80 (5 off)" in status(app), status(app)

        study = Study.open(study_dir)
        app = make_app(study, tmp_path)
        async with piloting(app, (160, 40)) as pilot:
            await wait_until(pilot, lambda: "(5 off)" in status(app), 10, "the rung still off after the reopen")
            await wait_until(pilot, lambda: said(app, f"step 5 stops no more: it would stop #{slow.id}"), 10,
                             "the opening note")
            await pilot.press("e")
            prompt = await screen_of(pilot, Prompt, "the export prompt")
            assert f"the best trial, #{slow.id}" in plain(prompt.query_one("#dialog-title").content)
            path = Path(prompt.query_one("Input").value)
            await pilot.press("enter")
            await wait_until(pilot, path.is_file, 10, "the export written")
        exported = tomllib.loads(path.read_text())
        assert (exported["lr"], exported["decay"]) == (0.04, 5.0), exported
    finally:
        kill_runs(study_dir)
