"""What early stopping is set up with, told and decides, as plain data (no Optuna, no numpy).

`EarlyStopConfig` is the validated [study] early_stop settings; `Report`, `End` and `Forget` are the
records a decider is fed (the study stores them, `Decider.rebuild` replays them after a restart);
a `Decision` is a pruner's verdict with the numbers that led to it. The decider itself, on Optuna's
pruners, is core/early_stop.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tui_tuner.errors import SpaceError

RULES = ("asha", "median", "hyperband", "none")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class EarlyStopConfig:
    """The validated early-stopping settings: rule, first rung / warm-up step, reduction factor (eta).

    `min_step` None takes `max_step` / eta² (rounded down, at least 1): three rungs, so no trial is
    judged on less than a ninth of its run (eta 3). Optuna's own heuristic, a hundredth, judged
    LCBench's 52-epoch curves at epoch 1, where they say little: tests/bench/lcbench.py measured
    asha's median regret 6.2 with it against 1.0 with this (tpe, 1,040 epochs, 10 tasks);
    hyperband needs `max_step` (the most steps a trial runs: its largest bracket reaches it).
    """

    rule: str = "none"
    min_step: int | None = None
    reduction_factor: int = 3
    max_step: int | None = None
    where: str = "early_stop"

    def __post_init__(self) -> None:
        w = self.where
        if self.rule not in RULES:
            raise SpaceError(f"{w}: unknown rule {self.rule!r} (allowed: {', '.join(RULES)})")
        if self.min_step is not None and (not _is_int(self.min_step) or self.min_step < 1):
            raise SpaceError(f"{w}: min_step must be an integer >= 1, got {self.min_step!r}")
        if not _is_int(self.reduction_factor) or self.reduction_factor < 2:
            raise SpaceError(f"{w}: reduction_factor must be an integer >= 2, got {self.reduction_factor!r}")
        if self.max_step is not None and (not _is_int(self.max_step) or self.max_step < 1):
            raise SpaceError(f"{w}: the step budget must be an integer >= 1, got {self.max_step!r}")
        if self.rule == "none":
            return
        if self.min_step is None and self.max_step is None:
            raise SpaceError(f"{w}: {self.rule} needs min_step (the first step it may stop a trial at) "
                             f"or a step budget to take it from")
        if self.rule == "hyperband":
            if self.max_step is None:
                raise SpaceError(f"{w}: hyperband needs a step budget (the most steps a trial runs)")
            if self.max_step < self.first_step:
                raise SpaceError(f"{w}: hyperband needs min_step <= the step budget, got min_step="
                                 f"{self.first_step}, step budget {self.max_step}")

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


Record = Report | End | Forget
_KINDS = {"report": Report, "end": End, "forget": Forget}


def record_to_dict(r: Record) -> dict[str, Any]:
    """A history record as a JSON-able dict (for the study to store); record_from_dict reverses it."""
    return {"kind": type(r).__name__.lower(), **asdict(r)}


def record_from_dict(d: dict[str, Any]) -> Record:
    """A history record from record_to_dict's dict."""
    d = dict(d)
    return _KINDS[d.pop("kind")](**d)


@dataclass(frozen=True)
class Decision:
    """A pruner's verdict on a trial at a step, with the numbers that led to it.

    `value` is what was compared (asha, hyperband: the value reported; median: the trial's best so
    far), `cutoff` the value it had to match (None when the value was NaN), `rung` the rung (median:
    the checkpoint number) reached at `rung_step`, `pruned` the pruner's answer, `competitors` how
    many values it was judged among. A `pinned` trial is never stopped: `stop` says what to do.
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

    @property
    def stop(self) -> bool:
        """True when the trial is to be stopped now (pruned and not pinned)."""
        return self.pruned and not self.pinned
