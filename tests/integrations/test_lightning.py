"""tui_tuner.integrations.lightning against real runs of trainers/lightning_mlp.py under a real Runner."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("lightning")
torch = pytest.importorskip("torch")

from babysit import REPO, babysit, close, of, start  # noqa: E402

SCRIPT = "trainers/lightning_mlp.py"
# Small and fast; dropout on, so an exact fork also proves the RNG states came back.
FIXED = {"max_steps": 260, "val_every": 20, "sleep": 0.02, "dropout": 0.1, "seed": 3}


@pytest.fixture
def session(tmp_path):
    s = start(tmp_path, SCRIPT, "lr", 0.05, "val_loss", FIXED)
    yield s
    close(s)


def test_babysit_a_lightning_fit(session):
    s = babysit(session, "lr", 0.02)
    parent, child = s.parent, s.child

    # A live lr change reaches the optimizer: every step after the one that applied it trains with it...
    lrs = s.curve(parent, "lr")
    after = {st: v for st, v in lrs.items() if st > s.applied_step}
    assert len(after) >= 3 and all(v == pytest.approx(0.02) for v in after.values()), after
    assert all(v == pytest.approx(0.05) for st, v in lrs.items() if st <= s.applied_step)
    # ...and the optimizer's param groups hold it (read from the checkpoint Lightning wrote for the fork).
    ckpt = torch.load(s.study.dir / s.study.trial(child).resume, map_location="cpu", weights_only=False)
    assert all(g["lr"] == pytest.approx(0.02) for g in ckpt["optimizer_states"][0]["param_groups"])
    assert ckpt["global_step"] == s.fork_step

    # Pause holds: no step while paused, and the fork's checkpoint is of that paused step.
    assert s.held_after == s.held == s.fork_step

    # Stop ends the child cleanly, recorded as stopped; the parent ran to its end.
    t = s.study.trial(child)
    assert t.status == "stopped", t.reason
    assert s.study.trial(parent).status == "done"
    assert of(s, "done", child), "the stopped child still closed its events cleanly"

    # The fork (unchanged settings) continues the parent's curve: same losses, step for step. (On a
    # busy box the callback may read the metrics only every other step: compare the steps both have.)
    pl, cl = s.curve(parent, "loss"), s.curve(child, "loss")
    assert min(s.curve(child, "lr")) == s.fork_step + 1 == min(cl)
    common = sorted(set(cl) & set(pl))
    assert len(common) >= 10 and common[0] <= s.fork_step + 3
    worst = max(abs(cl[st] - pl[st]) for st in common)
    print(f"lightning fork: {len(common)} steps compared after step {s.fork_step}, max |diff| {worst:.3g}")
    assert worst <= 1e-6, [(st, pl[st], cl[st]) for st in common if cl[st] != pl[st]][:5]
    pv, cv = s.curve(parent, "val_loss"), s.curve(child, "val_loss")
    both = sorted(set(pv) & set(cv))
    assert both and all(cv[st] == pytest.approx(pv[st], rel=1e-6, abs=1e-7) for st in both)


def test_outside_the_tuner_the_script_runs_unchanged(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TUI_TUNER_RUN_DIR"}
    out = subprocess.run([sys.executable, str(REPO / SCRIPT), "--max_steps", "30", "--val_every", "10"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "step 30 | " in out.stdout and "val_loss" in out.stdout
    assert list(tmp_path.iterdir()) == [], "the callback wrote files outside the tuner"
