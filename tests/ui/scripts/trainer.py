"""A tiny stdlib-only trainer for the UI tests, on the tui-tuner trainer API (no torch).

loss decays like (1 - lr * (1 - momentum/2))^step towards a floor set by `hidden`; val_loss is a bit
above it. It checkpoints its state for forks, and runs until `steps` or a stop; `fail` > 0 makes it crash at that step.
"""

import json
import math
import time

from tui_tuner import trainer

hp = trainer.params(lr=0.05, momentum=0.9, hidden=64, layers=2, steps=1_000_000, delay=0.005, fail=0)
state = {"step": 0, "x": 4.0}
resume = trainer.resume_path()
if resume:
    with open(resume) as f:
        state = json.load(f)
    print(f"resumed from {resume} at step {state['step']}", flush=True)


@trainer.on_checkpoint
def save(path: str) -> None:
    with open(path, "w") as f:
        json.dump(state, f)


print(f"ui trainer: lr={hp['lr']} momentum={hp['momentum']} hidden={hp['hidden']}", flush=True)
floor = 0.05 + 1.0 / hp["hidden"]
while state["step"] < hp["steps"]:
    if trainer.should_stop():
        print("stopping on request", flush=True)
        break
    rate = min(hp["lr"], 0.5) * (1.0 - hp["momentum"] / 2)
    state["x"] *= 1.0 - rate
    state["step"] += 1
    loss = floor + state["x"] ** 2 + 0.01 * math.sin(state["step"])
    if hp["fail"] and state["step"] >= hp["fail"]:
        print("about to fail: the data loader broke", flush=True)
        raise RuntimeError(f"boom at step {state['step']}")
    trainer.report(state["step"], loss=loss, val_loss=loss * 1.1 + 0.02, lr=hp["lr"])
    time.sleep(hp["delay"])
