"""Shared helpers for the runtime tests: a study on a tiny space, and polling until a condition holds."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tui_tuner.runner import RunEvent, Runner
from tui_tuner.space import parse_space
from tui_tuner.study import Study

SCRIPTS = Path(__file__).parent / "scripts"
TOY = SCRIPTS / "toy.py"
ZERO_CODE = SCRIPTS / "zero_code.py"

# A toy trainer on the trainer API: loss = x^2 where x shrinks by lr each step.
TOY_SPACE = """
[study]
name = "toy"
command = ["python", "{script}"]
objective = "loss"
stall_timeout = {stall}
{extra}
[params.lr]
type = "float"
scale = "log"
low = 1e-3
high = 0.9
default = 0.1
live = true
[params.steps]
type = "int"
low = 1
high = 100000
default = {steps}
tier = 4
[params.delay]
type = "float"
low = 0.0
high = 5.0
default = {delay}
tier = 4
[params.mode]
type = "choice"
values = ["ok", "crash", "nan", "hang", "garbage", "oom", "noobj", "slowstop"]
default = "{mode}"
tier = 4
"""


class Events(list):
    """Collects RunEvents; `of(kind, trial)` filters them."""

    def __call__(self, ev: RunEvent) -> None:
        self.append(ev)

    def of(self, kind: str, trial_id: int | None = None) -> list[RunEvent]:
        return [e for e in self if e.kind == kind and (trial_id is None or e.trial_id == trial_id)]


def toy_space(tmp_path: Path, *, stall: float = 300, extra: str = "", script: Path = TOY,
              steps: int = 30, delay: float = 0.01, mode: str = "ok"):
    """The toy space; `extra` adds [study] lines (stage = 1 searches lr only, the rest at defaults)."""
    text = TOY_SPACE.format(script=script, stall=stall, extra=extra, steps=steps, delay=delay, mode=mode)
    path = tmp_path / "space.toml"
    path.write_text(text)
    return parse_space(text, str(path))


def open_study(tmp_path: Path, space) -> Study:
    return Study.open(tmp_path / "study", space, seed=1)


def make_runner(study: Study, events: Events | None = None, **kw) -> Runner:
    kw.setdefault("stop_timeout", 1.0)
    kw.setdefault("term_timeout", 1.0)
    kw.setdefault("checkpoint_timeout", 10.0)
    return Runner(study, events, cwd=Path.cwd(), **kw)


def wait_for(runner: Runner, cond, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll the runner until cond() is true; fail the test with `what` after timeout seconds."""
    end = time.time() + timeout
    while time.time() < end:
        runner.poll()
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def python() -> str:
    return sys.executable
