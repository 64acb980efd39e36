"""The app on a study whose trials are Slurm jobs: a job waiting in the cluster's queue is shown as
waiting, with Slurm's reason, the way a user meets it (the real app, session and cluster)."""

from __future__ import annotations

import pytest
from space_toml import param, space_toml
from study_runs import TOY
from test_executor import SLURM, cancel_jobs
from ui.ui_helpers import header, make_app, open_study, piloting, plain, wait_until

pytest.importorskip("submitit", reason="submitit is not installed (pip install -e '.[slurm]')")

from textual.widgets.data_table import RowDoesNotExist  # noqa: E402

from tui_tuner.ui.widgets.tables import TrialsTable  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm")]


def cells(app, trial_id: int) -> list[str]:
    """The trial's row in the runs table as shown ([] before it has one)."""
    try:
        return [plain(c).strip() for c in app.main.query_one(TrialsTable).get_row(str(trial_id))]
    except RowDoesNotExist:
        return []


async def test_the_app_shows_a_job_in_slurms_queue_as_waiting_with_its_reason(slurm_cluster, tmp_path):
    params = {"lr": param("float", scale="log", low=1e-3, high=0.5, default=0.05, live=True),
              "steps": param("int", low=1, high=1000000, default=1000000, tier=4),
              "delay": param("float", low=0.0, high=1.0, default=0.02, tier=4)}
    # Three jobs at once on a node with two CPUs: one waits for resources.
    text = space_toml(params, name="app-cluster", command=["python", str(TOY)], objective="loss", parallel=3,
                      budget=3, strategy="random", stage=1, executor="slurm", slurm=SLURM)
    study_dir = tmp_path / "study"
    study = open_study(study_dir, text)
    app = make_app(study, tmp_path)
    try:
        async with piloting(app, size=(100, 30)) as pilot:
            # Slurm starts jobs in id order: trials 1 and 2 run, 3 waits for a CPU.
            await wait_until(pilot, lambda: [cells(app, i)[1:2] for i in (1, 2, 3)] == [["run"], ["run"], ["wait"]],
                             60, "two trials running and the third's job shown waiting in Slurm's queue")
            # ] focuses the next running trial: press until the run panel shows the waiting one, each time
            # waiting for the focus to move (the old focus and header already agree before the key lands).
            for _ in range(4):
                if header(app).startswith("#3 "):
                    break
                before = app.main.snap.focused.id if app.main.snap.focused is not None else None
                await pilot.press("]")
                await wait_until(pilot, lambda before=before: (f := app.main.snap.focused) is not None and f.id != before
                                 and header(app).startswith(f"#{f.id} "), 10, "the run panel to follow the focus")
            try:
                await wait_until(pilot, lambda: header(app).startswith("#3 running queued on the cluster (Resources)"),
                                 30, "the run panel to say why the job waits")
            except AssertionError as e:
                raise AssertionError(f"{e}; the run panel says {header(app)!r}") from None
            await pilot.press("q")
    finally:
        cancel_jobs(study_dir)
