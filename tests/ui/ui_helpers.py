"""Shared helpers for the UI tests: spaces, studies (live or built through the Study API), driving the
app under a Pilot and reading what it shows."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.text import Text
from space_toml import hidden, layers, lr, momentum, param, space_toml
from study_runs import TOY, ZERO_CODE
from textual.pilot import WaitForScreenTimeout
from waiting import CEILING

from tui_tuner.runtime.session import Session
from tui_tuner.search.space import parse_space
from tui_tuner.study.study import Study
from tui_tuner.ui.app import TunerApp
from tui_tuner.ui.backend import Backend
from tui_tuner.ui.widgets.tables import ParamsTable


def space_text(*, name: str = "ui-test", parallel: int = 1, budget: int = 4, steps: int = 1_000_000,
               delay: float = 0.005, fail: int = 0) -> str:
    """The UI test space on the toy trainer (trainer API), with some [study] values and defaults to vary."""
    params = {
        "lr": lr(low=1e-3, high=0.5, default=0.05, tier=1, live=True),
        "momentum": momentum(low=0.5, high=0.99, live=True),
        "hidden": hidden(low=16, high=128, default=64),
        "layers": layers(values=[1, 2, 3], default=2),
        "steps": param("int", low=1, high=1000000, default=steps, tier=4),
        "delay": param("float", low=0.0, high=1.0, default=delay, tier=4),
        "fail": param("int", low=0, high=1000000, default=fail, tier=4),
    }
    return space_toml(params, name=name, command=["python", str(TOY)], parallel=parallel, budget=budget,
                      strategy="random", stage=2, stall_timeout=300)


def zero_code_space() -> str:
    """A zero-code space: the script takes lr as a flag and prints its step and loss, for a long while."""
    return space_toml({"lr": lr(low=1e-3, high=0.5, default=0.05, tier=1, live=True, flag="--trainer.learning_rate")},
                      name="flags", command=["python", str(ZERO_CODE), "--steps", "100000"], objective="loss",
                      parallel=1, budget=1, strategy="random", stage=1,
                      metrics={"step": r"step (\d+)", "loss": r"loss ([0-9.eE+-]+)"})


def open_study(directory: Path, text: str, *, seed: int = 1) -> Study:
    """Create or reopen a study of this space text in `directory`."""
    path = directory.parent / f"{directory.name}.toml"
    path.write_text(text)
    return Study.open(directory, parse_space(text, str(path)), seed=seed)


def make_backend(study: Study, cwd: Path, **kw: Any) -> Backend:
    """A back end with short stop timeouts and no GPU probe."""
    options = {"cwd": cwd, "stop_timeout": 1.0, "term_timeout": 1.0, "checkpoint_timeout": 10.0}
    session_kw = {k: kw.pop(k) for k in ("runner", "scheduler", "autostart", "overrides") if k in kw}
    return Backend(Session(study, runner_options=options, **session_kw), gpu=False, **kw)


def make_app(study: Study, cwd: Path, *, live: bool = True, **kw: Any) -> TunerApp:
    """The app on a study, its back end built with make_backend."""
    return TunerApp(make_backend(study, cwd, **kw), live=live)


def plain(x: Any) -> str:
    """The text a user reads in a cell or a Static's content."""
    if isinstance(x, Text):
        return x.plain
    plain_attr = getattr(x, "plain", None)
    return plain_attr if isinstance(plain_attr, str) else str(x)


async def wait_until(pilot: Any, cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Let the app run until cond() is truthy; fail with `what` after timeout (x waiting.CEILING) seconds."""
    timeout *= CEILING
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = cond()
        if result:
            return result
        with contextlib.suppress(WaitForScreenTimeout):
            # Textual gives a screen 30 s to empty its message queue; on a box loaded past that, the
            # screen is slow, not wrong: the condition and this wait's own ceiling decide.
            await pilot.pause(0.05)
    app = pilot.app
    seen = list(getattr(app, "said_log", []))[-5:]
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (messages: {seen}; {shown(app)})")


def shown(app: Any) -> str:
    """What the main screen's run header and status line say now, for a failed wait's message."""
    try:
        return f"header: {header(app)!r}, status: {status(app)!r}"
    except Exception as e:  # noqa: BLE001 - no main screen yet, or it is being torn down
        return f"no main screen to read ({type(e).__name__})"


S = TypeVar("S")


async def screen_of(pilot: Any, kind: type[S], what: str, timeout: float = 10) -> S:
    """Wait until the app shows a screen of this kind, mounted (its widgets composed), and return it."""
    app = pilot.app
    return await wait_until(pilot, lambda: isinstance(app.screen, kind) and app.screen.is_mounted and app.screen,
                            timeout, what)


@contextlib.asynccontextmanager
async def piloting(app: TunerApp, size: tuple[int, int] = (80, 24)) -> AsyncIterator[Any]:
    """Run the app at this size under a Pilot; its study is closed afterwards, whatever happened."""
    try:
        async with app.run_test(size=size) as pilot:
            yield pilot
    finally:
        app.backend.session.study.close()


# -- what the user reads -------------------------------------------------------------------------


def header(app: TunerApp) -> str:
    """The run panel's first line, as shown."""
    return plain(app.main.query_one("#run-header").content)


def status(app: TunerApp) -> str:
    """The status line, as shown."""
    return plain(app.main.query_one("#status").content)


def param_cell(app: TunerApp, name: str, column: str) -> str:
    """One cell of the hyperparameters table."""
    return plain(app.main.query_one(ParamsTable).get_cell(name, column)).strip()


def said(app: TunerApp, word: str) -> bool:
    """True once a message containing `word` was shown."""
    return any(word in m for _, _, m in app.said_log)


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


CRASH_OUTPUT = ("epoch 1\nepoch 2\nTraceback (most recent call last):\n"
                "RuntimeError: CUDA error: device-side assert\n")


def loss_reports(values: list[float]) -> list[tuple[int, dict[str, float]]]:
    """(step, metrics) reports of a val_loss curve: one every 10 steps, its loss 0.9 of its val_loss."""
    return [(i * 10, {"loss": v * 0.9, "val_loss": v}) for i, v in enumerate(values, 1)]


def write_reports(run_dir: Path, reports: list[tuple[int, dict[str, float]]], t0: float,
                  output: str = CRASH_OUTPUT) -> None:
    """An events.jsonl of these (step, metrics) reports, one a second from t0, then `done`; and an output.log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "events.jsonl", "w") as f:
        for i, (step, metrics) in enumerate(reports, 1):
            f.write(json.dumps({"t": t0 + i, "step": step, "metrics": metrics}) + "\n")
        f.write(json.dumps({"t": t0 + len(reports) + 1, "event": "done"}) + "\n")
    (run_dir / "output.log").write_text(output)


def record_run(study: Study, trial_id: int, reports: list[tuple[int, dict[str, float]]],
               objective: float | None, *, reason: str | None = None, clock: FixedClock | None = None,
               seconds: float = 0.0, output: str = CRASH_OUTPUT) -> None:
    """Start a queued trial and end it as its run would have: reports on disk, its last step and
    objective recorded, then done (or failed, with `reason`). With a clock, the run takes `seconds`."""
    study.mark_started(trial_id, 0)
    write_reports(study.run_dir(trial_id), reports, 1_700_000_000.0, output)
    study.update_progress(trial_id, reports[-1][0], objective)
    if clock is not None:
        clock.now += seconds
    if reason is not None:
        study.finish(trial_id, "failed", reason=reason)
    else:
        study.finish(trial_id, "done", objective=objective)


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
            if obj is None:
                record_run(study, t.id, loss_reports(curve(3.0, 8)), None,
                           reason="exit code 1:\nRuntimeError: CUDA error: device-side assert")
            else:
                record_run(study, t.id, loss_reports(curve(obj)), obj)
        child = study.add_fork(trials[2].id, {"lr": 0.01}, 200, None)
        record_run(study, child.id, loss_reports(curve(0.16)), 0.16)
        study.enqueue([{"lr": 0.02, "hidden": 80}, {"lr": 0.007, "momentum": 0.97}], "random")
    return study
