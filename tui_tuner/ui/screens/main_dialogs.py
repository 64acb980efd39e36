"""The dialogs the main screen's keys open: each builds its form or prompt and sends the answer on.

Every function takes the main screen (for the app, its back end and the snapshot) and what the key
acts on; what the user types goes to the back end as one command, whose message the app then says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tui_tuner.formatting import short_value
from tui_tuner.ui.screens.dialogs import (
    Confirm,
    OutputView,
    ParamForm,
    Prompt,
    parse_count,
    parse_path,
    parse_stage,
)

if TYPE_CHECKING:
    from tui_tuner.search.param import Param
    from tui_tuner.search.space import Space


def _fields(space: Space, params: Mapping[str, Any], *, live_only: bool = False) -> list[tuple[Param, Any]]:
    """A form's fields: each parameter in priority order with its value in `params` (else its default)."""
    return [(p, params.get(p.name, p.default)) for p in space.by_priority() if p.live or not live_only]


async def adjust(screen: Any, run: Any) -> None:
    """The form that changes a running trial's live parameters while it trains."""
    tuner = screen.tuner
    session = tuner.session
    # Prefilled with what the run uses now (its reported lr, which a schedule may have decayed), read
    # fresh: the frame on screen may be a moment older than a change just applied.
    now = await tuner.call_or_say(session.current_values, run.id)
    if now:
        run = replace(run, current=now)
    fields = _fields(session.space, run.current or run.params, live_only=True)
    if not fields:
        tuner.say("no parameter is live (set live = true in the space file)", title="Adjust", severity="warning")
        return

    async def apply(changes: dict) -> str:
        return await tuner.call(session.adjust, run.id, changes)

    screen.app.push_screen(ParamForm(f"Adjust #{run.id} while it trains", fields, apply,
                                     intro=adjust_intro(session.space, run), id="adjust"), tuner.said)


def adjust_intro(space: Space, run: Any) -> str:
    """The adjust form's first lines: the values shown are the ones used now; what each started at."""
    lines = ["Live parameters only, as the run uses them now; the trainer applies changes at its next report."]
    started = run.started or {}
    now = run.current or run.params
    notes = [f"{p.name} now {short_value(now.get(p.name))}, started at {short_value(started.get(p.name))}"
             for p in space.by_priority()
             if p.live and p.name in started and p.name in now and now.get(p.name) != started.get(p.name)]
    if notes:
        lines.append("; ".join(notes) + ".")
    return "\n".join(lines)


def adjust_why(screen: Any, run: Any) -> None:
    """Say why adjust is greyed for the focused run (or for none), and what to do instead."""
    if run is None:
        message = ("no run is going to adjust: start one (n samples settings, the queue starts them) "
                   "or focus one (] or enter in Trials)")
    else:
        message = (f"#{run.id} is driven without the trainer API (zero-code): its settings are flags "
                   "fixed at start, so it cannot be adjusted; fork it instead (f restarts it with "
                   "the settings you change)")
    screen.tuner.say(message, title="Adjust", severity="warning")


def fork(screen: Any, run: Any) -> None:
    """The form that forks a running trial from its current state with changed settings."""
    tuner = screen.tuner
    backend = tuner.backend
    fields = _fields(tuner.session.space, run.params)
    intro = ("The child starts from a checkpoint of this run, with these settings." if run.can_adjust
             else "Zero-code run: the child restarts from scratch with these flags.")

    # Checkpoint now: the form says "at step N", and the run may end while the user types.
    prepared = backend.submit(tuner.session.prepare_fork, run.id)

    async def apply(changes: dict) -> str:
        # The checkpoint of the moment the form opened, if it was asked for (a zero-code run has none).
        seq = prepared.result() if prepared.done() and prepared.exception() is None else None
        await tuner.call(tuner.session.fork, run.id, changes, seq)
        return ""   # the fork is said when it has started (or why it could not)

    # A zero-code child restarts from scratch: no step to fork at. A checkpointed one forks at the
    # checkpoint's step, which the title shows once it is written (the step recorded for the child).
    title = f"Fork #{run.id} at step {run.step}" if run.can_adjust else f"Restart #{run.id} from scratch"
    form = ParamForm(title, fields, apply, intro=intro, allow_empty=True, id="fork")
    if run.can_adjust:
        def show_step() -> None:
            step = backend.fork_step(run.id, prepared)
            if step is not None or not form.is_attached:
                timer.stop()
            if step is not None:
                form.retitle(f"Fork #{run.id} at step {step}")

        timer = screen.set_interval(0.05, show_step)
    screen.app.push_screen(form, tuner.said)


def sample(screen: Any) -> None:
    """The prompt that samples N more settings into the queue."""
    tuner = screen.tuner

    async def apply(n: int) -> str:
        return await tuner.call(tuner.session.search.sample, n)

    screen.app.push_screen(Prompt("Sample settings", "How many settings to queue:", "4", apply, parse_count,
                                  intro="Random settings from the current search region.", id="sample"),
                           tuner.said)


def stage(screen: Any) -> None:
    """The prompt that changes the priority stage: search tiers <= T."""
    tuner = screen.tuner
    current = str(screen.snap.stage) if screen.snap else "4"

    async def apply(stage: int) -> str:
        return await tuner.call(tuner.session.search.set_stage, stage)

    screen.app.push_screen(Prompt("Priority stage", "Search tiers <= (1-4):", current, apply, parse_stage,
                                  intro="1: learning rate only; 2: + momentum, hidden units, batch; "
                                        "3: + layers, decay; 4: everything.", id="stage"),
                           tuner.said)


async def edit(screen: Any, trial_id: int) -> None:
    """The form that changes a queued trial's settings."""
    tuner = screen.tuner
    trial = await tuner.call_or_say(tuner.session.trial, trial_id)
    if trial is None:
        return
    fields = _fields(tuner.session.space, trial.params)

    async def apply(changes: dict) -> str:
        return await tuner.call(tuner.session.search.edit, trial_id, changes)

    screen.app.push_screen(ParamForm(f"Edit queued #{trial_id}", fields, apply, id="edit"), tuner.said)


async def export(screen: Any, trial_id: int | None) -> None:
    """The prompt that exports a trial's setting to TOML (None: the best trial), offering the default path."""
    tuner = screen.tuner
    if trial_id is None:
        trial_id = screen.snap.best_id if screen.snap is not None else None
        if trial_id is None:
            tuner.say("no trial has finished with an objective yet, so there is no best to export: choose a "
                      "row in Trials first", title="Export", severity="warning")
            return
        which = f"the best trial, #{trial_id}"
    else:
        which = f"trial #{trial_id}"
    default = await tuner.call_or_say(tuner.session.default_export_path, trial_id)
    if default is None:
        return

    async def apply(path: str) -> str:
        out = await tuner.call(tuner.session.export, trial_id, path)
        return f"wrote {out}"

    screen.app.push_screen(Prompt(f"Export {which}", "Write TOML to:", default, apply, parse_path,
                                  intro="One key per parameter, plus a [tuner] table. (Move the Trials cursor "
                                        "to export another.)", id="export"),
                           tuner.said)


async def output(screen: Any, trial_id: int) -> None:
    """The view of a trial's reason and last output lines."""
    out = await screen.tuner.call_or_say(screen.tuner.session.output, trial_id)
    if out is not None:
        screen.app.push_screen(OutputView(out.trial_id, out.status, out.reason, out.lines))


def quit_stop(screen: Any) -> None:
    """Ask before stopping every run and quitting."""
    n = len(screen.snap.active_ids) if screen.snap else 0

    def answered(result: str | None) -> None:
        if result == "yes":
            screen.tuner.quit(stop_runs=True)

    screen.app.push_screen(Confirm("Stop all and quit", f"Stop {n} running trial(s) and quit?", id="confirm"),
                           answered)
