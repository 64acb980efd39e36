"""A trainer that runs out of GPU memory on its first attempt (as CUDA says it) when `oom` is set, and trains
the second time: the first attempt leaves a marker beside the study's runs/."""

import os
import sys
import time
from pathlib import Path

from tui_tuner import trainer

hp = trainer.params(lr=0.1, steps=40, delay=0.01, oom=0)
run_dir = Path(os.environ["TUI_TUNER_RUN_DIR"])
marker = run_dir.parent.parent / f"oom-{run_dir.name}"
if hp.oom and not marker.exists():
    marker.write_text("1")
    print("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", file=sys.stderr, flush=True)
    sys.exit(1)
for step in range(1, hp.steps + 1):
    trainer.report(step, loss=1.0 / step)
    if trainer.should_stop():
        break
    time.sleep(hp.delay)
