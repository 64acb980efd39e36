"""The autopilot as a policy of the automation loop: PBT's exploit and explore (search/pbt.py decides).

On each tick (the app's and headless mode's alike), a live run that has trained `interval` steps
since it was last judged is judged against the others (core/pbt.judge). A bottom run becomes a "pbt"
Action, carried out by the executor in steps that never wait on the command thread:

1. checkpoint the top run it will be forked from;
2. once that checkpoint is written (a later tick), start the fork from it with the explored
   settings (not if the bottom run ended on its own meanwhile: its slot is the scheduler's);
3. checkpoint the bottom run, then stop it (the checkpoint first, so an undo resumes it exactly).

The fork starts before the stop, so the scheduler never sees the slot free and fills it from the
queue. Undo resumes the stopped run from its checkpoint (pinned) and stops the fork. A perturbation
scales what the top run uses now: its reported lr, not the one it started with.

The autopilot is turned on by the space (`autopilot = "pbt"`), a flag (`--autopilot pbt`) or the
app's `A` key (PBT with the space's or the documented defaults); each is kept in the study.
Pinned runs are never touched; zero-code runs cannot be exploited (said once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from tui_tuner.errors import RunError
from tui_tuner.runtime.executor import AT, CHILD, Action, Step
from tui_tuner.runtime.hand_moves import current_values
from tui_tuner.runtime.runner import Runner
from tui_tuner.search.pbt import Member, PbtConfig, judge, pbt_config
from tui_tuner.study import pins
from tui_tuner.study.decision_log import USER, VOID, Decision, DecisionLog
from tui_tuner.study.study import Study

KIND = "pbt"                     # the replacements' kind in the log
TOGGLE = "autopilot"             # turning it on or off, by key or flag
REASON_PREFIX = "autopilot: "    # a replaced run's reason in the study
ZERO_CODE = ("zero-code runs cannot be exploited (no checkpoint to continue from, no live change): "
             "the autopilot stays off for this study")


class AutopilotPolicy:
    """Judges the live runs as they train and replaces the bottom ones by forks of the top ones.

    `say(message, severity)` tells the user what cannot be done; `halted()` is True while no new run
    may start (a step or time budget spent, the app holding).
    """

    def __init__(self, study: Study, runner: Runner, log: DecisionLog, *, say: Callable[[str, str], None],
                 halted: Callable[[], bool] = lambda: False) -> None:
        self.study = study
        self.runner = runner
        self.log = log
        self.say = say
        self.halted = halted
        self.objective = study.config.objective
        self.maximize = study.config.maximize
        self._next: dict[int, int] = {}         # trial -> the step at which it is judged next
        self._said_zero_code = False

    @property
    def config(self) -> PbtConfig:
        """The autopilot settings in force (the study's, with what the user turned on)."""
        return self.study.config.autopilot

    @property
    def enabled(self) -> bool:
        """True while PBT runs."""
        return self.config.active

    def state(self) -> str:
        """'pbt/100' (PBT every 100 steps) or 'off', for the status line."""
        return f"pbt/{self.config.interval}" if self.enabled else "off"

    def describe(self) -> str:
        """'PBT every 100 steps, bottom 25% replaced by forks of the top' or 'off'."""
        c = self.config
        return (f"PBT every {c.interval} steps, bottom {c.fraction:.0%} replaced by forks of the top"
                if self.enabled else "off")

    # -- the key --------------------------------------------------------------------------------------

    def toggle(self) -> Action:
        """The `A` key: turn PBT on (the space's interval and fractions, else the defaults) or off."""
        if not self.enabled and self.study.config.zero_code:
            raise RunError("autopilot: " + ZERO_CODE)
        on = not self.enabled
        if on:
            c = pbt_config("pbt", self.config.interval, self.config.fraction, self.config.resample)
            message = (f"autopilot on: PBT every {c.interval} steps, bottom {c.fraction:.0%} replaced by forks "
                       f"of the top")
        else:
            message = "autopilot off: no run is replaced any more"
        steps: list[Step] = [{"op": "setting", "key": "autopilot", "value": "pbt" if on else "none"}]
        return Action(TOGGLE, None, message, steps, {"from": self.config.rule, "to": "pbt" if on else "none"},
                      by=USER)

    # -- the tick -------------------------------------------------------------------------------------

    def tick(self, busy: set[int]) -> list[Action]:
        """The replacements due now; `busy` are runs a decision under way is about (never judged)."""
        if not self.enabled:
            return []
        if self.study.config.zero_code:
            if not self._said_zero_code:
                self._said_zero_code = True
                self.say(ZERO_CODE, "warning")
            return []
        if self.halted():
            return []
        members = [m for m in self.members() if m.trial_id not in busy]
        population = list(members)
        out = []
        for m in sorted(members, key=lambda m: m.trial_id):
            due = self._next.setdefault(m.trial_id, m.start + self.config.interval)
            if m.step < due or m.value is None:
                continue
            self._next[m.trial_id] = m.step + self.config.interval
            # One generator per judgement, from the study's seed, the run and its step: the same
            # reports give the same forks, whatever was judged before.
            rng = np.random.default_rng([self.study.seed, m.trial_id, m.step])
            ex = judge(m, population, self.config, self.maximize, self.study.space, self.study.search_state, rng)
            if ex is None:
                continue
            population = [p for p in population if p.trial_id != ex.loser]
            message = (f"{ex.summary(self.objective)}; slot given to {CHILD} = fork of #{ex.winner}@{AT} "
                       f"with {ex.explored()}")
            steps: list[Step] = [
                {"op": "checkpoint", "trial": ex.winner, "required": True},
                {"op": "fork", "trial": ex.winner, "changes": ex.changes, "from": 0, "unless_ended": ex.loser},
                {"op": "checkpoint", "trial": ex.loser},
                {"op": "stop", "trial": ex.loser, "reason": REASON_PREFIX + message}]
            out.append(Action(KIND, ex.loser, message, steps, {**asdict(ex), "metric": self.objective}))
        return out

    def members(self) -> list[Member]:
        """The live runs as the decision sees them: latest step and objective, the settings they use now."""
        pinned = pins.pinned(self.study)
        out = []
        for tid in self.runner.queries.live_ids():
            latest = self.runner.queries.latest(tid)
            step = latest.get("step")
            if not isinstance(step, int) or latest.get("status") != "running" or latest.get("ending"):
                continue
            value = (latest.get("metrics") or {}).get(self.objective)
            trial = self.study.trial(tid)
            out.append(Member(tid, step, float(value) if isinstance(value, (int, float)) else None,
                              current_values(self.study.space, latest, self.runner.queries.changes(tid)),
                              start=trial.fork_step or 0,
                              pinned=tid in pinned, zero_code=not self.runner.commands.can_adjust(tid)))
        return out

    def judged_again(self, trial_id: int) -> None:
        """A replacement of this run was not carried out: judge it again at its next tick."""
        self._next[trial_id] = 0

    # -- undo -------------------------------------------------------------------------------------------

    def undo_steps(self, d: Decision) -> tuple[list[Step], str]:
        """How to undo a replacement: the stopped run resumes exactly from its checkpoint (pinned, so it
        is not replaced again) and the fork made for its slot is stopped."""
        data: dict[str, Any] = dict(d.data)
        loser = data.get("loser")
        out = d.progress.get("out") or {}
        child = out.get("child", data.get("child"))
        if not isinstance(loser, int):
            raise RunError("this autopilot decision names no stopped run")
        if d.state == VOID:
            raise RunError(f"decision #{d.id} was not carried out ({d.progress.get('void', 'a run ended')}): "
                           f"there is nothing to undo")
        trial = self.study.trial(loser)
        if trial.active:
            raise RunError(f"#{loser} is still stopping; undo once it has ended")
        if trial.status != "stopped":
            raise RunError(f"#{loser} finished ({trial.status}) before it was replaced: there is no stopped run "
                           f"to resume")
        seq = out.get("2", data.get("loser_checkpoint"))
        steps: list[Step] = [{"op": "fork", "trial": loser, "changes": {}, "seq": seq},
                             {"op": "pin", "trial_from": 0, "pin": True}]
        stopping = ""
        if isinstance(child, int):
            steps.append({"op": "stop", "trial": child})
            stopping = f"; stopping the fork #{child}" if self.runner.queries.is_live(child) else ""
        return steps, f"undid the autopilot's replacement of #{loser}: {CHILD} resumes it{stopping}"

    def toggle_undo_steps(self, d: Decision) -> tuple[list[Step], str]:
        """Undo an autopilot toggle: the setting it replaced comes back."""
        old = d.data.get("from", "none")
        return [{"op": "setting", "key": "autopilot", "value": old}], f"autopilot back to {old}"
