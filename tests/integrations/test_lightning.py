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


def test_halving_a_decayed_lr_gives_exactly_half_the_lr_the_optimizer_uses(tmp_path):
    # The `<` key on a fit whose StepLR(40, 0.7) has decayed: the session scales the lr the run reports
    # (the one its optimizer uses now), not the one it started with, and the schedule decays from there.
    from waiting import wait_for

    from tui_tuner.runtime.session import Session

    fixed = {"max_steps": 100000, "val_every": 1000, "sleep": 0.01, "dropout": 0.0, "seed": 3,
             "step_every": 40, "step_gamma": 0.7}
    s = start(tmp_path, SCRIPT, "lr", 0.003, "loss", fixed)
    runner, study, p = s.runner, s.study, s.parent
    session = Session(study, runner=runner, autostart=False)
    session.subscribe(s.events.append)   # the session took over the runner's events
    try:
        def lr_at(step):
            return s.curve(p, "lr").get(step)

        def ticked(cond):
            def go():
                session.poll()
                session.tick()
                return cond()
            return go

        wait_for(ticked(lambda: (runner.queries.latest(p)["step"] or 0) >= 45), 180, 0.01, "past the first decay")
        assert lr_at(41) == pytest.approx(0.003 * 0.7)                    # the scheduler decayed it
        message = session.scale_lr(p, 0.5)
        (d,) = [x for x in session.decisions() if x.kind == "lr"]
        current = d.data["from"]
        assert current == pytest.approx(0.0021) and d.data["to"] == pytest.approx(current / 2)
        assert "lr 0.0021 → 0.00105" in message
        wait_for(ticked(lambda: any(e.kind == "applied" and e.trial_id == p for e in s.events)), 60, 0.01,
                 "the change applied")
        applied = [e for e in s.events if e.kind == "applied" and e.trial_id == p][0].data["step"]
        boundary = (applied // 40 + 1) * 40
        wait_for(ticked(lambda: (runner.queries.latest(p)["step"] or 0) >= boundary + 2), 120, 0.01, "the next decay")
        lrs = s.curve(p, "lr")
        # Exactly half of what the optimizer used, from the step after the change to the next decay point...
        after = [lrs[st] for st in range(applied + 1, boundary + 1) if st in lrs]
        assert after and all(v == pytest.approx(0.00105, rel=1e-9) for v in after), after
        # ...where the schedule decays by its gamma from the new value (not from the starting lr).
        assert lrs[boundary + 1] == pytest.approx(0.00105 * 0.7, rel=1e-9)
        assert study.trial(p).params["lr"] == pytest.approx(0.00105)
    finally:
        session.close()
        close(s)
