"""Early stopping as a policy of the automation loop: it watches the runs' reports and condemns runs.

The decision is the core's (`search/early_stop.py`, Optuna's pruners with their numbers). This policy
feeds it the run events the automation loop hands it on the command thread, and returns an early-stop
Action per condemned run (checkpoint, then stop with the verdict as the reason: the GPU is freed and
the run can be resumed exactly; a zero-code run, which has no checkpoints, is plainly stopped and
restarts on undo). The decider's history is kept in the study (meta "early_stop_history", written in
the same transaction as each stop decision), so a restarted tuner rebuilds the same decider.

- **Steps.** Given in the space or by flag (`early_stop_min_step`, `early_stop_max_step`), or else
  taken at run time: the trainer's `max_steps` where it says one, else the first trial to finish
  (as Optuna's "auto"). The steps in force are kept in the study (meta "early_stop_steps").
- **From then on.** A run is judged only at the rungs it reaches while this tuner watches it with
  these steps: a run re-adopted after the tuner was away, or running when early stopping came on,
  has the rungs it passed recorded with its own values there, not judged.
- **Pins.** A pinned trial's values count, but it is never stopped.
- **A way back (asha).** When a slot frees and nothing is queued, the scheduler asks `promotion()`
  before it samples a new setting: the best trial it stopped that now ranks within the best 1/eta at
  the rung it failed (`Decider.promotable`) is resumed from the checkpoint taken before its stop, by
  the same fork step as an undo, as a decision of its own ("promote", undone by stopping the fork).
  The fork is not pinned: it is judged at its parent's next rungs, its values continuing the parent's
  (`Decider.promote`, told when the fork starts). A trial is promoted at most once from a rung.
- **Trusted rungs (asha).** No trial is stopped before `trust_after` finished, and a rung that would
  stop the best finished trial stops none from then on: the session says so once, the status line
  shows the rung off, and a reopened study rebuilds the same from the kept history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from tui_tuner.errors import RunError, TunerError
from tui_tuner.runtime.executor import AT, CHILD, Action, Step
from tui_tuner.runtime.runner import RunEvent, Runner
from tui_tuner.search.early_stop import Decider
from tui_tuner.search.early_stop_records import Candidate, EarlyStopConfig, Verdict, record_to_dict
from tui_tuner.study import pins
from tui_tuner.study.decision_log import DONE, PENDING, VOID, Decision, DecisionLog
from tui_tuner.study.settings import describe_early_stop
from tui_tuner.study.store import Store
from tui_tuner.study.study import Study

KIND = "early_stop"
PROMOTE = "promote"
HISTORY_META = "early_stop_history"
STEPS_META = "early_stop_steps"
REASON_PREFIX = "early stop: "


class EarlyStopPolicy:
    """Judges the runs as they report (by the study's early_stop rule) and returns the stops to carry out.

    `say(message)` tells the user where the rungs are once they are known.
    """

    def __init__(self, study: Study, runner: Runner, log: DecisionLog, say: Callable[[str], None]) -> None:
        self.study = study
        self.runner = runner
        self.log = log
        self.say = say
        self.objective = study.config.objective
        # The trusted rungs' startup depends on the step budget and the runs at once (EarlyStopConfig.trust).
        self.config: EarlyStopConfig = self._restore_steps(replace(
            study.config.early_stop, step_budget=study.config.step_budget, parallel=study.config.parallel))
        self.decider: Decider | None = None
        self.fresh: set[int] = set()      # runs started by this tuner since the steps were known
        self.seen: set[int] = set()       # runs reported in this session
        self._fed: dict[int, int] = {}    # the last step of each run fed to the decider
        self.condemned = {d.trial_id for d in log.all() if d.kind == KIND and not d.is_undone
                          and d.state in (PENDING, DONE) and d.trial_id is not None}
        self._verdicts: list[Verdict] = []
        self._said_untrusted: set[int] = set()   # rungs whose distrust this session told the user of
        self._saved = 0
        if self.config.resolved and self.active:
            self._build(rebuild=True)

    @property
    def active(self) -> bool:
        """False for rule "none": nothing is ever stopped."""
        return self.config.rule != "none"

    def describe(self) -> str:
        """'asha (rungs at steps 11, 33, 100)' or 'off', for the status line and the session's note;
        with each rung that stops no more, and why."""
        off = self.untrusted()
        trust = self.config.trust if self.config.resolved and self.active else 0
        return "; ".join([describe_early_stop(self.config),
                          *([f"no rung stops a trial before {trust} finished"] if trust else []),
                          *(f"step {s} stops no more: {why}" for s, why in off.items())])

    def untrusted(self) -> dict[int, str]:
        """The rungs (by step) that stop no more, and why: each would have stopped the best finished trial."""
        return self.decider.untrusted() if self.decider is not None else {}

    # -- steps ----------------------------------------------------------------------------------------

    def _restore_steps(self, config: EarlyStopConfig) -> EarlyStopConfig:
        """The steps learnt at run time by an earlier session, when the rule and given steps are the same."""
        kept = self.study.meta(STEPS_META)
        if config.rule == "none" or config.resolved or not isinstance(kept, dict):
            return config
        if kept.get("rule") == config.rule and kept.get("factor") == config.reduction_factor \
                and isinstance(kept.get("max_step"), int):
            return config.with_max_step(kept["max_step"])
        return config

    def _signature(self) -> dict[str, Any]:
        c = self.config
        return {"rule": c.rule, "min_step": c.min_step, "factor": c.reduction_factor, "max_step": c.max_step}

    def _build(self, *, rebuild: bool) -> None:
        self.decider = Decider(self.config, self.study.config.direction, metric=self.objective)
        kept = self.study.meta(STEPS_META)
        # A study from before the steps were kept: its history is this rule's.
        same = kept is None or (isinstance(kept, dict)
                                and {k: kept.get(k) for k in self._signature()} == self._signature())
        history = list(self.study.meta(HISTORY_META, []) or []) if rebuild and same else []
        if rebuild and not same and self.study.meta(HISTORY_META):
            self.say("early stopping starts afresh: its rule or steps changed since the last session "
                     "(runs are judged at the rungs they reach from now on)")
        self.decider.rebuild(history)
        self._saved = len(self.decider.history)
        for tid in pins.pinned(self.study):
            self.decider.pin(tid)
        if rebuild and same:
            self._link_promotions()
        if not self.study.readonly and kept != self._signature():
            self.study.store.set_meta({STEPS_META: self._signature(), HISTORY_META: self._history()})

    def _resolve(self, max_step: int, where: str) -> None:
        """The most steps a trial runs is known now: build the decider; runs going are watched from here."""
        self.config = self.config.with_max_step(max_step)
        self._build(rebuild=False)
        self.fresh.clear()
        self.say(f"early stopping {self.describe()}: the most steps a trial runs, {max_step}, from {where}")

    def pins_changed(self) -> None:
        """The study's pins changed: the decider keeps the values of pinned trials but stops none."""
        if self.decider is not None:
            current = pins.pinned(self.study)
            for tid in set(self.decider.pinned) - current:
                self.decider.pin(tid, False)
            for tid in current:
                self.decider.pin(tid)

    # -- events -----------------------------------------------------------------------------------------

    def observe(self, ev: RunEvent) -> None:
        """Feed one run event (on the command thread, in the order they happened)."""
        if not self.active:
            return
        tid = ev.trial_id
        if ev.kind == "started":
            if self.decider is not None:
                self._link_promotions(tid)
            if not ev.data.get("adopted") and self.decider is not None:
                self.fresh.add(tid)
        elif ev.kind == "max_steps" and self.decider is None:
            steps = ev.data.get("steps")
            if isinstance(steps, int) and steps > 0:
                self._resolve(steps, f"the trainer's max_steps (#{tid})")
        elif ev.kind == "metrics":
            self._report(tid, ev)
        elif ev.kind == "ended":
            self._end(tid, ev)

    def _report(self, tid: int, ev: RunEvent) -> None:
        step = ev.data.get("step")
        value = (ev.data.get("metrics") or {}).get(self.objective)
        if self.decider is None:
            run = self.runner.runs.get(tid)
            limit = run.state.max_steps if run is not None else None
            if isinstance(limit, int) and limit > 0:
                self._resolve(limit, f"the trainer's max_steps (#{tid})")
        if self.decider is None or not isinstance(step, int) or tid in self.condemned:
            return
        if tid not in self.seen:
            self.seen.add(tid)
            if tid not in self.fresh:
                self.decider.watch(tid, step, self.runner.queries.series(tid, self.objective))
                self._fed[tid] = step   # its curve so far is the watch's
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            for at, v in self._reports_in(tid, step, float(value), ev.data.get("count")):
                verdict = self.decider.report(tid, at, v)
                if verdict is not None and verdict.held and verdict.rung_step in self.decider.untrusted() \
                        and verdict.rung_step not in self._said_untrusted:
                    self._said_untrusted.add(verdict.rung_step)
                    self.say(f"{verdict.held}; #{tid} goes on")
                if verdict is not None and verdict.stop:
                    self.condemned.add(tid)
                    self._verdicts.append(verdict)
                    break

    def _reports_in(self, tid: int, step: int, value: float, count: Any) -> list[tuple[int, float]]:
        """The (step, value) reports one metrics event stands for, in order. A poll coalesces what a run
        wrote since the last one (a fast trainer, or a loaded box): judged on the latest alone, a run
        read late was ranked at its first rung by a value from many steps past it. The run's series is
        read only when the event reaches a rung (`Decider.due`): most events are judged by nothing."""
        assert self.decider is not None
        last = self._fed.get(tid, -1)
        self._fed[tid] = max(last, step)
        coalesced = isinstance(count, int) and count > 1 and self.decider.due(tid, step)
        earlier = ([(s, v) for s, v in self.runner.queries.series(tid, self.objective) if last < s < step]
                   if coalesced else [])
        return [*earlier, (step, value)]

    def _end(self, tid: int, ev: RunEvent) -> None:
        status = ev.data.get("status")
        step = ev.data.get("step")
        if self.decider is None:
            if status == "done" and isinstance(step, int) and step > 0:
                self._resolve(step, f"#{tid}, the first trial to finish")
            return
        if status in ("done", "stopped", "diverged", "failed"):
            obj = ev.data.get("objective")
            self.decider.end(tid, status, step if isinstance(step, int) else None,
                             obj if isinstance(obj, (int, float)) else None)

    # -- actions ------------------------------------------------------------------------------------------

    def tick(self) -> list[Action]:
        """The stops decided since the last tick, each with the decider's history kept beside it."""
        out = []
        for v in self._verdicts:
            history = self._history()
            steps: list[Step] = [{"op": "checkpoint", "trial": v.trial_id},
                                 {"op": "stop", "trial": v.trial_id, "reason": REASON_PREFIX + v.text,
                                  "required": True}]
            out.append(Action(KIND, v.trial_id, v.text, steps, asdict(v),
                              also=lambda db, h=history: Store.write_meta(db, {HISTORY_META: h})))
            self._saved = len(history)
        self._verdicts.clear()
        return out

    def _history(self) -> list[dict[str, Any]]:
        return [record_to_dict(r) for r in self.decider.history] if self.decider is not None else []

    def save(self) -> None:
        """Keep the decider's history in the study when it grew (reports at rungs, ends)."""
        if self.decider is None or self.study.readonly:
            return
        if len(self.decider.history) != self._saved:
            history = self._history()
            self.study.set_meta(HISTORY_META, history)
            self._saved = len(history)

    def curves(self) -> dict[int, dict[int, float]]:
        """Per trial, the values judged at its rungs {step: value}: what a model-based search learns
        from a stopped trial (Scheduler.curves)."""
        return self.decider.curves() if self.decider is not None else {}

    # -- promotion ----------------------------------------------------------------------------------------

    def promotion(self) -> Action | None:
        """The promotion to carry out in a free slot, before a new setting is sampled: the best trial
        this policy stopped (its stop carried out, not undone) that now ranks within the best 1/eta at
        the rung it failed, not promoted from that rung before; None when there is none."""
        if self.decider is None or self.study.readonly:
            return None
        found = self.decider.promotable()
        if not found:
            return None
        decisions = self.log.all()
        stops = {d.trial_id: d for d in reversed(decisions)
                 if d.kind == KIND and d.state == DONE and not d.is_undone}
        tried = {(d.trial_id, d.data.get("rung")) for d in decisions if d.kind == PROMOTE}
        for c in found:
            stop = stops.get(c.trial_id)
            if stop is None or (c.trial_id, c.rung) in tried:
                continue
            trial = self.study.trial(c.trial_id)
            if trial.active or trial.status != "stopped":
                continue
            return self._promotion(c, stop)
        return None

    def _promotion(self, c: Candidate, stop: Decision) -> Action:
        seq = (stop.progress.get("out") or {}).get("0")
        eta = self.config.reduction_factor
        op = "≥" if self.study.config.direction == "maximize" else "≤"
        how = f"from step {AT}" if isinstance(seq, int) else "from its start (zero-code)"
        text = (f"promoted #{c.trial_id}: {self.objective} {c.value:.4g} at rung {c.rung} (step {c.rung_step}) "
                f"{op} cut-off {c.cutoff:.4g}, now within the best 1/{eta} of {c.competitors}; "
                f"{CHILD} resumes it {how}")
        data = {"rung": c.rung, "rung_step": c.rung_step, "value": c.value, "cutoff": c.cutoff,
                "competitors": c.competitors, "stop": stop.id}
        return Action(PROMOTE, c.trial_id, text, [{"op": "fork", "trial": c.trial_id, "changes": {}, "seq": seq}],
                      data)

    def _link_promotions(self, started: int | None = None) -> None:
        """Tell the decider which fork continues each promoted trial, once its fork exists: when it
        starts, or on opening the study (a tuner that died before it kept the decider's history)."""
        assert self.decider is not None
        if started is not None and self.study.trial(started).parent is None:
            return
        linked = self.decider.promoted()
        for d in self.log.all(newest_first=False):
            child = (d.progress.get("out") or {}).get("child")
            if d.kind != PROMOTE or not isinstance(child, int) or child in linked \
                    or (started is not None and child != started) or d.trial_id is None:
                continue
            try:
                self.decider.promote(d.trial_id, child)
            except TunerError as e:   # its fork reported before it was linked: judged as a trial of its own
                self.say(f"#{child} is judged as a new trial, not as #{d.trial_id} promoted: {e.message}")

    # -- undo -------------------------------------------------------------------------------------------

    def undo_steps(self, d: Decision) -> tuple[list[Step], str]:
        """How to undo an early stop: resume the run exactly from the checkpoint taken before the stop
        (a zero-code run restarts), pinned so it is not stopped again."""
        tid = d.trial_id
        if tid is None:
            raise RunError(f"decision #{d.id} names no trial")
        if d.state == VOID:
            raise RunError(f"decision #{d.id} was not carried out ({d.progress.get('void', 'its run ended')}): "
                           f"there is nothing to undo")
        trial = self.study.trial(tid)
        if trial.active:
            raise RunError(f"#{tid} is still stopping; undo once it has ended")
        if trial.status != "stopped":
            raise RunError(f"#{tid} finished ({trial.status}) before the stop took effect: there is no stopped "
                           f"run to resume")
        seq = (d.progress.get("out") or {}).get("0")
        steps: list[Step] = [{"op": "fork", "trial": tid, "changes": {}, "seq": seq},
                             {"op": "pin", "trial_from": 0, "pin": True}]
        how = "from the checkpoint taken before the stop" if isinstance(seq, int) else "from its start (zero-code)"
        return steps, f"undid the early stop of #{tid}: {CHILD} resumes it {how}"
