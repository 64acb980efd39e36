"""The trainer side's support for framework callbacks: deferred checkpoints, poll(), lists of schedulers.

A framework that writes its own checkpoints at a later point of its loop (the Hugging Face Trainer)
answers a checkpoint request after the fact; poll() applies commands between reports. No framework
is needed for these: a Run on a real run directory, driven through control.jsonl as the runner does.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from waiting import wait_for

from tui_tuner import trainer
from tui_tuner.trainer import protocol as P


@pytest.fixture
def run(tmp_path):
    d = tmp_path / "study" / "runs" / "t0001"
    d.mkdir(parents=True)
    P.write_json_atomic(d / P.PARAMS, {"trial": 1, "params": {"lr": 0.1}, "resume": None})
    r = trainer.Run(d, argv=[])
    r.params(lr=0.1)
    yield r
    r.close()


def send(run: trainer.Run, seq: int, cmd: str, **extra) -> None:
    P.append_line(run.run_dir + "/" + P.CONTROL, {"seq": seq, "cmd": cmd, **extra})


def events(run: trainer.Run) -> list[dict]:
    run.flush()
    with open(run.run_dir + "/" + P.EVENTS) as f:
        return [json.loads(line) for line in f if line.strip()]


def checkpoints(run: trainer.Run) -> list[dict]:
    return [e for e in events(run) if e.get("event") == "checkpoint"]


def test_a_deferred_checkpoint_is_answered_once_written(run):
    asked = []
    run.on_checkpoint(asked.append, deferred=True)
    run.report(4, loss=1.0)
    send(run, 1, "checkpoint")
    time.sleep(0.002)
    run.report(5, loss=0.9)
    assert asked == [run.run_dir + "/ckpt/step-5.pt"]
    assert checkpoints(run) == [], "no answer before the framework wrote it"
    run.checkpoint_saved(run.run_dir + "/ckpt/checkpoint-5", step=5)
    (ev,) = checkpoints(run)
    assert (ev["seq"], ev["path"], ev["step"]) == (1, "ckpt/checkpoint-5", 5)
    run.checkpoint_saved(run.run_dir + "/ckpt/checkpoint-5", step=5)   # nothing pending: no second answer
    assert len(checkpoints(run)) == 1


def test_a_deferred_request_while_paused_lets_the_save_through_then_the_pause_holds(run):
    run.on_checkpoint(lambda path: None, deferred=True)
    run.report(1, loss=1.0)
    send(run, 1, "pause")

    def fork_while_paused():
        wait_for(lambda: any(e.get("event") == "paused" for e in events(run)), 5.0)
        send(run, 2, "checkpoint")

    t = threading.Thread(target=fork_while_paused)
    t.start()
    time.sleep(0.002)
    run.report(2, loss=0.9)          # blocks while paused, until the checkpoint request comes
    t.join()
    assert run._paused and run._ckpt.waiting == [2]
    run.checkpoint_saved("ckpt/checkpoint-2", step=2)
    assert checkpoints(run)[0]["path"] == "ckpt/checkpoint-2"
    released = []

    def resume_later():
        time.sleep(0.3)
        released.append(time.monotonic())
        send(run, 3, "resume")

    t = threading.Thread(target=resume_later)
    t.start()
    run.poll()                        # the pause holds again here, until resumed
    returned = time.monotonic()
    t.join()
    assert released and returned >= released[0]
    assert [e["event"] for e in events(run) if "event" in e] == ["paused", "checkpoint", "resumed"]


def test_a_request_still_open_at_exit_is_answered_with_an_error(run):
    run.on_checkpoint(lambda path: None, deferred=True)
    send(run, 1, "checkpoint")
    run.poll()
    run.close()
    with open(run.run_dir + "/" + P.EVENTS) as f:
        evs = [json.loads(line) for line in f]
    ck = [e for e in evs if e.get("event") == "checkpoint"]
    assert len(ck) == 1 and ck[0]["seq"] == 1 and "ended before" in ck[0]["error"]
    assert evs[-1]["event"] == "done"


def test_poll_applies_commands_without_reporting_a_step(run):
    run.report(1, loss=1.0)
    send(run, 1, "set", params={"lr": 0.5})
    run.poll()
    assert run.changes() == {"lr": 0.5} and run.params()["lr"] == 0.5
    evs = events(run)
    assert [e["step"] for e in evs if "step" in e] == [1]
    assert evs[-1]["event"] == "applied"


def test_poll_outside_the_tuner_does_nothing(tmp_path):
    r = trainer.Run(None, argv=[])
    r.poll()
    assert r.changes() == {} and not r.should_stop()


def test_an_lr_change_rescales_every_scheduler_of_a_list():
    """Lightning may give one optimizer several schedulers; each continues from the new lr."""
    torch = pytest.importorskip("torch")
    from tui_tuner.integrations import torch as trainer_torch

    def setup():
        torch.manual_seed(0)
        opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
        return opt, [torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1 / (1 + e)),
                     torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)]

    (ref, ref_s), (opt, scheds) = setup(), setup()
    for _ in range(4):
        for o, ss in ((ref, ref_s), (opt, scheds)):
            o.step()
            for s in ss:
                s.step()
    old = opt.param_groups[0]["lr"]
    trainer_torch.apply_changes(opt, {"lr": 2 * old}, scheds)
    assert [s.base_lrs[0] for s in scheds] == pytest.approx([2 * s.base_lrs[0] for s in ref_s])
    for _ in range(6):
        for o, ss in ((ref, ref_s), (opt, scheds)):
            o.step()
            for s in ss:
                s.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(2 * ref.param_groups[0]["lr"], rel=1e-9)
