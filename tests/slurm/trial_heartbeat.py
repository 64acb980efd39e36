"""A stand-in trial for the Slurm tests: runs until killed, leaving a trace in its run directory.

Run under the launch shim (`python -m tui_tuner.launch RUN_DIR -- python trial_heartbeat.py`), it
writes, in TUI_TUNER_RUN_DIR (or argv[1]):
  trial.pid    its pid
  heartbeat    a line "TIME RESTART_COUNT" every 50 ms (SLURM_RESTART_COUNT, "-" on a first run)
  signals      a line per SIGURG or SIGUSR2 (Slurm's warning before the time limit) or SIGTERM it received
  env          CUDA_VISIBLE_DEVICES and SLURM_JOB_ID as Slurm gave them
It survives the warning, and exits on SIGTERM, as a trainer that checkpoints on the warning would.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

run_dir = Path(os.environ.get("TUI_TUNER_RUN_DIR") or sys.argv[1])
run_dir.mkdir(parents=True, exist_ok=True)


def note(signum: int, _frame: object) -> None:
    with open(run_dir / "signals", "a") as f:
        f.write(f"{signal.Signals(signum).name} {time.time()}\n")
    if signum == signal.SIGTERM:
        sys.exit(143)


signal.signal(signal.SIGUSR2, note)
signal.signal(signal.SIGURG, note)
signal.signal(signal.SIGTERM, note)
(run_dir / "trial.pid").write_text(str(os.getpid()))
(run_dir / "env").write_text("".join(f"{k}={os.environ.get(k, '')}\n" for k in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")))
restarts = os.environ.get("SLURM_RESTART_COUNT", "-")
while True:
    with open(run_dir / "heartbeat", "a") as f:
        f.write(f"{time.time()} {restarts}\n")
    time.sleep(0.05)
