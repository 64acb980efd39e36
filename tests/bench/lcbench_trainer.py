"""An LCBench trial on the tui-tuner trainer API: the surrogate's learning curve, reported epoch by epoch.

The whole curve (epochs 1..52) comes from one batched surrogate call at start; then each epoch is
reported as `val_accuracy` (percent) and `loss` (validation cross-entropy). It obeys stop, and it
answers checkpoint and resume (the checkpoint holds the epoch reached; a resumed run continues from
the next epoch), so early stopping and its undo work on it as on a real trainer.

`epoch_time` (seconds slept per epoch, default 0) paces it: unpaced, 52 epochs take a few
milliseconds, faster than any tuner can react to a rung, so early stopping could never cut a trial.
`layout` is the cached layout file (lcbench_surrogate.layout_path); without it the trainer builds it
with yahpo-gym (slow once, then cached). Standalone, it prints the curve:

    .venv/bin/python tests/bench/lcbench_trainer.py --task 167149 --lr 0.01 --num_layers 2
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lcbench_surrogate import EPOCHS, OBJECTIVE, LcbenchError, Surrogate, layout_path  # noqa: E402

from tui_tuner import trainer  # noqa: E402

# What the trainer runs with when the tuner does not search a parameter (the space's defaults win).
DEFAULTS = dict(lr=3e-3, momentum=0.9, batch_size=64, max_units=256, num_layers=3, weight_decay=1e-4,
                max_dropout=0.1)


def main() -> int:
    """Report one configuration's surrogate curve through the trainer API; 2 on a setup error."""
    hp = trainer.params(DEFAULTS, task="126026", epochs=EPOCHS, layout="", epoch_time=0.0)
    try:
        surrogate = Surrogate(hp["layout"] or layout_path())
        curve = surrogate.curves(str(hp["task"]), hp, int(hp["epochs"]))
    except (LcbenchError, OSError, ValueError) as e:
        print(f"lcbench_trainer: {e}", file=sys.stderr)
        return 2
    state = {"epoch": 0}
    resume = trainer.resume_path()
    if resume:
        state = json.loads(Path(resume).read_text())
        print(f"resumed from {resume} at epoch {state['epoch']}", flush=True)

    @trainer.on_checkpoint
    def save(path: str) -> None:
        Path(path).write_text(json.dumps(state))

    acc, loss = curve[OBJECTIVE], curve["val_cross_entropy"]
    for epoch in range(state["epoch"] + 1, int(hp["epochs"]) + 1):
        if hp["epoch_time"] > 0:
            time.sleep(hp["epoch_time"])
        state["epoch"] = epoch
        trainer.report(epoch, val_accuracy=acc[epoch - 1], loss=loss[epoch - 1])
        if trainer.should_stop():
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
