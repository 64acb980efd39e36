"""Early stopping carried out: the core decider judges runs as they report; this stops the condemned.

The decision is the core's (`core/early_stop.py`, Optuna's pruners with their numbers); this module
only feeds it the runs' reports and ends, and carries a stop out: checkpoint first, then stop, so
the GPU is freed and the run can be resumed exactly (a zero-code run, which has no checkpoints, is
plainly stopped and restarts on undo). Every decision is recorded in the study with its numbers
(meta "early_stops"), the pruner's history too ("early_stop_history"), so a restarted tuner
rebuilds the same decider and shows the same decisions. A pinned trial is never stopped: one the
user pinned, adjusted or forked by hand (the session says which).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from tui_tuner.core.early_stop import Decider
from tui_tuner.core.early_stop_records import Decision, EarlyStopConfig, record_to_dict
from tui_tuner.core.study import Study
from tui_tuner.errors import TunerError
from tui_tuner.runtime.runner import RunEvent, Runner

DECISIONS_META = "early_stops"
HISTORY_META = "early_stop_history"
PINNED_META = "pinned"
REASON_PREFIX = "early stop: "


@dataclass
class StopRecord:
    """One automatic stop as the study keeps it: the decision's numbers and what became of it."""

    trial_id: int
    step: int
    rung: int
    value: float
    cutoff: float | None
    rule: str
    text: str
    t: float
    checkpoint_seq: int | None = None   # the checkpoint taken before the stop (None: zero-code)
    undone_by: int | None = None        # the trial that resumed it, once undone

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StopRecord:
        """A record from its stored dict (unknown keys from a newer tuner are ignored)."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class EarlyStopping:
    """Feeds runner events to the decider and stops the runs it condemns (checkpoint, then stop).

    `notify(text)` is told each decision as it is carried out (a headless line, an app toast).
    """

    def __init__(self, study: Study, runner: Runner, config: EarlyStopConfig,
                 notify: Callable[[str], None] | None = None) -> None:
        self.study = study
        self.runner = runner
        self.config = config
        self.notify = notify
        self.objective = study.config.objective
        self.decider = Decider(config, study.config.direction, metric=self.objective)
        self._saved = 0
        self.decider.rebuild(list(study.meta(HISTORY_META, [])))
        self._saved = len(self.decider.history)
        for tid in self.pinned():
            self.decider.pin(tid)
        self._stopping: set[int] = set()

    @property
    def active(self) -> bool:
        """False for rule "none": nothing is ever stopped."""
        return self.config.rule != "none"

    # -- pins ---------------------------------------------------------------------------------------

    def pinned(self) -> set[int]:
        """The trials never stopped automatically."""
        return {int(i) for i in self.study.meta(PINNED_META, [])}

    def pin(self, trial_id: int, pinned: bool = True) -> None:
        """Pin (or unpin) a trial: the user adjusted, forked or pinned it by hand."""
        ids = self.pinned()
        ids = ids | {int(trial_id)} if pinned else ids - {int(trial_id)}
        self.study.set_meta(PINNED_META, sorted(ids))
        self.decider.pin(int(trial_id), pinned)

    # -- events -------------------------------------------------------------------------------------

    def observe(self, ev: RunEvent) -> StopRecord | None:
        """Feed one runner event; returns the stop it led to, if any (already carried out)."""
        if not self.active:
            return None
        stop = None
        if ev.kind == "metrics":
            value = (ev.data.get("metrics") or {}).get(self.objective)
            step = ev.data.get("step")
            if isinstance(value, (int, float)) and isinstance(step, int) and ev.trial_id not in self._stopping:
                decision = self.decider.report(ev.trial_id, step, float(value))
                if decision is not None and decision.stop:
                    stop = self._carry_out(decision)
        elif ev.kind == "ended":
            status = ev.data.get("status")
            if status in ("done", "stopped", "diverged", "failed"):
                obj = ev.data.get("objective")
                self.decider.end(ev.trial_id, status, ev.data.get("step"),
                                 obj if isinstance(obj, (int, float)) else None)
            if ev.trial_id in self._stopping:
                self._stopping.discard(ev.trial_id)
                self._annotate(ev.trial_id)
        self._save_history()
        return stop

    def _carry_out(self, d: Decision) -> StopRecord:
        self._stopping.add(d.trial_id)
        seq = None
        if self.runner.can_adjust(d.trial_id):
            try:
                # Answered before the stop: the trainer applies commands in order at its next report.
                seq = self.runner.checkpoint(d.trial_id)
            except TunerError:
                seq = None
        rec = StopRecord(d.trial_id, d.step, d.rung, d.value, d.cutoff, d.rule, d.text, time.time(), seq)
        records = self.study.meta(DECISIONS_META, [])
        records.append(asdict(rec))
        self.study.set_meta(DECISIONS_META, records)
        try:
            self.runner.stop(d.trial_id)
        except TunerError:
            pass   # it ended on its own meanwhile: the decision stays recorded, nothing to stop
        if self.notify is not None:
            self.notify(d.text)
        return rec

    def _annotate(self, trial_id: int) -> None:
        """The stopped run's reason names the decision, so `show` and the app say why."""
        rec = self.record(trial_id)
        trial = self.study.trial(trial_id)
        if rec is not None and trial.status == "stopped":
            self.study.annotate(trial_id, REASON_PREFIX + rec.text)

    def _save_history(self) -> None:
        hist = self.decider.history
        if len(hist) != self._saved:
            self._saved = len(hist)
            self.study.set_meta(HISTORY_META, [record_to_dict(r) for r in hist])

    # -- the record and undo ------------------------------------------------------------------------

    def records(self) -> list[StopRecord]:
        """Every automatic stop of the study, oldest first."""
        return [StopRecord.from_dict(d) for d in self.study.meta(DECISIONS_META, [])]

    def record(self, trial_id: int) -> StopRecord | None:
        """The last automatic stop of a trial, or None."""
        found = [r for r in self.records() if r.trial_id == int(trial_id)]
        return found[-1] if found else None

    def undo(self, trial_id: int) -> Any:
        """Resume an early-stopped trial: a child continues exactly from the checkpoint taken before
        the stop (a zero-code run restarts), pinned so it is not stopped again. Returns the child."""
        rec = self.record(trial_id)
        if rec is None:
            raise TunerError(f"trial {trial_id} was not stopped early: nothing to undo")
        if rec.undone_by is not None:
            raise TunerError(f"trial {trial_id}'s early stop was already undone by #{rec.undone_by}")
        trial = self.study.trial(trial_id)
        if trial.active:
            raise TunerError(f"trial {trial_id} is still stopping; undo once it has ended")
        child = self.runner.fork(trial_id, {}, checkpoint=rec.checkpoint_seq)
        self.pin(child.id)
        records = self.study.meta(DECISIONS_META, [])
        for d in reversed(records):
            if d.get("trial_id") == rec.trial_id and d.get("undone_by") is None:
                d["undone_by"] = child.id
                break
        self.study.set_meta(DECISIONS_META, records)
        return child


def describe(rec: StopRecord) -> str:
    """One line for a log or a list: the decision's text, and its undo if any."""
    cut = "-" if rec.cutoff is None or not math.isfinite(rec.cutoff) else f"{rec.cutoff:.4g}"
    undone = f"; undone: #{rec.undone_by} resumed it" if rec.undone_by is not None else ""
    return f"#{rec.trial_id} at step {rec.step} (rung {rec.rung}, value {rec.value:.4g}, cut-off {cut}): {rec.text}{undone}"
