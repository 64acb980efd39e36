"""The Hugging Face callback in this process, on a tiny module: what a change reaches (weight decay only
where the Trainer decays), and a fork that changed the lr. (The babysitting itself: test_hf.py.)"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from fit_helpers import events  # noqa: E402

from tui_tuner import protocol as P  # noqa: E402
from tui_tuner import trainer  # noqa: E402
from tui_tuner.integrations import hf  # noqa: E402


class Tiny(torch.nn.Module):
    """A linear layer and a LayerNorm: the Trainer decays the weight, not the bias or the norm."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(4, 4)
        self.norm = torch.nn.LayerNorm(4)

    def forward(self, inputs, labels):
        return {"loss": (self.norm(self.linear(inputs)) - labels).pow(2).mean()}


class Data(torch.utils.data.Dataset):
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(64, 4, generator=g), torch.randn(64, 4, generator=g)

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i):
        return {"inputs": self.x[i], "labels": self.y[i]}


def open_run(tmp_path, monkeypatch, trial: int, params: dict, resume=None, control=()) -> trainer.Run:
    d = tmp_path / "study" / "runs" / P.run_id(trial)
    d.mkdir(parents=True)
    P.write_json_atomic(d / P.PARAMS, {"trial": trial, "params": params, "resume": resume})
    for c in control:
        P.append_line(d / P.CONTROL, c)
    r = trainer.Run(d, argv=[])
    monkeypatch.setattr(trainer, "_run", r)
    return r


def train(steps: int, lr: float, resume: str | None = None, output_dir: str | None = None) -> transformers.Trainer:
    args = transformers.TrainingArguments(
        output_dir=output_dir or hf.output_dir("unused"), max_steps=steps, per_device_train_batch_size=8, learning_rate=lr,
        weight_decay=0.0, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
        use_cpu=True, optim="adamw_torch", lr_scheduler_type="constant", seed=0)
    t = transformers.Trainer(model=Tiny(), args=args, train_dataset=Data(), callbacks=[hf.TunerCallback()])
    t.remove_callback(transformers.PrinterCallback)
    t.train(resume_from_checkpoint=resume)
    return t


def test_changes_reach_the_optimizer_and_weight_decay_only_the_decayed_group(tmp_path, monkeypatch):
    change = {"weight_decay": 0.01, "adam_epsilon": 1e-6, "adam_beta2": 0.99, "learning_rate": 5e-3}
    run = open_run(tmp_path, monkeypatch, 1, {"learning_rate": 1e-3},
                   control=[{"seq": 1, "cmd": "set", "params": change}])
    try:
        t = train(4, 1e-3)
        decay, no_decay = t.optimizer.param_groups
        assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.01, 0.0)
        assert all(g["eps"] == 1e-6 and g["betas"] == (0.9, 0.99) and g["lr"] == 5e-3 for g in (decay, no_decay))
        lrs = [(e["step"], e["metrics"]["learning_rate"]) for e in events(run) if "learning_rate" in e.get("metrics", {})]
        # Applied after step 1 (commands are read after every optimizer step): step 2 trains with it.
        assert lrs == [(1, 1e-3), (2, 5e-3), (3, 5e-3), (4, 5e-3)]
    finally:
        run.close()


def test_a_fork_that_changed_the_lr_trains_with_it(tmp_path, monkeypatch):
    parent = open_run(tmp_path, monkeypatch, 1, {"learning_rate": 1e-3},
                      control=[{"seq": 1, "cmd": "checkpoint"}])
    try:
        train(3, 1e-3)
        ck = next(e for e in events(parent) if e.get("event") == "checkpoint")
        assert (ck["seq"], ck["step"], ck["path"]) == (1, 1, "ckpt/checkpoint-1")
    finally:
        parent.close()
    resume = str(tmp_path / "study" / "runs" / P.run_id(1) / ck["path"])
    child = open_run(tmp_path, monkeypatch, 2, {"learning_rate": 4e-3}, resume=resume)
    try:
        assert hf.resume_from_checkpoint() == resume
        t = train(3, 1e-3, resume=hf.resume_from_checkpoint())   # the Trainer restores the parent's lr...
        lrs = [(e["step"], e["metrics"]["learning_rate"]) for e in events(child) if "learning_rate" in e.get("metrics", {})]
        assert lrs == [(2, 4e-3), (3, 4e-3)]                    # ...and the callback puts the fork's back
        assert t.lr_scheduler.base_lrs == [4e-3, 4e-3]
    finally:
        child.close()


def test_a_checkpoint_folder_outside_the_run_dir_is_reported_by_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = open_run(tmp_path, monkeypatch, 1, {"learning_rate": 1e-3}, control=[{"seq": 1, "cmd": "checkpoint"}])
    try:
        train(2, 1e-3, output_dir="out")   # relative to the working directory, not to the run dir
        ck = next(e for e in events(run) if e.get("event") == "checkpoint")
        assert ck["path"] == str(tmp_path / "out" / "checkpoint-1")
        assert (tmp_path / "out" / "checkpoint-1" / "optimizer.pt").exists()
    finally:
        run.close()
