"""The decision log screen: every automatic decision newest first, undone with u, once only."""

from __future__ import annotations

import pytest
from ui_helpers import make_app, open_study, piloting, plain, said, screen_of, space_text, wait_until

from tui_tuner.ui.screens.decisions import DecisionsScreen, rows

PBT = ('[study]\nautopilot = "pbt"\nautopilot_interval = 20\nautopilot_fraction = 0.5\n'
       'autopilot_resample = 0.0\n')


def detail(screen: DecisionsScreen) -> str:
    return plain(screen.query_one("#decisions-detail").content)


async def test_the_log_lists_any_kind_newest_first_and_undoes_once(study_dir, tmp_path):
    study = open_study(study_dir, space_text(name="log-ui"))
    app = make_app(study, tmp_path, live=False, autostart=False)
    session = app.backend.session
    log = session.automation.log

    def decide(*args, **kw):
        session._publish(log.add(*args, **kw))   # as the automation loop keeps and publishes one

    decide("auto_k", None, "k 2 → 3: 1,810 → 2,470 steps/s", {"from": 2, "to": 3})
    decide("note", 4, "a kind nothing undoes", {})
    async with piloting(app, (140, 30)) as pilot:
        await pilot.press("D")
        screen = await screen_of(pilot, DecisionsScreen, "the decision log")
        await wait_until(pilot, lambda: len(rows(screen)) == 2, 5, "two decisions")
        decide("auto_k", None, "k 3 → 4: 2,470 → 2,600 steps/s", {"from": 3, "to": 4})
        await wait_until(pilot, lambda: len(rows(screen)) == 3, 5, "the new decision shows")
        table = rows(screen)
        assert [r["#"] for r in table] == ["3", "2", "1"]                      # newest first
        assert [r["kind"] for r in table] == ["auto_k", "note", "auto_k"]
        assert table[0]["decision"] == "k 3 → 4: 2,470 → 2,600 steps/s"
        assert table[1]["trial"] == "#4" and table[1]["undo"] == "-"           # nothing undoes it
        assert "3 (0 undone)" in plain(screen.query_one("#decisions-title").content)

        await pilot.press("u")                                                 # on the newest
        await wait_until(pilot, lambda: said(app, "undo of k 3 → 4; held at 3"), 5, "the undo")
        await wait_until(pilot, lambda: rows(screen)[0]["undo"] == "undone", 5, "shown as undone")
        assert "undone: k 1 → 3: undo of k 3 → 4" in detail(screen)
        # One toast: the undo's, not a second "already undone" error after it succeeded.
        assert not any("already undone" in m for _, _, m in app.said_log)
        await pilot.press("u")                                                 # greyed: not twice
        await pilot.pause(0.3)
        assert not any("already undone" in m for _, _, m in app.said_log)
        assert screen.check_action("undo", ()) is None
        with pytest.raises(Exception, match="already undone"):
            session.undo_decision(3)

        await pilot.press("down")                                              # the note
        assert screen.check_action("undo", ()) is None
        await pilot.press("down", "u")                                         # the older k change
        await wait_until(pilot, lambda: said(app, "undo of k 2 → 3; held at 2"), 5, "the second undo")
        assert [d.is_undone for d in session.decisions()] == [True, False, True]
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.main, 5, "back on the main screen")


async def test_an_autopilot_replacement_is_listed_and_undone_from_the_log(study_dir, tmp_path):
    text = space_text(name="pbt-ui", parallel=2, budget=2, steps=100000, delay=0.02)
    study = open_study(study_dir, text.replace("[study]\n", PBT, 1))
    top, bottom = study.enqueue([{"lr": 0.3}, {"lr": 0.002}], "manual")
    app = make_app(study, tmp_path)
    backend = app.backend
    async with piloting(app, (160, 40)) as pilot:
        # The decision, not its toast: on a loaded box replacements come in bursts, told in one toast.
        await wait_until(pilot, lambda: any(d.kind == "pbt" and d.trial_id == bottom.id
                                            for d in backend.session.decisions()), 40, "the replacement")
        await pilot.press("A")                                                 # the autopilot off: hold still
        await wait_until(pilot, lambda: said(app, "autopilot off"), 5, "the toggle")
        await wait_until(pilot, lambda: study.trial(bottom.id).finished, 20, "the replaced run ended")
        await pilot.press("D")
        screen = await screen_of(pilot, DecisionsScreen, "the decision log")
        await wait_until(pilot, lambda: any(r["kind"] == "pbt" for r in rows(screen)), 5, "the pbt row")
        row = [i for i, r in enumerate(rows(screen)) if r["kind"] == "pbt"][-1]   # the first replacement
        screen.table.move_cursor(row=row)
        decision = screen.selected
        child = decision.progress["out"]["child"]
        assert decision.trial_id == bottom.id and f"= fork of #{top.id}@" in decision.message
        await pilot.press("u")
        await wait_until(pilot, lambda: said(app, f"undid the autopilot's replacement of #{bottom.id}"), 20,
                         "the undo")
        await wait_until(pilot, lambda: rows(screen)[row]["undo"] == "undone", 5, "shown as undone")
        resumed = max((t for t in study.trials("id") if t.parent == bottom.id), key=lambda t: t.id)
        await wait_until(pilot, lambda: (backend.session.runner.queries.latest(resumed.id).get("step") or 0)
                         > (resumed.fork_step or 0), 20, "the resumed run reports")
        latest = backend.session.runner.queries.latest(resumed.id)
        assert latest["metrics"]["loss"] == pytest.approx((10 * (1 - 0.002) ** latest["step"]) ** 2, rel=1e-9)
        await wait_until(pilot, lambda: study.trial(child).finished, 20, "the fork stopped")
        backend.submit(backend.session.stop_all, 10).result(timeout=30)
