"""A tiny stdlib trainer that says which GPUs it was given: the toy's loss = x^2, plus what it sees.

It copies its CUDA_VISIBLE_DEVICES verbatim into `seen_devices.txt` in its run directory (the
file is absent when the variable is unset), and reports `gpus`, how many devices the variable
names, and `gpu`, the one it names (-1 for none or several). It checkpoints for forks, and a fork
reports the device its parent ran on as `parent_gpu`.
"""

import json
import os
import time

from tui_tuner import trainer

hp = trainer.params(lr=0.1, steps=200, delay=0.02)
seen = os.environ.get("CUDA_VISIBLE_DEVICES")
entries = [e for e in (seen or "").split(",") if e.strip()]
if seen is not None:
    with open(os.path.join(os.environ["TUI_TUNER_RUN_DIR"], "seen_devices.txt"), "w") as f:
        f.write(seen)
gpu = int(entries[0]) if len(entries) == 1 and entries[0].isdigit() else -1
state = {"step": 0, "x": 10.0, "gpu": gpu}
resume = trainer.resume_path()
parent_gpu = -1
if resume:
    with open(resume) as f:
        state = json.load(f)
    parent_gpu = state["gpu"]
    state["gpu"] = gpu


@trainer.on_checkpoint
def save(path: str) -> None:
    with open(path, "w") as f:
        json.dump(state, f)


print(f"device toy: CUDA_VISIBLE_DEVICES={seen!r}", flush=True)
while state["step"] < trainer.max_steps(hp["steps"]) and not trainer.should_stop():
    state["x"] -= hp["lr"] * state["x"]
    state["step"] += 1
    trainer.report(state["step"], loss=state["x"] ** 2, gpus=len(entries), gpu=gpu, parent_gpu=parent_gpu)
    time.sleep(hp["delay"])
