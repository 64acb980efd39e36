"""The Lightning callback keeps a trial's logs in its run directory, and says when a fork will not
continue its parent exactly (issue 19, item 8)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning.pytorch")

from fit_helpers import events, tiny_module  # noqa: E402

from tui_tuner import protocol as P  # noqa: E402
from tui_tuner import trainer  # noqa: E402
from tui_tuner.integrations.lightning import TunerCallback, ckpt_path  # noqa: E402

Tiny = tiny_module(L.LightningModule, torch)


def loader(shuffle: bool) -> torch.utils.data.DataLoader:
    data = torch.utils.data.TensorDataset(torch.randn(32, 2, generator=torch.Generator().manual_seed(0)))
    return torch.utils.data.DataLoader(data, batch_size=8, shuffle=shuffle)


def open_run(tmp_path, monkeypatch, trial: int, resume: str | None = None) -> trainer.Run:
    d = tmp_path / "study" / "runs" / f"t{trial:04d}"
    d.mkdir(parents=True)
    P.write_json_atomic(d / P.PARAMS, {"trial": trial, "params": {}, "resume": resume})
    r = trainer.Run(d, argv=[])
    monkeypatch.setattr(trainer, "_run", r)
    return r


def fit(steps: int, data, ckpt=None, **kw) -> L.Trainer:
    t = L.Trainer(max_steps=steps, accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
                  log_every_n_steps=1, callbacks=[TunerCallback()], **kw)
    t.fit(Tiny(), data, ckpt_path=ckpt)
    return t


def test_the_default_log_folder_and_checkpoints_go_into_the_run_directory(tmp_path, monkeypatch):
    where = tmp_path / "started_here"
    where.mkdir()
    monkeypatch.chdir(where)
    run = open_run(tmp_path, monkeypatch, 1)
    try:
        t = fit(4, loader(False))
    finally:
        run.close()
    logs = tmp_path / "study" / "runs" / "t0001" / "lightning_logs" / "version_0"
    assert t.log_dir == str(logs)
    assert (logs / "metrics.csv").is_file() or list(logs.glob("events.out.tfevents*"))
    assert list((logs / "checkpoints").glob("*.ckpt"))
    assert list(where.iterdir()) == []   # nothing in the directory the trial ran in


def test_a_folder_the_script_chose_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "my_logs"
    run = open_run(tmp_path, monkeypatch, 1)
    try:
        t = fit(2, loader(False), default_root_dir=str(mine))
    finally:
        run.close()
    assert t.log_dir.startswith(str(mine))
    assert not (tmp_path / "study" / "runs" / "t0001" / "lightning_logs").exists()


def test_outside_the_tuner_nothing_changes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(trainer, "_run", trainer.Run(None, argv=[]))
    t = fit(2, loader(False))
    assert t.log_dir == str(tmp_path / "lightning_logs" / "version_0")


@pytest.mark.parametrize(("shuffle", "steps", "why"), [
    (True, 4, "shuffles with a sampler that has no state"),   # at an epoch's end: still another order
    (False, 3, "forked mid-epoch (step 3)"),                   # the epoch's data restarts
    (False, 4, None),                                          # an epoch's end, in order: exact
])
def test_a_fork_says_when_it_will_not_continue_exactly(tmp_path, monkeypatch, shuffle, steps, why):
    monkeypatch.chdir(tmp_path)
    parent = open_run(tmp_path, monkeypatch, 1)
    parent_ckpt = tmp_path / "parent.ckpt"
    try:
        # The parent's full state after `steps` steps, with the callback's part (as a fork's checkpoint has).
        fit(steps, loader(shuffle), enable_checkpointing=False, logger=False).save_checkpoint(parent_ckpt)
    finally:
        parent.close()
    child = open_run(tmp_path, monkeypatch, 2, resume=str(parent_ckpt))
    try:
        fit(steps + 2, loader(shuffle), ckpt=ckpt_path(), enable_checkpointing=False, logger=False)
    finally:
        child.close()
    said = [e for e in events(child) if e.get("event") == P.EV_INEXACT]
    if why is None:
        assert said == []
    else:
        assert len(said) == 1 and why in said[0]["reason"], said
