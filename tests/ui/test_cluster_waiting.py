"""A trial whose Slurm job waits in the cluster's queue: the runs table and the run panel say so, with
Slurm's reason (the app driven with hand-made snapshots, as the redraw tests do)."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Static
from ui_helpers import plain, status, wait_until

from tui_tuner.ui.model import TrialRow
from tui_tuner.ui.widgets.tables import TrialsTable

WAITING = "queued on the cluster (Resources)"


async def test_a_job_in_slurms_queue_shows_as_waiting_with_its_reason(snap_app):
    app = snap_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        main = app.main
        base = main.snap
        rows = (TrialRow(id=20, status="running", objective=None, step=None, source="random", parent=None,
                         fork_step=None, waiting=WAITING),
                TrialRow(id=21, status="running", objective=0.5, step=10, source="random", parent=None,
                         fork_step=None))
        counts = tuple((k, v) for k, v in base.counts if k != "running") + (("running", 2),)
        main.show(replace(base, seq=base.seq + 1, trials=(*base.trials, *rows), counts=counts,
                          focused=replace(base.focused, id=20, status="running", waiting=WAITING)))
        table = main.query_one(TrialsTable)
        await wait_until(pilot, lambda: "20" in table.rows and plain(table.get_row("20")[1]).strip() == "wait",
                         what="the queued job's row to say wait")
        assert plain(table.get_row("21")[1]).strip() == "run"
        header = str(main.query_one("#run-header", Static).render())
        assert "#20 running" in header and WAITING in header
        line = status(app)
        assert "  running 1  waiting 1  " in line, line
