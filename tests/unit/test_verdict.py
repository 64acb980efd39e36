"""How a run ended, as a pure function of its recorded facts: one table of cases, one of headlines."""

from __future__ import annotations

import math

import pytest

from tui_tuner import protocol
from tui_tuner.core.verdict import Facts, decide, first_stop, headline, output_tail, read_exit

OK = {"returncode": 0, "signal": None}
CRASH = ("Traceback (most recent call last):", '  File "train.py", line 9, in <module>', "    step()",
         "RuntimeError: boom", "wandb: Synced 3 files")


@pytest.mark.parametrize(("facts", "status", "reason"), [
    (Facts(exit=OK, done_at=10.0, objective=0.5), "done", None),
    (Facts(exit=OK, done_at=10.0, objective=None, output=("bye",)), "failed",
     "exited without reporting the objective 'loss' (it reported no metrics): bye\nbye"),
    # A stop in control.jsonl wins over a clean exit, whoever reads it later (item 2)...
    (Facts(exit=OK, done_at=20.0, objective=0.5, stop_at=15.0), "stopped", "stopped"),
    # ...unless the trainer had finished before the stop was asked for.
    (Facts(exit=OK, done_at=10.0, objective=0.5, stop_at=15.0), "done", None),
    (Facts(exit={"returncode": -15, "signal": 15}, objective=0.5, stop_at=15.0), "stopped", "stopped (SIGTERM)"),
    (Facts(exit=None, objective=0.5, stop_at=15.0), "stopped", "stopped (SIGKILL)"),
    (Facts(exit={"returncode": 1}, stop_at=-math.inf), "stopped", "stopped"),
    # The shim killed, the trainer finished: its own done event decides (item 4).
    (Facts(exit=None, done_at=10.0, objective=0.5), "done", None),
    (Facts(exit=None, output=("step 3",)), "failed",
     "ended without an exit status (its launch shim was killed): step 3\nstep 3"),
    (Facts(exit=None, exit_problem="is unreadable (not JSON)"), "failed",
     "ended without an exit status (exit.json is unreadable (not JSON))"),
    (Facts(exit={"returncode": 1}, output=CRASH), "failed",
         "exit code 1: train.py:9: RuntimeError: boom\n" + "\n".join(CRASH)),
    (Facts(exit={"returncode": -9, "signal": 9}), "failed", "killed by SIGKILL"),
    (Facts(exit={"returncode": 1}, output=("torch.OutOfMemoryError: CUDA out of memory",)), "failed",
     "out of GPU memory"),
    (Facts(exit=OK, diverged="loss is nan at step 5", stop_at=12.0, objective=0.3), "diverged",
     "loss is nan at step 5"),
    (Facts(exit=OK, done_at=1.0, objective=0.5, unusable="runs/t0001 is not a directory"), "failed",
     "runs/t0001 is not a directory"),
])
def test_decide(facts, status, reason):
    assert decide(facts, "loss") == (status, reason)


@pytest.mark.parametrize(("lines", "head"), [
    (CRASH, "train.py:9: RuntimeError: boom"),
    # Chained: the last traceback's exception is the one that ended the run.
    (("Traceback (most recent call last):", "  x", "KeyError: 'a'", "",
      "During handling of the above exception, another exception occurred:", "",
      "Traceback (most recent call last):", "  y", "ValueError: bad", "Exception ignored in atexit"),
     "ValueError: bad"),
    (("epoch 1", "CUDA error: device-side assert triggered", "Aborted (core dumped)"),
     "CUDA error: device-side assert triggered"),
    (("epoch 1", "torch.cuda.OutOfMemoryError: out of memory", "done"), "torch.cuda.OutOfMemoryError: out of memory"),
    (("step 1", "step 2"), "step 2"),
    ((), ""),
])
def test_headline_is_the_exception_line(lines, head):
    assert headline(lines) == head


def test_readers_never_raise_on_corrupt_files(tmp_path):
    run = tmp_path / "t0001"
    run.mkdir()
    assert read_exit(run) == (None, None)
    (run / protocol.EXIT).write_text("[" * 100000)
    assert read_exit(run) == (None, "is unreadable (not JSON)")
    (run / protocol.EXIT).write_text('{"returncode": "zero"}')
    assert read_exit(run) == (None, "is unreadable (no returncode)")
    (run / protocol.CONTROL).write_text('{"seq": 1, "cmd": "pause", "t": 5}\nnot json\n{"seq": 2, "cmd": "stop", "t": 7}\n')
    assert first_stop(run) == 7.0
    stray = tmp_path / "t0002"
    stray.write_text("a file")
    assert read_exit(stray) == (None, None) and first_stop(stray) is None and output_tail(stray) == ()


# Issue 19: what the one-line views (show, headless, the app) said was "AssertionError" and
# "SyntaxError: invalid syntax"; the cause was only in the whole output.
@pytest.mark.parametrize(("output", "line"), [
    ("""Traceback (most recent call last):
  File "/home/u/nanoGPT/train.py", line 260, in <module>
    logits, loss = model(X, Y)
  File "/home/u/nanoGPT/model.py", line 177, in forward
    assert t <= self.config.block_size, f"Cannot forward sequence of length {t}"
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^
AssertionError: Cannot forward sequence of length 512""",
     "model.py:177: AssertionError: Cannot forward sequence of length 512"),
    ("""Traceback (most recent call last):
  File "/home/u/nanoGPT/model.py", line 177, in forward
    assert t <= self.config.block_size
AssertionError""", "model.py:177: AssertionError (assert t <= self.config.block_size)"),
    # A SyntaxError in the script itself: no "Traceback" line at all.
    ("""  File "/home/u/minGPT/projects/adder/adder.py", line 12
    from mingpt.model import GPT import
                                 ^^^^^^
SyntaxError: invalid syntax""", "adder.py:12: SyntaxError: invalid syntax"),
    ("""Traceback (most recent call last):
  File "/m/makemore.py", line 9, in <module>
    from torch.utils.tensorboard import SummaryWriter
ModuleNotFoundError: No module named 'tensorboard'""", "makemore.py:9: ModuleNotFoundError: No module named 'tensorboard'"),
    ("usage: main.py [-h] [--lr LR]\nmain.py: error: unrecognized arguments: --learning_rate 0.1",
     "main.py: error: unrecognized arguments: --learning_rate 0.1"),
])
def test_the_reason_line_has_the_last_frame_and_the_exception(output, line):
    status, reason = decide(Facts(exit={"returncode": 1}, output=tuple(output.splitlines())), "loss")
    assert reason.splitlines()[0] == f"exit code 1: {line}"


def test_a_run_without_its_objective_names_the_metrics_it_reported():
    f = Facts(exit={"returncode": 0}, output=("done",), reported=("loss", "val_loss"))
    assert decide(f, "val_los")[1].splitlines()[0] == (
        "exited without reporting the objective 'val_los' (it reported loss, val_loss): done")
