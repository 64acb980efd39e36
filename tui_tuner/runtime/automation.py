"""The automation loop: every automatic decision (early stop, autopilot, auto-k) and every hand move,
made on the command thread and carried out by one executor, with one record each.

- The runner's poll thread only queues run events here (`observe`); nothing else happens on it.
- `tick()` (the session's, on the command thread) hands the queued events to the policies in order,
  moves the decisions under way one step on (a fork waiting for its checkpoint), then asks each
  policy for its actions and has the executor carry them out. An "ended" event is published after
  the policies saw it, so it carries what they made of it (an out-of-memory failure re-queued).
- The user's moves (pin, lr ×0.5/×2, train longer, adjust, fork, the autopilot key, k by hand) are
  actions too: the same executor, the same log, the same undo.
- The study's decision log (study/decision_log.py) is the one record: each decision is written before
  its first step, its steps on the same row. At the first tick a restarted tuner finishes (or gives
  up with a reason) what a tuner that died left half done, and the undos it left half done.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tui_tuner.errors import RunError, TunerError
from tui_tuner.runtime import autopilot as pilot_mod
from tui_tuner.runtime import early_stopping
from tui_tuner.runtime import hand_moves as moves
from tui_tuner.runtime.autok import AutoK
from tui_tuner.runtime.autok_devices import DeviceAutoK
from tui_tuner.runtime.autopilot import AutopilotPolicy
from tui_tuner.runtime.early_stopping import EarlyStopPolicy
from tui_tuner.runtime.executor import CHILD, RESULT, Action, Executor, Step
from tui_tuner.runtime.runner import RunEvent, Runner
from tui_tuner.runtime.scheduler import Scheduler
from tui_tuner.search.autok import Change
from tui_tuner.study import pins
from tui_tuner.study.decision_log import DONE, USER, VOID, Decision, DecisionLog
from tui_tuner.study.settings import remember, short_early_stop
from tui_tuner.study.store import Store
from tui_tuner.study.study import Study

FORK = "fork"
AUTO_K = "auto_k"
UNDOABLE = (early_stopping.KIND, early_stopping.PROMOTE, pilot_mod.KIND, pilot_mod.TOGGLE, FORK, AUTO_K,
            *moves.KINDS)
# Decisions the `u` key on a trial undoes: the automatic stops of that trial.
STOPS = (early_stopping.KIND, pilot_mod.KIND)


@dataclass(frozen=True)
class View:
    """What the screen shows of the automation, replaced whole after each tick and move (the view thread
    reads it while the command thread works)."""

    early_stop: str = "off"
    autopilot: str = "off"
    pinned: frozenset[int] = frozenset()
    pending: tuple[str, ...] = ()     # the forks waiting for their checkpoint: "fork of #3"


class Automation:
    """The policies, the executor and the decision log of one session.

    `publish(event)` hands a Decision or a RunEvent to whoever watches; `notice(title, message,
    severity)` tells the user something.
    """

    def __init__(self, study: Study, runner: Runner, scheduler: Scheduler, *,
                 publish: Callable[[Any], None], notice: Callable[[str, str, str], None]) -> None:
        self.study = study
        self.runner = runner
        self.scheduler = scheduler
        self._publish = publish
        self.notice = notice
        self.log = DecisionLog(study.store)
        self.executor = Executor(study, runner, self.log, self._decided,
                                 hooks={"setting": self._setting, "k_undo": self._k_undo})
        self.early = EarlyStopPolicy(study, runner, self.log, say=lambda m: notice("Early stopping", m, "information"))
        self.pilot = AutopilotPolicy(study, runner, self.log, say=lambda m, sev: notice("Autopilot", m, sev),
                                     halted=lambda: scheduler.holding or scheduler.ended_by is not None)
        # With devices, one auto-k per device (runtime/autok_devices.py), behind the same interface.
        self.autok: AutoK | DeviceAutoK = (
            AutoK(study, runner, scheduler, auto=scheduler.auto_k, on_change=self._k_changed)
            if runner.devices is None
            else DeviceAutoK(study, runner, scheduler, auto=scheduler.auto_k, on_change=self._k_changed))
        self.executor.on_pins = self.early.pins_changed
        # Trials the early stopping judged: what a model-based search learns from a stopped trial.
        scheduler.curves = self.early.curves
        # A free slot with nothing queued resumes a stopped trial that ranks well now, before sampling.
        scheduler.promote = self._promote if self.early.active else None
        self._inbox: queue.SimpleQueue[RunEvent] = queue.SimpleQueue()
        self._recovered = False
        self.view = View()
        self._refresh_view()

    def _refresh_view(self) -> None:
        self.view = View(short_early_stop(self.early.config, self.early.untrusted()), self.pilot.state(),
                         frozenset(pins.pinned(self.study)),
                         tuple(f"fork of #{d.trial_id}" for d in self.pending_forks()))

    # -- events and ticks -------------------------------------------------------------------------------

    def observe(self, ev: RunEvent) -> None:
        """The runner's callback for the policies (its poll thread, or a command's): only queues."""
        self._inbox.put(ev)

    def tick(self, *, act: bool = True) -> None:
        """Feed the queued events to the policies; with `act`, carry on and begin their decisions."""
        if act and not self._recovered:
            self._recovered = True
            self._recover()
        self._drain()
        if act:
            for d in self.executor.waiting():
                self._advance(d)
            actions = [*self.early.tick(), *self.pilot.tick(self._busy())]
            for action in actions:
                self._begin(action)
            self._guard("Auto-k", self.autok.tick)
            self.early.save()
        self._refresh_view()

    def _drain(self) -> None:
        while True:
            try:
                ev = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._guard("Early stopping", self.early.observe, ev)
            self._guard("Auto-k", self.autok.observe, ev)
            if ev.kind == "ended":
                self._publish(ev)

    def _guard(self, title: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A policy's failure is said and logged; the runs go on."""
        try:
            return fn(*args, **kwargs)
        except TunerError as e:
            self.notice(title, e.message, "error")
        except Exception as e:  # noqa: BLE001 - said and logged; the next tick tries again
            self.notice(title, f"{type(e).__name__}: {e}", "error")
        return None

    def _begin(self, action: Action) -> Decision | None:
        d = self._guard("Decision", self.executor.begin, action)
        if isinstance(d, Decision) and d.kind == pilot_mod.KIND and d.state == VOID:
            self.pilot.judged_again(int(d.data.get("loser", -1)))
        return d

    def _advance(self, d: Decision) -> None:
        if d.undo_progress is not None and d.undone is None:
            self._guard("Undo", self.executor.advance_undo, d)
        else:
            done = self._guard("Decision", self.executor.advance, d)
            if isinstance(done, Decision) and done.kind == pilot_mod.KIND and done.state == VOID:
                self.pilot.judged_again(int(done.data.get("loser", -1)))

    def _busy(self) -> set[int]:
        """Runs a decision under way is about (a replacement's two runs): the autopilot leaves them be."""
        busy: set[int] = set()
        for d in self.executor.waiting():
            for key in ("loser", "winner"):
                if isinstance(d.data.get(key), int):
                    busy.add(d.data[key])
            if d.trial_id is not None:
                busy.add(d.trial_id)
        return busy

    def _recover(self) -> None:
        """Finish what a tuner that died left half done (steps already sent are found in the runs' files)."""
        for d in self.log.unfinished():
            if d.undo_progress is not None and d.undone is None:
                self._guard("Undo", self.executor.advance_undo, d, resumed=True)
            else:
                self._guard("Decision", self.executor.advance, d, resumed=True)

    def _promote(self) -> int | None:
        """The scheduler's hook: carry out early stopping's promotion, if any; the fork it started."""
        # What the runs reported since this tick's start first: the run that freed the slot has queued
        # all its reports before its slot freed (Runner._settle), and its rung values may rank others.
        self._drain()
        action = self._guard("Early stopping", self.early.promotion)
        if action is None:
            return None
        d = self._begin(action)
        self._refresh_view()
        if not isinstance(d, Decision) or d.state != DONE:
            return None   # void (said in the log): the slot goes to a new setting
        child = (d.progress.get("out") or {}).get("child")
        return child if isinstance(child, int) else None

    def _decided(self, d: Decision) -> None:
        self._publish(d)

    # -- the user's moves -------------------------------------------------------------------------------

    def carry_out(self, action: Action) -> Decision:
        """Carry out a user's move now (its first steps at least); TunerError when it cannot start."""
        try:
            return self.executor.begin(action)
        finally:
            self._refresh_view()

    def fork(self, trial_id: int, changes: dict[str, Any], seq: int | None) -> Decision:
        """The fork form: a child from the checkpoint taken when the form opened (`seq`), or from one
        asked for now; it starts once the checkpoint is written (a later tick), never waiting here."""
        trial = self.study.trial(trial_id)
        if trial.status == "queued":
            raise RunError(f"trial {trial_id} has not run yet: edit it in the queue instead")
        adjustable = self.runner.commands.can_adjust(trial_id)
        steps: list[Step] = []
        if adjustable and seq is None:
            if not self.runner.queries.is_live(trial_id):
                raise RunError(f"trial {trial_id} is not running: a fork needs a checkpoint of it")
            steps.append({"op": "checkpoint", "trial": trial_id, "required": True})
            src: dict[str, Any] = {"from": 0}
        else:
            src = {"seq": seq}
        steps.append({"op": "fork", "trial": trial_id, "changes": dict(changes), "needs_checkpoint": adjustable,
                      **src})
        steps.append({"op": "pin", "trial_from": len(steps) - 1, "pin": True})
        what = "restarted" if not adjustable else "forked"
        message = f"{what} #{trial_id} into {CHILD}" + (" at step {at}" if adjustable else " from scratch")
        if changes:
            message += " with " + ", ".join(f"{k}={v}" for k, v in changes.items())
        return self.carry_out(Action(FORK, trial_id, message, steps, {"changes": dict(changes)}, by=USER))

    def pending_forks(self) -> list[Decision]:
        """The forks waiting for their parent's checkpoint (the screen shows them)."""
        return [d for d in self.executor.waiting() if d.kind == FORK]

    def toggle_autopilot(self) -> Decision:
        """The `A` key."""
        return self.carry_out(self.pilot.toggle())

    def _setting(self, step: Step) -> Any:
        remember(self.study, step["key"], step["value"])
        return step["value"]

    # -- auto-k ------------------------------------------------------------------------------------------

    def _k_changed(self, change: Change) -> None:
        """Auto-k changed k: keep the decision and auto-k's state in one transaction, and say it."""
        state = self.autok.kept()
        if change.why == "undo":
            # Recorded on the decision it undoes (the executor marks that row): only the state is kept.
            if state and not self.study.readonly:
                self.study.store.set_meta(state)
            return
        by = USER if change.why in ("fixed", "auto") else "auto"
        trial = change.data.get("trial")
        d = self.log.add(AUTO_K, trial if isinstance(trial, int) else None, change.text, dict(change.data), by=by,
                         also=(lambda db: Store.write_meta(db, state)) if state and not self.study.readonly else None)
        self._publish(d)

    def _k_undo(self, step: Step) -> Any:
        return self.autok.undo(step.get("data") or {})

    # -- undo ----------------------------------------------------------------------------------------------

    def undo(self, decision_id: int) -> str:
        """Undo one decision of the log (once); RunError saying why when it cannot be."""
        d = self.log.check_undoable(decision_id)
        if d.undo_progress is not None:
            raise RunError(f"decision #{d.id} is being undone already")
        if d.state == "pending":
            raise RunError(f"decision #{d.id} is still being carried out; undo it once it is done")
        steps, message = self._undo_plan(d)
        try:
            final = self.executor.begin_undo(d, steps, message)
        finally:
            self._refresh_view()
        if final.undone is None:
            return f"undoing decision #{d.id}…"
        return final.undone

    def undo_trial(self, trial_id: int) -> str:
        """The `u` key on a trial: undo its early stop or its replacement by the autopilot."""
        stops = [d for d in self.log.all() if d.trial_id == trial_id and d.kind in STOPS]
        found = [d for d in stops if not d.is_undone]
        if not found and stops:
            raise RunError(f"the stop of #{trial_id} was already undone: {stops[0].undone}")
        if not found:
            raise RunError(f"#{trial_id} was not stopped by an automatic decision: nothing to undo "
                           f"(D lists every decision)")
        return self.undo(int(found[0].id))  # type: ignore[arg-type]

    def _undo_plan(self, d: Decision) -> tuple[list[Step], str]:
        if d.kind == early_stopping.KIND:
            return self.early.undo_steps(d)
        if d.kind == pilot_mod.KIND:
            return self.pilot.undo_steps(d)
        if d.kind == pilot_mod.TOGGLE:
            return self.pilot.toggle_undo_steps(d)
        if d.kind == AUTO_K:
            return [{"op": "k_undo", "data": dict(d.data)}], RESULT
        if d.kind in (FORK, early_stopping.PROMOTE):
            child = (d.progress.get("out") or {}).get("child")
            if d.state != DONE or not isinstance(child, int):
                raise RunError(f"decision #{d.id} made no fork: there is nothing to undo")
            if not self.runner.queries.is_live(child):
                raise RunError(f"the fork #{child} has ended: there is nothing to stop")
            if d.kind == early_stopping.PROMOTE:
                # Its parent stays stopped, and is not promoted from that rung again.
                return [{"op": "stop", "trial": child}], f"stopped #{child}, the promotion of #{d.trial_id}"
            return [{"op": "stop", "trial": child}, {"op": "pin", "trial": child, "pin": False}], \
                f"stopped the fork #{child}"
        if d.kind in moves.KINDS:
            return moves.undo_steps(self.study, self.runner, d)
        raise RunError(f"a {d.kind} decision cannot be undone")

    def decisions(self) -> list[Decision]:
        """Every decision the study keeps, newest first."""
        return self.log.all()

    def pinned(self) -> set[int]:
        """The pinned trials."""
        return pins.pinned(self.study)
