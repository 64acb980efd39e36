"""tui_tuner.integrations.hf against real runs of trainers/hf_tiny.py under a real Runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")
torch = pytest.importorskip("torch")

from babysit import REPO, babysit, close, of, start  # noqa: E402

SCRIPT = "trainers/hf_tiny.py"
# Tiny and fast; a log every step so that curves compare step for step; dropout on, so an exact fork
# also proves the RNG states came back.
FIXED = {"max_steps": 160, "eval_every": 20, "log_every": 1, "batch_size": 16, "hidden": 16,
         "sleep": 0.01, "dropout": 0.1, "seed": 3}


@pytest.fixture
def session(tmp_path):
    s = start(tmp_path, SCRIPT, "learning_rate", 2e-3, "eval_loss", FIXED)
    yield s
    close(s)


def test_babysit_a_hugging_face_trainer(session):
    s = babysit(session, "learning_rate", 5e-3)
    parent, child = s.parent, s.child

    # A live lr change reaches the optimizer: each step from the next one on trains with it (the
    # Trainer logs the lr a step used)...
    lrs = s.curve(parent, "learning_rate")
    after = {st: v for st, v in lrs.items() if st > s.applied_step + 1}
    assert len(after) >= 3 and all(v == pytest.approx(5e-3) for v in after.values()), after
    assert all(v == pytest.approx(2e-3) for st, v in lrs.items() if st <= s.applied_step)
    # ...and the optimizer's param groups and the schedule hold it (read from the checkpoint folder
    # the Trainer wrote for the fork, which also carries the parent's params).
    folder = s.study.dir / s.study.trial(child).resume
    assert folder.name == f"checkpoint-{s.fork_step}"
    opt = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
    assert all(g["lr"] == pytest.approx(5e-3) for g in opt["param_groups"])
    sched = torch.load(folder / "scheduler.pt", map_location="cpu", weights_only=True)
    assert sched["base_lrs"] == pytest.approx([5e-3] * len(opt["param_groups"]))
    assert json.loads((folder / "tui_tuner.json").read_text())["learning_rate"] == pytest.approx(5e-3)

    # Pause holds: no step while paused. The fork asked while paused lets the Trainer finish the step it
    # was in (its log and the save), then the pause holds again.
    assert s.held_after == s.held and s.fork_step in (s.held, s.held + 1)

    # Stop ends the child cleanly, recorded as stopped; the parent ran to its end.
    t = s.study.trial(child)
    assert t.status == "stopped", t.reason
    assert s.study.trial(parent).status == "done"
    assert of(s, "done", child)

    # The fork (unchanged settings) continues the parent's curve: same losses, step for step.
    pl, cl = s.curve(parent, "loss"), s.curve(child, "loss")
    assert min(cl) == s.fork_step + 1
    common = sorted(set(cl) & set(pl))
    assert len(common) >= 30 and common[0] == s.fork_step + 1
    worst = max(abs(cl[st] - pl[st]) for st in common)
    print(f"hf fork: {len(common)} steps compared after step {s.fork_step}, max |diff| {worst:.3g}")
    assert worst <= 1e-6, [(st, pl[st], cl[st]) for st in common if cl[st] != pl[st]][:5]
    pv, cv = s.curve(parent, "eval_loss"), s.curve(child, "eval_loss")
    both = sorted(set(pv) & set(cv))
    assert both and all(cv[st] == pytest.approx(pv[st], rel=1e-6, abs=1e-7) for st in both)


def test_outside_the_tuner_the_script_runs_unchanged(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TUI_TUNER_RUN_DIR"}
    out = subprocess.run([sys.executable, str(REPO / SCRIPT), "--max_steps", "20", "--eval_every", "10",
                          "--hidden", "16"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "'eval_loss'" in out.stdout and "'train_runtime'" in out.stdout
    assert list(tmp_path.iterdir()) == [], "the callback wrote files outside the tuner"
