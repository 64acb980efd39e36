"""Smoke test of the LCBench bench's trainer (tests/bench/lcbench_trainer.py) under the real protocol.

Skipped without the bench extra (onnxruntime, yahpo-gym) or the surrogate's data; CI installs neither.
The surrogate's layout is cached in the bench's cache dir, so only the first run pays for yahpo-gym.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# find_spec, not import: importing yahpo-gym takes seconds, and only a missing layout needs it.
if not all(importlib.util.find_spec(m) for m in ("onnxruntime", "yahpo_gym")):
    pytest.skip("the bench extra (onnxruntime, yahpo-gym) is not installed", allow_module_level=True)

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import lcbench_surrogate as lcs  # noqa: E402

from tui_tuner.trainer import protocol as P  # noqa: E402

try:
    DATA = lcs.data_dir()
except lcs.LcbenchError as e:
    pytest.skip(f"no LCBench data: {e}", allow_module_level=True)

SETTING = {"lr": 0.01, "momentum": 0.9, "batch_size": 64, "max_units": 256, "num_layers": 2,
           "weight_decay": 1e-4, "max_dropout": 0.2}
TASK = "167149"


@pytest.fixture(scope="module")
def layout() -> Path:
    """The cached layout file (built with yahpo-gym on the first run)."""
    return lcs.layout_path(DATA)


def run_trial(run_dir: Path, layout: Path, *, resume: str | None = None, control: list[dict] = ()) -> list[dict]:
    """Run the trainer as the tuner would (params.json, control.jsonl) and return its events."""
    run_dir.mkdir()
    (run_dir / P.PARAMS).write_text(json.dumps({"trial": 1, "params": SETTING, "resume": resume}))
    (run_dir / P.CONTROL).write_text("".join(json.dumps(c) + "\n" for c in control))
    env = dict(os.environ, **{P.ENV_RUN_DIR: str(run_dir)})
    proc = subprocess.run([sys.executable, str(BENCH / "lcbench_trainer.py"), "--task", TASK, "--epochs", "6",
                           "--layout", str(layout)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in (run_dir / P.EVENTS).read_text().splitlines()]


def test_trainer_reports_the_curve_obeys_stop_and_resumes_from_its_checkpoint(tmp_path: Path, layout: Path) -> None:
    """A stop after epoch 1 ends it there; a run resumed from the checkpoint continues at epoch 2."""
    curve = lcs.Surrogate(layout).curves(TASK, SETTING, 6)["val_accuracy"]
    first = run_trial(tmp_path / "a", layout, control=[{"seq": 1, "cmd": "checkpoint"}, {"seq": 2, "cmd": "stop"}])
    steps = [e for e in first if "step" in e and "metrics" in e]
    assert [e["step"] for e in steps] == [1]
    assert steps[0]["metrics"]["val_accuracy"] == pytest.approx(curve[0], abs=1e-4)
    ckpt = next(e for e in first if e.get("event") == "checkpoint")
    assert ckpt["seq"] == 1 and ckpt["step"] == 1
    path = tmp_path / "a" / ckpt["path"]
    assert json.loads(path.read_text()) == {"epoch": 1}

    second = run_trial(tmp_path / "b", layout, resume=str(path))
    steps = [e for e in second if "step" in e and "metrics" in e]
    assert [e["step"] for e in steps] == [2, 3, 4, 5, 6]
    assert [e["metrics"]["val_accuracy"] for e in steps] == pytest.approx(curve[1:], abs=1e-4)
    assert second[-1].get("event") == "done"
