"""Auto-k carried out: measure the runs' aggregate throughput, and set the scheduler's parallel limit.

The rule is the core's (search/autok.py); this feeds its meter the runner's metrics events, opens a
window once k runs are going and have reported (their start-up is not measured), closes it after
`window` seconds, and applies what the rule decides to `Scheduler.parallel`. Lowering k stops no
run: the scheduler starts none until fewer than k go. A run that failed out of GPU memory in auto
mode is re-queued (the same setting runs again, not counted against the budget) and k backs off.

With `[study] devices` each device has its own k (runtime/autok_devices.py: one AutoK per device,
through the hooks `meta_key`, `_mine`, `_set_k` and `_memory`).

`on_change` gets each change with its numbers (the session records it as a decision). The state is
kept in the study (meta "auto_k"), so a restarted tuner continues at the same k. Events and ticks both
come on the command thread (the automation loop); the lock keeps `status()` safe from the view thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tui_tuner.errors import RunError, StudyError
from tui_tuner.runtime.gpu_memory import GpuMemory
from tui_tuner.runtime.runner import RunEvent, Runner
from tui_tuner.runtime.scheduler import Scheduler
from tui_tuner.search import autok, cluster_k
from tui_tuner.search.autok import Change, Measurement, Meter, State
from tui_tuner.study.study import Study

STATE_META = "auto_k"
OOM_META = "auto_k_oom"          # {trial id: out-of-memory failures so far}
OOM_REASON = "out of GPU memory"  # study/verdict.py's reason for a run that ran out of memory
WINDOW = 5.0                     # seconds a measurement lasts (at least)
REPORTS_PER_RUN = 2              # ... and at least this many reports per run in it
FIXED_BY_SPACE = "fixed by the space"


@dataclass(frozen=True)
class Status:
    """What the status line shows: k, whether auto-k chooses it, and the measurement behind it."""

    k: int
    mode: str                   # "auto", "fixed" (by hand or by the space), "held" (by an undo)
    measurement: Measurement | None
    note: str = ""
    ks: tuple[int, ...] = ()    # with devices: each device's k (`k` is the largest)
    cluster: bool = False       # jobs on a Slurm cluster: k follows how fast they start, nothing is measured

    def text(self) -> str:
        """'k 3 auto · 2,470 steps/s · GPU 5.3/80 GB' ('k 2·4 auto' where devices' k differ; 'k 3 auto · by
        job starts' on a cluster)."""
        k = "·".join(str(x) for x in self.ks) if len(set(self.ks)) > 1 else str(self.k)
        parts = [f"k {k} {self.mode}"]
        m = self.measurement
        if self.cluster:
            parts.append("by job starts" if self.mode == "auto" else "")
        elif m is None:
            parts.append("measuring" if self.mode == "auto" else "")
        else:
            parts.append(f"{autok.rate_text(m.steps_per_s)} steps/s")
            if m.memory is not None:
                parts.append(m.memory.text())
        return " · ".join(p for p in parts if p)


class AutoK:
    """Chooses the scheduler's parallel limit from measured throughput (in auto mode), or keeps it fixed."""

    meta_key = STATE_META   # where the study keeps the state

    def __init__(self, study: Study, runner: Runner, scheduler: Scheduler, *, auto: bool,
                 on_change: Callable[[Change], None] | None = None, probe: GpuMemory | None = None,
                 window: float = WINDOW, clock: Callable[[], float] = time.time) -> None:
        self.study = study
        self.runner = runner
        self.scheduler = scheduler
        self.on_change = on_change
        self.probe = probe if probe is not None else GpuMemory()
        self.window = window
        self.clock = clock
        self.meter = Meter()
        self.last: Measurement | None = None
        self._lock = threading.RLock()
        saved = study.meta(self.meta_key) if auto else None
        if auto:
            self.state = State.from_dict(saved) if isinstance(saved, dict) else State(k=1)
        else:
            self.state = State(k=scheduler.parallel, mode="fixed", note=FIXED_BY_SPACE)
        self._window_k: int | None = None
        self._set_k(self.state.k)

    # -- what it measures and where k goes (the per-device lanes override these) -------------------

    def _mine(self, trial_id: int) -> bool:
        """True for a run whose throughput and memory this k answers for (every run here)."""
        return True

    def _set_k(self, k: int) -> None:
        """Put k in force."""
        self.scheduler.parallel = k

    # -- what it shows ----------------------------------------------------------------------------

    def status(self) -> Status:
        """k, its mode and the latest measurement, for the status line."""
        with self._lock:
            s = self.state
            mode = "held" if s.held else s.mode
            return Status(s.k, mode, self.last, s.note, cluster=self.runner.cluster.config is not None)

    # -- events and ticks -------------------------------------------------------------------------

    def observe(self, ev: RunEvent) -> Change | None:
        """Feed one runner event; an OOM failure in auto mode is re-queued (ev.data["requeued"] = True)."""
        if not self._mine(ev.trial_id):
            return None
        if ev.kind == "metrics":
            step, t = ev.data.get("step"), ev.data.get("t")
            if isinstance(step, int):
                with self._lock:
                    self.meter.report(ev.trial_id, step, t if isinstance(t, (int, float)) else None)
            return None
        if ev.kind != "ended":
            return None
        with self._lock:
            self.meter.end(ev.trial_id)
            reason = ev.data.get("reason") or ""
            if ev.data.get("status") != "failed" or not str(reason).startswith(OOM_REASON):
                return None
            if self.state.mode != "auto":
                return None
            return self._oom(ev)

    def _oom(self, ev: RunEvent) -> Change | None:
        tid = ev.trial_id
        counts = {str(k): int(v) for k, v in dict(self.study.meta(OOM_META) or {}).items()}
        failures = counts.get(str(tid), 0) + 1
        others = len([i for i in self.runner.queries.live_ids() if i != tid and self._mine(i)])
        requeued = autok.should_requeue(failures, others, self.state.k)
        if requeued:
            counts[str(tid)] = failures
            try:
                self.study.set_meta(OOM_META, counts)
                self.study.requeue(tid, reason=f"re-queued: {OOM_REASON} with {self.state.k} runs sharing it")
                ev.data["requeued"] = True
            except (StudyError, OSError) as e:
                requeued = False
                ev.data["requeue_failed"] = str(e)
        self.state, change = autok.oom(self.state, tid, requeued)
        if change is None and requeued:
            change = Change(self.state.k, self.state.k, "oom",
                            f"k {self.state.k}: #{tid} ran out of GPU memory; re-queued, not counted",
                            {"from": self.state.k, "to": self.state.k, "why": "oom", "trial": tid,
                             "requeued": True})
        self._apply(change)
        return change

    def tick(self) -> Change | None:
        """Measure and decide (called from Session.tick): opens, closes and judges windows."""
        if self.runner.cluster.config is not None:
            return self._cluster_tick()
        with self._lock:
            now = self.clock()
            going = self._going()
            self.meter.going(len(going), now)
            k = self.state.k
            if self._window_k != k:
                self.meter.stop()
                self._window_k = None
            if not self.meter.open:
                # A window opens once k runs go and each of (at least k of) them has reported.
                if len(going) >= k and sum(self.meter.baseline(t) for t in going) >= k:
                    self.meter.start(now)
                    self._window_k = k
                return None
            if self.meter.elapsed(now) < self.window or self.meter.reports < REPORTS_PER_RUN * k:
                return None
            m = self.meter.measure(k, now, self._memory())
            self.meter.start(now)
            self.last = m
            self.state, change = autok.decide(self.state, m)
            self._apply(change)
            return change

    def _cluster_tick(self) -> Change | None:
        """On a Slurm cluster: raise k while the cluster starts every job within a minute (search/cluster_k.py);
        no throughput or GPU memory is measured (the GPUs are on other nodes)."""
        with self._lock:
            now = self.clock()
            waits = [w for w in (self.runner.cluster.wait(self.runner.runs[i].proc, now)
                                 for i in self.runner.queries.live_ids() if i in self.runner.runs) if w is not None]
            self.state, change = cluster_k.decide(self.state, [cluster_k.Wait(*w) for w in waits])
            self._apply(change)
            return change

    def _going(self) -> list[int]:
        ids = self.runner.queries.live_ids()
        return [i for i in ids if self._mine(i) and self.runner.queries.latest(i).get("status") == "running"]

    def _memory(self) -> autok.Memory | None:
        groups = [p for p in (getattr(self.runner.runs.get(i), "pid", None) for i in self.runner.queries.live_ids()) if p]
        try:
            return self.probe.read(groups)
        except Exception:  # noqa: BLE001 - no memory figures this window; throughput still decides
            return None

    def _apply(self, change: Change | None) -> None:
        """Set the scheduler's limit to the state's k; a change is kept in the study with its decision
        (`on_change` writes `kept()` in the decision's transaction), or on its own without one."""
        self._set_k(self.state.k)
        if change is None:
            return
        self.meter.stop()
        self._window_k = None
        if self.on_change is not None:
            self.on_change(change)
        elif not self.study.readonly and self.kept():
            self.study.set_meta(self.meta_key, self.state.to_dict())

    def kept(self) -> dict[str, Any]:
        """The meta to keep for the state now ({} for a study with a fixed parallel that never used auto-k)."""
        if self.state.mode != "auto" and not self.study.meta(self.meta_key):
            return {}
        return {self.meta_key: self.state.to_dict()}

    # -- the user's hand ------------------------------------------------------------------------

    def fix(self, k: int) -> str:
        """Fix k by hand (auto-k stops choosing until `to_auto`)."""
        if k < 1:
            raise RunError(f"k must be at least 1, got {k}")
        with self._lock:
            self.state, change = autok.fix(self.state, k)
            self._apply(change)
            return change.text if change else f"k stays {k} (fixed)"

    def toggle(self) -> str:
        """The override key: fix k where it is now, or (when fixed or held) return to auto."""
        with self._lock:
            if self.state.mode == "auto" and not self.state.held:   # searching or settled: fix it here
                return self.fix(self.state.k)
            self.state, change = autok.to_auto(self.state)
            self._apply(change)
            return change.text if change else f"k {self.state.k}: auto"

    def undo(self, data: Mapping[str, Any]) -> str:
        """Undo a recorded change of k (its data: from, to): k goes back and is held there."""
        if "from" not in data or "to" not in data:
            raise RunError("this auto-k decision does not say which k it changed")
        with self._lock:
            self.state, change = autok.undo(self.state, data)
            self._apply(change)
            return change.text
