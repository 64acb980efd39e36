"""Auto-k with real runs through the Session: k rises from 1 while the runs' steps/s rise, an
out-of-memory failure is re-queued (the same setting runs again, not counted) and k backs off, and
undo puts k back and holds it."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from space_toml import param, space_toml
from study_runs import SCRIPTS, kill_runs
from waiting import wait_for

from tui_tuner.runtime.runner import RunEvent
from tui_tuner.runtime.session import Session
from tui_tuner.search.space import parse_space
from tui_tuner.study.decision_log import Decision
from tui_tuner.study.study import Study

OOM_ONCE = SCRIPTS / "oom_once.py"


def oom_space(tmp_path: Path, **study: Any):
    params = {
        "lr": param("float", scale="log", low=1e-3, high=0.9, default=0.1, live=True),
        "steps": param("int", low=1, high=100000, default=40, tier=4),
        "delay": param("float", low=0.0, high=1.0, default=0.01, tier=4),
        "oom": param("int", low=0, high=1, default=0, tier=4),
    }
    text = space_toml(params, name="oom", command=["python", str(OOM_ONCE)], objective="loss",
                      strategy="random", stage=1, **{"parallel": "auto", "budget": 3, **study})
    path = tmp_path / "space.toml"
    path.write_text(text)
    return parse_space(text, str(path))


@pytest.fixture
def session(tmp_path):
    study = Study.open(tmp_path / "study", oom_space(tmp_path), seed=1)
    s = Session(study, runner_options={"cwd": Path.cwd(), "stop_timeout": 1.0, "term_timeout": 1.0})
    s.automation.autok.window = 0.3
    yield s
    s.close(stop_runs=True, timeout=5)
    kill_runs(study.dir)
    study.close()


def drive(session: Session, until, timeout: float, what: str) -> None:
    def step() -> bool:
        session.poll()
        session.tick()
        return until()
    wait_for(step, timeout, 0.02, what)


def test_an_oom_failure_is_requeued_not_counted_and_k_backs_off(session):
    study = session.study
    a, b, c = study.enqueue([{"steps": 300, "delay": 0.01}, {"oom": 1, "steps": 20}, {"steps": 20}], "manual")
    seen: list[Any] = []
    session.subscribe(seen.append)
    session.adopt()
    drive(session, session.done, 60, "the study to end")
    ks = [e for e in seen if isinstance(e, Decision) and e.kind == "auto_k"]
    assert [(d.data["from"], d.data["to"], d.data["why"]) for d in ks][:2] == [(1, 2, "raise"), (2, 1, "oom")]
    oom = ks[1]
    assert oom.data["trial"] == b.id and oom.data["requeued"] is True
    assert f"#{b.id} ran out of GPU memory with 2 runs sharing it (re-queued, not counted)" in oom.message
    ended = [e for e in seen if isinstance(e, RunEvent) and e.kind == "ended" and e.trial_id == b.id]
    assert [e.data.get("requeued") for e in ended] == [True, None]
    # The same setting ran again and finished; nothing failed, and it counted once.
    assert {t.id: t.status for t in study.trials("id")} == {a.id: "done", b.id: "done", c.id: "done"}
    assert study.budget_used() == 3
    first = study.dir / "runs" / f"t{b.id:04d}.attempt-1"
    assert "CUDA out of memory" in (first / "output.log").read_text()
    assert session.automation.autok.status().k == 1 and session.scheduler.parallel == 1


def test_an_oom_alone_at_k_one_fails_for_real(session):
    study = session.study
    (b,) = study.enqueue([{"oom": 1}], "manual")
    session.adopt()
    drive(session, lambda: study.trial(b.id).finished, 30, "the trial to end")
    t = study.trial(b.id)
    assert t.status == "failed" and t.reason == "out of GPU memory"


def test_k_rises_while_it_pays_and_undo_puts_it_back_and_holds(session, monkeypatch):
    study = session.study
    study.enqueue([{"steps": 100000, "delay": 0.02}] * 3, "manual")
    seen: list[Any] = []
    session.subscribe(seen.append)
    session.adopt()
    # Each run reports at its own pace, so 2 runs make about twice the steps/s of 1: a raise pays.
    drive(session, lambda: session.scheduler.parallel >= 2 and len(session.runner.queries.live_ids()) >= 2, 30,
          "k to rise to 2")
    (raised,) = [e for e in seen if isinstance(e, Decision) and e.kind == "auto_k"][:1]
    assert raised.message.startswith("k 1 → 2: ") and "steps/s at k 1" in raised.message
    assert raised.data["steps_per_s"] > 0
    said = session.undo_decision(raised.id)
    assert "→ 1: undo of k 1 → 2" in said and session.scheduler.parallel == 1
    assert session.automation.autok.status().mode == "held"
    t0 = time.time()
    drive(session, lambda: time.time() - t0 > 1.5, 5, "a few windows")
    assert session.scheduler.parallel == 1, "held: auto-k must not redo the undone raise"
    assert "k 1 held" in session.automation.autok.status().text()


def test_headless_says_a_requeue_and_prints_k_decisions():
    from tui_tuner.runtime.headless import _print

    lines: list[str] = []
    _print(None, RunEvent("ended", 4, {"status": "failed", "reason": "out of GPU memory", "requeued": True}),
           lines.append)
    _print(None, Decision("auto_k", None, "k 2 → 3: 1,810 → 2,470 steps/s at k 1 → 2 (+36% ≥ +10%)"), lines.append)
    assert lines == ["trial    4  re-queued  (out of GPU memory; not counted: the same setting runs again)",
                     "auto_k: k 2 → 3: 1,810 → 2,470 steps/s at k 1 → 2 (+36% ≥ +10%)"]


def test_the_k_key_fixes_a_settled_auto_k_and_returns_a_fixed_or_held_one_to_auto(session):
    ak = session.automation.autok
    ak.state = replace(ak.state, k=2, settled=True)          # auto, its search over
    assert ak.toggle().startswith("k 2 → 2: fixed by hand")
    assert ak.status().mode == "fixed" and session.scheduler.parallel == 2
    assert "back to auto" in ak.toggle() and ak.status().mode == "auto"
    ak.state = replace(ak.state, held=True, settled=True)    # held by an undo
    assert "back to auto" in ak.toggle() and ak.state.exploring
