"""A tiny stdlib trainer that says which GPUs it was given: the toy's loss = x^2, plus what it sees.

It copies its CUDA_VISIBLE_DEVICES verbatim into `seen_devices.txt` in its run directory (the
file is absent when the variable is unset), and reports `gpus`, how many devices the variable
names, and `gpu`, the one it names (-1 for none or several). It checkpoints for forks, and a fork
reports the device its parent ran on as `parent_gpu`.

A device listed in DEVICE_TOY_SATURATED ("1" or "1,3") behaves like a GPU that one run already
keeps busy: a step there takes `delay` times the runs on that device (each run leaves its pid in
STUDY/gpuN.runs/), and half as long again when it is shared (they thrash), so more runs there make
fewer steps per second in all.
"""

import json
import os
import time

from tui_tuner import trainer

hp = trainer.params(lr=0.1, steps=200, delay=0.02)
seen = os.environ.get("CUDA_VISIBLE_DEVICES")
entries = [e for e in (seen or "").split(",") if e.strip()]
if seen is not None:   # written whole (then renamed), so a test never reads it half written
    where = os.path.join(os.environ["TUI_TUNER_RUN_DIR"], "seen_devices.txt")
    with open(where + ".part", "w") as f:
        f.write(seen)
    os.replace(where + ".part", where)
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


saturated = seen is not None and seen in os.environ.get("DEVICE_TOY_SATURATED", "").split(",")
sharing_dir = os.path.join(os.environ["TUI_TUNER_RUN_DIR"], "..", "..", f"gpu{seen}.runs")
if saturated:
    os.makedirs(sharing_dir, exist_ok=True)
    open(os.path.join(sharing_dir, str(os.getpid())), "w").close()


def sharing() -> int:
    """The runs on this device now (their pids still alive)."""
    n = 0
    for name in os.listdir(sharing_dir):
        try:
            os.kill(int(name), 0)
            n += 1
        except (OSError, ValueError):
            pass
    return max(1, n)


def one_step() -> None:
    n = sharing() if saturated else 1
    time.sleep(hp["delay"] * n * (1.5 if n > 1 else 1.0))


print(f"device toy: CUDA_VISIBLE_DEVICES={seen!r}", flush=True)
while state["step"] < trainer.max_steps(hp["steps"]) and not trainer.should_stop():
    state["x"] -= hp["lr"] * state["x"]
    state["step"] += 1
    trainer.report(state["step"], loss=state["x"] ** 2, gpus=len(entries), gpu=gpu, parent_gpu=parent_gpu)
    one_step()
