"""What the screen shows, as plain immutable data: one `Snapshot` per rendered frame.

The back-end thread builds snapshots from the study and runner; the widgets only read them. Equal
parts compare equal, so a widget redraws only when its part changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tui_tuner.pictures.plotting import Box, Curves, Point
from tui_tuner.runtime.devices import DeviceLoad


@dataclass(frozen=True)
class ParamRow:
    """One hyperparameter line: priority, scale, current range, values in the focused and best runs."""

    name: str
    tier: int
    scale: str
    range: str
    run: Any = None            # value in the focused run (None: no run)
    best: Any = None           # value in the best trial (None: none finished)
    importance: float | None = None
    searched: bool = True
    frozen: bool = False
    live: bool = False


INEXACT_MARK = "~"   # after a fork's lineage: it does not continue its parent exactly

@dataclass(frozen=True)
class TrialRow:
    """One trial line: status, objective, a short curve and lineage."""

    id: int
    status: str
    objective: float | None
    step: int | None
    source: str
    parent: int | None
    fork_step: int | None
    curve: tuple[float, ...] = ()
    reason: str | None = None
    pinned: bool = False
    inexact: bool = False            # a fork that does not continue its parent exactly (its trainer said)
    device: str | None = None        # the GPU it runs (ran) on, with [study] devices
    waiting: str | None = None       # a cluster job not started yet: "queued on the cluster (Resources)"

    @property
    def lineage(self) -> str:
        """'#3@120' for a fork of trial 3 at step 120 ('#3@120~' when not an exact continuation), '' otherwise."""
        if self.parent is None:
            return ""
        at = f"@{self.fork_step}" if self.fork_step is not None else ""
        return f"#{self.parent}{at}{INEXACT_MARK if self.inexact else ''}"


@dataclass(frozen=True)
class QueueRow:
    """One queued setting: where it came from and the values of the searched parameters."""

    id: int
    source: str
    parent: int | None
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunView:
    """The focused run: live numbers and curves."""

    id: int
    status: str
    step: int | None
    metrics: tuple[tuple[str, float], ...]
    elapsed: float | None
    stalled: bool
    loss_name: str
    loss: tuple[float, ...]
    objective_name: str
    objective: tuple[float, ...]    # empty when the objective is the loss itself
    can_adjust: bool
    params: dict = field(default_factory=dict)
    parent: int | None = None
    fork_step: int | None = None
    reason: str | None = None
    marks: tuple[tuple[float, str], ...] = ()   # on the curves: (fraction of the width, glyph)
    inexact: str | None = None      # why this fork does not continue its parent exactly
    pinned: bool = False
    current: dict = field(default_factory=dict)   # the settings it uses now (its reported lr over its setting)
    started: dict = field(default_factory=dict)   # the settings it started with
    device: str | None = None       # its GPU, with [study] devices
    waiting: str | None = None      # a cluster job not started yet: "queued on the cluster (Resources)"

    @property
    def active(self) -> bool:
        """True while its process runs or is paused."""
        return self.status in ("running", "paused")


@dataclass(frozen=True)
class Card:
    """One active run in the side-by-side strip."""

    id: int
    status: str
    value: float | None
    points: tuple[tuple[int, float], ...]    # (step, objective), downsampled


@dataclass(frozen=True)
class Snapshot:
    """Everything one frame shows."""

    seq: int
    name: str
    objective: str
    maximize: bool
    counts: tuple[tuple[str, int], ...]
    zoom: int
    stage: int
    budget: int
    zero_code: bool
    params: tuple[ParamRow, ...]
    trials: tuple[TrialRow, ...]
    queue: tuple[QueueRow, ...]
    focused: RunView | None
    cards: tuple[Card, ...]
    best_id: int | None
    order: str = "best"
    gpu: str | None = None
    k: str | None = None            # auto-k: "k 3 auto · 2,470 steps/s · GPU 5.3/80 GB" (None: the space's fixed k)
    devices: tuple[DeviceLoad, ...] | None = None   # [study] devices: each one's runs, k and memory; None: none
    early_stop: str = "off"         # "asha 11·33·99", "off"
    autopilot: str = "off"          # "pbt every 100 steps", "off"
    pending: tuple[str, ...] = ()   # decisions under way the user should see: "fork of #3"
    importance_method: str = ""
    # The pictures, gathered only while their view is open (Backend.view; None otherwise): every
    # trial's curve of the selected metric (curves view); every started trial's setting, and the
    # zoom stack (search view).
    curves: Curves | None = None
    points: tuple[Point, ...] | None = None
    boxes: tuple[Box, ...] = ()
    # The view this snapshot was built for (None: the main screen). Built for a view, it leaves out
    # what only the main screen draws: the run panel's charts, the strip's cards, the table's curves.
    view: str | None = None

    def count(self, status: str) -> int:
        """How many trials have this status."""
        return dict(self.counts).get(status, 0)

    @property
    def active_ids(self) -> list[int]:
        """Ids of the running or paused trials, in id order."""
        return sorted(t.id for t in self.trials if t.status in ("running", "paused"))

    def trial(self, trial_id: int | None) -> TrialRow | None:
        """The row of a trial, or None."""
        for t in self.trials:
            if t.id == trial_id:
                return t
        return None
