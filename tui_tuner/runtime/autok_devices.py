"""Auto-k per device: with `[study] devices`, each GPU's k is chosen from that GPU's own runs.

One `Lane` per device is an AutoK (runtime/autok.py, the rule of search/autok.py) that measures only
the runs on its device (their steps/s, that device's memory), keeps its state in the study under its
own key ("auto_k@1") and puts its k in force for its device alone (`Devices.ks`): a GPU that another
job half fills, or a slower one, settles lower than the others. Each lane's changes are decisions of
their own ("GPU 1: k 2 → 4: ..."), undone on that device alone. The user's k keys act on every
device at once: one decision, kept with every lane's state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from tui_tuner.errors import RunError
from tui_tuner.runtime.autok import FIXED_BY_SPACE, STATE_META, WINDOW, AutoK, Status
from tui_tuner.runtime.runner import RunEvent, Runner
from tui_tuner.runtime.scheduler import Scheduler
from tui_tuner.search.autok import Change, Measurement, Memory, Why
from tui_tuner.study.study import Study


class Lane(AutoK):
    """Auto-k for the runs of one device."""

    def __init__(self, study: Study, runner: Runner, scheduler: Scheduler, device: str, *, auto: bool,
                 on_change: Callable[[Change], None], window: float, clock: Callable[[], float]) -> None:
        self.device = device
        self.meta_key = f"{STATE_META}@{device}"
        assert runner.devices is not None
        self.devices = runner.devices
        super().__init__(study, runner, scheduler, auto=auto, on_change=on_change, probe=runner.devices.probe,
                         window=window, clock=clock)

    def _mine(self, trial_id: int) -> bool:
        run = self.runner.runs.get(trial_id)
        return run is not None and run.device == self.device

    def _set_k(self, k: int) -> None:
        self.devices.ks[self.device] = k
        # The scheduler's k is the largest device's (what headless and a round's size read).
        self.scheduler.parallel = max(self.devices.each_k().values())

    def _memory(self) -> Memory | None:
        return self.devices.memory(self.runner.runs).get(self.device)

    def _apply(self, change: Change | None) -> None:
        # Its decisions name its device, and say so, so that an undo finds the lane.
        if change is not None:
            change = Change(change.old, change.new, change.why, f"GPU {self.device}: {change.text}",
                            {**change.data, "device": self.device})
        super()._apply(change)


class DeviceAutoK:
    """AutoK's interface over one lane per device (the automation loop and the session use it alike)."""

    def __init__(self, study: Study, runner: Runner, scheduler: Scheduler, *, auto: bool,
                 on_change: Callable[[Change], None] | None = None, window: float = WINDOW,
                 clock: Callable[[], float] = time.time) -> None:
        assert runner.devices is not None
        self.on_change = on_change
        self._muted = False       # the user's keys: the lanes' changes become one decision
        self.lanes = [Lane(study, runner, scheduler, d, auto=auto, on_change=self._changed, window=window,
                           clock=clock) for d in runner.devices.devices]
        self._by_device = {lane.device: lane for lane in self.lanes}

    @property
    def window(self) -> float:
        """Seconds a measurement lasts (every lane's)."""
        return self.lanes[0].window

    @window.setter
    def window(self, seconds: float) -> None:
        for lane in self.lanes:
            lane.window = seconds

    def _changed(self, change: Change) -> None:
        if self._muted or self.on_change is None:
            return
        self.on_change(change)

    # -- what it shows ----------------------------------------------------------------------------

    def status(self) -> Status:
        """Every device's k ('k 2·4 auto' where they differ) and the devices' steps/s together."""
        each = [lane.status() for lane in self.lanes]
        ks = tuple(s.k for s in each)
        modes = {s.mode for s in each}
        measured = [s.measurement for s in each if s.measurement is not None]
        m = None
        if measured:
            m = Measurement(max(ks), sum(x.steps_per_s for x in measured), sum(x.runs for x in measured),
                            max(x.seconds for x in measured), sum(x.steps for x in measured))
        notes = {s.note for s in each}
        note = FIXED_BY_SPACE if notes == {FIXED_BY_SPACE} else "; ".join(
            f"GPU {lane.device}: {s.note}" for lane, s in zip(self.lanes, each, strict=True) if s.note)
        return Status(max(ks), modes.pop() if len(modes) == 1 else "/".join(sorted(modes)), m, note, ks)

    # -- events and ticks -------------------------------------------------------------------------

    def observe(self, ev: RunEvent) -> Change | None:
        """Feed one runner event to the lane of the run's device."""
        for lane in self.lanes:
            if lane._mine(ev.trial_id):
                return lane.observe(ev)
        return None

    def tick(self) -> Change | None:
        """Every lane measures and decides; the last change made (each was recorded on its own)."""
        made = [c for c in (lane.tick() for lane in self.lanes) if c is not None]
        return made[-1] if made else None

    # -- the user's hand ------------------------------------------------------------------------

    def _together(self, act: Callable[[Lane], Any], why: Why, what: str) -> str:
        """Do `act` on every lane as one decision (why, what it says), with each device's k before and after."""
        states = [lane.state for lane in self.lanes]
        before = {lane.device: lane.state.k for lane in self.lanes}
        self._muted = True
        try:
            for lane in self.lanes:
                act(lane)
        finally:
            self._muted = False
        after = {lane.device: lane.state.k for lane in self.lanes}
        old, new = _ks(before), _ks(after)
        if states == [lane.state for lane in self.lanes]:
            return f"k {new} stays on every GPU"
        text = f"k {old} → {new} on every GPU: {what}" if old != new else f"k {new} on every GPU: {what}"
        change = Change(max(before.values()), max(after.values()), why, text, {"from": before, "to": after, "why": why})
        if self.on_change is not None:
            self.on_change(change)
        return text

    def fix(self, k: int) -> str:
        """Fix k by hand on every device (auto-k stops choosing until `toggle`)."""
        if k < 1:
            raise RunError(f"k must be at least 1, got {k}")
        return self._together(lambda lane: lane.fix(k), "fixed", "fixed by hand (auto-k paused)")

    def toggle(self) -> str:
        """The override key: fix every device's k where it is, or (when fixed or held) all back to auto."""
        if all(lane.state.mode == "auto" and not lane.state.held for lane in self.lanes):
            return self._together(lambda lane: lane.fix(lane.state.k), "fixed", "fixed by hand (auto-k paused)")
        return self._together(lambda lane: lane.toggle() if lane.state.mode != "auto" or lane.state.held else None,
                              "auto", "back to auto")

    def undo(self, data: Mapping[str, Any]) -> str:
        """Undo a recorded change: one device's (its data names the device), or a change of every device's."""
        device = data.get("device")
        if device is not None:
            lane = self._by_device.get(str(device))
            if lane is None:
                raise RunError(f"GPU {device} is not among this study's devices any more")
            return f"GPU {device}: {lane.undo(data)}"
        before, after = data.get("from"), data.get("to")
        if not isinstance(before, dict):
            raise RunError("this auto-k decision does not say which k it changed")

        def back(lane: Lane) -> None:
            if lane.device in before:
                to = after.get(lane.device, before[lane.device]) if isinstance(after, dict) else after
                lane.undo({"from": before[lane.device], "to": to})

        return self._together(back, "undo", "undone, held (k: back to auto)")

    def kept(self) -> dict[str, Any]:
        """Every lane's state to keep."""
        out: dict[str, Any] = {}
        for lane in self.lanes:
            out.update(lane.kept())
        return out


def _ks(ks: Mapping[str, int]) -> str:
    """'2' when every device has it, else '2·4·2' in the devices' order."""
    values = list(ks.values())
    return str(values[0]) if len(set(values)) == 1 else "·".join(str(v) for v in values)
