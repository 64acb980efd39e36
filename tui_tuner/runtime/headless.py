"""Headless mode (`tui-tuner run SPACE --headless`): the session's loop without the app.

A thin loop: poll the runs, tick the session, print one line per finished trial (and per notice
worth reading), then a summary. Everything it does to the study goes through the Session, the
same layer the app uses.
"""

from __future__ import annotations

import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tui_tuner.errors import StudyError
from tui_tuner.formatting import setting_line, show_value
from tui_tuner.printable import printable
from tui_tuner.runtime.devices import Devices
from tui_tuner.runtime.runner import RunEvent
from tui_tuner.runtime.session import Session
from tui_tuner.runtime.session_events import Notice, SessionEvent
from tui_tuner.search.space import load_space
from tui_tuner.study.decision_log import Decision
from tui_tuner.study.store import first_line
from tui_tuner.study.study import Study

# A headless line per trial: a done trial's setting is cut here (the summary and `show` have it
# whole); a failed one's is never cut, since the parameter that broke it may be the last one.
SETTING_WIDTH = 70
REASON_WIDTH = 160   # the first line of a failure's reason, cut here (`show --json` has it whole)
SUMMARY_WIDTH = 200  # the best trial's setting in the summary
SAID_TITLES = ("Settings", "Early stopping", "Autopilot")   # information notices headless prints too


def on_devices(devices: Devices | None) -> str:
    """' per device on GPUs 0, 1' (nothing without devices)."""
    return f" per device on GPU{'s' if len(devices) > 1 else ''} {', '.join(devices.devices)}" if devices else ""


def run_headless(space_path: str | Path | None, study_dir: str | Path | None = None,
                 trials: int | None = None, parallel: int | str | None = None, strategy: str | None = None,
                 seed: int | None = None, out: TextIO | None = None, *, interval: float = 0.05,
                 runner_options: dict[str, Any] | None = None, early_stop: str | None = None,
                 step_budget: int | None = None, time_budget: float | str | None = None,
                 autopilot: str | None = None, early_stop_min_step: int | None = None,
                 early_stop_max_step: int | None = None) -> int:
    """Run the tuning loop without the app; one line per finished trial, then a summary.

    Re-running on the same study re-adopts live runs, settles ended ones and starts only what is
    missing to reach the budget; the settings given by flag are kept in the study, so a rerun
    without them continues with them. SIGINT/SIGTERM stop the runs cleanly and leave the study intact.
    Returns the exit code (0 done, 130 interrupted, 1 when fail fast paused the queue on a repeated
    mistake: the study did not run its budget; run the same command again once it is fixed).
    """
    from tui_tuner.study.study import default_dir

    space = load_space(space_path) if space_path is not None else None
    if study_dir is None:
        if space is None:
            raise StudyError("give a space file or --study DIR")
        study_dir = default_dir(space)
    study = Study.open(study_dir, space, seed=seed)
    stream = out if out is not None else sys.stdout

    def say(line: str) -> None:
        # Reasons, settings and notices carry what trainers printed: shown, never acted on by the terminal.
        print(printable(line, newlines=True), file=stream, flush=True)

    options = {"budget": trials, "parallel": parallel, "strategy": strategy, "early_stop": early_stop,
               "early_stop_min_step": early_stop_min_step, "early_stop_max_step": early_stop_max_step,
               "step_budget": step_budget, "time_budget": time_budget, "autopilot": autopilot}
    try:
        session = Session(study, runner_options=runner_options, overrides=options)
        session.subscribe(lambda ev: _print(session, ev, say))
        return _loop(session, say, interval)
    finally:
        study.close()


def _loop(session: Session, say: Any, interval: float) -> int:
    study, cfg = session.study, session.config
    interrupted = 0

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal interrupted
        interrupted += 1
        if interrupted > 1:
            session.hurry()   # a second Ctrl-C: skip the grace periods

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        session.adopt()
        sched = session.scheduler
        say(f"study {study.dir}: {sched.strategy}, budget {sched.budget} ({study.budget_used()} started), "
            f"parallel {'auto (k from ' + str(sched.parallel) + ')' if sched.auto_k else sched.parallel}"
            f"{on_devices(session.runner.devices)}, "
            f"objective {cfg.objective} ({cfg.direction})")
        while not interrupted:
            session.poll()
            if interrupted:
                break
            session.tick(strict=True)
            if session.done():
                break
            time.sleep(interval)
        if interrupted:
            say(f"interrupted: stopping {len(session.runner.queries.live_ids())} run(s) "
                "(stop, then SIGTERM, then SIGKILL)...")
            with_stop = session.stop_all()
            left = session.runner.queries.live_ids()
            if left:
                say(f"could not stop trial(s) {', '.join(map(str, left))}; they are still running")
            elif with_stop:
                say("all runs stopped")
        if sched.message:
            say(sched.message)
        summary(study, say, interrupted=bool(interrupted))
        say(f"budget used: {sched.usage().text()}")
    finally:
        for s, h in old_handlers.items():
            signal.signal(s, h)
        session.close()
    if interrupted:
        return 130
    return 1 if sched.fail_fast.paused_at is not None else 0


def _print(session: Session, ev: SessionEvent, say: Any) -> None:
    """The line an event gets in headless mode, if any."""
    if isinstance(ev, RunEvent):
        if ev.kind == "ended" and ev.data.get("requeued"):
            say(f"trial {ev.trial_id:>4}  re-queued  ({first_line(ev.data.get('reason'), REASON_WIDTH)}; "
                "not counted: the same setting runs again)")
        elif ev.kind == "ended":
            t = session.trial(ev.trial_id)
            status = ev.data["status"]
            reason = first_line(ev.data.get("reason"), REASON_WIDTH)
            why = f"  ({reason})" if reason else ""
            setting = setting_line(t.params, SETTING_WIDTH if status == "done" else None)
            say(f"trial {t.id:>4}  {status:<8}  {session.config.objective}={show_value(ev.data.get('objective'))}"
                f"  step={show_value(t.step)}  {setting}{why}")
        elif ev.kind == "started" and ev.data.get("adopted"):
            what = f"Slurm job {ev.data['job']}" if ev.data.get("job") else f"pid {ev.data.get('pid')}"
            say(f"trial {ev.trial_id:>4}  re-adopted ({what}, still running)")
        elif ev.kind == "stalled" and ev.data.get("stalled"):
            say(f"trial {ev.trial_id:>4}  stalled: no event for {session.runner.stall_timeout:g}s (not killed)")
    elif isinstance(ev, Notice):
        # Most information notices repeat what the lines above say (re-adopted, the scheduler's
        # message); what the study keeps on and where early stopping judges are said once.
        if ev.severity != "information":
            say(f"{ev.severity}: {ev.title}: {ev.message}")
        elif ev.title in SAID_TITLES:
            say(f"{ev.title.lower()}: {ev.message}")
    elif isinstance(ev, Decision) and not ev.pending and not ev.is_undone:
        say(f"{'trial ' + format(ev.trial_id, '>4') + '  ' if ev.trial_id is not None else ''}"
            f"{ev.kind}: {ev.message}")


def summary(study: Study, say: Any, *, interrupted: bool) -> None:
    """The closing lines: counts, the best trial and how to export it, where the study is."""
    counts = {k: v for k, v in study.counts().items() if v}
    say("summary: " + ", ".join(f"{v} {k}" for k, v in counts.items()) if counts else "summary: no trials")
    best = study.best(1)
    cfg = study.space.config
    if best:
        b = best[0]
        say(f"best: trial {b.id}  {cfg.objective}={show_value(b.objective)}  {setting_line(b.params, SUMMARY_WIDTH)}")
        say(f"export it: tui-tuner export {shlex.quote(str(study.dir))} --best -o best.toml")
    else:
        say("best: none (no trial finished with an objective)")
    if interrupted:
        say(f"the study is intact in {study.dir}; run the same command again to continue")
    else:
        say(f"study: {study.dir}")
