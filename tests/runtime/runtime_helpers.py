"""Shared helpers for the runtime tests: a study on the toy trainer's space, and polling the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from space_toml import param, space_toml
from study_runs import TOY
from waiting import wait_for as _wait_for

from tui_tuner.runtime.runner import RunEvent, Runner
from tui_tuner.search.space import Space, parse_space
from tui_tuner.study.study import Study

MODES = ["ok", "crash", "nan", "hang", "garbage", "oom", "noobj", "slowstop"]


class Events(list):
    """Collects RunEvents; `of(kind, trial)` filters them."""

    def __call__(self, ev: RunEvent) -> None:
        self.append(ev)

    def of(self, kind: str, trial_id: int | None = None) -> list[RunEvent]:
        return [e for e in self if e.kind == kind and (trial_id is None or e.trial_id == trial_id)]


def toy_space(tmp_path: Path, *, stall: float = 300, script: Path = TOY, steps: int = 30, delay: float = 0.01,
              mode: str = "ok", lr: dict[str, Any] | None = None, **study: Any) -> Space:
    """The toy trainer's space, written to space.toml: loss = x^2 where x shrinks by lr each step.

    `study` adds or replaces [study] keys (stage = 1 searches lr only, steps, delay and mode stay at
    their defaults); `lr` replaces the lr parameter.
    """
    params = {
        "lr": lr or param("float", scale="log", low=1e-3, high=0.9, default=0.1, live=True),
        "steps": param("int", low=1, high=100000, default=steps, tier=4),
        "delay": param("float", low=0.0, high=5.0, default=delay, tier=4),
        "mode": param("choice", values=MODES, default=mode, tier=4),
    }
    text = space_toml(params, **{"name": "toy", "command": ["python", str(script)], "objective": "loss",
                                 "stall_timeout": stall, **study})
    path = tmp_path / "space.toml"
    path.write_text(text)
    return parse_space(text, str(path))


def open_study(tmp_path: Path, space: Space) -> Study:
    return Study.open(tmp_path / "study", space, seed=1)


def make_runner(study: Study, events: Events | None = None, **kw: Any) -> Runner:
    kw.setdefault("stop_timeout", 1.0)
    kw.setdefault("term_timeout", 1.0)
    kw.setdefault("checkpoint_timeout", 10.0)
    return Runner(study, events, cwd=Path.cwd(), **kw)


def wait_for(runner: Runner, cond, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll the runner until cond() is true; fail the test with `what` after timeout seconds."""

    def polled():
        runner.poll()
        return cond()

    _wait_for(polled, timeout, 0.01, what)
