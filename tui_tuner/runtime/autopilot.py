"""The autopilot carried out: PBT's exploit and explore (core/pbt.py decides) on the live runs.

Driven from `Session.tick()`, so the app and headless mode do the same, and never blocks: a tick
asks for what it needs and a later tick carries on once it has come.

1. A live run that has trained `interval` steps since it was last judged is judged against the
   others (core/pbt.judge). When it is to be replaced, the top run it will be forked from is asked
   for a checkpoint.
2. Once that checkpoint is written (a later tick), the fork starts from it, with the explored
   settings, and the replaced run is checkpointed and stopped (the checkpoint first, so an undo
   resumes it exactly). The fork is started before the stop, so the scheduler never sees the slot
   free and fills it from the queue.
3. The decision, with its numbers, goes to the session (`Session.decide`, kind "pbt"), which keeps
   it in the study's decision log; `undo` resumes the stopped run from its checkpoint and stops
   the fork.

Pinned runs (the study's meta "pinned": adjusted or forked by hand, or an undone decision) are
never touched; zero-code runs cannot be exploited (said once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tui_tuner.core.pbt import Exploit, Member, PbtConfig, judge
from tui_tuner.core.study import Study
from tui_tuner.errors import RunError, TunerError
from tui_tuner.runtime.early_stopping import PINNED_META
from tui_tuner.runtime.runner import Runner

KIND = "pbt"                     # the decisions' kind in the log
REASON_PREFIX = "autopilot: "    # a replaced run's reason in the study
ZERO_CODE = ("zero-code runs cannot be exploited (no checkpoint to continue from, no live change): "
             "the autopilot stays off for this study")


def pinned(study: Study) -> set[int]:
    """The trials no automatic decision touches (adjusted or forked by hand, or resumed by an undo)."""
    return {int(i) for i in study.meta(PINNED_META, [])}


def pin(study: Study, trial_id: int) -> None:
    """Pin a trial: no automatic decision touches it from now on."""
    study.set_meta(PINNED_META, sorted(pinned(study) | {int(trial_id)}))


@dataclass
class Pending:
    """An exploit decided, waiting for the top run's checkpoint."""

    exploit: Exploit
    seq: int            # the checkpoint command's seq on the top run
    asked: float        # when it was asked (given up after the runner's checkpoint timeout)


@dataclass(frozen=True)
class Carried:
    """An exploit carried out: what the session records as a Decision."""

    trial_id: int
    message: str
    data: dict[str, Any]


class Autopilot:
    """Judges the live runs as they train and replaces the bottom ones by forks of the top ones.

    `say(message, severity)` tells the user what could not be done; `halted()` is True while no
    new run may start (a step or time budget spent, the app holding).
    """

    def __init__(self, study: Study, runner: Runner, config: PbtConfig, *,
                 say: Callable[[str, str], None], halted: Callable[[], bool] = lambda: False) -> None:
        self.study = study
        self.runner = runner
        self.config = config
        self.say = say
        self.halted = halted
        self.objective = study.config.objective
        self.maximize = study.config.maximize
        self.enabled = config.active
        self._next: dict[int, int] = {}         # trial -> the step at which it is judged next
        self._pending: list[Pending] = []
        self._replaced: dict[int, str] = {}     # stopped runs whose reason is written once they end
        self._said_zero_code = False

    @property
    def pending(self) -> int:
        """Exploits waiting for a checkpoint."""
        return len(self._pending)

    def toggle(self) -> str:
        """Turn the autopilot on or off (the app's key); returns what it is now."""
        self.enabled = not self.enabled
        if self.enabled and self.study.config.zero_code:
            self._zero_code()
            return "autopilot: " + ZERO_CODE
        if not self.enabled:
            self._pending.clear()
        what = (f"on: PBT every {self.config.interval} steps, bottom {self.config.fraction:.0%} replaced "
                f"by forks of the top" if self.enabled else "off")
        return f"autopilot {what}"

    # -- the tick ---------------------------------------------------------------------------------

    def tick(self) -> list[Carried]:
        """Carry on the exploits under way, then judge the runs that are due; returns those carried out."""
        self._write_reasons()
        if not self.enabled:
            return []
        if self.study.config.zero_code:
            self._zero_code()
            return []
        done = self._advance()
        if not self.halted():
            self._judge_due()
        return done

    def _zero_code(self) -> None:
        self.enabled = False
        if not self._said_zero_code:
            self._said_zero_code = True
            self.say(ZERO_CODE, "warning")

    def members(self) -> list[Member]:
        """The live runs as the decision sees them (latest step and objective value, settings)."""
        pins = pinned(self.study)
        out = []
        for tid in self.runner.live_ids():
            latest = self.runner.latest(tid)
            step = latest.get("step")
            if not isinstance(step, int) or latest.get("status") != "running" or latest.get("ending"):
                continue
            value = (latest.get("metrics") or {}).get(self.objective)
            trial = self.study.trial(tid)
            out.append(Member(tid, step, float(value) if isinstance(value, (int, float)) else None,
                              dict(latest.get("params") or trial.params), start=trial.fork_step or 0,
                              pinned=tid in pins, zero_code=not self.runner.can_adjust(tid)))
        return out

    def _judge_due(self) -> None:
        members = self.members()
        busy = {p.exploit.loser for p in self._pending}
        ready = [m for m in members if m.trial_id not in busy]
        # Replaced runs leave the population: they are neither ranked nor forked from again.
        population = [m for m in members if m.trial_id not in busy]
        for m in sorted(ready, key=lambda m: m.trial_id):
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
            try:
                seq = self.runner.checkpoint(ex.winner)
            except TunerError:
                continue   # the top run ended meanwhile: judged again at its next interval
            self._pending.append(Pending(ex, seq, time.time()))
            population = [p for p in population if p.trial_id != ex.loser]

    def _advance(self) -> list[Carried]:
        done: list[Carried] = []
        for p in list(self._pending):
            ex = p.exploit
            ev = self.runner.checkpoint_event(ex.winner, p.seq)
            problem = None
            if (ev is None or not ev.get("error")) and self._ended(ex.winner):
                # It finished between the judgement and its next report (runs train at different
                # speeds), or its checkpoint came at its last step (a fork would have nothing left to
                # train): not a failure. The bottom run is judged again at the next tick.
                self._pending.remove(p)
                self._next[ex.loser] = 0
                continue
            if ev is not None and ev.get("error"):
                problem = f"its checkpoint failed: {ev['error']}"
            elif ev is None and time.time() - p.asked > self.runner.checkpoint_timeout:
                problem = f"no checkpoint within {self.runner.checkpoint_timeout:g}s"
            elif ev is None:
                continue
            self._pending.remove(p)
            if problem is None and not self.runner.is_live(ex.loser):
                continue   # it ended on its own: its slot is the scheduler's again
            if problem is None:
                try:
                    done.append(self._replace(ex, p.seq))
                except TunerError as e:
                    problem = e.message
            if problem is not None:
                self.say(f"not replacing #{ex.loser} by a fork of #{ex.winner}: {problem}", "warning")
        return done

    def _ended(self, trial_id: int) -> bool:
        return not self.runner.is_live(trial_id) or bool(self.runner.latest(trial_id).get("ending"))

    def _replace(self, ex: Exploit, seq: int) -> Carried:
        """Start the fork from the top run's checkpoint, then checkpoint and stop the replaced run."""
        child = self.runner.fork(ex.winner, ex.changes, checkpoint=seq)
        loser_seq = None
        try:
            loser_seq = self.runner.checkpoint(ex.loser)
            self.runner.stop(ex.loser)
        except TunerError:
            pass   # it ended meanwhile (on its own or by another stop): nothing left to stop
        at = child.fork_step if child.fork_step is not None else ex.winner_step
        message = (f"{ex.summary(self.objective)}; slot given to #{child.id} = fork of #{ex.winner}@{at} "
                   f"with {ex.explored()}")
        self._replaced[ex.loser] = message
        data = {**asdict(ex), "child": child.id, "fork_step": child.fork_step, "loser_checkpoint": loser_seq,
                "metric": self.objective}
        return Carried(ex.loser, message, data)

    def _write_reasons(self) -> None:
        """A replaced run's reason says why, once it has ended (so `show` and the trials table do)."""
        for tid, message in list(self._replaced.items()):
            try:
                trial = self.study.trial(tid)
                if trial.finished:
                    del self._replaced[tid]
                    if trial.status == "stopped":
                        self.study.annotate(tid, REASON_PREFIX + message)
            except TunerError as e:
                del self._replaced[tid]
                self.say(f"cannot record why #{tid} was stopped: {e.message}", "error")

    # -- undo -------------------------------------------------------------------------------------

    def undo(self, data: Mapping[str, Any]) -> str:
        """Undo one exploit: the stopped run resumes exactly from its checkpoint (pinned, so it is
        not replaced again) and the fork made for its slot is stopped."""
        loser, child = data.get("loser"), data.get("child")
        if not isinstance(loser, int) or not isinstance(child, int):
            raise RunError("this autopilot decision names no stopped run and fork")
        trial = self.study.trial(loser)
        if trial.active:
            raise RunError(f"trial {loser} is still stopping; undo once it has ended")
        seq = data.get("loser_checkpoint")
        resumed = self.runner.fork(loser, {}, checkpoint=seq if isinstance(seq, int) else None)
        pin(self.study, resumed.id)
        stopped = ""
        if self.runner.is_live(child):
            try:
                self.runner.stop(child)
                stopped = f"; stopping the fork #{child}"
            except TunerError:
                pass
        at = f" at step {resumed.fork_step}" if resumed.fork_step is not None else ""
        return f"undid the autopilot's replacement of #{loser}: #{resumed.id} resumes it{at}{stopped}"
