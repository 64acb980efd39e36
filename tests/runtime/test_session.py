"""The session layer on its own: a whole session (start, zoom, fork, stop) without textual, and
nothing swallowed (a failing listener or study write is a notice and a line in STUDY/tuner.log)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


def drive_a_whole_session(tmp: Path) -> dict[str, Any]:
    """Start trials, zoom on the two done ones, fork a live run, stop it: all through the Session."""
    from runtime_helpers import toy_space
    from waiting import wait_for

    from tui_tuner.runtime.runner import RunEvent
    from tui_tuner.runtime.session import Session
    from tui_tuner.runtime.session_events import Notice
    from tui_tuner.study.study import Study

    space = toy_space(tmp, steps=20, delay=0.002, stage=1, strategy="random", parallel=2, budget=2)
    study = Study.open(tmp / "study", space, seed=3)
    events: list[Any] = []
    session = Session(study, runner_options={"cwd": Path.cwd(), "stop_timeout": 2.0, "term_timeout": 1.0,
                                             "checkpoint_timeout": 10.0})
    session.subscribe(events.append)
    out: dict[str, Any] = {}
    try:
        session.adopt()

        def two_done() -> bool:
            session.poll()
            session.tick()
            return study.counts().get("done", 0) == 2
        wait_for(two_done, 30, 0.01, "two trials done")
        out["started_by_tick"] = sorted(e.trial_id for e in events if isinstance(e, RunEvent) and e.kind == "started")
        out["done"] = session.done()

        out["zoom"] = session.search.zoom()
        out["levels"] = len(study.search_state.levels)

        # A long run to fork: queued, edited, started now (the budget does not matter for run_now).
        (queued,) = [t.id for t in study.sample(1)]
        session.search.edit(queued, {"steps": 100000, "delay": 0.01})
        session.run_now(queued)
        wait_for(lambda: (session.poll(), (session.runner.queries.latest(queued).get("step") or 0) >= 3)[1],
                 30, 0.01, "the long run reports")
        seq = session.prepare_fork(queued)
        pending = session.fork(queued, {"lr": 0.05}, seq)   # returns at once: the fork waits for its checkpoint
        out["pending"] = pending.state

        def forked() -> bool:
            session.poll()
            session.tick()
            return session.automation.log.get(pending.id).state != "pending"
        wait_for(forked, 30, 0.01, "the fork started")
        done = session.automation.log.get(pending.id)
        child = study.trial(done.progress["out"]["child"])
        out["fork"] = {"message": done.message, "parent": child.parent, "step": child.fork_step,
                       "lr": child.params["lr"], "status": child.status, "pinned": child.id in session.pinned()}

        out["stop"] = [session.stop(queued), session.stop(child.id)]
        wait_for(lambda: (session.poll(), not session.runner.queries.live_ids())[1], 30, 0.01, "the stops")
        out["ended"] = {e.trial_id: e.data["status"] for e in events if isinstance(e, RunEvent) and e.kind == "ended"}
        out["notices"] = [e.title for e in events if isinstance(e, Notice)]
    finally:
        session.close(stop_runs=True, timeout=5)
        study.close()
    out["textual"] = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
    return out


def test_a_whole_session_runs_without_textual(tmp_path):
    # In a fresh interpreter: this pytest process may have imported textual for the UI tests.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, __file__, str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["textual"] == []
    assert out["started_by_tick"] == [1, 2] and out["done"] is True
    assert out["zoom"].startswith("zoom 1: lr [") and out["levels"] == 1
    fork = out["fork"]
    assert fork["parent"] == 3 and fork["lr"] == 0.05 and fork["status"] == "running"
    assert isinstance(fork["step"], int) and fork["step"] >= 3
    assert fork["message"] == f"forked #3 into #4 at step {fork['step']} with lr=0.05" and fork["pinned"]
    assert out["pending"] == "pending"
    assert out["stop"] == ["stopping #3", "stopping #4"]
    assert out["ended"] == {"1": "done", "2": "done", "3": "stopped", "4": "stopped"}
    assert "Listener" not in out["notices"]


def _session(tmp_path: Path) -> Any:
    from runtime_helpers import toy_space

    from tui_tuner.runtime.session import Session
    from tui_tuner.study.study import Study

    study = Study.open(tmp_path / "study", toy_space(tmp_path, stage=1, strategy="random"), seed=1)
    return Session(study, runner_options={"cwd": Path.cwd()})


def _log(study: Any) -> list[dict[str, Any]]:
    path = study.dir / "tuner.log"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_failing_listener_is_a_notice_to_the_others_and_a_log_line(tmp_path):
    from tui_tuner.runtime.runner import RunEvent
    from tui_tuner.runtime.session_events import Notice

    session = _session(tmp_path)
    seen: list[Any] = []

    def broken(ev: Any) -> None:
        if isinstance(ev, RunEvent):
            raise ValueError("cannot draw")

    try:
        session.subscribe(broken)
        session.subscribe(seen.append)
        session._on_run_event(RunEvent("metrics", 1, {}))
        notices = [e for e in seen if isinstance(e, Notice)]
        assert [(n.title, n.severity) for n in notices] == [("Listener", "error")]
        assert "broken failed on a metrics event: ValueError: cannot draw" in notices[0].message
        (line,) = _log(session.study)
        assert line["title"] == "Listener" and "cannot draw" in line["message"]
    finally:
        session.close()
        session.study.close()


def test_a_failed_study_write_in_a_tick_is_said_once_and_logged(tmp_path, monkeypatch):
    from tui_tuner.runtime.session_events import Notice

    session = _session(tmp_path)
    seen: list[Any] = []
    session.subscribe(seen.append)

    def failing_tick() -> list[int]:
        raise sqlite3.OperationalError("disk I/O error")

    try:
        monkeypatch.setattr(session.scheduler, "tick", failing_tick)
        assert session.tick() == [] and session.tick() == []
        notices = [e for e in seen if isinstance(e, Notice)]
        assert [(n.title, n.message) for n in notices] == [
            ("Study", "starting trials failed: OperationalError: disk I/O error")]
        assert session.autostart   # the next tick tries again
        assert [line["message"] for line in _log(session.study)] == [notices[0].message]
    finally:
        session.close()
        session.study.close()


def test_a_runner_error_event_is_a_notice(tmp_path):
    from tui_tuner.runtime.runner import RunEvent
    from tui_tuner.runtime.session_events import Notice

    session = _session(tmp_path)
    seen: list[Any] = []
    session.subscribe(seen.append)
    try:
        session._on_run_event(RunEvent("error", -1, {"message": "OSError: no space left"}))
        assert [e for e in seen if isinstance(e, Notice)] == [Notice("Runner", "OSError: no space left", "error")]
    finally:
        session.close()
        session.study.close()


if __name__ == "__main__":
    os.chdir(Path(sys.argv[1]))
    print(json.dumps(drive_a_whole_session(Path(sys.argv[1]))))


def test_undo_refuses_what_cannot_be_undone_and_says_why(tmp_path):
    from tui_tuner.errors import RunError, StudyError
    from tui_tuner.study.decision_log import VOID

    session = _session(tmp_path)
    log = session.automation.log
    try:
        odd = log.add("k_change", None, "k 1 -> 2")
        with pytest.raises(RunError, match="a k_change decision cannot be undone"):
            session.undo_decision(odd.id)
        with pytest.raises(StudyError, match="no decision #99"):
            session.undo_decision(99)
        void = log.add("early_stop", 3, "stopped #3", state=VOID, progress={"void": "#3 ended (done) first"})
        with pytest.raises(RunError, match=r"was not carried out \(#3 ended \(done\) first\)"):
            session.undo_decision(void.id)
        with pytest.raises(RunError, match="#5 was not stopped by an automatic decision"):
            session.undo_trial(5)
    finally:
        session.close()


def test_the_default_strategy_without_optuna_is_coarse_to_fine_and_said_once(tmp_path, monkeypatch):
    import importlib.util

    from runtime_helpers import toy_space

    from tui_tuner.runtime.session import Session
    from tui_tuner.runtime.session_events import Notice
    from tui_tuner.study.study import Study

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a))
    study = Study.open(tmp_path / "study", toy_space(tmp_path, stage=1, budget=1), seed=1)
    assert study.config.strategy == "coarse_to_fine" and study.config.strategy_fallback
    session = Session(study, runner_options={"cwd": Path.cwd()})
    said = []
    session.subscribe(lambda ev: said.append(ev) if isinstance(ev, Notice) else None)
    try:
        session.tick()
        session.tick()
        warnings = [n for n in said if n.title == "Strategy"]
        assert len(warnings) == 1 and warnings[0].severity == "warning"
        assert "optuna is not installed" in warnings[0].message and "coarse_to_fine" in warnings[0].message
        assert any("optuna is not installed" in e["message"] for e in _log(study))
    finally:
        session.close(stop_runs=True, timeout=10)
