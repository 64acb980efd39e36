"""Early stopping, the decision part: Optuna's pruners decide, and every decision comes with its numbers.

`early_stop = "asha" | "median" | "hyperband" | "none"`, a minimum step and a reduction factor eta
(`EarlyStopConfig`): asha is SuccessiveHalvingPruner (rungs at min_step * eta^k; past a rung go
the best 1/eta of the trials that reached it), hyperband is HyperbandPruner (successive halving in
brackets that start at later rungs, up to the step budget), median is MedianPruner (every min_step
steps from min_step on, once 5 trials finished: stop a trial whose best value so far is worse than
the finished trials' median at that step).

A trainer may report thousands of steps a second and a pruner call costs far more, so the pruner
is consulted only when a trial's report reaches its next rung step (median: its next checkpoint,
a multiple of min_step); any other report is a dict lookup. Successive halving then sees what it
would see asked at every report (it judges the first value at or past a rung). Median records that
value at the checkpoint step itself, so trials reporting at different cadences are compared at
the same steps, and a trial's best is its best at the checkpoints.

The pruner answers yes or no; `Verdict.cutoff` is computed the way the pruner decides
(early_stop_numbers.py) and the tests check that the two agree. The pruners use no randomness: the same reports in the same order give the same
decisions, and `rebuild(history)` restores a decider that reaches the same verdicts after a restart.

A way back (asha): `promotable()` lists the trials it stopped whose value at the rung they failed is
now within the best 1/eta of every value recorded there (ASHA's promotion: a trial judged against
few peers early may rank there once more trials reached the rung). `promote(parent, child)` makes a
fork of one, resumed from its checkpoint, the same trial to the pruner: the parent's rung values
become the fork's, so the fork is judged at the parent's next rungs and nothing counts twice.

Trusted rungs (asha, where `EarlyStopConfig.trust` > 0): a rung's verdict to stop is held (the trial goes on,
`Verdict.held` says why) until `trust_after` trials finished, and for good once the rung would stop
the best finished trial.
On LCBench's curves the best trials are often slow starters, behind at the first rungs: a rung that
ranks them out costs the study its best trial, and only a trial that ran past the rung shows it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any

from tui_tuner.errors import SpaceError
from tui_tuner.search.early_stop_numbers import (
    best_cut,
    bracket_budgets,
    bracket_of,
    candidates,
    median_cutoff,
    promoted_owners,
    promotion_cutoff,
    rung_key,
    rungs,
    startup_spent,
)
from tui_tuner.search.early_stop_records import (
    Candidate,
    EarlyStopConfig,
    End,
    Forget,
    Promote,
    Record,
    Report,
    Verdict,
    Watch,
    record_from_dict,
)
from tui_tuner.search.optuna_search import STUDY_NAME, load_optuna

DIRECTIONS = ("minimize", "maximize")
MEDIAN_STARTUP = 5      # finished trials before median stops any (Optuna's default)
ENDS = ("done", "stopped", "diverged", "failed")


@dataclass(slots=True)
class _Run:
    """What the decider keeps per trial between pruner calls."""

    tid: int
    number: int
    next_check: int
    ended: bool = False
    status: str | None = None          # how it ended
    failed_rung: int | None = None     # the rung whose verdict was "stop" (None: kept at its last)


class Decider:
    """Early-stopping decisions for a study's trials, through an Optuna pruner on an in-memory study."""

    def __init__(self, config: EarlyStopConfig, direction: str = "minimize", *, metric: str = "objective") -> None:
        if direction not in DIRECTIONS:
            raise SpaceError(f"{config.where}: direction must be minimize or maximize, got {direction!r}")
        self.config = config
        self.direction = direction
        self.maximize = direction == "maximize"
        self.metric = metric
        self.eta = config.reduction_factor
        self.pinned: set[int] = set()
        self.optuna = load_optuna(f"early_stop = {config.rule!r}") if config.rule != "none" else None
        self._reset()

    # -- state ------------------------------------------------------------------------------------

    def _reset(self) -> None:
        self._history: list[Record] = []
        self._distrusted: dict[int, str] = {}   # asha: rung -> why it stops no more
        self._runs: dict[int, _Run] = {}
        if self.optuna is None:
            return
        optuna = self.optuna
        cfg = self.config
        first = cfg.first_step
        if cfg.rule == "asha":
            self.pruner = optuna.pruners.SuccessiveHalvingPruner(
                min_resource=first, reduction_factor=self.eta, min_early_stopping_rate=0)
        elif cfg.rule == "hyperband":
            self.pruner = optuna.pruners.HyperbandPruner(
                min_resource=first, max_resource=cfg.max_step, reduction_factor=self.eta)
            self._brackets = bracket_budgets(first, cfg.max_step, self.eta)
        else:
            self.pruner = optuna.pruners.MedianPruner(
                n_startup_trials=MEDIAN_STARTUP, n_warmup_steps=first, interval_steps=first)
        self.storage = optuna.storages.InMemoryStorage()
        self.study = optuna.create_study(storage=self.storage, study_name=STUDY_NAME, direction=self.direction,
                                         pruner=self.pruner, sampler=optuna.samplers.RandomSampler(seed=0))
        self._study_id = self.storage.get_study_id_from_name(STUDY_NAME)
        self._slots: list[int] = []     # Optuna's trial id for each trial number

    @property
    def history(self) -> list[Record]:
        """What `rebuild` needs to restore this decider: the reports that reached the pruner, the
        ends and the forgets, in order (reports between rungs change nothing, so they are left out)."""
        return list(self._history)

    def curves(self) -> dict[int, dict[int, float]]:
        """Per trial, the values the pruner judged {step: value}: intermediate values for OptunaSearch."""
        out: dict[int, dict[int, float]] = {}
        for r in self._history:
            if isinstance(r, Forget):
                out.pop(r.trial_id, None)
            elif isinstance(r, Report):
                out.setdefault(r.trial_id, {})[r.step] = r.value
        return out

    def untrusted(self) -> dict[int, str]:
        """asha: the rungs that stop no more, {rung step: why}; each would have stopped the best
        finished trial (see `_held`)."""
        return {self._rung_step(0, r): why for r, why in sorted(self._distrusted.items())}

    def pin(self, trial_id: int, pinned: bool = True) -> None:
        """Mark a trial pinned (never stopped; its values still count) or not."""
        (self.pinned.add if pinned else self.pinned.discard)(int(trial_id))

    def next_check(self, trial_id: int) -> int | None:
        """The step at which the trial's next report reaches the pruner (None: never, or no rule)."""
        if self.optuna is None:
            return None
        run = self._runs.get(int(trial_id))
        if run is None:
            return self.config.first_step
        return None if run.ended else run.next_check

    def _run(self, trial_id: int) -> _Run:
        """The trial's state. Its Optuna trial is numbered like its id (unused numbers stay empty), so
        Hyperband's bracket for it does not depend on the order trials arrive in, or on forgets."""
        run = self._runs.get(trial_id)
        if run is None:
            if trial_id < 0:
                raise SpaceError(f"{self.config.where}: trial ids are >= 0, got {trial_id}")
            while len(self._slots) <= trial_id:
                self._slots.append(self.storage.create_new_trial(self._study_id))
            run = _Run(self._slots[trial_id], trial_id, self.config.first_step)
            self._runs[trial_id] = run
        return run

    # -- reports ----------------------------------------------------------------------------------

    def due(self, trial_id: int, step: int) -> bool:
        """True when a report at `step` reaches the trial's next rung (or checkpoint), so `report` judges
        it; False once the trial ended."""
        if self.optuna is None:
            return False
        run = self._runs.get(trial_id)
        return not (step < (run.next_check if run is not None else self.config.first_step) or (run and run.ended))

    def report(self, trial_id: int, step: int, value: float) -> Verdict | None:
        """A trial reported `value` at `step`: a Verdict when the pruner judged it, else None.
        Cheap unless it reaches the trial's next rung (or checkpoint); ignored once the trial ended."""
        if not self.due(trial_id, step):
            return None
        rep = Report(int(trial_id), int(step), float(value))
        self._history.append(rep)
        return self._consult(self._run(rep.trial_id), rep)

    def watch(self, trial_id: int, step: int, values: list[tuple[int, float]] | tuple = ()) -> None:
        """Begin watching a trial that is at `step` already (re-adopted, or running when early stopping
        came on): the rungs it passed are recorded with its own `values` there ((step, value) pairs of
        its curve: the first at or past each rung, as the pruner would have seen), never judged."""
        if self.optuna is None:
            return
        run = self._runs.get(int(trial_id))
        if run is not None and (run.ended or step < run.next_check):
            return
        if step < self.config.first_step:
            return
        rec = Watch(int(trial_id), int(step), tuple((int(s), float(v)) for s, v in values))
        self._history.append(rec)
        self._watch(self._run(rec.trial_id), rec)

    def _watch(self, run: _Run, rec: Watch) -> None:
        if run.ended or rec.step < run.next_check:
            return
        curve = sorted((s, v) for s, v in rec.values if math.isfinite(v))

        def at(step: int) -> float | None:
            later = [v for s, v in curve if s >= step]
            return later[0] if later else (curve[-1][1] if curve else None)

        storage = self.storage
        if self.config.rule == "median":
            first = self.config.first_step
            check = run.next_check
            while check <= rec.step:
                value = at(check)
                if value is not None:
                    storage.set_trial_intermediate_value(run.tid, check, value)
                check += first
            run.next_check = check
            return
        bracket = bracket_of(run.number, self._brackets) if self.config.rule == "hyperband" else 0
        rung = len(rungs(storage.get_trial(run.tid)))
        while self._rung_step(bracket, rung) <= rec.step:
            value = at(self._rung_step(bracket, rung))
            if value is None:
                break   # nothing reported to stand for it: the next report is judged as usual
            storage.set_trial_intermediate_value(run.tid, self._rung_step(bracket, rung), value)
            storage.set_trial_system_attr(run.tid, rung_key(rung), value)
            rung += 1
        run.next_check = self._rung_step(bracket, rung)

    def _consult(self, run: _Run, rep: Report) -> Verdict | None:
        if self.config.rule == "median":
            return self._consult_median(run, rep)
        return self._consult_halving(run, rep)

    def _consult_halving(self, run: _Run, rep: Report) -> Verdict | None:
        storage = self.storage
        storage.set_trial_intermediate_value(run.tid, rep.step, rep.value)
        before = storage.get_trial(run.tid)
        rungs_before = rungs(before)
        verdict = self._prune(before)
        after = storage.get_trial(run.tid)
        done = rungs(after)
        new = sorted(set(done) - set(rungs_before))
        bracket = bracket_of(run.number, self._brackets) if self.config.rule == "hyperband" else 0
        # The trial's next rung. A stopped one stops judging at the rung it failed, so the next may
        # already lie behind it (a pinned trial goes on): then its next report is judged.
        run.next_check = self._rung_step(bracket, len(done))
        rule = (f"hyperband bracket {bracket}, eta {self.eta}" if self.config.rule == "hyperband"
                else f"asha, eta {self.eta}")
        if not new:
            if not verdict:
                return None  # below this bracket's first rung: nothing was judged
            # Optuna stops a NaN at a rung before recording it there.
            rung = len(rungs_before)
            return self._decision(rep, rung, self._rung_step(bracket, rung), math.nan, None, True, rule, 1)
        rung = new[-1]
        key = rung_key(rung)
        trials = self.storage.get_all_trials(self._study_id, deepcopy=False)
        values = [t.system_attrs[key] for t in trials
                  if key in t.system_attrs and (self.config.rule != "hyperband"
                                                or bracket_of(t.number, self._brackets) == bracket)]
        cutoff = promotion_cutoff(values, self.eta, self.maximize)
        held = self._held(trials, rung, cutoff) if verdict and self.config.rule == "asha" else None
        run.failed_rung = rung if verdict and rep.trial_id not in self.pinned and held is None else None
        return self._decision(rep, rung, self._rung_step(bracket, rung), rep.value, cutoff, verdict, rule,
                              len(values), held)

    def _held(self, trials: list[Any], rung: int, cutoff: float) -> str | None:
        """Why asha's verdict to stop at `rung` is not acted on (None: it is). A rung stops nothing
        until `trust` trials finished, and nothing ever again once it would have stopped the best
        finished trial (its value there is now worse than the rung's cut-off): on curves where slow
        starters end best, the first rungs rank them wrong, and only a trial that ran past them shows it."""
        trust = self.config.trust
        if not trust:
            return None
        if rung not in self._distrusted:
            finished = [t for t in trials if t.state == self.optuna.trial.TrialState.COMPLETE]
            if len(finished) < trust and not startup_spent(trials, self.config.step_budget):
                return f"no rung stops a trial before {trust} finished ({len(finished)} have)"
            why = best_cut(finished, rung, cutoff, self.maximize)
            if why is None:
                return None
            self._distrusted[rung] = why
        return f"the rung at step {self._rung_step(0, rung)} stops no more: {self._distrusted[rung]}"

    def _prune(self, trial: Any) -> bool:
        with warnings.catch_warnings():
            # numpy's "All-NaN slice" when a trial only ever reported NaN: the verdict says it.
            warnings.simplefilter("ignore", RuntimeWarning)
            return bool(self.pruner.prune(self.study, trial))

    def _rung_step(self, bracket: int, rung: int) -> int:
        return self.config.first_step * self.eta ** (bracket + rung)

    def _consult_median(self, run: _Run, rep: Report) -> Verdict | None:
        first = self.config.first_step
        check = rep.step // first * first      # the checkpoint this report stands for
        self.storage.set_trial_intermediate_value(run.tid, check, rep.value)
        run.next_check = check + first
        trial = self.storage.get_trial(run.tid)
        verdict = self._prune(trial)
        finished = [t for t in self.storage.get_all_trials(self._study_id, deepcopy=False)
                    if t.state == self.optuna.trial.TrialState.COMPLETE]
        known = [v for v in trial.intermediate_values.values() if not math.isnan(v)]
        best = (max(known) if self.maximize else min(known)) if known else math.nan
        if len(finished) < MEDIAN_STARTUP:
            return None
        cutoff = median_cutoff([t.intermediate_values[check] for t in finished if check in t.intermediate_values])
        if cutoff is None and not math.isnan(best):
            return None  # no finished trial reached this step: nothing to compare with
        return self._decision(rep, check // first - 1, check, best, None if math.isnan(best) else cutoff,
                              verdict, f"median of {len(finished)} finished trials", len(finished))

    def _decision(self, rep: Report, rung: int, rung_step: int, value: float, cutoff: float | None,
                  verdict: bool, rule: str, n: int, held: str | None = None) -> Verdict:
        pinned = rep.trial_id in self.pinned
        held = None if pinned else held
        stop = verdict and not pinned and held is None
        name = self.metric if self.config.rule != "median" else f"best {self.metric}"
        if cutoff is None:
            what = f"{name} is {value}"
        else:
            worse = value < cutoff if self.maximize else value > cutoff
            op = ("<" if self.maximize else ">") if worse else ("≥" if self.maximize else "≤")
            what = f"{name} {value:.4g} {op} cut-off {cutoff:.4g}"
        verb = ("stopped" if stop else "kept (pinned)" if pinned and verdict
                else f"kept ({held})" if held else "kept")
        where = f"at rung {rung} (step {rung_step}) " if self.config.rule != "median" else ""
        text = f"{verb} #{rep.trial_id} at step {rep.step}: {what} {where}({rule})"
        return Verdict(rep.trial_id, rep.step, rung, rung_step, value, cutoff, verdict, pinned, rule, n, text,
                       held if verdict else None)

    # -- ends, forgets, rebuild -------------------------------------------------------------------

    def end(self, trial_id: int, status: str, step: int | None = None, value: float | None = None) -> None:
        """A trial ended; its values keep counting (done: a finished trial for median; stopped and
        diverged: pruned; failed: failed). `step` and `value`: its last step and objective."""
        if status not in ENDS:
            raise SpaceError(f"{self.config.where}: unknown end status {status!r} (allowed: {', '.join(ENDS)})")
        if self.optuna is None:
            return
        rec = End(int(trial_id), status, None if step is None else int(step),
                  None if value is None else float(value))
        self._history.append(rec)
        self._end(self._run(rec.trial_id), rec)

    def _end(self, run: _Run, rec: End) -> None:
        if run.ended:
            return
        run.ended = True
        run.status = rec.status
        TrialState = self.optuna.trial.TrialState
        storage, value, last = self.storage, rec.value, self.storage.get_trial(run.tid).last_step
        # The last step (Hyperband's and asha's "auto" budgets read it); median compares checkpoints only.
        if rec.step is not None and value is not None and (last is None or rec.step > last) and \
                (self.config.rule != "median" or rec.step % self.config.first_step == 0):
            storage.set_trial_intermediate_value(run.tid, rec.step, value)
        if rec.status == "done" and value is not None and not math.isnan(value):
            storage.set_trial_state_values(run.tid, TrialState.COMPLETE, [value])
        elif rec.status in ("stopped", "diverged"):
            storage.set_trial_state_values(run.tid, TrialState.PRUNED)
        else:  # failed, or done without an objective (as Optuna's tell with NaN)
            storage.set_trial_state_values(run.tid, TrialState.FAIL)

    def forget(self, trial_id: int) -> None:
        """The trial's values stop counting (deleted, or requeued to run again from its start); one
        that ended keeps counting (call `end`). Optuna cannot delete a trial: this rebuilds without it."""
        if self.optuna is None:
            return
        self.rebuild([*self._history, Forget(int(trial_id))])

    # -- promotion (asha) ---------------------------------------------------------------------------

    def promotable(self) -> list[Candidate]:
        """The trials this decider stopped (ended "stopped" after a verdict to stop) whose value at the
        rung they failed is now within the best 1/eta of all the values recorded there: the highest
        rung first, then the best value (as ASHA promotes). Only asha promotes (Hyperband's brackets
        and median's checkpoints have no such rule): [] otherwise."""
        if self.optuna is None or self.config.rule != "asha":
            return []
        failed = {run.number: run for run in self._runs.values()
                  if run.ended and run.status == "stopped" and run.failed_rung is not None}
        if not failed:
            return []
        trials = self.storage.get_all_trials(self._study_id, deepcopy=False)
        return candidates(trials, {n: r.failed_rung for n, r in failed.items()}, self.eta, self.maximize,
                          lambda rung: self._rung_step(0, rung))

    def promote(self, parent: int, child: int) -> None:
        """`child`, a fork of the stopped `parent` from its checkpoint, goes on as the parent to the
        pruner: the parent's rung values are the child's, judged from the parent's next rung on."""
        if self.optuna is None:
            return
        if int(child) in self._runs:
            raise SpaceError(f"{self.config.where}: #{child} already has values of its own; it cannot "
                             f"continue #{parent}")
        self.rebuild([*self._history, Promote(int(child), int(parent))])

    def promoted(self) -> dict[int, int]:
        """{child: parent} for every promotion the history records."""
        return {r.trial_id: r.parent for r in self._history if isinstance(r, Promote)}

    def rebuild(self, history: list[Record | dict]) -> list[Verdict]:
        """Start over from recorded history (records or their dicts), in order; returns the decisions
        the replay made (with today's pins), which match the ones made the first time."""
        items = [record_from_dict(r) if isinstance(r, dict) else r for r in history]
        self._reset()
        if self.optuna is None:
            return []
        owner, dropped = promoted_owners(items)
        # A Forget wipes out the trial's records before it: they are kept in the history (a later
        # rebuild must wipe them out too) but not replayed.
        last_forget = {owner[i]: i for i, r in enumerate(items) if isinstance(r, Forget)}
        out: list[Verdict] = []
        for i, kept in enumerate(items):
            self._history.append(kept)
            if isinstance(kept, Promote) and kept.trial_id in self._runs:
                self._runs[kept.trial_id].failed_rung = None   # it goes on: its parent's stop is behind it
            if isinstance(kept, (Forget, Promote)) or i in dropped or i < last_forget.get(owner[i], -1):
                continue
            r = kept if owner[i] == kept.trial_id else replace(kept, trial_id=owner[i])
            run = self._run(r.trial_id)
            if isinstance(r, End):
                self._end(run, r)
            elif isinstance(r, Watch):
                self._watch(run, r)
            elif not run.ended and r.step >= run.next_check:
                d = self._consult(run, r)
                if d is not None:
                    out.append(d)
        return out



def build_decider(rule: str, min_step: int | None, reduction_factor: int, direction: str,
                  max_step: int | None = None, *, metric: str = "objective",
                  where: str = "early_stop", trust_after: int | None = None) -> Decider:
    """The decider for these settings; a one-line SpaceError for a bad value."""
    return Decider(EarlyStopConfig(rule, min_step, reduction_factor, max_step, where, trust_after), direction,
                   metric=metric)
