"""The app shows an early stop (the trial's reason says why) and undoes it with one key; a promotion of a
stopped slow starter is listed by D and kept, once, across a reopen."""

from __future__ import annotations

import pytest
from study_runs import kill_runs
from ui_helpers import make_app, open_study, piloting, said, screen_of, space_text, wait_until

from tui_tuner.study.study import Study
from tui_tuner.ui.screens.decisions import DecisionsScreen, rows
from tui_tuner.ui.widgets.tables import TrialsTable

pytest.importorskip("optuna")


def early_stop_space() -> str:
    text = space_text(name="es-ui", parallel=2, budget=2, steps=400, delay=0.02)
    return text.replace("[study]\n", "[study]\nearly_stop = \"asha\"\nearly_stop_min_step = 5\n"
                                      "early_stop_factor = 2\nearly_stop_trust_after = 0\n", 1)


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


async def test_a_promotion_is_listed_by_D_and_a_reopened_study_keeps_it_and_does_nothing_twice(study_dir, tmp_path):
    # One at a time: A the best; B, a slow starter, stopped at rung 0 beside A alone; C and D worse,
    # stopped there too. Then B ranks in the best half of rung 0 and the free slot promotes it.
    # Slow enough (2 s a run) that each stop lands near its rung on a loaded box.
    text = space_text(name="promote-ui", parallel=1, budget=5, steps=40, delay=0.05)
    study = open_study(study_dir, text.replace("[study]\n", "[study]\nearly_stop = \"asha\"\nearly_stop_min_step = 5\n"
                                                            "early_stop_factor = 2\nearly_stop_trust_after = 0\n", 1))
    a, b, c, d = study.enqueue([{"lr": 0.4}, {"lr": 0.05, "delay": 0.6}, {"lr": 0.01}, {"lr": 0.002}], "manual")
    app = make_app(study, tmp_path)
    try:
        async with piloting(app, (160, 40)) as pilot:
            session = app.backend.session
            await wait_until(pilot, lambda: [x for x in session.decisions() if x.kind == "promote"
                                             and x.state == "done"], 60, "the promotion")
            # Said in one line: its own toast, or with a stop that came with it ("1 promotion").
            await wait_until(pilot, lambda: said(app, f"promoted #{b.id}: val_loss") or said(app, "1 promotion"), 10,
                             "the promotion said")
            await pilot.press("D")
            screen = await screen_of(pilot, DecisionsScreen, "the decision log")
            await wait_until(pilot, lambda: any(r["kind"] == "promote" for r in rows(screen)), 5, "listed")
            (row,) = [r for r in rows(screen) if r["kind"] == "promote"]
            assert row["trial"] == f"#{b.id}" and row["decision"].startswith(f"promoted #{b.id}: val_loss ")
            (p,) = [x for x in session.decisions() if x.kind == "promote"]
            child = p.progress["out"]["child"]
            assert p.message.endswith(f"#{child} resumes it from step {study.trial(child).fork_step}")
            # Quit, most often while the promoted run goes on (re-adopted below): it is slow (0.6 s a step).

        study = Study.open(study_dir)
        app = make_app(study, tmp_path)
        async with piloting(app, (160, 40)) as pilot:
            session = app.backend.session
            await wait_until(pilot, lambda: study.trial(child).finished, 60, "the promoted run judged again")
            # Still one promotion, one fork of B: re-adopted, it went on as B at B's next rungs.
            assert [(x.trial_id, (x.progress.get("out") or {}).get("child")) for x in session.decisions()
                    if x.kind == "promote"] == [(b.id, child)]
            assert [t.id for t in study.trials("id") if t.parent == b.id] == [child]
            assert len(study.trials("id")) == 5
            (stop,) = [x for x in session.decisions() if x.kind == "early_stop" and x.trial_id == child]
            assert stop.data["rung"] >= 1, "judged at B's next rungs, not from rung 0 again"
            await pilot.press("D")
            screen = await screen_of(pilot, DecisionsScreen, "the decision log")
            await wait_until(pilot, lambda: [r["kind"] for r in rows(screen)].count("promote") == 1, 5, "listed once")
            app.backend.submit(session.stop_all, 10).result(timeout=30)
    finally:
        kill_runs(study_dir)
