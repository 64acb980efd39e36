"""The babysitter's hand moves, one key each: the learning rate ×0.5 or ×2, and "train longer".

The session exposes them (the app's keys and the autopilot use the same operations). The learning
rate is the space's live, log-scale parameter named `lr` or `learning_rate`; a space without one
is told what to add. "Train longer" raises a run's step limit, which its trainer reads each step
through `trainer.max_steps(default)`; a run whose trainer never said its limit cannot be extended.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tui_tuner.core.formatting import short_value
from tui_tuner.core.param import Param
from tui_tuner.core.space import Space
from tui_tuner.errors import RunError
from tui_tuner.runtime.runner import Runner

LR_NAMES = ("lr", "learning_rate")
LONGER = 1.5          # "train longer" multiplies the step limit by this


def lr_param(space: Space) -> Param:
    """The live learning rate: a log-scale parameter named lr or learning_rate; RunError saying what is missing."""
    found = [space[n] for n in LR_NAMES if n in space]
    for p in found:
        if p.live and p.type == "float" and p.scale == "log":
            return p
    if found:
        p = found[0]
        why = "is not live" if not p.live else f"is not a float on a log scale (it is {p.scale_label})"
        raise RunError(f"params.{p.name} {why}: lr ×0.5/×2 needs a live log-scale learning rate "
                       f"(type = \"float\", scale = \"log\", live = true)")
    raise RunError("this space has no live learning rate: lr ×0.5/×2 needs a log-scale float parameter "
                   "named lr or learning_rate with live = true")


def scaled_lr(space: Space, current: float, factor: float) -> tuple[str, float, str]:
    """(name, new value, note): the lr times factor, kept inside its range (the note says when clipped)."""
    p = lr_param(space)
    want = float(current) * factor
    new = min(max(want, float(p.low)), float(p.high))
    if new == float(current):
        edge = "top" if factor > 1 else "bottom"
        raise RunError(f"{p.name} is already at the {edge} of its range ({short_value(new)})")
    note = f" (clipped to the range's {'top' if new < want else 'bottom'})" if new != want else ""
    return p.name, new, note


def lr_change(runner: Runner, space: Space, trial_id: int, factor: float) -> dict[str, float]:
    """The live change that scales a running trial's learning rate by `factor` ({name: value})."""
    if not runner.is_live(trial_id):
        raise RunError(f"trial {trial_id} is not running")
    if not runner.can_adjust(trial_id):
        raise RunError(f"trial {trial_id}: adjust is not available for a zero-code run (fork it instead)")
    name = lr_param(space).name
    current = runner.latest(trial_id)["params"].get(name)
    if not isinstance(current, (int, float)):
        raise RunError(f"trial {trial_id} has no {name} value to scale")
    name, new, _ = scaled_lr(space, float(current), factor)
    return {name: new}


def longer_steps(runner: Runner, trial_id: int, factor: float = LONGER) -> tuple[int, int]:
    """(old, new) step limit for "train longer": factor times the limit, and past the current step."""
    run = runner.runs.get(trial_id)
    old = run.state.max_steps if run is not None and run.live else None
    if run is None or not run.live:
        raise RunError(f"trial {trial_id} is not running")
    if old is None:
        raise RunError(f"trial {trial_id}: its trainer does not read trainer.max_steps(), so its step "
                       f"limit cannot change while it trains (see the README's trainer API)")
    step = run.state.step or 0
    return old, max(int(round(old * factor)), step + 1, old + 1)


class HandMoves:
    """The session's hand moves (Session inherits them; the app's keys and the autopilot call them)."""

    runner: Runner
    space: Space
    adjust: Callable[[int, Mapping[str, Any]], str]
    _decisions: Any   # the session's automatic decisions (runtime/decisions.py): pins

    def scale_lr(self, trial_id: int, factor: float) -> str:
        """The learning rate of a running trial ×factor (×0.5, ×2), without a form."""
        changes = lr_change(self.runner, self.space, trial_id, factor)
        return self.adjust(trial_id, changes) + f" (lr ×{factor:g})"

    def train_longer(self, trial_id: int, factor: float = LONGER) -> str:
        """Extend a running trial's step limit (its trainer reads trainer.max_steps)."""
        old, new = longer_steps(self.runner, trial_id, factor)
        self.runner.set_max_steps(trial_id, new)
        self._decisions.pin(trial_id)   # a run the user is babysitting is not stopped automatically
        return f"#{trial_id}: train longer, steps {old} → {new}"
