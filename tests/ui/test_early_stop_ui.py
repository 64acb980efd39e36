"""The app shows an early stop (the trial's reason says why) and undoes it with one key."""

from __future__ import annotations

import pytest
from ui_helpers import make_app, open_study, piloting, said, space_text, wait_until

from tui_tuner.ui.widgets.tables import TrialsTable

pytest.importorskip("optuna")


def early_stop_space() -> str:
    text = space_text(name="es-ui", parallel=2, budget=2, steps=400, delay=0.02)
    return text.replace("[study]\n", "[study]\nearly_stop = \"asha\"\nearly_stop_min_step = 5\n"
                                      "early_stop_factor = 2\n", 1)


async def test_an_early_stop_is_shown_and_the_u_key_resumes_it_exactly(study_dir, tmp_path):
    study = open_study(study_dir, early_stop_space())
    good, bad = study.enqueue([{"lr": 0.4}, {"lr": 0.001}], "manual")
    app = make_app(study, tmp_path, autostart=False)
    backend = app.backend
    async with piloting(app, (160, 48)) as pilot:
        backend.submit(backend.session.run_now, good.id).result(timeout=10)
        await wait_until(pilot, lambda: (backend.session.runner.queries.latest(good.id).get("step") or 0) >= 5,
                         20, "the good run past step 5")
        backend.submit(backend.session.run_now, bad.id).result(timeout=10)
        await wait_until(pilot, lambda: study.trial(bad.id).status == "stopped", 30, "the early stop")
        reason = study.trial(bad.id).reason
        assert reason.startswith("early stop: ") and "cut-off" in reason and "asha" in reason
        await wait_until(pilot, lambda: said(app, "stopped #"), 10, "the decision said")

        table = app.main.query_one(TrialsTable)
        await wait_until(pilot, lambda: str(bad.id) in [str(k.value) for k in table.rows], 10, "the row")
        table.move_cursor(row=table.get_row_index(str(bad.id)))
        await pilot.press("u")
        await wait_until(pilot, lambda: said(app, f"undid the early stop of #{bad.id}"), 20, "the undo")
        child = max((t for t in study.trials("id") if t.parent == bad.id), key=lambda t: t.id)
        await wait_until(pilot, lambda: (backend.session.runner.queries.latest(child.id).get("step") or 0)
                         > (child.fork_step or 0), 20, "the resumed run reports")
        # It continues where the stopped run was: the toy's loss is (10 (1 - lr)^step)^2.
        latest = backend.session.runner.queries.latest(child.id)
        step, loss = latest["step"], latest["metrics"]["loss"]
        assert loss == pytest.approx((10 * (1 - 0.001) ** step) ** 2, rel=1e-9)
        assert child.fork_step is not None and child.fork_step >= 5
        await pilot.press("u")   # a second undo of the same stop is refused with a reason
        await wait_until(pilot, lambda: said(app, "already undone"), 10, "the refusal")
        backend.submit(backend.session.stop_all, 10).result(timeout=30)
