"""What early stopping is set up with, told and decides, as plain data (no Optuna, no numpy).

`EarlyStopConfig` is the validated [study] early_stop settings; `Report`, `End`, `Forget`, `Watch` and
`Promote` are the records a decider is fed (the study stores them, `Decider.rebuild` replays them after a restart);
a `Verdict` is a pruner's verdict with the numbers that led to it. The decider itself, on Optuna's
pruners, is search/early_stop.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from tui_tuner.errors import SpaceError

RULES = ("asha", "median", "hyperband", "none")
TRUST_AFTER = 3     # asha's trusted rungs: finished trials before a rung stops any
STARTUP_SHARE = 4   # the startup takes at most a fourth of the study's step budget


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class EarlyStopConfig:
    """The validated early-stopping settings: rule, first rung / warm-up step, reduction factor (eta).

    `min_step` None takes `max_step` / eta² (rounded down, at least 1): three rungs, so no trial is
    judged on less than a ninth of its run (eta 3). Neither given: `resolved` is False until the run
    time says the most steps a trial runs (`with_max_step`). Optuna's own heuristic, a hundredth, judged
    LCBench's 52-epoch curves at epoch 1, where they say little: tests/bench/lcbench.py measured
    asha's median regret 6.2 with it against 1.0 with this (tpe, 1,040 epochs, 10 tasks);
    hyperband needs `max_step` (the most steps a trial runs: its largest bracket reaches it), given or
    learnt at run time.

    `trust_after` (asha; 0 turns this off, None is auto: `trust`): no rung stops a trial before that
    many trials finished (or, with the study's `step_budget`, before the trials spent a fourth of it:
    four full trials side by side must not spend a budget of four; two at a time never reach it
    before three finished), and a rung that would stop the best finished trial stops none from then
    on (`Decider._held`).
    """

    rule: str = "none"
    min_step: int | None = None
    reduction_factor: int = 3
    max_step: int | None = None
    where: str = "early_stop"
    trust_after: int | None = None
    step_budget: int | None = None      # run-time facts the policy adds: the study's step budget...
    parallel: int = 1                   # ...and its runs at once

    def __post_init__(self) -> None:
        w = self.where
        if self.rule not in RULES:
            raise SpaceError.at(w, f"unknown rule {self.rule!r} (allowed: {', '.join(RULES)})")
        if self.min_step is not None and (not _is_int(self.min_step) or self.min_step < 1):
            raise SpaceError.at(w, f"min_step must be an integer >= 1, got {self.min_step!r}")
        if not _is_int(self.reduction_factor) or self.reduction_factor < 2:
            raise SpaceError.at(w, f"reduction_factor must be an integer >= 2, got {self.reduction_factor!r}")
        if self.max_step is not None and (not _is_int(self.max_step) or self.max_step < 1):
            raise SpaceError.at(w, f"max_step (the most steps a trial runs) must be an integer >= 1, got {self.max_step!r}")
        if self.trust_after is not None and (not _is_int(self.trust_after) or self.trust_after < 0):
            raise SpaceError.at(w, f"trust_after must be an integer >= 0, got {self.trust_after!r}")
        if self.rule == "hyperband" and self.max_step is not None and self.min_step is not None \
                and self.max_step < self.min_step:
            raise SpaceError.at(w, f"hyperband needs min_step <= the most steps a trial runs, got min_step="
                             f"{self.min_step}, most steps {self.max_step}")

    @property
    def resolved(self) -> bool:
        """True once the steps are known: min_step given, or the most steps a trial runs (hyperband
        needs that). Until then (neither given) the run-time steps are awaited (`with_max_step`)."""
        if self.rule == "none":
            return True
        if self.rule == "hyperband":
            return self.max_step is not None
        return self.min_step is not None or self.max_step is not None

    @property
    def trust(self) -> int:
        """The trusted rungs' startup in force (0: off, asha as Optuna has it): `trust_after` where
        given; else TRUST_AFTER for asha, unless a step budget is set that the startup (about
        TRUST_AFTER + parallel - 1 full trials) would take more than a fourth of, or the steps of a full
        trial are not known. Four runs side by side on a budget of four full runs have no room for it
        (tests/bench/autopilot.py: asha's median / mean val_loss 0.137 / 0.162 with it, 0.118 / 0.118
        without); two at a time on LCBench's 20 full trials have (tests/bench/lcbench.py)."""
        if self.trust_after is not None:
            return self.trust_after
        if self.rule != "asha":
            return 0
        if self.step_budget is None:
            return TRUST_AFTER
        if self.max_step is None:
            return 0
        startup = (TRUST_AFTER + max(self.parallel, 1) - 1) * self.max_step
        return TRUST_AFTER if startup * STARTUP_SHARE <= self.step_budget else 0

    def with_max_step(self, max_step: int) -> EarlyStopConfig:
        """These settings with the most steps a trial runs known (from the trainer or a finished trial)."""
        return replace(self, max_step=max(1, int(max_step)))

    def rungs(self, limit: int | None = None) -> list[int]:
        """The steps at which a trial may be judged (asha and hyperband's first bracket: first_step *
        eta^k; median: every first_step), up to `limit` or the most steps (at most 12 listed)."""
        if self.rule == "none" or not self.resolved:
            return []
        top = limit or self.max_step or self.first_step * self.reduction_factor ** 4
        out, step = [], self.first_step
        while step <= top and len(out) < 12:
            out.append(step)
            step = step + self.first_step if self.rule == "median" else step * self.reduction_factor
        return out

    @property
    def first_step(self) -> int:
        """The first step at which a trial may be stopped (asha: its first rung; median: the warm-up)."""
        if self.min_step is not None:
            return self.min_step
        return max(1, (self.max_step or 0) // self.reduction_factor ** 2)


@dataclass(frozen=True)
class Report:
    """A trial reported `value` of the objective metric at `step`."""

    trial_id: int
    step: int
    value: float


@dataclass(frozen=True)
class End:
    """A trial ended: status done, stopped, diverged or failed; its last step and objective if known."""

    trial_id: int
    status: str
    step: int | None = None
    value: float | None = None


@dataclass(frozen=True)
class Forget:
    """The trial's values stop counting (it was deleted, or it will run again from its start)."""

    trial_id: int


@dataclass(frozen=True)
class Watch:
    """The decider began watching a trial at `step` (a run re-adopted, or early stopping turned on while
    it ran): the rungs it passed unwatched are recorded with `values` ([step, value] pairs of its own
    curve) but never judged; it is judged only at the rungs it reaches from then on."""

    trial_id: int
    step: int
    values: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Promote:
    """A trial the decider stopped goes on as `trial_id`, a fork of `parent` from the checkpoint taken
    before the stop: the parent's values at the rungs it reached become the fork's (it continues them,
    as ASHA promotes a trial), so the fork is judged from the parent's next rung on, at the same steps."""

    trial_id: int
    parent: int


Record = Report | End | Forget | Watch | Promote
_KINDS = {"report": Report, "end": End, "forget": Forget, "watch": Watch, "promote": Promote}


def record_to_dict(r: Record) -> dict[str, Any]:
    """A history record as a JSON-able dict (for the study to store); record_from_dict reverses it."""
    return {"kind": type(r).__name__.lower(), **asdict(r)}


def record_from_dict(d: dict[str, Any]) -> Record:
    """A history record from record_to_dict's dict."""
    d = dict(d)
    kind = d.pop("kind")
    if kind == "watch":
        d["values"] = tuple((int(s), float(v)) for s, v in d.get("values") or ())
    return _KINDS[kind](**d)


@dataclass(frozen=True)
class Candidate:
    """A trial the decider stopped at `rung` whose `value` there is now within the best 1/eta of the
    `competitors` values recorded at that rung (`cutoff` the worst value that is): ASHA would promote it."""

    trial_id: int
    rung: int
    rung_step: int
    value: float
    cutoff: float
    competitors: int


@dataclass(frozen=True)
class Verdict:
    """A pruner's verdict on a trial at a step, with the numbers that led to it.

    `value` is what was compared (asha, hyperband: the value reported; median: the trial's best so
    far), `cutoff` the value it had to match (None when the value was NaN), `rung` the rung (median:
    the checkpoint number) reached at `rung_step`, `pruned` the pruner's answer, `competitors` how
    many values it was judged among. A `pinned` trial is never stopped; `held` says why a pruned one
was kept anyway (asha: its rung is not trusted yet, or no more). `stop` says what to do.
    """

    trial_id: int
    step: int
    rung: int
    rung_step: int
    value: float
    cutoff: float | None
    pruned: bool
    pinned: bool
    rule: str
    competitors: int
    text: str
    held: str | None = None

    @property
    def stop(self) -> bool:
        """True when the trial is to be stopped now (pruned, not pinned, and not held: see
        `Decider` on the rungs asha trusts)."""
        return self.pruned and not self.pinned and self.held is None
