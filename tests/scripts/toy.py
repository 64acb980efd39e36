"""A tiny stdlib-only trainer on the tui-tuner trainer API (no torch): loss = x^2, x shrinks by lr a step.

It reports loss, val_loss (a little above it) and the lr it used, checkpoints its state for forks, and
runs until `steps` or a stop. `decay` < 1 is a step schedule: the lr it uses is multiplied by it every
`decay_every` steps, and a live change of lr sets the lr used from then on (as trainer_torch does). `fail` > 0 makes it crash at that step. `mode` picks a misbehaviour for the
runtime tests: crash (at step 5), nan, hang, garbage (writes junk lines into events.jsonl), oom
(prints a CUDA OOM message and fails), noobj (never reports the objective), slowstop (ignores the
stop command and SIGTERM). Other parameters a space gives (the UI tests' momentum, hidden, ...) are
accepted and change nothing.
"""

import json
import os
import signal
import sys
import time

from tui_tuner import trainer

hp = trainer.params(lr=0.1, steps=30, delay=0.01, mode="ok", fail=0, decay=1.0, decay_every=10)
state = {"step": 0, "x": 10.0, "lr": hp["lr"], "set": hp["lr"]}
resume = trainer.resume_path()
if resume:
    with open(resume) as f:
        state = json.load(f)
    if hp["lr"] != state.get("set", hp["lr"]):   # a fork that changed lr trains with its own from here
        state["lr"] = state["set"] = hp["lr"]
    print(f"resumed from {resume} at step {state['step']}", flush=True)


@trainer.on_checkpoint
def save(path: str) -> None:
    with open(path, "w") as f:
        json.dump(state, f)


mode = hp["mode"]
fail = hp["fail"] or (5 if mode == "crash" else 0)
if mode == "slowstop":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(f"toy trainer: lr={hp['lr']} steps={hp['steps']} mode={mode}", flush=True)

while state["step"] < trainer.max_steps(hp["steps"]):   # read each step: "train longer" extends it
    if trainer.should_stop() and mode != "slowstop":
        print("stopping on request", flush=True)
        break
    if "lr" in trainer.changes():     # live: the lr used from now on
        state["lr"] = state["set"] = hp["lr"]
    if hp["decay"] != 1.0 and state["step"] and state["step"] % hp["decay_every"] == 0:
        state["lr"] *= hp["decay"]
    lr = state.get("lr", hp["lr"])
    state["x"] -= lr * state["x"]
    state["step"] += 1
    step = state["step"]
    loss = state["x"] ** 2
    if mode == "nan" and step >= 5:
        loss = float("nan")
    if fail and step >= fail:
        print("about to fail: the data loader broke", flush=True)
        raise RuntimeError(f"boom at step {step}")
    if mode == "oom" and step == 3:
        print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB", file=sys.stderr)
        sys.exit(1)
    if mode == "hang" and step == 3:
        trainer.flush()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(1)
    if mode == "noobj":
        trainer.report(step, other=loss, lr=lr)
    else:
        trainer.report(step, loss=loss, val_loss=loss * 1.1 + 0.02, lr=lr)
    if mode == "garbage" and step in (2, 4):
        trainer.flush()
        with open(os.path.join(os.environ["TUI_TUNER_RUN_DIR"], "events.jsonl"), "a") as f:
            f.write("this is not json\n[1, 2]\n")
    time.sleep(hp["delay"])
