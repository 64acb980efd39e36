"""trainer.max_steps: a run's step limit, read by its loop each step, extended by a control command from
the tuner ("train longer"), and kept by a fork or a resume from a checkpoint taken after the change."""

from __future__ import annotations

import json

import pytest
from test_trainer import Harness, run_script

from tui_tuner.trainer import protocol as P

LOOP = r"""
import time
from tui_tuner import trainer
hp = trainer.params(steps=60, delay=0.01)

@trainer.on_checkpoint
def save(path):
    with open(path, "w") as f:
        f.write("state at %d" % trainer.last_step())

step = 0
while step < trainer.max_steps(hp.steps):
    step += 1
    trainer.report(step, loss=1.0 / step)
    if trainer.should_stop():
        break
    time.sleep(hp.delay)
print("END", step, trainer.max_steps(hp.steps), flush=True)
"""


@pytest.fixture
def harness(tmp_path):
    made: list[Harness] = []

    def make(**kw) -> Harness:
        sub = tmp_path / f"h{len(made)}"
        sub.mkdir()
        h = Harness(sub, LOOP, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def limits(h: Harness) -> list[int]:
    return [e["steps"] for e in h.poll() if e.get("event") == P.EV_MAX_STEPS]


def test_a_command_extends_the_step_limit_the_loop_reads(harness):
    h = harness()
    h.wait_event(lambda e: e.get("event") == P.EV_MAX_STEPS)
    assert limits(h) == [60]                       # said once, as soon as the loop asked
    h.wait_event(lambda e: e.get("step", 0) >= 10)
    h.send(P.CMD_MAX_STEPS, steps=90)
    assert h.finish() == 0
    assert "END 90 90" in h.output()
    assert limits(h) == [60, 90]
    assert max(e["step"] for e in h.metrics()) == 90


def test_a_bad_limit_is_ignored(harness):
    h = harness(params={"steps": 30})
    h.wait_event(lambda e: e.get("step", 0) >= 5)
    h.send(P.CMD_MAX_STEPS, steps=0)
    h.send(P.CMD_MAX_STEPS, steps="many")
    assert h.finish() == 0 and "END 30 30" in h.output() and limits(h) == [30]


def test_a_fork_keeps_the_extended_limit_unless_its_own_setting_changed(harness):
    parent = harness(params={"delay": 0.02})
    parent.wait_event(lambda e: e.get("step", 0) >= 5)
    parent.send(P.CMD_MAX_STEPS, steps=80)
    parent.wait_event(lambda e: e.get("event") == P.EV_MAX_STEPS and e["steps"] == 80)
    seq = parent.send(P.CMD_CHECKPOINT)
    ck = parent.wait_event(lambda e: e.get("event") == P.EV_CHECKPOINT and e.get("seq") == seq)
    parent.send(P.CMD_STOP)
    parent.finish()
    path = str(parent.run / ck["path"])
    assert json.loads(open(path + P.MAX_STEPS_SUFFIX).read())["max_steps"] == 80

    child = harness(resume=path)                   # the same settings: the limit it had is kept
    assert child.finish() == 0 and "END 80 80" in child.output() and limits(child) == [80]
    other = harness(resume=path, params={"steps": 70})   # a fork that set steps itself: its value wins
    assert other.finish() == 0 and "END 70 70" in other.output()


def test_standalone_max_steps_is_the_default(tmp_path):
    out = run_script(tmp_path, LOOP.replace("steps=60", "steps=12"))
    assert out.returncode == 0 and "END 12 12" in out.stdout
