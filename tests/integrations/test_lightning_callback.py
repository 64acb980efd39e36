"""The Lightning callback in this process, on a tiny module: the pytorch_lightning import name, and a
change and a checkpoint handled in one report. (The babysitting itself: test_lightning.py.)"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("pytorch_lightning")   # the older import name; `lightning` installs it too

from fit_helpers import tiny_module  # noqa: E402

from tui_tuner import protocol as P  # noqa: E402
from tui_tuner import trainer  # noqa: E402
from tui_tuner.integrations import lightning as integration  # noqa: E402
from tui_tuner.integrations.lightning import TunerCallback, ckpt_path  # noqa: E402

Tiny = tiny_module(pl.LightningModule, torch)


class Batches:
    def __len__(self) -> int:
        return 4

    def __iter__(self):
        g = torch.Generator().manual_seed(0)
        return iter([(torch.randn(8, 2, generator=g),) for _ in range(4)])


@pytest.fixture
def run(tmp_path, monkeypatch):
    d = tmp_path / "study" / "runs" / "t0001"
    d.mkdir(parents=True)
    P.write_json_atomic(d / P.PARAMS, {"trial": 1, "params": {"lr": 0.1}, "resume": None})
    r = trainer.Run(d, argv=[])
    monkeypatch.setattr(trainer, "_run", r)
    yield r
    r.close()


def fit(steps: int, callbacks, ckpt_path=None) -> pl.Trainer:
    t = pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)
    t.fit(Tiny(trainer.params(lr=0.1).lr), Batches(), ckpt_path=ckpt_path)
    return t


def test_a_pytorch_lightning_fit_is_reported_and_steered(run, monkeypatch):
    monkeypatch.setattr(integration, "READ_BUDGET", 1.0)   # read the metrics at every step, however short
    with open(run.run_dir + "/" + P.CONTROL, "w") as f:
        # Both in the first report: the checkpoint must already hold the new lr and momentum.
        f.write(json.dumps({"seq": 1, "cmd": "set", "params": {"lr": 0.02, "momentum": 0.5}}) + "\n")
        f.write(json.dumps({"seq": 2, "cmd": "checkpoint"}) + "\n")
    t = fit(6, [TunerCallback()])
    run.flush()
    with open(run.run_dir + "/" + P.EVENTS) as f:
        events = [json.loads(line) for line in f]
    steps = [e for e in events if "metrics" in e]
    assert [e["step"] for e in steps] == [1, 2, 3, 4, 5, 6]
    assert steps[0]["metrics"]["lr"] == pytest.approx(0.1)
    assert all(e["metrics"]["lr"] == pytest.approx(0.02) for e in steps[1:])
    assert all("loss" in e["metrics"] for e in steps)
    g = t.optimizers[0].param_groups[0]
    assert (g["lr"], g["momentum"]) == (pytest.approx(0.02), 0.5)
    assert t.lr_scheduler_configs[0].scheduler.base_lrs == [pytest.approx(0.02)]
    ck = next(e for e in events if e.get("event") == "checkpoint")
    assert (ck["seq"], ck["step"], ck["path"]) == (2, 1, "ckpt/step-1.pt")
    saved = torch.load(run.run_dir + "/" + ck["path"], map_location="cpu", weights_only=False)
    group = saved["optimizer_states"][0]["param_groups"][0]
    assert (group["lr"], group["momentum"]) == (pytest.approx(0.02), 0.5)
    ours = next(v for k, v in saved["callbacks"].items() if "TunerCallback" in k)
    assert ours["params"]["lr"] == 0.02 and "torch" in ours["rng"]


def test_short_steps_read_the_metrics_every_few_steps_but_report_every_step(run, monkeypatch):
    monkeypatch.setattr(integration, "READ_BUDGET", 1e-9)   # a read "costs" far more than any step
    fit(6, [TunerCallback()])
    run.flush()
    with open(run.run_dir + "/" + P.EVENTS) as f:
        steps = [e for e in map(json.loads, f) if "metrics" in e]
    per_step, final = steps[:6], steps[6:]
    assert [e["step"] for e in per_step] == [1, 2, 3, 4, 5, 6]
    assert all(e["metrics"]["lr"] == pytest.approx(0.1) for e in per_step)
    assert "loss" in per_step[0]["metrics"] and not any("loss" in e["metrics"] for e in per_step[1:])
    # The metrics as they stand when training ends are read once more, so the last loss arrives.
    assert [(e["step"], list(e["metrics"])) for e in final] == [(6, ["loss"])]


def test_a_stop_ends_the_fit_after_the_batch(run):
    with open(run.run_dir + "/" + P.CONTROL, "w") as f:
        f.write(json.dumps({"seq": 1, "cmd": "stop"}) + "\n")
    t = fit(50, [TunerCallback()])
    assert t.global_step == 1 and t.should_stop


def test_a_fork_that_changed_the_lr_trains_with_it(run, tmp_path, monkeypatch):
    with open(run.run_dir + "/" + P.CONTROL, "w") as f:
        f.write(json.dumps({"seq": 1, "cmd": "checkpoint"}) + "\n")
    fit(3, [TunerCallback()])
    run.close()
    d = tmp_path / "study" / "runs" / "t0002"
    d.mkdir()
    P.write_json_atomic(d / P.PARAMS, {"trial": 2, "params": {"lr": 0.04}, "resume": "runs/t0001/ckpt/step-1.pt"})
    child = trainer.Run(d, argv=[])
    monkeypatch.setattr(trainer, "_run", child)
    try:
        assert ckpt_path() == str(tmp_path / "study" / "runs" / "t0001" / "ckpt" / "step-1.pt")
        # Lightning restores the parent's optimizer (lr 0.1) and schedule; the callback puts the fork's lr back.
        t = fit(4, [TunerCallback()], ckpt_path=ckpt_path())
        child.flush()
        with open(d / P.EVENTS) as f:
            steps = [e for e in map(json.loads, f) if "metrics" in e]
        assert [e["step"] for e in steps][:3] == [2, 3, 4]
        lrs = [e["metrics"]["lr"] for e in steps if "lr" in e["metrics"]]   # (the end's read has no lr)
        assert len(lrs) == 3 and all(v == pytest.approx(0.04) for v in lrs)
        assert t.lr_scheduler_configs[0].scheduler.base_lrs == [pytest.approx(0.04)]
    finally:
        child.close()
