"""The session's automatic decisions: early stopping judged on each run event, the autopilot on each
tick, and undo by kind.

Every automatic decision (early stop, autopilot fork, k change) is announced on the session's
event stream with its numbers, kept in the study's decision log (core/decision_log.py) and can be
undone once: each kind registers how (`register_undo`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from tui_tuner.core.decision_log import Logged
from tui_tuner.core.pbt import pbt_config
from tui_tuner.core.study import Study
from tui_tuner.errors import RunError
from tui_tuner.runtime import autopilot as pilot
from tui_tuner.runtime.early_stopping import REASON_PREFIX, EarlyStopping
from tui_tuner.runtime.runner import RunEvent, Runner
from tui_tuner.runtime.scheduler import Scheduler
from tui_tuner.runtime.session_events import Decision, EventStream, Undo


class Decisions:
    """Makes the early-stop decisions on run events and undoes any decision by its kind."""

    def __init__(self, study: Study, runner: Runner, scheduler: Callable[[], Scheduler],
                 events: EventStream, *, autopilot: str | None = None) -> None:
        self.study = study
        self.runner = runner
        self._scheduler = scheduler   # the session's, built on first use
        self._events = events
        self._early: EarlyStopping | None = None
        self._undoers: dict[str, Undo] = {"early_stop": self._undo_early_stop_decision,
                                          pilot.KIND: lambda d: self.autopilot.undo(d.data)}
        self._autopilot_rule = autopilot   # --autopilot, over the space's [study] autopilot
        self._autopilot: pilot.Autopilot | None = None
        self.log = events.decisions

    @property
    def early_stopping(self) -> EarlyStopping | None:
        """The study's early stopping (None when its rule is "none"), built with the scheduler."""
        if self._early is None:
            rule = self._scheduler().early_stop
            if rule.rule != "none":
                self._early = EarlyStopping(self.study, self.runner, rule)
        return self._early

    def judge(self, ev: RunEvent) -> None:
        """Let early stopping see a metrics or ended event; a stop is announced as a Decision."""
        try:
            es = self.early_stopping
            rec = es.observe(ev) if es is not None else None
        except Exception as e:  # noqa: BLE001 - said and logged; the runs go on unjudged
            self._events.notice("Early stopping", f"{type(e).__name__}: {e}", "error")
            return
        if rec is not None:
            self._events.decide(Decision("early_stop", rec.trial_id, rec.text, asdict(rec)))
        if ev.kind == "ended" and es is not None and ev.data.get("status") == "stopped":
            reason = self.study.trial(ev.trial_id).reason
            if reason and reason.startswith(REASON_PREFIX):
                ev.data["reason"] = reason

    def undo_early_stop(self, trial_id: int) -> str:
        """Resume an early-stopped trial exactly from its checkpoint (a zero-code run restarts)."""
        es = self.early_stopping
        if es is None:
            raise RunError("early stopping is off in this study: nothing to undo")
        child = es.undo(trial_id)
        message = f"undid the early stop of #{trial_id}: #{child.id} resumes it at step {child.fork_step}"
        kept = self.log.latest("early_stop", trial_id)   # undone by its trial (the u key): the log says so too
        if kept is not None:
            self.log.mark_undone(kept.id, message)
        self._events.decide(Decision("undo", child.id, message, {"undone": trial_id}))
        return message

    def _undo_early_stop_decision(self, decision: Decision) -> str:
        if decision.trial_id is None:
            raise RunError("this early-stop decision names no trial")
        return self.undo_early_stop(decision.trial_id)

    def register_undo(self, kind: str, undo: Undo) -> None:
        """Say how decisions of `kind` are undone."""
        self._undoers[kind] = undo

    def undo(self, decision: Decision) -> str:
        """Undo one automatic decision by its kind; a RunError when that kind cannot be undone.

        A decision from the log (with an id) is undone once: the log then says what the undo did.
        """
        undo = self._undoers.get(decision.kind)
        if undo is None:
            raise RunError(f"a {decision.kind} decision cannot be undone")
        if decision.id is not None:
            self.log.check_undoable(decision.id)
        message = undo(decision)
        if decision.id is not None:
            self.log.mark_undone(decision.id, message)
        return message

    def undo_logged(self, decision_id: int) -> str:
        """Undo the decision of the log with this id."""
        d = self.log.get(decision_id)
        return self.undo(Decision(d.kind, d.trial_id, d.message, d.data, d.id))

    def logged(self) -> list[Logged]:
        """Every decision the study keeps, newest first."""
        return self.log.all()

    def undoable_kinds(self) -> frozenset[str]:
        """The kinds of decision that can be undone (each registered its undo)."""
        return frozenset(self._undoers)

    def pin(self, trial_id: int) -> None:
        """A run the user adjusted or forked by hand is never stopped or replaced automatically."""
        es = self.early_stopping
        if es is not None:
            es.pin(trial_id)
        else:
            pilot.pin(self.study, trial_id)

    # -- the autopilot (PBT: runtime/autopilot.py carries out core/pbt.py's decisions) ------------

    @property
    def autopilot(self) -> pilot.Autopilot:
        """The autopilot, built on first use from the space's [study] autopilot (or --autopilot)."""
        if self._autopilot is None:
            cfg = self.study.space.config.autopilot
            if self._autopilot_rule is not None:
                cfg = pbt_config(self._autopilot_rule, cfg.interval, cfg.fraction, cfg.resample, "autopilot")
            sched = self._scheduler()
            self._autopilot = pilot.Autopilot(
                self.study, self.runner, cfg, say=lambda m, sev: self._events.notice("Autopilot", m, sev),  # type: ignore[arg-type]
                halted=lambda: sched.holding or sched.ended_by is not None)
        return self._autopilot

    def tick(self) -> None:
        """The autopilot's work for this tick: each replacement carried out becomes a decision."""
        for carried in self.autopilot.tick():
            self._events.decide(Decision(pilot.KIND, carried.trial_id, carried.message, carried.data))

    def autopilot_state(self) -> str:
        """"on (pbt every 100 steps)" or "off", for the app."""
        ap = self.autopilot
        return f"on (pbt every {ap.config.interval} steps)" if ap.enabled else "off"
