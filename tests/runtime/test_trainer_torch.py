"""The torch helper: live optimizer changes (with schedulers), exact fork continuity, the example trainers."""

from __future__ import annotations

import json
import math
import os
import random
import sys
from pathlib import Path

import pytest
from waiting import wait_for

torch = pytest.importorskip("torch")

from tui_tuner import trainer  # noqa: E402
from tui_tuner.integrations import torch as tt  # noqa: E402
from tui_tuner.runtime import pids  # noqa: E402
from tui_tuner.trainer import protocol as P  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def model_and(opt_cls, **kw):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    return model, opt_cls(model.parameters(), **kw)


# -- live changes ---------------------------------------------------------------------------------------


def test_sgd_live_changes():
    _, opt = model_and(torch.optim.SGD, lr=0.1, momentum=0.9)
    applied = tt.apply_changes(opt, {"lr": 0.01, "momentum": 0.99, "weight_decay": 1e-4, "hidden": 80,
                                     "beta2": 0.9})
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["weight_decay"]) == (0.01, 0.99, 1e-4)
    assert applied == {"lr": 0.01, "momentum": 0.99, "weight_decay": 1e-4}   # nothing to set for beta2


def test_adam_live_changes():
    _, opt = model_and(torch.optim.Adam, lr=1e-3)
    tt.apply_changes(opt, {"momentum": 0.8, "beta2": 0.99, "eps": 1e-6, "learning_rate": 0.01})
    g = opt.param_groups[0]
    assert g["betas"] == (0.8, 0.99) and g["eps"] == 1e-6 and g["lr"] == 0.01
    tt.apply_changes(opt, {"momentum": 0.5, "beta1": 0.95})   # beta1 given explicitly wins
    assert g["betas"] == (0.95, 0.99)
    tt.apply_changes(opt, {"betas": (0.7, 0.9)})
    assert g["betas"] == (0.7, 0.9)


def test_names_rename_and_switch_off():
    _, opt = model_and(torch.optim.Adam, lr=1e-3)
    applied = tt.apply_changes(opt, {"step_size": 0.05, "momentum": 0.5}, names={"step_size": "lr", "momentum": None})
    assert applied == {"step_size": 0.05} and opt.param_groups[0]["betas"][0] == 0.9


def test_every_param_group_is_changed():
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD([{"params": [model.weight]}, {"params": [model.bias], "lr": 0.5}], lr=0.1)
    tt.apply_changes(opt, {"lr": 0.2})
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2]


SCHEDULERS = {
    "step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    "exponential": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
    "lambda": lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1.0 / (1.0 + 0.5 * e)),
    "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20),
    "multistep": lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[5, 9], gamma=0.3),
    "sequential": lambda o: torch.optim.lr_scheduler.SequentialLR(
        o, [torch.optim.lr_scheduler.LinearLR(o, 0.5, total_iters=2),
            torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)], milestones=[2]),
}


@pytest.mark.parametrize("kind", list(SCHEDULERS))
def test_lr_change_with_a_scheduler_continues_the_schedule_from_the_new_value(kind):
    """Changing lr at step k by a ratio r makes every later lr r times the unchanged schedule's."""
    _, ref_opt = model_and(torch.optim.SGD, lr=0.1, momentum=0.9)
    _, opt = model_and(torch.optim.SGD, lr=0.1, momentum=0.9)
    ref, sched = SCHEDULERS[kind](ref_opt), SCHEDULERS[kind](opt)
    for _ in range(4):
        ref_opt.step()
        ref.step()
        opt.step()
        sched.step()
    old = opt.param_groups[0]["lr"]
    tt.apply_changes(opt, {"lr": old * 3}, sched)
    assert opt.param_groups[0]["lr"] == pytest.approx(old * 3)
    assert sched.get_last_lr()[0] == pytest.approx(old * 3)
    for _ in range(12):
        ref_opt.step()
        ref.step()
        opt.step()
        sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(3 * ref_opt.param_groups[0]["lr"], rel=1e-9)


def test_lr_change_when_the_current_lr_is_zero():
    _, opt = model_and(torch.optim.SGD, lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: e / 4 if e < 4 else 1.0)   # warm-up from 0
    assert opt.param_groups[0]["lr"] == 0.0
    tt.apply_changes(opt, {"lr": 0.2}, sched)
    assert opt.param_groups[0]["lr"] == 0.2 and sched.base_lrs == [0.2]
    for _ in range(5):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)


# -- state and fork continuity -------------------------------------------------------------------------------


def _setup(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                torch.nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.7)
    gen = torch.Generator().manual_seed(seed + 1)
    return model, opt, sched, gen


def _train(model, opt, sched, gen, first, last, losses, ckpt=None):
    data = torch.linspace(-1, 1, 200 * 8).view(200, 8)
    target = (data.sum(1) * 3).long() % 3
    for step in range(first, last + 1):
        idx = torch.randint(len(data), (16,), generator=gen)       # a private generator
        x = data[idx] + 0.01 * torch.randn(16, 8)                  # the global torch RNG (and dropout)
        x = x * (1 + 0.001 * random.random())                     # python's RNG
        loss = torch.nn.functional.cross_entropy(model(x), target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses[step] = loss.item()
        if ckpt and step == ckpt[1]:
            tt.save_state(ckpt[0], model, opt, sched, step=step, generators=[gen], extra={"note": "x"},
                          params={"lr": 1e-2})


def test_fork_with_unchanged_settings_continues_the_curve_exactly(tmp_path):
    path = tmp_path / "step-20.pt"
    parent: dict[int, float] = {}
    _train(*_setup(0), 1, 50, parent, ckpt=(path, 20))
    model, opt, sched, gen = _setup(123)      # different init and RNG: all of it must be overwritten
    r = tt.load_state(path, model, opt, sched, generators=[gen])
    assert (r.step, r.extra, r.params) == (20, {"note": "x"}, {"lr": 1e-2})
    child: dict[int, float] = {}
    _train(model, opt, sched, gen, r.step + 1, 50, child)
    assert [child[s] for s in range(21, 51)] == [parent[s] for s in range(21, 51)]   # bitwise


def test_load_refuses_other_files(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    model, opt, sched, gen = _setup(0)
    with pytest.raises(ValueError, match="not a tui-tuner checkpoint"):
        tt.load_state(path, model, opt, sched)


def test_load_with_a_different_optimizer_keeps_it_fresh(tmp_path, capsys):
    model, opt, sched, gen = _setup(0)
    tt.save_state(tmp_path / "c.pt", model, opt, sched, step=3)
    sgd = torch.optim.SGD(model.parameters(), lr=0.5)
    tt.load_state(tmp_path / "c.pt", model, sgd)
    assert sgd.param_groups[0]["lr"] == 0.5 and "optimizer changed from Adam to SGD" in capsys.readouterr().err


# -- the example trainers, end to end under the launch shim -------------------------------------------------


def _start(study: Path, trial: int, params: dict, resume: str | None, argv: list[str],
           control: list[dict] = ()) -> tuple[Path, int]:
    run = study / "runs" / P.run_id(trial)
    run.mkdir(parents=True)
    P.write_json_atomic(run / P.PARAMS, {"trial": trial, "params": params, "resume": resume})
    for c in control:
        P.append_line(run / P.CONTROL, c)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return run, pids.spawn(run, [PY, *argv], env=env, cwd=REPO)


def _finish(run: Path, pid: int) -> list[dict]:
    ex = wait_for(lambda: P.read_json(run / P.EXIT), timeout=120.0, interval=0.05)
    wait_for(lambda: not pids.pid_alive(pid), timeout=120.0, interval=0.05)
    assert ex["returncode"] == 0, (run / P.OUTPUT).read_text()[-3000:]
    events, bad = P.JsonlTail(run / P.EVENTS).read_new(final=True)
    assert bad == 0
    return events


def _curve(events: list[dict]) -> dict[int, dict]:
    return {e["step"]: e["metrics"] for e in events if "step" in e and "event" not in e}


def test_mlp_fork_continues_the_parent_curve_exactly(tmp_path):
    """trainers/mlp.py: checkpoint at step 10 through control.jsonl, then two forks from it: one
    unchanged (must repeat the parent's curve bit for bit), one with a new lr (must use it)."""
    study = tmp_path / "study"
    params = {"steps": 120, "lr": 0.05, "momentum": 0.9, "lr_decay": 0.5, "batch_size": 16, "eval_every": 20}
    run, pid = _start(study, 1, params, None, ["trainers/mlp.py"], [{"seq": 1, "cmd": "checkpoint"}])
    parent_events = _finish(run, pid)
    ck = next(e for e in parent_events if e.get("event") == "checkpoint")
    assert ck["seq"] == 1 and ck["step"] == 10 and ck["path"] == "ckpt/step-10.pt"
    assert parent_events[-1]["event"] == "done"
    resume = f"runs/{P.run_id(1)}/{ck['path']}"   # relative to the study, like Trial.resume
    same = _start(study, 2, params, resume, ["trainers/mlp.py"])
    changed = _start(study, 3, {**params, "lr": 0.01}, resume, ["trainers/mlp.py"])
    parent, child, other = _curve(parent_events), _curve(_finish(*same)), _curve(_finish(*changed))
    assert sorted(child) == [s for s in sorted(parent) if s > 10]
    for s in child:
        assert child[s] == parent[s], f"step {s}: {child[s]} != {parent[s]}"
    assert other[20]["lr"] == pytest.approx(0.01) and parent[20]["lr"] == pytest.approx(0.05)
    # Epoch boundaries (every 89 steps at batch 16) keep decaying from the fork's new lr.
    assert other[120]["lr"] == pytest.approx(0.01 / 1.5) and parent[120]["lr"] == pytest.approx(0.05 / 1.5)


def test_charlm_runs_on_cpu_and_checkpoints(tmp_path):
    study = tmp_path / "study"
    params = {"device": "cpu", "d_model": 64, "layers": 1, "context": 16, "batch_size": 4, "steps": 20,
              "eval_every": 10, "eval_batches": 1, "warmup": 2, "corpus_mb": 0.2, "report_every": 5}
    run, pid = _start(study, 1, params, None, ["trainers/charlm.py"],
                      [{"seq": 1, "cmd": "set", "params": {"lr": 0.003}}, {"seq": 2, "cmd": "checkpoint"}])
    events = _finish(run, pid)
    curve = _curve(events)
    assert sorted(curve) == [5, 10, 15, 20] and all(math.isfinite(m["loss"]) for m in curve.values())
    assert "val_loss" in curve[10] and "tok_per_s" in curve[5]
    assert any(e.get("event") == "applied" for e in events)
    ck = next(e for e in events if e.get("event") == "checkpoint")
    assert ck["step"] == 5 and (run / ck["path"]).stat().st_size > 0


def test_a_checkpoint_taken_with_a_set_still_pending_holds_the_new_value(tmp_path, monkeypatch):
    # set and checkpoint handled in one report(), before the loop's update(): the checkpoint must
    # pair the new lr in params with the new lr in the optimizer, or a fork trains with the old one.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / P.PARAMS).write_text(json.dumps({"trial": 1, "params": {"lr": 0.1}, "resume": None}))
    run = trainer.Run(run_dir, argv=[])
    monkeypatch.setattr(trainer, "_run", run)
    try:
        trainer.params(lr=0.1)
        model, opt = model_and(torch.optim.SGD, lr=0.1)
        tt.attach(model, opt)
        with open(run_dir / P.CONTROL, "w") as f:
            f.write(json.dumps({"seq": 1, "cmd": "set", "params": {"lr": 0.5}}) + "\n")
            f.write(json.dumps({"seq": 2, "cmd": "checkpoint"}) + "\n")
        trainer.report(1, loss=1.0)
        ckpt = run_dir / P.checkpoint_relpath(1)
        assert ckpt.exists()
        fresh_model, fresh_opt = model_and(torch.optim.SGD, lr=0.1)
        resumed = tt.load_state(ckpt, fresh_model, fresh_opt)
        assert resumed.params["lr"] == 0.5
        assert fresh_opt.param_groups[0]["lr"] == 0.5
        # The loop's own update() afterwards changes nothing more.
        tt.update(opt)
        assert opt.param_groups[0]["lr"] == 0.5
    finally:
        run.close()
