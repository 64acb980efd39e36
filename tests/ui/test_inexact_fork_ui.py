"""A fork whose trainer says it will not continue its parent exactly (the Lightning callback does, for a
train loader without state): the app marks its lineage, in the trials table and the run panel's title,
and still does after quitting and reopening (issue 19, item 8)."""

from __future__ import annotations

from space_toml import lr, param, space_toml
from ui_helpers import make_app, open_study, piloting, plain, said, screen_of, wait_until

from tui_tuner.ui.screens.dialogs import ParamForm
from tui_tuner.ui.widgets.tables import TrialsTable

# A trainer-API script whose forks say what the Lightning callback says for a shuffling DataLoader.
SCRIPT = """
import time
from tui_tuner import trainer
hp = trainer.params(lr=0.1, steps=100000)
trainer.on_checkpoint(lambda path: open(path, "w").write("state"))
if trainer.resume_path():
    trainer.inexact("its train DataLoader shuffles with a sampler that has no state")
for step in range(1, hp.steps + 1):
    trainer.report(step, loss=1.0 / step)
    if trainer.should_stop():
        break
    time.sleep(0.01)
"""


def lineage_cell(app, trial_id: int) -> str:
    return plain(app.main.query_one(TrialsTable).get_row(str(trial_id))[5]).strip()


async def test_an_inexact_fork_is_marked_in_the_table_and_the_title(study_dir, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    text = space_toml({"lr": lr(live=True), "steps": param("choice", values=[100000])}, name="inexact",
                      command=["python", str(script)], objective="loss", budget=1, strategy="random")
    study = open_study(study_dir, text)
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await wait_until(pilot, lambda: app.main.snap and app.main.snap.focused is not None
                         and (app.main.snap.focused.step or 0) > 0, 15, "the run reporting")
        await pilot.press("f")
        await screen_of(pilot, ParamForm, "the fork form")
        await pilot.press("enter")
        await wait_until(pilot, lambda: said(app, "into #2"), 15, "the fork message")
        await wait_until(pilot, lambda: app.main.snap.trial(2) is not None and lineage_cell(app, 2).endswith("~"),
                         15, "the child marked inexact")
        assert lineage_cell(app, 2).startswith("#1@")
        assert lineage_cell(app, 1) == ""
        await wait_until(pilot, lambda: app.main.query_one("#run").border_title.endswith("(inexact)"), 10,
                         "the run panel's title")
        assert study.inexact() == {2: "its train DataLoader shuffles with a sampler that has no state"}
        await pilot.press("Q")
        await pilot.press("y")
    study = open_study(study_dir, text)
    app = make_app(study, tmp_path, autostart=False)
    async with piloting(app) as pilot:
        await wait_until(pilot, lambda: app.main.snap and app.main.snap.trial(2) is not None, 10, "the trials")
        assert lineage_cell(app, 2).endswith("~")
