"""What the user turns on in the app stays on, and every automatic decision shows as one thing: the A key
really runs PBT and is remembered across a reopen, P pins a run, an early stop undone from the log says
the truth once, a burst of stops is one toast, e exports the best trial, the adjust form shows the lr the
run uses now. Each drives the real app (Pilot) over real toy runs."""

from __future__ import annotations

import os
import re
import signal

from space_toml import lr, param, space_toml
from study_runs import TOY, kill_runs
from ui_helpers import (
    header,
    make_app,
    open_study,
    piloting,
    plain,
    said,
    screen_of,
    space_text,
    status,
    wait_until,
)

from tui_tuner.study.study import Study
from tui_tuner.ui.screens.decisions import DecisionsScreen, rows
from tui_tuner.ui.screens.dialogs import ParamForm, Prompt
from tui_tuner.ui.toasts import Burst
from tui_tuner.ui.widgets.tables import PIN_MARK, TrialsTable


def toy(name: str, **study) -> str:
    params = {
        "lr": lr(low=1e-4, high=0.9, default=0.05, live=True),
        "steps": param("int", low=1, high=10**6, default=10**6, tier=4),
        "delay": param("float", low=0.0, high=5.0, default=0.01, tier=4),
        "decay": param("float", low=0.1, high=1.0, default=1.0, tier=4),
        "decay_every": param("int", low=1, high=1000, default=10, tier=4),
    }
    return space_toml(params, name=name, command=["python", str(TOY)], objective="loss", strategy="random",
                      stage=1, **study)


def trials_text(app) -> str:
    table = app.main.query_one(TrialsTable)
    return "\n".join(" ".join(plain(c) for c in table.get_row_at(i)) for i in range(table.row_count))


async def test_A_really_runs_pbt_is_kept_across_a_reopen_and_A_stops_it(study_dir, tmp_path):
    study = open_study(study_dir, toy("pbt-key", parallel=2, budget=2))
    top, bottom = study.enqueue([{"lr": 0.3}, {"lr": 0.002}], "manual")
    app = make_app(study, tmp_path)
    try:
        async with piloting(app, (120, 30)) as pilot:
            session = app.backend.session
            await wait_until(pilot, lambda: "autopilot off" in status(app), 10, "the autopilot shown off")
            await pilot.press("A")
            await wait_until(pilot, lambda: said(app, "autopilot on: PBT every 100 steps"), 10, "the toggle")
            await wait_until(pilot, lambda: "autopilot pbt/100" in status(app), 5, "shown on")
            await wait_until(pilot, lambda: [d for d in session.decisions() if d.kind == "pbt" and d.state == "done"],
                             40, "a replacement by PBT")
            assert study.trial(bottom.id).status in ("running", "stopped")

        study = Study.open(study_dir)
        app = make_app(study, tmp_path)
        async with piloting(app, (120, 30)) as pilot:
            session = app.backend.session
            await wait_until(pilot, lambda: "autopilot pbt/100" in status(app), 10, "still on after the reopen")
            await pilot.press("A")
            await wait_until(pilot, lambda: "autopilot off" in status(app), 10, "off")
            toggles = [d for d in session.decisions() if d.kind == "autopilot"]
            assert [d.data["to"] for d in toggles] == ["none", "pbt"] and all(d.by == "user" for d in toggles)
            await pilot.press("D")
            screen = await screen_of(pilot, DecisionsScreen, "the decision log")
            await wait_until(pilot, lambda: {"autopilot", "pbt"} <= {r["kind"] for r in rows(screen)}, 5, "listed")
            app.backend.submit(app.backend.session.stop_all, 10).result(timeout=30)

        with Study.open(study_dir, lock=False) as again:
            assert again.meta("settings")["autopilot"] == "none"
    finally:
        kill_runs(study_dir)


async def test_P_pins_the_run_marks_it_everywhere_and_early_stopping_leaves_it_be(study_dir, tmp_path):
    text = toy("pin-key", parallel=1, budget=2, early_stop="asha", early_stop_min_step=5, early_stop_factor=2,
               early_stop_trust_after=0)
    study = open_study(study_dir, text)
    bad, good = study.enqueue([{"lr": 0.001, "delay": 0.02}, {"lr": 0.5, "steps": 60, "delay": 0.0}], "manual")
    app = make_app(study, tmp_path)
    try:
        async with piloting(app, (120, 30)) as pilot:
            session = app.backend.session
            await wait_until(pilot, lambda: f"#{bad.id} running" in header(app), 20, "the bad run focused")
            await pilot.press("P")
            await wait_until(pilot, lambda: f"{PIN_MARK}pinned" in header(app), 10, "pinned in the run panel")
            await wait_until(pilot, lambda: f"{bad.id}{PIN_MARK}" in trials_text(app), 10, "marked in Trials")
            app.backend.submit(app.backend.session.run_now, good.id).result(timeout=10)
            await wait_until(pilot, lambda: study.trial(good.id).status == "done", 30, "the good run done")
            await wait_until(pilot, lambda: (app.backend.session.runner.queries.latest(bad.id).get("step") or 0) > 45, 30,
                             "the bad run past rungs 5, 10, 20 and 40")
            assert study.trial(bad.id).active, "a pinned run is never stopped early"
            assert not [d for d in session.decisions() if d.kind == "early_stop"]
            (pin,) = [d for d in session.decisions() if d.kind == "pin"]
            assert pin.trial_id == bad.id and pin.by == "user"

        study = Study.open(study_dir)
        app = make_app(study, tmp_path)
        async with piloting(app, (120, 30)) as pilot:
            await wait_until(pilot, lambda: f"{bad.id}{PIN_MARK}" in trials_text(app), 10, "still pinned")
            app.backend.follow(bad.id)
            await wait_until(pilot, lambda: f"{PIN_MARK}pinned" in header(app), 10, "in the run panel too")
            await pilot.press("P")                                   # unpin
            await wait_until(pilot, lambda: f"{PIN_MARK}pinned" not in header(app), 10, "unpinned")
            app.backend.submit(app.backend.session.stop_all, 10).result(timeout=30)
    finally:
        kill_runs(study_dir)


async def test_an_early_stop_undone_from_the_log_says_so_once_and_a_burst_is_one_toast(study_dir, tmp_path,
                                                                                      monkeypatch):
    # A burst is decisions that come less than QUIET seconds apart. The three runs reach their rung
    # together, but a loaded box can start them seconds apart: the burst's window is widened so
    # that the test asks what it means to (one toast for the three), not how fast the box is.
    monkeypatch.setattr(Burst, "QUIET", 5.0)
    monkeypatch.setattr(Burst, "LONGEST", 30.0)
    text = toy("es-ui", parallel=4, budget=4, early_stop="asha", early_stop_min_step=5, early_stop_factor=2,
               early_stop_trust_after=0)
    study = open_study(study_dir, text)
    good = study.enqueue([{"lr": 0.5, "steps": 12, "delay": 0.0}], "manual")[0]
    bads = study.enqueue([{"lr": 0.001, "delay": 0.05}] * 3, "manual")
    app = make_app(study, tmp_path)
    try:
        async with piloting(app, (120, 30)) as pilot:
            await wait_until(pilot, lambda: all(study.trial(b.id).status == "stopped" for b in bads), 40,
                             "three early stops")
            await wait_until(pilot, lambda: said(app, "3 early stops · D lists them"), 20, "one toast for the burst")
            assert not said(app, "stopped #"), "no toast per stop"
            await wait_until(pilot, lambda: "stopped 3" in status(app), 5, "the stopped count")
            # Best first ranks stopped trials by value, marked: the good one leads.
            assert trials_text(app).splitlines()[0].split()[0].strip("▶★") == str(good.id)

            await pilot.press("D")
            screen = await screen_of(pilot, DecisionsScreen, "the decision log")
            await wait_until(pilot, lambda: len(rows(screen)) >= 3, 5, "the stops listed")
            await pilot.press("u")
            await wait_until(pilot, lambda: said(app, "undid the early stop of #"), 20, "the undo")
            await wait_until(pilot, lambda: rows(screen)[0]["undo"] == "undone", 5, "shown undone")
            await pilot.pause(0.5)
            errors = [m for sev, _, m in app.said_log if sev == "error"]
            assert errors == [], errors
            app.backend.submit(app.backend.session.stop_all, 10).result(timeout=30)
    finally:
        kill_runs(study_dir)


async def test_e_exports_the_best_trial_unless_a_row_was_chosen(study_dir, tmp_path):
    study = open_study(study_dir, space_text(name="export-best", budget=3))

    def finished(lr_: float, value: float) -> int:
        t = study.enqueue([{"lr": lr_}], "manual")[0]
        study.mark_started(t.id, 1)
        study.finish(t.id, "done", objective=value)
        return t.id

    first = finished(0.01, 0.5)
    app = make_app(study, tmp_path, autostart=False)
    async with piloting(app, (120, 30)) as pilot:
        table = app.main.query_one(TrialsTable)
        await wait_until(pilot, lambda: table.selected_key == str(first), 5, "#1 under the cursor")
        best, other = finished(0.02, 0.1), finished(0.03, 0.3)     # better trials come in: the rows re-sort,
        app.backend.poke()                                          # the cursor stays on #1
        await wait_until(pilot, lambda: table.row_count == 3, 5, "three rows")
        assert table.selected_key == str(first)
        await pilot.press("e")
        prompt = await screen_of(pilot, Prompt, "the export prompt")
        assert f"the best trial, #{best}" in plain(prompt.query_one("#dialog-title").content)
        assert prompt.query_one("Input").value.endswith(f"export-t{best:04d}.toml")
        await pilot.press("escape")
        table.focus()
        await pilot.press("up")                                     # the user chooses a row: #{other}
        await wait_until(pilot, lambda: table.selected_key == str(other), 5, "the row above")
        await pilot.press("e")
        prompt = await screen_of(pilot, Prompt, "the export prompt")
        assert plain(prompt.query_one("#dialog-title").content) == f"Export trial #{other}"
        await pilot.press("escape")


async def test_lr_keys_and_the_adjust_form_act_on_the_lr_the_run_uses_now(study_dir, tmp_path):
    # The toy's step schedule takes 10% off its lr every 20 steps: what it reports is what it trains with
    # (gently, so a loaded box that reaches the key late still finds an lr far above the range's bottom).
    study = open_study(study_dir, toy("lr-now", parallel=1, budget=1))
    study.enqueue([{"lr": 0.04, "decay": 0.9, "decay_every": 20, "delay": 0.02}], "manual")
    app = make_app(study, tmp_path)
    try:
        async with piloting(app, (120, 30)) as pilot:
            runner, session = app.backend.session.runner, app.backend.session
            await wait_until(pilot, lambda: (runner.queries.latest(1).get("step") or 0) > 25, 20, "past the first decay")
            await pilot.press("less_than_sign")
            await wait_until(pilot, lambda: [d for d in session.decisions() if d.kind == "lr"], 10, "the lr move")
            (d,) = [d for d in session.decisions() if d.kind == "lr"]
            assert d.data["from"] < 0.04 and d.data["to"] == d.data["from"] / 2   # half of the decayed lr
            # The decision is in the log before its line reaches the app (through the back end's events).
            await wait_until(pilot, lambda: said(app, f"lr {d.data['from']:.4g} → ") or said(app, "(×0.5 of its lr"),
                             10, "the lr move said")
            await wait_until(pilot, lambda: runner.queries.latest(1)["params"]["lr"] == d.data["to"], 10, "applied")
            await pilot.press("a")
            form = await screen_of(pilot, ParamForm, "the adjust form")
            shown = float(form.field("lr").value)
            # What it uses now, not 0.04 (the form shows 4 significant digits, so it may round up).
            assert shown <= d.data["to"] * 1.001
            intro = " ".join(plain(w.content) for w in form.query(".dialog-intro"))
            assert re.search(r"lr now [0-9.e-]+, started at 0\.04", intro), intro
            await pilot.press("escape")
            app.backend.submit(app.backend.session.stop_all, 10).result(timeout=30)
    finally:
        kill_runs(study_dir)


async def test_a_fork_returns_at_once_shows_pending_and_starts_once_the_checkpoint_is_written(study_dir, tmp_path):
    # The run reports (and so answers a checkpoint) every 1.5 s: the fork waits that long, the app does not.
    study = open_study(study_dir, toy("fork-pending", parallel=1, budget=1))
    study.enqueue([{"lr": 0.05, "delay": 1.5}], "manual")
    app = make_app(study, tmp_path)
    try:
        async with piloting(app, (120, 30)) as pilot:
            runner = app.backend.session.runner
            await wait_until(pilot, lambda: (runner.queries.latest(1).get("step") or 0) >= 1, 30, "a first report")
            # The run held (SIGSTOP) until the pending fork is seen: it cannot write the checkpoint meanwhile,
            # so a loaded box cannot end the wait before the status line is drawn.
            os.killpg(study.trial(1).pid, signal.SIGSTOP)
            try:
                app.backend.submit(app.backend.session.fork, 1, {"lr": 0.1}, None).result(timeout=5)   # returns
                await wait_until(pilot, lambda: "fork of #1…" in status(app), 10, "the pending fork shown")
                assert not said(app, "forked #1 into #2 at step")
            finally:
                os.killpg(study.trial(1).pid, signal.SIGCONT)
            await wait_until(pilot, lambda: said(app, "forked #1 into #2 at step"), 20, "one toast when it starts")
            await wait_until(pilot, lambda: "fork of #1…" not in status(app), 5, "no longer pending")
            assert study.trial(2).parent == 1 and study.trial(2).params["lr"] == 0.1
            app.backend.submit(app.backend.session.stop_all, 10).result(timeout=30)
    finally:
        kill_runs(study_dir)
