"""Shared helpers for the UI tests: spaces, studies (live or built through the Study API), waiting."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text

from tui_tuner.space import parse_space
from tui_tuner.study import Study
from tui_tuner.ui.app import TunerApp
from tui_tuner.ui.backend import Backend

SCRIPTS = Path(__file__).parent / "scripts"
TRAINER = SCRIPTS / "trainer.py"
FLAGS = SCRIPTS / "flags.py"

SPACE = """
[study]
name = "{name}"
command = ["python", "{script}"]
objective = "val_loss"
parallel = {parallel}
budget = {budget}
strategy = "random"
stage = 2
stall_timeout = 300
{extra}

[params.lr]
type = "float"
scale = "log"
low = 1e-3
high = 0.5
default = 0.05
tier = 1
live = true

[params.momentum]
type = "float"
scale = "one_minus_log"
low = 0.5
high = 0.99
default = 0.9
tier = 2
live = true

[params.hidden]
type = "int"
low = 16
high = 128
default = 64
tier = 2

[params.layers]
type = "choice"
values = [1, 2, 3]
default = 2
tier = 3

[params.steps]
type = "int"
low = 1
high = 1000000
default = {steps}
tier = 4

[params.delay]
type = "float"
low = 0.0
high = 1.0
default = {delay}
tier = 4

[params.fail]
type = "int"
low = 0
high = 1000000
default = {fail}
tier = 4
"""

ZERO_CODE_SPACE = """
[study]
name = "flags"
command = ["python", "{script}"]
objective = "loss"
parallel = 1
budget = 1
strategy = "random"
stage = 1

[study.metrics]
step = 'step (\\d+)'
loss = 'loss ([0-9.eE+-]+)'

[params.lr]
type = "float"
scale = "log"
low = 1e-3
high = 0.5
default = 0.05
tier = 1
live = true
"""


def space_text(*, name: str = "ui-test", parallel: int = 1, budget: int = 4, steps: int = 1_000_000,
               delay: float = 0.005, fail: int = 0, extra: str = "", script: Path = TRAINER) -> str:
    """The UI test space (trainer API), with some [study] values and defaults to vary."""
    return SPACE.format(name=name, script=script, parallel=parallel, budget=budget, steps=steps,
                        delay=delay, fail=fail, extra=extra)


def open_study(directory: Path, text: str, *, seed: int = 1) -> Study:
    """Create or reopen a study of this space text in `directory`."""
    path = directory.parent / f"{directory.name}.toml"
    path.write_text(text)
    return Study.open(directory, parse_space(text, str(path)), seed=seed)


def make_backend(study: Study, cwd: Path, **kw: Any) -> Backend:
    """A back end with short stop timeouts and no GPU probe."""
    options = {"cwd": cwd, "stop_timeout": 1.0, "term_timeout": 1.0, "checkpoint_timeout": 10.0}
    return Backend(study, gpu=False, runner_options=options, **kw)


def make_app(study: Study, cwd: Path, *, live: bool = True, **kw: Any) -> TunerApp:
    """The app on a study, its back end built with make_backend."""
    return TunerApp(make_backend(study, cwd, **kw), live=live)


def kill_runs(study_dir: Path) -> None:
    """Kill every process group a test left running in this study (by the pids the study recorded)."""
    try:
        study = Study.open(study_dir, lock=False)
    except Exception:  # noqa: BLE001 - nothing to clean
        return
    try:
        pids = [t.pid for t in study.active() if t.pid]
    finally:
        study.close()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def plain(x: Any) -> str:
    """The text a user reads in a cell or a Static's content."""
    if isinstance(x, Text):
        return x.plain
    plain_attr = getattr(x, "plain", None)
    return plain_attr if isinstance(plain_attr, str) else str(x)


async def wait_until(pilot: Any, cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Let the app run until cond() is truthy; fail with `what` after timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = cond()
        if result:
            return result
        await pilot.pause(0.05)
    app = pilot.app
    seen = list(getattr(app, "said_log", []))[-5:]
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (messages: {seen})")


# -- a finished study built through the Study API (deterministic: no live runs, a fixed clock) ----

SETTINGS = [
    {"lr": 0.0031, "momentum": 0.95, "hidden": 96, "layers": 2},
    {"lr": 0.12, "momentum": 0.6, "hidden": 32, "layers": 1},
    {"lr": 0.018, "momentum": 0.9, "hidden": 64, "layers": 3},
    {"lr": 0.0012, "momentum": 0.99, "hidden": 128, "layers": 2},
    {"lr": 0.045, "momentum": 0.8, "hidden": 48, "layers": 2},
    {"lr": 0.25, "momentum": 0.7, "hidden": 24, "layers": 1},
    {"lr": 0.0065, "momentum": 0.93, "hidden": 112, "layers": 3},
    {"lr": 0.33, "momentum": 0.55, "hidden": 40, "layers": 2},
]
OBJECTIVES = [0.212, 0.481, 0.175, 0.305, 0.198, None, 0.183, 0.62]


class FixedClock:
    """time.time() stand-in that advances one second a call, from a fixed start."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def curve(final: float, n: int = 40) -> list[float]:
    """A deterministic learning curve ending near `final`."""
    return [final + 2.0 * math.exp(-i / 6.0) + 0.01 * math.sin(i) for i in range(n)]


def write_events(run_dir: Path, values: list[float], t0: float) -> None:
    """An events.jsonl as a trainer would have written it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "events.jsonl", "w") as f:
        for i, v in enumerate(values, 1):
            f.write(json.dumps({"t": t0 + i, "step": i * 10, "metrics": {"loss": v * 0.9, "val_loss": v}}) + "\n")
        f.write(json.dumps({"t": t0 + len(values) + 1, "event": "done"}) + "\n")
    (run_dir / "output.log").write_text("epoch 1\nepoch 2\nTraceback (most recent call last):\n"
                                        "RuntimeError: CUDA error: device-side assert\n")


def finished_study(directory: Path, monkeypatch: Any) -> Study:
    """Nine finished trials (one failed, one a fork: enough for measured importance) and two queued
    settings, with curves on disk."""
    import time as time_module

    text = space_text(name="snap", budget=14)
    with monkeypatch.context() as m:
        m.setattr(time_module, "time", FixedClock())
        study = open_study(directory, text)
        trials = study.enqueue(SETTINGS, "random")
        for t, obj in zip(trials, OBJECTIVES, strict=True):
            study.mark_started(t.id, 0)
            if obj is None:
                write_events(study.run_dir(t.id), curve(3.0, 8), 1_700_000_000.0)
                study.update_progress(t.id, 80, None)
                study.finish(t.id, "failed", reason="exit code 1:\nRuntimeError: CUDA error: device-side assert")
                continue
            write_events(study.run_dir(t.id), curve(obj), 1_700_000_000.0)
            study.update_progress(t.id, 400, obj)
            study.finish(t.id, "done", objective=obj)
        child = study.add_fork(trials[2].id, {"lr": 0.01}, 200, None)
        study.mark_started(child.id, 0)
        write_events(study.run_dir(child.id), curve(0.16), 1_700_000_000.0)
        study.update_progress(child.id, 400, 0.16)
        study.finish(child.id, "done", objective=0.16)
        study.enqueue([{"lr": 0.02, "hidden": 80}, {"lr": 0.007, "momentum": 0.97}], "random")
    return study
