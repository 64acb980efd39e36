"""The runner's parts working together with real runs: nothing swallowed, old runs read outside the lock."""

from __future__ import annotations

import threading
import time

from runtime_helpers import Events, make_runner, open_study, toy_space, wait_for

from tui_tuner.runtime.runner import Kind
from tui_tuner.trainer import protocol


def start(study, runner, **params) -> int:
    trial = study.enqueue_manual(params)
    runner.start(trial)
    return trial.id


def errors(events: Events, tid: int | None = None) -> list[str]:
    return [e.data["message"] for e in events.of("error", tid)]


def test_failed_study_writes_become_error_events_and_the_run_goes_on(env, monkeypatch):
    study, runner, events = env

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    tid = start(study, runner, steps=400, delay=0.01)
    wait_for(runner, lambda: (runner.queries.latest(tid)["step"] or 0) >= 2, what="a few steps")
    monkeypatch.setattr(study, "apply_live", broken)
    monkeypatch.setattr(study, "set_status", broken)
    real_progress = study.update_progress
    # Progress writes fail while the run trains (every second); the final write at settling works.
    monkeypatch.setattr(study, "update_progress",
                        lambda tid_, step, objective: broken() if objective is not None else real_progress(tid_, step, None))
    runner.commands.set(tid, {"lr": 0.5})
    wait_for(runner, lambda: events.of("applied", tid), what="the applied event")
    runner.commands.pause(tid)
    wait_for(runner, lambda: events.of("paused", tid), what="the paused event")
    runner.commands.resume(tid)
    wait_for(runner, lambda: events.of("resumed", tid), what="the resumed event")
    wait_for(runner, lambda: events.of("ended", tid), timeout=30, what="the run to end")
    said = errors(events, tid)
    assert f"trial {tid}: could not record a live change in the study: OSError: [Errno 28] No space left on device" in said
    assert any("could not record its paused status" in m for m in said)
    assert any("could not record its resumed status" in m for m in said)
    # A write failing every second is said once, not every second.
    assert sum("could not record its progress" in m for m in said) == 1
    assert events.of("ended", tid)[0].data["status"] == "done"
    assert list(runner.errors) == said


def test_a_listener_that_raises_gets_an_error_event_and_the_runs_go_on(tmp_path):
    study = open_study(tmp_path, toy_space(tmp_path))
    seen: list = []

    def listener(ev):
        seen.append(ev)
        if ev.kind == "metrics":
            raise ValueError("boom\nsecond line")

    runner = make_runner(study, listener)
    try:
        tid = start(study, runner, steps=20, delay=0.0)
        wait_for(runner, lambda: any(e.kind == "ended" for e in seen), what="the run to end")
        errs = [e for e in seen if e.kind == Kind.ERROR]
        assert errs and errs[0].trial_id == tid
        assert errs[0].data["message"] == "the listener of metrics events failed: ValueError: boom"
        assert study.trial(tid).status == "done"
    finally:
        study.close()


def test_a_listener_that_raises_on_everything_does_not_loop(tmp_path):
    study = open_study(tmp_path, toy_space(tmp_path))
    calls = []

    def listener(ev):
        calls.append(ev.kind)
        raise RuntimeError("always")

    runner = make_runner(study, listener)
    try:
        tid = start(study, runner, steps=5, delay=0.0)
        wait_for(runner, lambda: study.trial(tid).finished, what="the run to end")
        runner.poll()
        # Each failing event gave one error event; each failing error event only a line in errors.
        assert calls.count("error") == len(calls) - calls.count("error")
        assert "the listener of error events failed: RuntimeError: always" in runner.errors
    finally:
        study.close()


def test_an_old_run_is_read_back_without_holding_the_runner_lock(env, monkeypatch):
    study, runner, events = env
    tid = start(study, runner, steps=10, delay=0.0)
    wait_for(runner, lambda: study.trial(tid).finished, what="the run to end")
    fresh = make_runner(study)   # a later session: the trial's curve is read back from its run dir
    entered, release = threading.Event(), threading.Event()
    real = protocol.JsonlTail.read_new

    def slow(self, *a, **kw):
        if self.path.name == protocol.EVENTS:
            entered.set()
            assert release.wait(10), "never released"
        return real(self, *a, **kw)

    monkeypatch.setattr(protocol.JsonlTail, "read_new", slow)
    got: list = []
    reader = threading.Thread(target=lambda: got.append(fresh.queries.series(tid, "loss")), daemon=True)
    reader.start()
    try:
        assert entered.wait(10), "the old run's events were not read"
        # While the old run is being read, the runner answers and polls.
        answered = threading.Event()
        threading.Thread(target=lambda: (fresh.poll(), fresh.queries.live_ids(), answered.set()), daemon=True).start()
        assert answered.wait(2), "poll() waited for an old run's history to be read"
    finally:
        release.set()
        reader.join(10)
    monkeypatch.undo()
    assert [s for s, _ in got[0]] == list(range(1, 11))
    assert fresh.queries.latest(tid)["status"] == "done" and fresh.queries.latest(tid)["step"] == 10


def test_two_threads_reading_one_old_run_share_one_record(env):
    study, runner, events = env
    tid = start(study, runner, steps=5, delay=0.0)
    wait_for(runner, lambda: study.trial(tid).finished, what="the run to end")
    fresh = make_runner(study)
    out: list = []
    threads = [threading.Thread(target=lambda: out.append(fresh.table.known(tid))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(out) == 4 and all(r is out[0] for r in out) and fresh.runs[tid] is out[0]


def test_latest_of_a_live_run_reads_no_database(env, monkeypatch):
    # The app asks for every live run's latest values at every frame (ten a second): from memory.
    study, runner, events = env
    tid = start(study, runner, steps=400, delay=0.01)
    wait_for(runner, lambda: (runner.queries.latest(tid)["step"] or 0) >= 2, what="a few steps")
    started = study.trial(tid).started

    def no_reads(*a, **kw):
        raise AssertionError("latest() of a live run read the study")

    monkeypatch.setattr(study, "trial", no_reads)
    got = runner.queries.latest(tid)
    assert got["status"] == "running" and got["step"] >= 2 and "loss" in got["metrics"]
    assert 0 < got["elapsed"] <= time.time() - started + 0.01
    monkeypatch.undo()
    runner.commands.stop(tid)
    wait_for(runner, lambda: events.of("ended", tid), timeout=30, what="the run to end")
    assert runner.queries.latest(tid)["status"] == study.trial(tid).status   # an ended run: the study's verdict
