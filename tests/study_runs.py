"""Real runs for the tests: the stdlib trainers they start, and killing whatever a test left running."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from tui_tuner.study.study import Study

SCRIPTS = Path(__file__).parent / "scripts"
TOY = SCRIPTS / "toy.py"              # on the trainer API
ZERO_CODE = SCRIPTS / "zero_code.py"  # flags in, printed metrics out


def kill_runs(study_dir: Path) -> None:
    """Kill every process group a test left running in this study (by the pids the study recorded)."""
    try:
        study = Study.open(study_dir, lock=False)
    except Exception:  # noqa: BLE001 - nothing to clean
        return
    try:
        pids = [t.pid for t in study.active() if t.pid]
    finally:
        study.close()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
