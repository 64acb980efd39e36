"""`[study] devices = [0, 1]` the way a user meets it: the app shows each run's device and each
device's runs of k, the tuner is quit and reopened on the same study and the runs are still on
their devices, then `tui-tuner export` gives the setting and the command with its device."""

from __future__ import annotations

import shlex

from space_toml import lr, param, space_toml
from study_runs import SCRIPTS
from ui_helpers import make_app, open_study, piloting, plain, said, status, wait_until

from tui_tuner import cli
from tui_tuner.study.study import Study
from tui_tuner.ui.screens.dialogs import Confirm
from tui_tuner.ui.widgets.run import RunPanel
from tui_tuner.ui.widgets.tables import TrialsTable

DEVICE_TOY = SCRIPTS / "device_toy.py"


def devices_space() -> str:
    params = {"lr": lr(low=1e-3, high=0.5, default=0.05, tier=1, live=True),
              "steps": param("int", low=1, high=1000000, default=1000000, tier=4),
              "delay": param("float", low=0.0, high=1.0, default=0.01, tier=4)}
    return space_toml(params, name="gpus", command=["python", str(DEVICE_TOY)], objective="loss",
                      devices=[0, 1], parallel=1, budget=3, strategy="random", stage=1)


def device_cells(app) -> dict[int, str]:
    """Each trial's device, as the trials table's dev column shows it."""
    table = app.main.query_one(TrialsTable)
    keys = [c.key.value for c in table.ordered_columns]
    if "device" not in keys:
        return {}
    at = keys.index("device")
    return {int(row.value): plain(table.get_row(row.value)[at]).strip() for row in table.rows}


async def test_devices_in_the_table_and_status_line_survive_a_reopen_and_export_works(study_dir, tmp_path, capsys):
    study = open_study(study_dir, devices_space())
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await wait_until(pilot, lambda: device_cells(app) == {1: "0", 2: "1"}, 60, "two runs, one on each device")
        await wait_until(pilot, lambda: "GPU 0:1/1 1:1/1" in status(app), 10, "the devices on the status line")
        # At 80 columns the devices are on the part of the line that shows.
        assert status(app).index("GPU 0:1/1 1:1/1") + len("GPU 0:1/1 1:1/1") <= 80
        await wait_until(pilot, lambda: said(app, "no GPU is visible here"), 10,
                         "a named list on a box without GPUs used, with a warning")
        columns = [plain(c.label).strip() for c in app.main.query_one(TrialsTable).ordered_columns]
        assert columns[:3] == ["#", "status", "dev"]
        assert study.budget_used() == 2, "k = 1 per device: the third trial waits"
        await wait_until(pilot, lambda: app.main.query_one(RunPanel).border_title in ("Run #1 · GPU 0", "Run #2 · GPU 1"),
                         10, "the run panel to name its run's device")
        await pilot.press("q")   # quit: the runs go on

    study = open_study(study_dir, devices_space())
    app = make_app(study, tmp_path)
    async with piloting(app) as pilot:
        await wait_until(pilot, lambda: said(app, "re-adopted 2"), 20, "the re-adoption")
        await wait_until(pilot, lambda: device_cells(app) == {1: "0", 2: "1"}, 20, "the devices after reopening")
        await wait_until(pilot, lambda: "GPU 0:1/1 1:1/1" in status(app), 10, "each device counted again")
        assert study.budget_used() == 2, "the re-adopted runs fill both devices: nothing more starts"
        await pilot.press("Q")   # stop all and quit
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm), 5, "the question")
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.is_running or app._exit_renderables is not None, 30, "the app to exit")
    study = Study.open(study_dir)
    try:
        assert {t.id: t.status for t in study.trials("id") if t.status != "queued"} == {1: "stopped", 2: "stopped"}
    finally:
        study.close()

    capsys.readouterr()
    assert cli.main(["export", str(study_dir), "--trial", "2", "--format", "command"]) == 0
    words = shlex.split(capsys.readouterr().out)
    assert "CUDA_VISIBLE_DEVICES=1" in words and str(DEVICE_TOY) in words
    assert cli.main(["export", str(study_dir), "--trial", "1", "-o", "-"]) == 0
    out = capsys.readouterr().out
    assert "lr = " in out and "[tuner]" in out


def test_the_status_line_shows_memory_per_device_only_on_a_wide_terminal():
    from tui_tuner.runtime.devices import DeviceLoad
    from tui_tuner.search.autok import Memory
    from tui_tuner.ui.model import Snapshot
    from tui_tuner.ui.widgets.status import status_text

    gb = 1e9
    loads = (DeviceLoad("0", 2, 2, Memory(used=5.3 * gb, free=74.7 * gb, total=80 * gb)), DeviceLoad("1", 1, 2))
    snap = Snapshot(seq=1, name="gpus", objective="loss", maximize=False, counts=(("running", 3),), zoom=0,
                    stage=4, budget=8, zero_code=False, params=(), trials=(), queue=(), focused=None, cards=(),
                    best_id=None, gpu="GPU0 41% 5.3/80G GPU1 3% 1.0/80G", devices=loads)
    wide, narrow = status_text(snap, 160).plain, status_text(snap, 80).plain
    assert "  GPU 0:2/2 5.3/80G 1:1/2  zoom 0" in wide
    assert "  GPU 0:2/2 1:1/2  zoom 0" in narrow
    assert "41%" not in wide, "the devices stand for the GPU part"
    plain_snap = Snapshot(**{**snap.__dict__, "devices": None})
    assert status_text(plain_snap, 160).plain.endswith("GPU0 41% 5.3/80G GPU1 3% 1.0/80G"), "no devices: as before"
