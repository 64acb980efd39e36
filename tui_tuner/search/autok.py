"""Auto-k: how many runs share the machine, decided from measured throughput. Pure: no clock, no process.

The rule (`parallel = "auto"`): start at k = 1; measure the aggregate steps/s of the runs over a
window; raise k (doubling it) while a raise pays (aggregate steps/s up by at least `gain`, 10%) and
memory has headroom; when a raise did not pay, try the middle of it, and settle on the best k. An out-of-memory
failure backs off by one and caps k there (the failed trial is re-queued by the runtime, see
`should_requeue`). The user can fix k (override) and return to auto; undoing a change puts k back
and holds it there, so auto-k does not immediately redo it.

`Meter` turns the runs' reports (trial, step, time) into a window's aggregate steps/s; the runtime
(runtime/autok.py) feeds it the runner's metrics events, and the state here says what to do.
Every change is a `Change` with its numbers, which the session records as a decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

GAIN = 0.10              # a raise must add at least this share of steps/s to pay
MEMORY_MARGIN = 1.2      # the next run must fit this many times its peers' average memory, free
MEMORY_RESERVE = 0.05    # ... plus this share of the device's memory, kept free for spikes
MAX_K = 64               # the most runs auto-k ever tries at once
OOM_RETRIES = 2          # a trial re-queued after this many out-of-memory failures fails for real
GB = 1e9

Why = Literal["raise", "back", "oom", "fixed", "auto", "undo", "full"]
Mode = Literal["auto", "fixed"]


@dataclass(frozen=True)
class Memory:
    """GPU memory at the end of a window, in bytes: the device's, and what the study's runs hold."""

    used: float
    free: float
    total: float
    runs: float | None = None      # held by the study's own processes (None: per-process use unknown)

    def per_run(self, k: int) -> float:
        """The average memory one run holds (the device's use over k when per-process use is unknown)."""
        held = self.runs if self.runs is not None and self.runs > 0 else self.used
        return held / max(1, k)

    def has_room(self, k: int, margin: float = MEMORY_MARGIN, reserve: float = MEMORY_RESERVE) -> bool:
        """True when one more run of the average size fits, with the margin and the reserve."""
        return self.free >= self.per_run(k) * margin + self.total * reserve

    def text(self) -> str:
        """'GPU 5.3/80 GB' (used of total)."""
        return f"GPU {self.used / GB:.1f}/{self.total / GB:.0f} GB"


@dataclass(frozen=True)
class Measurement:
    """One window's aggregate throughput at a given k."""

    k: int                          # the parallel limit in force during the window
    steps_per_s: float              # all runs' reported steps over the window's length
    runs: float                     # the average number of runs going (not paused) during it
    seconds: float                  # the window's length
    steps: int = 0                  # steps reported in it
    memory: Memory | None = None    # GPU memory at its end (None: no NVIDIA GPU, or no nvidia-ml-py)

    def full(self) -> bool:
        """True when the window had (about) k runs going: a fair measurement of k."""
        return self.runs >= self.k - 0.5


@dataclass(frozen=True)
class Change:
    """A change of k, with the numbers behind it (the session records it as an "auto_k" decision)."""

    old: int
    new: int
    why: Why
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class State:
    """Where auto-k stands. `settled`: the search is over and k stays (a raise did not pay, memory is
    full, an OOM capped it, or an undo holds it); `prev`: the k a raise came from, to go back to."""

    k: int = 1
    mode: Mode = "auto"
    settled: bool = False
    held: bool = False              # an undo put k back: held until the user returns to auto
    prev: int | None = None
    ceiling: int | None = None      # the largest k known to fit in memory (after an OOM)
    cap: int | None = None          # the smallest k known not to pay (raises stay below it)
    rates: Mapping[int, float] = field(default_factory=dict)   # steps/s measured at each k
    max_k: int = MAX_K
    note: str = ""                  # why it stays where it is, for the status line

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the study keeps it, so a restarted tuner continues at the same k)."""
        d = asdict(self)
        d["rates"] = {str(k): v for k, v in self.rates.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], max_k: int = MAX_K) -> State:
        """The state a study kept (unknown or bad keys are dropped, not trusted)."""
        try:
            rates = {int(k): float(v) for k, v in dict(d.get("rates") or {}).items()}
            k = max(1, min(int(d.get("k", 1)), max_k))
            ceiling = d.get("ceiling")
            cap = d.get("cap")
            prev = d.get("prev")
            return cls(k=k, mode="fixed" if d.get("mode") == "fixed" else "auto",
                       settled=bool(d.get("settled")), held=bool(d.get("held")),
                       prev=int(prev) if isinstance(prev, int) else None,
                       ceiling=int(ceiling) if isinstance(ceiling, int) else None,
                       cap=int(cap) if isinstance(cap, int) else None,
                       rates=rates, max_k=max_k, note=str(d.get("note", "")))
        except (TypeError, ValueError, AttributeError):
            return cls(max_k=max_k)

    @property
    def exploring(self) -> bool:
        """True while measurements can still change k."""
        return self.mode == "auto" and not self.settled and not self.held


def rate_text(x: float) -> str:
    """'2,470' steps/s (a comma every three digits; one decimal below 10)."""
    return f"{x:,.1f}" if x < 10 else f"{x:,.0f}"


def _gain(new: float, old: float) -> float:
    return (new - old) / old if old > 0 else float("inf")


def _data(state: State, new: int, why: Why, m: Measurement | None, **more: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"from": state.k, "to": new, "why": why, **more}
    if m is not None:
        d.update(steps_per_s=round(m.steps_per_s, 3), runs=round(m.runs, 2), seconds=round(m.seconds, 2))
        if m.memory is not None:
            d.update(gpu_used=m.memory.used, gpu_free=m.memory.free, gpu_total=m.memory.total,
                     gpu_runs=m.memory.runs)
    return d


def decide(state: State, m: Measurement, gain: float = GAIN) -> tuple[State, Change | None]:
    """A window's measurement in; the new state and the change of k it calls for (None: stay).

    A raise doubles k (1, 2, 4, 8...: few windows to find the range), below any k known not to pay,
    to run out of memory or to exceed `max_k`. A raise that did not pay is bisected: k goes to the
    middle of the last good k and the failed one while one is left untried, else back to the good one.
    """
    if m.k != state.k or not m.full():
        return state, None   # measured at another k, or too few runs going to judge k
    rates = {**state.rates, state.k: m.steps_per_s}
    state = replace(state, rates=rates)
    if not state.exploring:
        return state, None
    k, now, prev = state.k, m.steps_per_s, state.prev
    if prev is not None:
        before = rates.get(prev, 0.0)
        g = _gain(now, before)
        if g < gain:
            cap = k if state.cap is None else min(state.cap, k)
            mid = (prev + k) // 2
            why = f"{rate_text(before)} → {rate_text(now)} steps/s at k {prev} → {k} ({g:+.0%} < +{gain:.0%})"
            data = _data(state, mid if mid > prev else prev, "back", m, gain=g, before=before)
            if mid > prev:   # something between the good k and this one is still untried
                return (replace(state, k=mid, cap=cap, note=""),
                        Change(k, mid, "back", f"k {k} → {mid}: {why}: trying {mid}", data))
            new = replace(state, k=prev, prev=None, settled=True, cap=cap, note=f"k {k} did not pay")
            return new, Change(k, prev, "back", f"k {k} → {prev}: {why}: back to {prev}", data)
    limits = [state.max_k] + [c for c in (state.ceiling,) if c is not None] + (
        [state.cap - 1] if state.cap is not None else [])
    target = min(2 * k, *limits)
    if target <= k:
        why = ("out of memory above" if state.ceiling is not None and k >= state.ceiling
               else f"k {state.cap} did not pay" if state.cap is not None and k >= state.cap - 1
               else "the most auto-k tries")
        return replace(state, settled=True, prev=None, note=f"k {k}: {why}"), None
    if m.memory is not None and not m.memory.has_room(k):
        note = f"memory: {m.memory.free / GB:.1f} GB free, a run needs ~{m.memory.per_run(k) / GB:.1f} GB"
        return replace(state, settled=True, prev=None, note=note), None
    if m.memory is not None:
        # Only as many more runs as fit beside these, at their average size.
        fit = int((m.memory.free - m.memory.total * MEMORY_RESERVE) // max(1.0, m.memory.per_run(k) * MEMORY_MARGIN))
        target = max(k + 1, min(target, k + fit))
    if prev is not None:
        before = rates[prev]
        text = (f"k {k} → {target}: {rate_text(before)} → {rate_text(now)} steps/s at k {prev} → {k} "
                f"({_gain(now, before):+.0%} ≥ +{gain:.0%})")
        data = _data(state, target, "raise", m, gain=_gain(now, before), before=before)
    else:
        text = f"k {k} → {target}: {rate_text(now)} steps/s at k {k}; trying {target}"
        data = _data(state, target, "raise", m)
    if m.memory is not None:
        text += f" ({m.memory.text()})"
    return replace(state, k=target, prev=k, note=""), Change(k, target, "raise", text, data)


def oom(state: State, trial_id: int, requeued: bool) -> tuple[State, Change | None]:
    """A run failed out of memory: back off by one and cap k there (in auto mode; a fixed k stays)."""
    again = "re-queued, not counted" if requeued else "not re-queued"
    if state.mode == "fixed" or state.k <= 1:
        return state, None
    new = state.k - 1
    text = f"k {state.k} → {new}: #{trial_id} ran out of GPU memory with {state.k} runs sharing it ({again})"
    data = _data(state, new, "oom", None, trial=trial_id, requeued=requeued)
    return (replace(state, k=new, prev=None, settled=True, ceiling=new, note=f"out of memory at k {state.k}"),
            Change(state.k, new, "oom", text, data))


def should_requeue(oom_failures: int, others_live: int, k: int) -> bool:
    """Whether a trial that just ran out of memory runs again: when it shared the device (others were
    live, or k > 1) and has not already failed so `OOM_RETRIES` times; alone it simply does not fit."""
    return (others_live > 0 or k > 1) and oom_failures <= OOM_RETRIES


def fix(state: State, k: int) -> tuple[State, Change | None]:
    """The user fixes k (an override): auto-k stops deciding until `to_auto`."""
    k = max(1, int(k))
    if state.mode == "fixed" and state.k == k:
        return state, None
    text = f"k {state.k} → {k}: fixed by hand (auto-k paused)"
    return (replace(state, k=k, mode="fixed", prev=None, note="fixed by hand"),
            Change(state.k, k, "fixed", text, _data(state, k, "fixed", None)))


def to_auto(state: State) -> tuple[State, Change | None]:
    """Back to auto: the search resumes from the current k (earlier rates may be stale, so dropped)."""
    if state.exploring:
        return state, None
    text = f"k {state.k}: back to auto (measuring from k {state.k})"
    new = replace(state, mode="auto", settled=False, held=False, prev=None, cap=None, rates={}, note="")
    return new, Change(state.k, state.k, "auto", text, _data(state, state.k, "auto", None))


def undo(state: State, change: Mapping[str, Any]) -> tuple[State, Change]:
    """Undo a recorded change (its data: from, to): k goes back to `from` and is held there."""
    old = max(1, int(change["from"]))
    text = f"k {state.k} → {old}: undo of k {change['from']} → {change['to']}; held at {old} (k: back to auto)"
    ceiling = None if state.ceiling is not None and old > state.ceiling else state.ceiling
    cap = None if state.cap is not None and old >= state.cap else state.cap
    new = replace(state, k=old, prev=None, held=True, settled=True, ceiling=ceiling, cap=cap, note="held by undo")
    return new, Change(state.k, old, "undo", text, _data(state, old, "undo", None, undone=dict(change)))


class Meter:
    """Aggregate steps/s from the runs' reports over a window; a run's first report is only its baseline.

    So the start-up before a run's first report, and a fork's inherited step count, never count.
    Times are given, never read, so it is tested with tables of reports.
    """

    def __init__(self) -> None:
        self._last: dict[int, int] = {}    # each run's latest step
        self._start: float | None = None
        self._steps = 0
        self._reports = 0
        self._runs_area = 0.0              # ∫ runs going dt over the window
        self._runs_t: float | None = None
        self._runs_now = 0

    def report(self, trial_id: int, step: int, t: float | None = None) -> None:
        """A run reported reaching `step` (at the trainer's time t, when known: a report written before
        the window opened, read late by a busy tuner, moves the baseline but does not count)."""
        last = self._last.get(trial_id)
        self._last[trial_id] = step
        early = isinstance(t, (int, float)) and self._start is not None and t < self._start
        if last is not None and self._start is not None and step > last and not early:
            self._steps += step - last
            self._reports += 1

    def baseline(self, trial_id: int) -> bool:
        """True once the run reported at least once (it is past its start-up)."""
        return trial_id in self._last

    def end(self, trial_id: int) -> None:
        """A run ended (or was re-queued): forget its baseline."""
        self._last.pop(trial_id, None)

    def going(self, runs: int, t: float) -> None:
        """How many runs are going (not paused) from time t on: the window's average comes from this."""
        if self._runs_t is not None and self._start is not None:
            self._runs_area += self._runs_now * max(0.0, t - self._runs_t)
        self._runs_t, self._runs_now = t, runs

    def start(self, t: float) -> None:
        """Open a new window at time t."""
        self._start, self._steps, self._reports, self._runs_area = t, 0, 0, 0.0
        self._runs_t = t

    @property
    def open(self) -> bool:
        """True while a window is open."""
        return self._start is not None

    def stop(self) -> None:
        """Close the window without a measurement (k changed under it)."""
        self._start = None

    def elapsed(self, t: float) -> float:
        """Seconds since the window opened (0 when none is open)."""
        return 0.0 if self._start is None else max(0.0, t - self._start)

    @property
    def reports(self) -> int:
        """Reports that advanced a run within the window."""
        return self._reports

    def measure(self, k: int, t: float, memory: Memory | None = None) -> Measurement:
        """The window so far as a measurement at k."""
        seconds = self.elapsed(t)
        area = self._runs_area + (self._runs_now * max(0.0, t - self._runs_t) if self._runs_t is not None else 0.0)
        runs = area / seconds if seconds > 0 else float(self._runs_now)
        rate = self._steps / seconds if seconds > 0 else 0.0
        return Measurement(k, rate, runs, seconds, self._steps, memory)
