"""A study's files after real runs are private to their owner, whatever the umask: directories 0700,
files 0600 (study.db, space.toml, .lock, each run's params, events, control, output, exit, launch,
and checkpoints written through the torch helper)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from runtime_helpers import Events, make_runner, open_study, toy_space, wait_for

from tui_tuner import trainer
from tui_tuner.trainer import protocol as P


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def open_umask():
    """The most permissive umask, so only explicit modes can make a file private; restored after."""
    old = os.umask(0o000)
    yield
    os.umask(old)


def test_every_file_of_a_study_with_runs_and_a_fork_is_private(tmp_path, open_umask):
    space = toy_space(tmp_path, steps=100_000, delay=0.01)
    study = open_study(tmp_path, space)
    events = Events()
    runner = make_runner(study, events)
    try:
        (parent,) = study.enqueue([{"lr": 0.01}])
        runner.start(parent)
        wait_for(runner, lambda: (runner.queries.latest(parent.id).get("step") or 0) >= 3, what="parent steps")
        runner.commands.pause(parent.id)     # control.jsonl
        runner.commands.resume(parent.id)
        child = runner.commands.fork(parent.id, {"lr": 0.02})   # a checkpoint in the parent's ckpt/
        wait_for(runner, lambda: (runner.queries.latest(child.id).get("step") or 0) >= 1, what="child steps")
        runner.commands.stop_all(10)
    finally:
        runner.commands.stop_all(10)
        study.close()
    d = study.dir
    seen = {p.relative_to(d).as_posix(): p for p in d.rglob("*")}
    run = f"runs/{P.run_id(parent.id)}"
    for name in (P.PARAMS, P.EVENTS, P.CONTROL, P.OUTPUT, P.EXIT, P.LAUNCH, P.CKPT):
        assert f"{run}/{name}" in seen, name
    assert mode_of(d) == 0o700
    for rel, p in seen.items():
        if p.is_dir():
            assert mode_of(p) == 0o700, rel
        elif "/ckpt/" not in rel:   # the toy trainer writes its checkpoints itself, with open()
            assert mode_of(p) == 0o600, rel


def test_a_checkpoint_through_the_torch_helper_is_private(tmp_path, monkeypatch, open_umask):
    torch = pytest.importorskip("torch")
    from tui_tuner.integrations import torch as trainer_torch

    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    (run_dir / P.PARAMS).write_text(json.dumps({"trial": 1, "params": {"lr": 0.1}, "resume": None}))
    run = trainer.Run(run_dir, argv=[])
    monkeypatch.setattr(trainer, "_run", run)
    try:
        trainer.params(lr=0.1)
        model = torch.nn.Linear(2, 1)
        trainer_torch.attach(model, torch.optim.SGD(model.parameters(), lr=0.1))
        P.append_line(run_dir / P.CONTROL, {"seq": 1, "cmd": "checkpoint"})
        trainer.report(1, loss=1.0)
        trainer.flush()
        ckpt = run_dir / P.checkpoint_relpath(1)
        assert ckpt.exists()
        assert mode_of(ckpt.parent) == 0o700 and mode_of(ckpt) == 0o600
        assert mode_of(run_dir / P.EVENTS) == 0o600
    finally:
        run.close()
