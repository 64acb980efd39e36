"""The runner with real subprocesses: a tiny trainer on the API and a zero-code script."""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import time

import pytest
from runtime_helpers import Events, make_runner, open_study, toy_space, wait_for
from space_toml import param, space_toml
from study_runs import TOY, ZERO_CODE
from waiting import wait_for as wait_until

from tui_tuner.errors import RunError, SpaceError
from tui_tuner.runtime import pids
from tui_tuner.runtime.runner import SERIES_POINTS, Series
from tui_tuner.search.space import parse_space
from tui_tuner.trainer import protocol


def start(study, runner, **params):
    trial = study.enqueue_manual(params)
    runner.start(trial)
    return trial.id


def ended(study, tid):
    return lambda: study.trial(tid).finished


def loss_at(step, lr=0.1):
    return (10.0 * (1 - lr) ** step) ** 2


def test_run_to_done_records_objective_and_curve(env):
    study, runner, events = env
    tid = start(study, runner, steps=20, delay=0.0)
    wait_for(runner, ended(study, tid), what="the run to end")
    t = study.trial(tid)
    assert t.status == "done", t.reason
    assert t.objective == pytest.approx(loss_at(20))
    assert t.step == 20
    curve = runner.queries.series(tid, "loss")
    assert [s for s, _ in curve] == list(range(1, 21))
    last = runner.queries.latest(tid)
    assert last["status"] == "done" and last["step"] == 20 and not last["stalled"]
    assert events.of("started", tid) and events.of("ended", tid)[0].data["status"] == "done"
    params = json.loads((study.run_dir(tid) / protocol.PARAMS).read_text())
    assert params == {"trial": tid, "params": t.params, "resume": None}


def test_a_runs_slot_frees_only_once_the_study_has_its_end(env, monkeypatch):
    # The scheduler's thread reads the free slots from the runner and the failures from the study:
    # were the slot freed first, a tick in between would start one trial more than fail fast allows.
    study, runner, _ = env
    seen: list[bool] = []
    finish = study.finish

    def recording(trial_id, *args, **kwargs):
        seen.append(runner.queries.is_live(trial_id))
        return finish(trial_id, *args, **kwargs)

    monkeypatch.setattr(study, "finish", recording)
    tid = start(study, runner, steps=2, delay=0.0)
    wait_for(runner, ended(study, tid), what="the run to end")
    assert seen == [True] and not runner.queries.is_live(tid)


def test_reduce_last(tmp_path):
    study = open_study(tmp_path, toy_space(tmp_path, reduce="last", direction="maximize"))
    runner = make_runner(study)
    tid = start(study, runner, steps=5, delay=0.0)
    wait_for(runner, ended(study, tid))
    # Maximizing a falling loss: "last" is the final value, not the best (first) one.
    assert study.trial(tid).objective == pytest.approx(loss_at(5))
    study.close()


def test_pause_then_resume(env):
    study, runner, events = env
    tid = start(study, runner, steps=2000, delay=0.01)
    wait_for(runner, lambda: (runner.queries.latest(tid)["step"] or 0) >= 3, what="a few steps")
    runner.commands.pause(tid)
    wait_for(runner, lambda: events.of("paused", tid), what="the paused event")
    assert study.trial(tid).status == "paused"
    held = runner.queries.latest(tid)["step"]
    end = time.time() + 0.4
    while time.time() < end:
        runner.poll()
        time.sleep(0.02)
    assert runner.queries.latest(tid)["step"] == held, "steps went on while paused"
    assert runner.queries.latest(tid)["status"] == "paused"
    runner.commands.resume(tid)
    wait_for(runner, lambda: events.of("resumed", tid), what="the resumed event")
    wait_for(runner, lambda: runner.queries.latest(tid)["step"] >= held + 3, what="steps after resume")
    assert study.trial(tid).status == "running"


def test_live_set_applies(env):
    study, runner, events = env
    tid = start(study, runner, steps=2000, delay=0.01)
    wait_for(runner, lambda: (runner.queries.latest(tid)["step"] or 0) >= 2)
    seq = runner.commands.set(tid, {"lr": 0.5})
    assert seq >= 1
    wait_for(runner, lambda: events.of("applied", tid), what="the applied event")
    applied = events.of("applied", tid)[0]
    assert applied.data["params"] == {"lr": 0.5}
    after = applied.data["step"]
    wait_for(runner, lambda: runner.queries.latest(tid)["step"] >= after + 3)
    lrs = [v for s, v in runner.queries.series(tid, "lr") if s > after + 1]
    assert lrs and all(v == 0.5 for v in lrs)
    assert runner.queries.latest(tid)["params"]["lr"] == 0.5
    # The study records it too, so an export or a fork of this run carries the live value.
    assert study.trial(tid).params["lr"] == 0.5
    # Later commands keep counting.
    assert runner.commands.set(tid, {"lr": 0.2}) == seq + 1


@pytest.mark.parametrize(("changes", "match"), [
    ({"steps": 5}, r"params\.steps: not live"),
    ({"lr": 5.0}, r"params\.lr: 5 is outside"),
    ({"nope": 1}, r"params\.nope: no such parameter"),
])
def test_set_refuses_bad_changes(env, changes, match):
    study, runner, _ = env
    tid = start(study, runner, steps=2000, delay=0.01)
    with pytest.raises(SpaceError, match=match):
        runner.commands.set(tid, changes)


def test_commands_on_a_finished_run_are_refused(env):
    study, runner, _ = env
    tid = start(study, runner, steps=2, delay=0.0)
    wait_for(runner, ended(study, tid))
    with pytest.raises(RunError, match="not running"):
        runner.commands.pause(tid)


@pytest.mark.parametrize("new_lr", [None, 0.5])
def test_fork_resumes_from_parent_checkpoint(env, new_lr):
    study, runner, events = env
    parent = start(study, runner, steps=60, delay=0.01)
    wait_for(runner, lambda: (runner.queries.latest(parent)["step"] or 0) >= 5)
    child = runner.commands.fork(parent, {"lr": new_lr} if new_lr else {})
    assert child.parent == parent and child.source == "fork"
    assert child.status == "running"
    assert child.resume and child.resume.startswith(f"runs/{study.trial(parent).run_id}/ckpt/")
    fork_step = child.fork_step
    assert fork_step >= 5
    wait_for(runner, lambda: study.trial(child.id).finished and study.trial(parent).finished, timeout=15)
    assert study.trial(child.id).status == "done", study.trial(child.id).reason
    curve = dict(runner.queries.series(child.id, "loss"))
    assert min(curve) == fork_step + 1, "the child starts right after the parent's checkpoint"
    if new_lr is None:
        # Unchanged settings: the child continues the parent's curve exactly.
        parent_curve = dict(runner.queries.series(parent, "loss"))
        for s in (fork_step + 1, fork_step + 10, 60):
            assert curve[s] == pytest.approx(parent_curve[s], rel=1e-12)
    else:
        x_fork = math.sqrt(loss_at(fork_step))
        assert curve[fork_step + 1] == pytest.approx((x_fork * 0.5) ** 2)
        assert study.trial(child.id).params["lr"] == 0.5


def test_fork_of_a_checkpoint_taken_before_the_parent_ended(env):
    # The app checkpoints as the fork form opens; the parent may end while the user types.
    study, runner, events = env
    parent = start(study, runner, steps=30, delay=0.01)
    wait_for(runner, lambda: (runner.queries.latest(parent)["step"] or 0) >= 5)
    seq = runner.commands.checkpoint(parent)
    wait_for(runner, ended(study, parent), what="the parent to end")
    assert study.trial(parent).status == "done"
    child = runner.commands.fork(parent, {"lr": 0.5}, checkpoint=seq)
    assert child.parent == parent and child.status == "running"
    fork_step = child.fork_step
    assert 5 <= fork_step < 30
    wait_for(runner, ended(study, child.id), timeout=15)
    curve = dict(runner.queries.series(child.id, "loss"))
    assert min(curve) == fork_step + 1
    x_fork = math.sqrt(loss_at(fork_step))
    assert curve[fork_step + 1] == pytest.approx((x_fork * 0.5) ** 2)
    # Without a checkpoint taken in time, an ended run cannot be forked, and says so.
    with pytest.raises(RunError, match="not running"):
        runner.commands.fork(parent, {"lr": 0.5})

def test_stop_is_graceful(env):
    study, runner, events = env
    tid = start(study, runner, steps=100000, delay=0.01)
    wait_for(runner, lambda: (runner.queries.latest(tid)["step"] or 0) >= 2)
    runner.commands.stop(tid)
    wait_for(runner, ended(study, tid), timeout=5)
    t = study.trial(tid)
    assert t.status == "stopped" and t.reason == "stopped"
    assert "stopping on request" in "\n".join(runner.queries.output_tail(tid))


def test_crash_fails_with_last_lines(env):
    study, runner, _ = env
    tid = start(study, runner, mode="crash", delay=0.0)
    wait_for(runner, ended(study, tid))
    t = study.trial(tid)
    assert t.status == "failed"
    assert re.match(r"exit code 1: toy.py:\d+: RuntimeError: boom at step 5\n", t.reason), t.reason
    assert "RuntimeError: boom at step 5" in t.reason
    assert len(t.reason.splitlines()) <= 6


def test_oom_is_named(env):
    study, runner, _ = env
    tid = start(study, runner, mode="oom", delay=0.0)
    wait_for(runner, ended(study, tid))
    assert (study.trial(tid).status, study.trial(tid).reason) == ("failed", "out of GPU memory")


def test_exit_zero_without_objective_fails(env):
    study, runner, _ = env
    tid = start(study, runner, mode="noobj", steps=3, delay=0.0)
    wait_for(runner, ended(study, tid))
    t = study.trial(tid)
    assert t.status == "failed" and "without reporting the objective 'loss'" in t.reason


def test_garbage_lines_are_skipped_and_counted(env):
    study, runner, events = env
    tid = start(study, runner, mode="garbage", steps=8, delay=0.01)
    wait_for(runner, ended(study, tid))
    assert study.trial(tid).status == "done"
    assert runner.queries.latest(tid)["garbage"] == 4
    assert events.of("garbage", tid)
    assert [s for s, _ in runner.queries.series(tid, "loss")] == list(range(1, 9))


def test_nan_diverges_and_stops(env):
    study, runner, events = env
    tid = start(study, runner, mode="nan", steps=100000, delay=0.01)
    wait_for(runner, ended(study, tid), timeout=5)
    t = study.trial(tid)
    assert t.status == "diverged"
    assert "loss is nan at step 5" in t.reason
    assert events.of("diverged", tid)
    # The objective is the best finite value before it diverged.
    assert t.objective == pytest.approx(loss_at(4))


def test_hang_is_flagged_stalled_and_stop_escalates_to_sigkill(tmp_path):
    events = Events()
    study = open_study(tmp_path, toy_space(tmp_path, stall=0.4))
    runner = make_runner(study, events, stop_timeout=0.3, term_timeout=0.3)
    tid = start(study, runner, mode="hang", steps=100, delay=0.0)
    # On a loaded machine the trainer may take longer than the stall timeout just to start (and be
    # flagged, then unflagged): wait for it to reach the hang first.
    wait_for(runner, lambda: (runner.queries.latest(tid)["step"] or 0) >= 2, timeout=10, what="the trainer to hang")
    wait_for(runner, lambda: runner.queries.latest(tid)["stalled"], timeout=5, what="the stalled flag")
    assert events.of("stalled", tid) and runner.queries.is_live(tid)
    runner.commands.stop(tid)
    wait_for(runner, ended(study, tid), timeout=60)   # it ignores the stop and SIGTERM: SIGKILL ends it
    assert study.trial(tid).status == "stopped"
    assert study.trial(tid).reason == "stopped (SIGKILL)"
    study.close()


def test_command_not_found_fails(tmp_path):
    study = open_study(tmp_path, toy_space(tmp_path, command=["no-such-command-xyz"]))
    runner = make_runner(study)
    tid = start(study, runner)
    wait_for(runner, ended(study, tid))
    t = study.trial(tid)
    assert t.status == "failed" and "exit code 127" in t.reason and "no-such-command-xyz" in t.reason
    study.close()


def test_adopt_rebuilds_series_and_continues_seq(tmp_path):
    study = open_study(tmp_path, toy_space(tmp_path))
    first = make_runner(study)
    live = start(study, first, steps=100000, delay=0.01)
    short = start(study, first, steps=3, delay=0.0)
    wait_for(first, lambda: (first.queries.latest(live)["step"] or 0) >= 5)
    first.commands.set(live, {"lr": 0.2})
    first.stop_thread()
    # `short` ends while no runner watches it.
    wait_until(lambda: (study.run_dir(short) / "exit.json").exists(), timeout=20, what="the short run to end")
    # A new runner on the same study, as after a tuner restart.
    events = Events()
    second = make_runner(study, events)
    assert second.adopt() == [live]
    assert study.trial(short).status == "done"
    curve = second.queries.series(live, "loss")
    assert [s for s, _ in curve[:5]] == [1, 2, 3, 4, 5], "replayed from the first event"
    assert second.commands.set(live, {"lr": 0.3}) == 2
    second.commands.stop(live)
    wait_for(second, ended(study, live), timeout=5)
    study.close()


def test_series_is_bounded_and_keeps_the_shape():
    s = Series()
    for i in range(1, 100_001):
        s.add(i, float(i))
    pts = s.get()
    assert len(pts) <= SERIES_POINTS + 1
    assert pts[-1][0] == 100_000
    # Means of consecutive raw points: the curve stays on the line y = x (within one bucket).
    assert all(abs(v - st) <= s.stride for st, v in pts)
    s.add(100_001, math.nan)   # left out of the curve
    assert s.get()[-1][0] == 100_000


# -- zero-code ----------------------------------------------------------------------------------

NUM = r"([-+0-9.eE]+|nan|inf)"
FORMATS = {
    "llmc": {"step": r"^step (\d+) \|", "loss": r"\|\s*loss\s+" + NUM},
    "nanogpt": {"step": r"^iter (\d+):", "loss": r"train loss\s+" + NUM},
    "mnist": {"loss": r"Loss:\s*" + NUM, "lr": r"Learning rate:\s*" + NUM},
    "wlm": {"loss": r"\|\s*loss\s+" + NUM, "ppl": r"ppl\s+" + NUM},
}

ZC_PARAMS = {
    "lr": param("float", low=0.01, high=0.9, default=0.1, flag="--trainer.learning_rate"),
    "opt": param("choice", values=["sgd", "; rm -rf ~"]),
    "amp": param("choice", values=[False, True]),
    "steps": param("int", low=1, high=100000, default=12),
    "delay": param("float", low=0.0, high=1.0, default=0.0),
}


def zc_space(tmp_path, fmt="llmc", style="space", *args: str):
    """scripts/zero_code.py printing `fmt` lines, its flags in `style`; `args` go on the command itself."""
    text = space_toml(ZC_PARAMS, name="zc", command=["python", str(ZERO_CODE), "--fmt", fmt, *args],
                      objective="loss", flag_style=style, stall_timeout=30, metrics=FORMATS[fmt])
    return parse_space(text, str(tmp_path / "zc.toml"))


def zc_env(tmp_path, fmt="llmc", style="space"):
    study = open_study(tmp_path, zc_space(tmp_path, fmt, style))
    events = Events()
    return study, make_runner(study, events), events


def argv_of(runner, tid):
    line = next(ln for ln in runner.queries.output_tail(tid, 200) if ln.startswith("ARGV "))
    return json.loads(line[5:])


@pytest.mark.parametrize("style", ["space", "equals"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_zero_code_flags_and_patterns(tmp_path, fmt, style):
    study, runner, _ = zc_env(tmp_path, fmt, style)
    params = {"lr": 0.25, "opt": "; rm -rf ~", "amp": True, "steps": 12}
    tid = start(study, runner, **params)
    wait_for(runner, ended(study, tid))
    t = study.trial(tid)
    assert t.status == "done", t.reason
    argv = argv_of(runner, tid)
    if style == "space":
        assert argv[argv.index("--opt") + 1] == "; rm -rf ~"
        assert "--amp" in argv and "--trainer.learning_rate" in argv
    else:
        assert "--opt=; rm -rf ~" in argv and "--amp=True" in argv and "--trainer.learning_rate=0.25" in argv
    curve = runner.queries.series(tid, "loss")
    assert [s for s, _ in curve] == list(range(1, 13))   # a step pattern, or the count of matching lines
    # Printed with 2..6 decimals, so compare loosely.
    assert curve[-1][1] == pytest.approx(loss_at(12, 0.25), abs=0.01)
    assert not runner.commands.can_adjust(tid)


def test_zero_code_false_bool_is_absent_in_space_style(tmp_path):
    study, runner, _ = zc_env(tmp_path)
    tid = start(study, runner, amp=False, steps=2)
    wait_for(runner, ended(study, tid))
    assert "--amp" not in argv_of(runner, tid)


def test_zero_code_pause_is_sigstop_and_adjust_is_refused(tmp_path):
    study, runner, events = zc_env(tmp_path)
    tid = start(study, runner, steps=100000, delay=0.01)
    wait_for(runner, lambda: (runner.queries.latest(tid)["step"] or 0) >= 3)
    with pytest.raises(RunError, match="adjust is not available for this run"):
        runner.commands.set(tid, {"lr": 0.2})
    with pytest.raises(RunError, match="not available"):
        runner.commands.checkpoint(tid)
    runner.commands.pause(tid)
    assert study.trial(tid).status == "paused"
    time.sleep(0.1)
    runner.poll()
    held = runner.queries.latest(tid)["step"]
    time.sleep(0.3)
    runner.poll()
    assert runner.queries.latest(tid)["step"] == held
    runner.commands.resume(tid)
    wait_for(runner, lambda: runner.queries.latest(tid)["step"] > held + 2)
    # Stop while paused still ends it (SIGCONT before SIGTERM).
    runner.commands.pause(tid)
    runner.commands.stop(tid)
    wait_for(runner, ended(study, tid), timeout=5)
    assert study.trial(tid).status == "stopped"
    study.close()


def test_zero_code_fork_restarts_with_changed_flags(tmp_path):
    study, runner, _ = zc_env(tmp_path)
    parent = start(study, runner, steps=100000, delay=0.01)
    wait_for(runner, lambda: (runner.queries.latest(parent)["step"] or 0) >= 3)
    child = runner.commands.fork(parent, {"lr": 0.5, "steps": 5})
    # A restart from scratch, not a continuation at a step (issue 7, item 16).
    assert child.resume is None and child.parent == parent and child.fork_step is None
    wait_for(runner, ended(study, child.id))
    argv = argv_of(runner, child.id)
    assert argv[argv.index("--trainer.learning_rate") + 1] == "0.5"
    assert runner.queries.series(child.id, "loss")[0][0] == 1   # restarted from scratch
    runner.commands.stop(parent)
    wait_for(runner, ended(study, parent), timeout=5)
    study.close()


def test_zero_code_crash_with_oom_text(tmp_path):
    # --crash is not a space parameter: it goes on the study command itself.
    study = open_study(tmp_path, zc_space(tmp_path, "llmc", "space", "--crash", "2"))
    runner = make_runner(study)
    tid = start(study, runner)
    wait_for(runner, ended(study, tid))
    assert (study.trial(tid).status, study.trial(tid).reason) == ("failed", "out of GPU memory")
    study.close()


def test_poll_thread_delivers_events_and_listeners_may_call_back(tmp_path):
    study = open_study(tmp_path, toy_space(tmp_path))
    seen = []

    def listener(ev):
        # A listener runs outside the runner's lock: calling back in must not deadlock.
        seen.append((ev.kind, runner.queries.latest(ev.trial_id)["status"]))

    runner = make_runner(study, listener)
    runner.start_thread(0.05)
    try:
        tid = start(study, runner, steps=100000, delay=0.01)
        end = time.time() + 5
        while not any(k == "metrics" for k, _ in seen) and time.time() < end:
            time.sleep(0.01)
        runner.commands.pause(tid)
        while ("paused", "paused") not in seen and time.time() < end:
            time.sleep(0.002)
        assert ("paused", "paused") in seen
        runner.commands.stop(tid)
        while not study.trial(tid).finished and time.time() < end:
            time.sleep(0.01)
        assert study.trial(tid).status == "stopped"
    finally:
        runner.stop_thread()
        study.close()


def test_a_run_spawned_but_never_recorded_is_adopted_not_started_twice(env):
    # The tuner died right after spawning: the shim runs, the trial is still queued in the study.
    study, runner, events = env
    trial = study.enqueue_manual({"steps": 2000, "delay": 0.01})
    run_dir = study.run_dir(trial.id)
    run_dir.mkdir(parents=True)
    protocol.write_json_atomic(run_dir / protocol.PARAMS,
                               {"trial": trial.id, "params": trial.params, "resume": None})
    orphan = pids.spawn(run_dir, [sys.executable, str(TOY)])
    wait_for(runner, lambda: (run_dir / protocol.LAUNCH).exists(), what="the shim to start")
    runner.start(trial)
    assert study.trial(trial.id).pid == orphan
    assert study.trial(trial.id).status == "running"
    assert events.of("started", trial.id)[0].data.get("adopted")
    wait_for(runner, lambda: (runner.queries.latest(trial.id)["step"] or 0) >= 3, what="steps of the adopted run")


LEAVES_A_HELPER = """
import os, subprocess, sys
from tui_tuner import trainer
hp = trainer.params(lr=0.1, steps=3, delay=0.0, mode="ok")
trainer.report(1, loss=0.5)
trainer.flush()
helper = subprocess.Popen(["sleep", "30"])  # same process group, outlives the trainer
with open(os.path.join(trainer.run_dir(), "helper.pid"), "w") as f:
    f.write(f"{helper.pid} {os.getpgid(0)}")
sys.exit(0)
"""


def test_a_helper_left_behind_does_not_keep_the_run_live(tmp_path):
    script = tmp_path / "leaves_a_helper.py"
    script.write_text(LEAVES_A_HELPER)
    study = open_study(tmp_path, toy_space(tmp_path, script=script))
    runner = make_runner(study, Events(), term_timeout=1.0)
    try:
        tid = start(study, runner)
        wait_for(runner, ended(study, tid), timeout=5, what="the run to settle")
        t = study.trial(tid)
        assert t.status == "done", t.reason   # settled without waiting for the helper it left (it sleeps on)
        assert not runner.queries.is_live(tid)
        helper, group = map(int, (study.run_dir(tid) / "helper.pid").read_text().split())
        wait_for(runner, lambda: not pids.pid_alive(helper), timeout=3, what="the helper to be ended")
        assert not pids.group_alive(group)
    finally:
        runner.commands.stop_all(timeout=2)
        study.close()


def test_a_retried_run_does_not_reread_the_previous_attempts_output(tmp_path):
    # A tuner killed between spawn and bookkeeping left output.log behind; the retry starts clean,
    # the earlier attempt's files moved aside (never deleted).
    study, runner, _ = zc_env(tmp_path)
    trial = study.enqueue_manual({"steps": 3})
    run_dir = study.run_dir(trial.id)
    run_dir.mkdir(parents=True)
    stale = "".join(f"step {s} | loss 0.000001\n" for s in range(1, 500))
    (run_dir / protocol.OUTPUT).write_text(stale)
    runner.start(trial)
    wait_for(runner, ended(study, trial.id))
    assert study.trial(trial.id).status == "done"
    assert [s for s, _ in runner.queries.series(trial.id, "loss")] == [1, 2, 3]
    assert study.trial(trial.id).objective == pytest.approx(loss_at(3), abs=0.01)
    assert (run_dir.parent / "t0001.attempt-1" / "output.log").read_text() == stale
    study.close()


def test_hurry_stops_skips_the_grace_periods_of_runs_already_stopping(tmp_path):
    # A second Ctrl-C: a run that ignores the stop command and SIGTERM is killed now, not after
    # the stop and term timeouts it was given when the stop began.
    study = open_study(tmp_path, toy_space(tmp_path))
    runner = make_runner(study, Events(), stop_timeout=30.0, term_timeout=30.0)
    try:
        tid = start(study, runner, mode="slowstop", steps=100000, delay=0.01)
        wait_for(runner, lambda: (runner.queries.latest(tid)["step"] or 0) >= 2)
        runner.commands.stop(tid)
        runner.poll()
        assert runner.queries.is_live(tid)
        runner.stop_timeout = runner.term_timeout = 0.0
        runner.commands.hurry_stops()
        # Ended well inside the 60 s the stop and term timeouts it began with would take.
        wait_for(runner, ended(study, tid), timeout=25)
        t = study.trial(tid)
        assert t.status == "stopped" and t.reason == "stopped (SIGKILL)"
    finally:
        runner.stop_timeout = runner.term_timeout = 0.0
        runner.commands.hurry_stops()
        runner.commands.stop_all(timeout=5)
        study.close()


def test_a_fork_waiting_for_its_checkpoint_gives_up_when_the_tuner_closes(env):
    study, runner, events = env
    parent = start(study, runner, steps=100000, delay=0.01)
    wait_for(runner, lambda: (runner.queries.latest(parent)["step"] or 0) >= 2)
    runner.commands.pause(parent)     # a paused trainer still answers checkpoints: use a seq nobody answers
    wait_for(runner, lambda: events.of("paused", parent))
    errors: list[Exception] = []

    def fork() -> None:
        try:
            runner.commands.fork(parent, {"lr": 0.5}, checkpoint=999, timeout=60)
        except RunError as e:
            errors.append(e)

    t = threading.Thread(target=fork)
    t.start()
    time.sleep(0.3)
    assert t.is_alive(), "the fork should still be waiting"
    runner.cancel_waits()
    t.join(timeout=30)   # its own wait was 60 s: only the cancel ends it before
    assert not t.is_alive()
    assert errors and "fork cancelled" in str(errors[0])
