"""What one run's reports say, kept in memory: the pure part of following a run.

`RunState` applies what a trainer wrote (a metrics report, an event line, a garbage count) and
returns the `RunEvent`s that happened; it never touches a file, a process or the study, and takes
the time as an argument, so it is tested with tables of inputs. The runner feeds it (live, or
replaying an old run) and carries out what the events call for.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tui_tuner.study import verdict
from tui_tuner.trainer import protocol
from tui_tuner.trainer.protocol import StrEnum

SERIES_POINTS = 512        # per metric and run, whatever the run's length
STEP_MAX = protocol.STEP_MAX   # a step is kept in array("q") and SQLite: 0..2**63-1
SHOWN_DIGITS = 30          # a bad number in a message: cut to this many characters


class Kind(StrEnum):
    """What a RunEvent reports; a member equals its string, so `ev.kind == "ended"` holds."""

    STARTED = "started"        # data: pid, argv (or adopted=True)
    METRICS = "metrics"        # coalesced, one per poll and run: step, metrics, count
    APPLIED = protocol.EV_APPLIED        # a live change took effect: params, step
    PAUSED = protocol.EV_PAUSED          # step, t
    RESUMED = protocol.EV_RESUMED        # step, t
    CHECKPOINT = protocol.EV_CHECKPOINT  # seq, path, step
    DONE = protocol.EV_DONE              # the trainer said it finished: step
    MAX_STEPS = protocol.EV_MAX_STEPS    # the step limit it trains to now: steps, step
    INEXACT = protocol.EV_INEXACT        # a fork that does not continue its parent exactly: reason
    DIVERGED = "diverged"      # reason, step
    STALLED = "stalled"        # stalled True (since) or False
    GARBAGE = "garbage"        # count (in all), new
    ENDED = "ended"            # status, reason, objective, step
    ERROR = "error"            # message: a failure the runner survived (a study write, a listener)
    REQUEUED = "requeued"      # a cluster job went back to Slurm's queue (preempted): times


@dataclass
class RunEvent:
    """Something that happened to a run, handed to the runner's `on_event` callback.

    trial_id is -1 for an error that belongs to no run.
    """

    kind: Kind
    trial_id: int
    data: dict[str, Any] = field(default_factory=dict)


def _shown(v: Any) -> str:
    """A bad value for a one-line message, cut short (a trainer may write a number of 5,000 digits)."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**SHOWN_DIGITS:
        if v.bit_length() > 14_000:   # str() refuses ints past 4,300 digits
            return f"an integer of about {round(v.bit_length() * math.log10(2))} digits"
        digits = str(v)
        return f"{digits[:SHOWN_DIGITS]}… ({len(digits.lstrip('-'))} digits)"
    text = repr(v)
    return text if len(text) <= SHOWN_DIGITS + 20 else text[:SHOWN_DIGITS] + "…"


class Series:
    """A bounded learning curve: at most `cap` points; when full, neighbouring pairs merge.

    Each stored point then stands for twice as many raw points (mean value, last step), so a run
    reporting thousands of steps a second keeps a fixed memory and an even view of its whole curve.
    Points live in two typed arrays (16 bytes a point), so a study of many runs stays small.
    """

    def __init__(self, cap: int = SERIES_POINTS) -> None:
        self.cap = max(2, cap)
        self.steps = array("q")
        self.values = array("d")
        self.stride = 1
        self._sum = 0.0
        self._n = 0
        self._step = 0

    def __len__(self) -> int:
        return len(self.steps) + (1 if self._n else 0)

    def add(self, step: int, value: float) -> None:
        """Add one raw point (non-finite values are left out of the curve)."""
        if value - value != 0.0:   # NaN or +-inf (math.isfinite, without the call: it runs per point)
            return
        self._sum += value
        self._n += 1
        self._step = step
        if self._n < self.stride:
            return
        self.steps.append(self._step)
        self.values.append(self._sum / self._n)
        self._sum, self._n = 0.0, 0
        if len(self.steps) >= self.cap:
            st, va = self.steps, self.values
            n = len(st) - len(st) % 2
            steps = array("q", st[1:n:2])
            values = array("d", ((va[i] + va[i + 1]) / 2 for i in range(0, n, 2)))
            if len(st) % 2:
                steps.append(st[-1])
                values.append(va[-1])
            self.steps, self.values = steps, values
            self.stride *= 2

    def get(self) -> list[tuple[int, float]]:
        """The curve as (step, value) pairs, the not yet merged tail included."""
        pts = list(zip(self.steps, self.values, strict=True))
        if self._n:
            pts.append((self._step, self._sum / self._n))
        return pts


@dataclass(frozen=True)
class Objective:
    """How a study ranks a run: the metric, which way is better, and best-or-last reduction."""

    name: str
    better: Callable[[float, float], bool]
    reduce: str = "best"


class RunState:
    """One run's picture built from its reports: step, curves, objective, divergence, pauses, checkpoints."""

    def __init__(self, trial_id: int, objective: Objective, params: dict[str, Any], *,
                 step: int | None = None, status: str = "running", now: float = 0.0) -> None:
        self.trial_id = trial_id
        self.objective_spec = objective
        self.params = dict(params)            # with applied live changes
        self.applied: list[dict[str, Any]] = []   # each live change that took effect: step, params, t
        self.pauses: list[int | None] = []    # the step at each pause (marks on the run's sparkline)
        self.reported_at: Any = None          # the trainer's time of its latest metrics report ("t")
        self.max_steps: int | None = None     # the step limit the trainer reads (trainer.max_steps), once said
        self.status = status                  # running or paused while live; the verdict once ended
        self.step = step
        self.series: dict[str, Series] = {}
        self.metrics: dict[str, float] = {}   # the latest value of each metric
        self.best: float | None = None
        self.last: float | None = None
        self.reports = 0                      # metric reports applied so far
        self.last_activity = now
        self.stalled = False
        self.garbage = 0
        self.bad_events = 0                   # lines skipped for numbers out of range (see bad_event)
        self.done_at: float | None = None     # when the trainer said it finished (its done event)
        self.diverged: str | None = None
        self.checkpoints: dict[int, dict[str, Any]] = {}

    @property
    def objective(self) -> float | None:
        """The reduced objective so far (best or last value of the objective metric)."""
        return self.best if self.objective_spec.reduce == "best" else self.last

    def _event(self, kind: Kind, data: dict[str, Any]) -> RunEvent:
        return RunEvent(kind, self.trial_id, data)

    def activity(self, now: float) -> list[RunEvent]:
        """The run wrote something: it is not stalled (any more)."""
        self.last_activity = now
        if not self.stalled:
            return []
        self.stalled = False
        return [self._event(Kind.STALLED, {"stalled": False})]

    def apply_line(self, obj: Any, now: float) -> list[RunEvent]:
        """One decoded line of events.jsonl: a metrics report, an event, or garbage (not an object)."""
        return self.apply_lines([obj], now)

    def apply_lines(self, objs: list[Any], now: float) -> list[RunEvent]:
        """Decoded lines of events.jsonl, in order: what `apply_line` does to each, at less cost a line.

        The runner reads about a thousand lines a second from each fast run; most are metrics
        reports of float values, which take a short path here (no per-line lists or dict copies).
        """
        if not objs:
            return []
        out = self.activity(now)   # once: every line came in at `now`
        for obj in objs:
            if not isinstance(obj, dict):
                self.garbage += 1
                continue
            metrics = obj.get("metrics")
            if "metrics" not in obj or not isinstance(metrics, dict):
                out += self.apply_event(obj)
                continue
            raw = obj.get("step")
            step = raw if type(raw) is int and 0 <= raw <= STEP_MAX else protocol.step_of(raw)
            if step is None:
                if raw is not None:
                    out += self.bad_event(f"step {_shown(raw)} is outside 0..{STEP_MAX}")
                    continue
                step = self.step or 0   # a report without a step belongs to the last one
            decoded: dict[str, float] = {}
            for k, v in metrics.items():
                if type(v) is float:
                    decoded[k] = v
                    continue
                try:
                    f = protocol.decode_metric(v)
                except OverflowError:   # an int no float holds: 10**400
                    decoded = {}
                    out += self.bad_event(f"metric {_shown(str(k))} is {_shown(v)}, too big for a number")
                    break
                if f is not None:
                    decoded[str(k)] = f
            else:
                self.reported_at = obj.get("t")
                events = self.apply_metrics(step, decoded)
                if events:
                    out += events
        return out

    def bad_event(self, why: str) -> list[RunEvent]:
        """A well-formed line whose numbers no run can hold: skipped and counted with the garbage; the
        first one of the run is said (an "error" event, one line), the rest only counted."""
        self.garbage += 1
        self.bad_events += 1
        if self.bad_events > 1:
            return []
        return [self._event(Kind.ERROR, {"message": f"trial {self.trial_id}: bad event skipped: {why} (any later "
                                                    "ones of this run are skipped without a word)"})]

    def apply_garbage(self, count: int, now: float) -> list[RunEvent]:
        """`count` lines that could not be read came in (a trainer printing into events.jsonl)."""
        if count <= 0:
            return []
        self.garbage += count
        return self.activity(now) + [self._event(Kind.GARBAGE, {"count": self.garbage, "new": count})]

    def apply_metrics(self, step: int, metrics: dict[str, float]) -> list[RunEvent]:
        """One metrics report; the first non-finite objective or loss makes the run diverged."""
        spec = self.objective_spec
        out: list[RunEvent] = []
        self.step = step
        self.reports += 1
        latest, curves = self.metrics, self.series
        for name, value in metrics.items():
            latest[name] = value
            series = curves.get(name)
            if series is None:
                series = curves[name] = Series()
            series.add(step, value)
            finite = value - value == 0.0   # math.isfinite, without the call (per metric and line)
            if name == spec.name:
                self.last = value
                if finite and (self.best is None or spec.better(value, self.best)):
                    self.best = value
            if not finite and self.diverged is None and (name == spec.name or name.endswith("loss")):
                self.diverged = f"{name} is {value} at step {step}"
                out.append(self._event(Kind.DIVERGED, {"reason": self.diverged, "step": step}))
        return out

    def apply_event(self, ev: dict[str, Any]) -> list[RunEvent]:
        """One trainer event line (applied, paused, resumed, checkpoint, done); unknown kinds are skipped."""
        kind = ev.get("event")
        if kind == protocol.Event.APPLIED:
            params = ev.get("params") if isinstance(ev.get("params"), dict) else {}
            self.params.update(params)
            self.applied.append({"step": self.step, "params": params, "t": ev.get("t")})
            return [self._event(Kind.APPLIED, {"params": params, "step": self.step})]
        if kind in (protocol.Event.PAUSED, protocol.Event.RESUMED):
            self.status = "paused" if kind == protocol.Event.PAUSED else "running"
            if kind == protocol.Event.PAUSED:
                self.pauses.append(self.step)
            return [self._event(Kind(kind), {"step": self.step, "t": ev.get("t")})]
        if kind == protocol.Event.CHECKPOINT:
            seq = ev.get("seq")
            if isinstance(seq, int):
                self.checkpoints[seq] = ev
            return [self._event(Kind.CHECKPOINT, {k: ev.get(k) for k in ("seq", "path", "step")})]
        if kind == protocol.Event.MAX_STEPS:
            steps = ev.get("steps")
            if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
                return []
            if self.max_steps is not None and steps != self.max_steps:
                # Training longer (or shorter) is a change to the run: marked on its curve.
                self.applied.append({"step": self.step, "params": {}, "max_steps": steps, "t": ev.get("t")})
            self.max_steps = steps
            return [self._event(Kind.MAX_STEPS, {"steps": steps, "step": self.step})]
        if kind == protocol.Event.INEXACT:
            return [self._event(Kind.INEXACT, {"reason": str(ev.get("reason") or "not an exact continuation")})]
        if kind == protocol.Event.DONE:
            if self.done_at is None:
                self.done_at = verdict.event_time(ev)
            return [self._event(Kind.DONE, {"step": self.step})]
        # A well-formed line of a kind we do not know: a newer trainer; not an error.
        return []

    def check_stall(self, now: float, timeout: float) -> list[RunEvent]:
        """A running run silent for more than `timeout` seconds (0: never) is flagged stalled, once."""
        if self.stalled or self.status != "running" or timeout <= 0 or now - self.last_activity <= timeout:
            return []
        self.stalled = True
        return [self._event(Kind.STALLED, {"stalled": True, "since": self.last_activity})]

    def resumed_by_signal(self, now: float) -> list[RunEvent]:
        """A zero-code run was sent SIGCONT: running again, and the stall clock restarts."""
        if self.status != "paused":
            return []
        self.status = "running"
        self.last_activity = now
        return [self._event(Kind.RESUMED, {"step": self.step})]

    def paused_by_signal(self) -> list[RunEvent]:
        """A zero-code run was sent SIGSTOP: it is paused."""
        self.status = "paused"
        self.pauses.append(self.step)
        return [self._event(Kind.PAUSED, {"step": self.step})]
