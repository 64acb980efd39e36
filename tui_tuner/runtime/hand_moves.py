"""The babysitter's hand moves as decisions: lr ×0.5 / ×2, "train longer", adjust, pin, and their undo.

Each is one user decision carried out by the executor (runtime/executor.py) and kept in the
decision log, so it shows there and can be undone. They act on what the run uses *now*: a run that
reports its learning rate as a metric (trainer_torch's helpers, the Lightning and HF callbacks and
the bundled trainers do: `lr`, or `learning_rate`) has that value scaled, not the one it started
with, which its scheduler may have decayed long since. A hand move pins the run: no automatic
decision touches a run the user is babysitting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tui_tuner.errors import RunError
from tui_tuner.formatting import short_value
from tui_tuner.runtime.executor import Action, Step
from tui_tuner.runtime.runner import Runner
from tui_tuner.search.param import Param
from tui_tuner.search.space import Space
from tui_tuner.study import pins
from tui_tuner.study.decision_log import USER
from tui_tuner.study.study import Study

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


def reported(metrics: Mapping[str, Any], name: str) -> float | None:
    """The value a run reports for a live parameter (the lr also under its other name), or None."""
    names = (name, *[n for n in LR_NAMES if n != name]) if name in LR_NAMES else (name,)
    for n in names:
        v = metrics.get(n)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return float(v)
    return None


def current_values(space: Space, latest: Mapping[str, Any],
                   changes: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The settings a run trains with now: its settings, each live float parameter it reports as a
    metric replaced by that reported value (the lr its scheduler has decayed to), unless a live
    change of it took effect at or after its last report (`changes`, the runner's: the report is older)."""
    params = dict(latest.get("params") or {})
    metrics = latest.get("metrics") or {}
    step = latest.get("step") or 0
    fresh = {n for c in changes if (c.get("step") or 0) >= step for n in (c.get("params") or {})}
    for name, p in space.params.items():
        if p.live and p.type == "float" and name in params and name not in fresh:
            v = reported(metrics, name)
            if v is not None:
                params[name] = v
    return params


def scaled_lr(space: Space, current: float, factor: float) -> tuple[str, float, str]:
    """(name, new value, note): the lr times factor, kept inside its range (the note says when clipped)."""
    p = lr_param(space)
    want = float(current) * factor
    lo, hi = float(p.low), float(p.high)  # type: ignore[arg-type]
    new = min(max(want, lo), hi)
    if (factor < 1 and new >= current) or (factor > 1 and new <= current):
        edge = "top" if factor > 1 else "bottom"
        raise RunError(f"{p.name} is {short_value(current)} now: ×{factor:g} would go past the {edge} of its "
                       f"range [{short_value(lo)}, {short_value(hi)}]")
    note = f" (clipped to the range's {'top' if new < want else 'bottom'})" if new != want else ""
    return p.name, new, note


def _live(runner: Runner, trial_id: int) -> dict[str, Any]:
    if not runner.queries.is_live(trial_id):
        raise RunError(f"trial {trial_id} is not running")
    return runner.queries.latest(trial_id)


def _adjustable(runner: Runner, trial_id: int) -> dict[str, Any]:
    latest = _live(runner, trial_id)
    if not runner.commands.can_adjust(trial_id):
        raise RunError(f"trial {trial_id}: adjust is not available for a zero-code run (fork it instead)")
    return latest


def _pin_step(study: Study, trial_id: int) -> tuple[list[Step], bool]:
    was = trial_id in pins.pinned(study)
    return ([] if was else [{"op": "pin", "trial": trial_id, "pin": True}]), was


def lr_now(runner: Runner, trial_id: int, name: str, latest: Mapping[str, Any]) -> tuple[float, str]:
    """(the lr a run uses now, where that came from): a change sent and not applied yet; else one applied
    since its last report (the lr it reported predates it); else the lr it reports; else its setting."""
    setting = (latest.get("params") or {}).get(name)
    sent = runner.commands.last_sent(trial_id, name)
    if isinstance(sent, (int, float)) and sent != setting:
        return float(sent), "just set"
    now = current_values(runner.space, latest, runner.queries.changes(trial_id)).get(name)
    if not isinstance(now, (int, float)):
        raise RunError(f"trial {trial_id} has no {name} value to scale")
    if reported(latest.get("metrics") or {}, name) is None:
        return float(now), "set (the run reports no lr metric)"
    return float(now), "now"


def lr_move(study: Study, runner: Runner, trial_id: int, factor: float) -> Action:
    """×factor on the lr the run uses now (its reported lr, else its setting)."""
    latest = _adjustable(runner, trial_id)
    name = lr_param(study.space).name
    current, source = lr_now(runner, trial_id, name, latest)
    name, new, note = scaled_lr(study.space, current, factor)
    pin, was = _pin_step(study, trial_id)
    message = f"#{trial_id}: {name} {short_value(current)} → {short_value(new)} (×{factor:g} of its lr {source}){note}"
    return Action("lr", trial_id, message, [{"op": "set", "trial": trial_id, "params": {name: new}}, *pin],
                  {"param": name, "from": current, "to": new, "factor": factor, "was_pinned": was,
                   "setting": (latest.get("params") or {}).get(name)}, by=USER)


def adjust_move(study: Study, runner: Runner, trial_id: int, changes: Mapping[str, Any]) -> Action:
    """The adjust form's live changes."""
    if not changes:
        raise RunError("nothing changed")
    latest = _adjustable(runner, trial_id)
    now = current_values(study.space, latest)
    checked = study.space.check_setting(dict(changes), partial=True)
    pin, was = _pin_step(study, trial_id)
    message = f"#{trial_id}: " + ", ".join(f"{k} → {short_value(v)}" for k, v in checked.items())
    return Action("adjust", trial_id, message, [{"op": "set", "trial": trial_id, "params": checked}, *pin],
                  {"from": {k: now.get(k) for k in checked}, "to": checked, "was_pinned": was}, by=USER)


def longer_move(study: Study, runner: Runner, trial_id: int, factor: float = LONGER) -> Action:
    """Raise a run's step limit (its trainer reads trainer.max_steps each step)."""
    _adjustable(runner, trial_id)
    run = runner.runs.get(trial_id)
    old = run.state.max_steps if run is not None else None
    if old is None:
        raise RunError(f"trial {trial_id}: its trainer does not read trainer.max_steps(), so its step "
                       f"limit cannot change while it trains (see the README's trainer API)")
    step = (run.state.step if run is not None else None) or 0
    new = max(int(round(old * factor)), step + 1, old + 1)
    pin, was = _pin_step(study, trial_id)
    return Action("max_steps", trial_id, f"#{trial_id}: train longer, steps {old} → {new}",
                  [{"op": "max_steps", "trial": trial_id, "steps": new}, *pin],
                  {"from": old, "to": new, "was_pinned": was}, by=USER)


def pin_move(study: Study, trial_id: int) -> Action:
    """Pin the run (no automatic decision touches it), or unpin it."""
    trial = study.trial(trial_id)
    if trial.status == "queued":
        raise RunError(f"trial {trial_id} is queued: pin it once it runs")
    pin = trial_id not in pins.pinned(study)
    what = ("pinned: no early stop or autopilot decision touches it" if pin
            else "unpinned: early stopping and the autopilot may act on it again")
    return Action("pin", trial_id, f"#{trial_id} {what}", [{"op": "pin", "trial": trial_id, "pin": pin}],
                  {"pin": pin}, by=USER)


def undo_steps(study: Study, runner: Runner, d: Any) -> tuple[list[Step], str]:
    """How to undo a hand move: the old value back (the run must still be going), the pin it added removed."""
    tid = d.trial_id
    data = d.data
    unpin: list[Step] = [] if data.get("was_pinned", True) else [{"op": "pin", "trial": tid, "pin": False}]
    if d.kind == "pin":
        return [{"op": "pin", "trial": tid, "pin": not data.get("pin", True)}], \
            f"#{tid} {'unpinned' if data.get('pin', True) else 'pinned'} again"
    if not runner.queries.is_live(tid):
        raise RunError(f"#{tid} is not running any more: its {d.kind} cannot be put back")
    if d.kind == "lr":
        name = data["param"]
        return [{"op": "set", "trial": tid, "params": {name: data["from"]}}, *unpin], \
            f"#{tid}: {name} back to {short_value(data['from'])}"
    if d.kind == "adjust":
        old = {k: v for k, v in (data.get("from") or {}).items() if v is not None}
        if not old:
            raise RunError(f"decision #{d.id} does not say what the values were before")
        return [{"op": "set", "trial": tid, "params": old}, *unpin], \
            f"#{tid}: " + ", ".join(f"{k} back to {short_value(v)}" for k, v in old.items())
    if d.kind == "max_steps":
        return [{"op": "max_steps", "trial": tid, "steps": data["from"]}, *unpin], \
            f"#{tid}: steps back to {data['from']}"
    raise RunError(f"a {d.kind} decision cannot be undone")


KINDS = ("lr", "adjust", "max_steps", "pin")
