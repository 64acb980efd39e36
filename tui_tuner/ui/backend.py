"""The app's back end: study, runner and scheduler driven off the event loop (no textual here).

Three threads, none of them the UI's:
- the runner's own poll thread tails the runs and calls `_on_event`, which only sets a flag;
- one command thread runs what the user asks for (pause, fork, zoom, export ...) and the
  scheduler's ticks, one at a time, so they never race each other;
- one view thread turns the study and runner into an immutable `Snapshot` when something changed,
  at most every `frame` seconds, and calls `on_snapshot` (the app posts itself one replaceable
  message and draws the latest snapshot on its loop).

So a trainer reporting thousands of steps a second costs one flag write per poll, and a frame is
built at a bounded rate from bounded, downsampled series.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_tuner.errors import RunError, SpaceError, StudyError, TunerError
from tui_tuner.plotting import Curves, Line, Point, boxes_of, line_of
from tui_tuner.runner import RunEvent, Runner
from tui_tuner.ui.format import downsample, finite, fmt_value
from tui_tuner.ui.gpu import GpuProbe
from tui_tuner.ui.model import Card, ParamRow, QueueRow, RunView, Snapshot, TrialRow

# Points kept per curve in a snapshot: the widest chart on a big terminal, and a trials-table cell.
CHART_POINTS = 240
CELL_POINTS = 12
CARD_POINTS = 120
# A finished trial's curve is read back from its run directory once; this caps the time one frame
# spends on that, so opening a big study does not delay the first frames.
CURVE_BUDGET = 0.05
ACTIVE = ("running", "paused")
LOSS = "loss"


@dataclass
class Output:
    """A trial's failure reason and the last lines of its output."""

    trial_id: int
    status: str
    reason: str | None
    lines: list[str]


class Backend:
    """Owns the runner and scheduler of an open study and serves snapshots and commands to the UI."""

    def __init__(self, study: Any, *, runner: Runner | None = None, scheduler: Any = None,
                 autostart: bool = True, frame: float = 0.1, poll: float = 0.05, tick: float = 0.5,
                 gpu: bool = True, runner_options: dict[str, Any] | None = None,
                 scheduler_options: dict[str, Any] | None = None) -> None:
        self.study = study
        self.space = study.space
        self.config = study.space.study
        if runner is None:
            runner = Runner(study, on_event=self._on_event, **(runner_options or {}))
        else:
            runner.on_event = self._on_event
        self.runner = runner
        self.autostart = autostart
        self._scheduler = scheduler
        self._scheduler_options = scheduler_options or {}
        self.frame = frame
        self.poll = poll
        self.tick = tick
        self._gpu = GpuProbe() if gpu else None
        self._gpu_text: str | None = None
        self._gpu_at = 0.0

        # View requests from the UI: plain attribute writes (atomic), read by the view thread.
        self.focus: int | None = None
        self.focus_explicit = False
        self.order = "best"
        # The picture on screen ("curves", "search" or None) and the curves' metric (None: the
        # objective): their data is gathered only while one is open.
        self.view: str | None = None
        self.curve_metric: str | None = None

        self.on_snapshot: Callable[[], None] | None = None
        self._snapshot: Snapshot | None = None
        self._seq = 0
        self._dirty = threading.Event()
        self._halt = threading.Event()
        self._notices: list[tuple[str, str, str]] = []
        self._notice_lock = threading.Lock()
        self._commands = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tui-tuner-cmd")
        self._view: threading.Thread | None = None
        self._curves: dict[int, tuple[float, ...]] = {}
        self._lines: dict[tuple[int, str], Line] = {}     # finished trials' curves, read back once
        self._metric_names: list[str] = []
        self._importance: tuple[int, dict[str, float], str] = (-1, {}, "")
        self._importance_busy = False
        self._tick_pending = False
        self._study_cache: tuple[float, str, Any] | None = None
        self._study_stale = True
        self._said_sched: str | None = None
        self.started = False
        self.closed = False

    # -- life -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Adopt runs left by an earlier session, then start polling, ticking and building frames."""
        if self.started:
            return
        self.started = True
        self.submit(self._adopt)
        self.runner.start_thread(self.poll)
        self._view = threading.Thread(target=self._view_loop, name="tui-tuner-view", daemon=True)
        self._view.start()

    def _adopt(self) -> None:
        try:
            adopted = self.runner.adopt()
        except Exception as e:  # noqa: BLE001 - shown, and the app goes on with what it has
            self._notice("Runs", f"re-adopting the live runs failed: {getattr(e, 'message', e)}", "error")
            return
        if adopted:
            self._notice("Runs", f"re-adopted {len(adopted)} live run(s): "
                         + ", ".join(f"#{i}" for i in adopted), "information")
        self._dirty.set()

    def close(self, *, stop_runs: bool = False, timeout: float | None = None) -> None:
        """Stop the threads; runs keep going (re-adopted next time) unless stop_runs."""
        if self.closed:
            return
        self.closed = True
        self._halt.set()
        # A fork waiting (up to a minute) for a silent trainer's checkpoint would hold up the quit.
        self.runner.cancel_waits()
        self._commands.shutdown(wait=True, cancel_futures=True)
        if stop_runs:
            with contextlib.suppress(TunerError):
                self.runner.stop_all(timeout)
        self.runner.stop_thread()
        if self._view is not None:
            self._view.join(timeout=5)
        if self._gpu is not None:
            self._gpu.close()

    @property
    def scheduler(self) -> Any:
        """The scheduler that keeps `parallel` runs going (built on first use)."""
        if self._scheduler is None:
            from tui_tuner.scheduler import Scheduler

            self._scheduler = Scheduler(self.study, self.runner, self.study.sampler(),
                                        **self._scheduler_options)
        return self._scheduler

    # -- commands ---------------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        """Run fn on the command thread; the future carries its result or its exception."""
        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                self._study_stale = True
                self._dirty.set()
        return self._commands.submit(run)

    def pause_toggle(self, trial_id: int) -> str:
        """Pause a running trial or resume a paused one."""
        status = self.study.trial(trial_id).status
        if status == "paused":
            self.runner.resume(trial_id)
            return f"resuming #{trial_id}"
        if status != "running":
            raise RunError(f"trial {trial_id} is {status}, not running")
        self.runner.pause(trial_id)
        return f"pausing #{trial_id}"

    def adjust(self, trial_id: int, changes: dict[str, Any]) -> str:
        """Change live parameters of a running trial."""
        if not changes:
            raise RunError("nothing changed")
        self.runner.set(trial_id, changes)
        return f"#{trial_id}: " + ", ".join(f"{k} → {fmt_value(v)}" for k, v in changes.items())

    def prepare_fork(self, trial_id: int) -> int | None:
        """Checkpoint a running trial as the fork form opens (its seq), so the fork is of that moment."""
        if self.runner.is_live(trial_id) and self.runner.can_adjust(trial_id):
            return self.runner.checkpoint(trial_id)
        return None

    def fork(self, trial_id: int, changes: dict[str, Any], prepared: Future | None = None) -> str:
        """Fork a trial with some settings changed; the child becomes the focused run.

        `prepared` is the future of `prepare_fork`: the child then starts from the checkpoint taken
        when the form opened, even if the parent has ended since.
        """
        seq = prepared.result() if prepared is not None and prepared.exception() is None else None
        child = self.runner.fork(trial_id, changes, checkpoint=seq)
        self.focus, self.focus_explicit = child.id, True
        at = f" at step {child.fork_step}" if child.fork_step is not None else ""
        return f"forked #{trial_id}{at} into #{child.id}"

    def stop(self, trial_id: int) -> str:
        """Stop a running or paused trial."""
        self.runner.stop(trial_id)
        return f"stopping #{trial_id}"

    def sample(self, n: int) -> str:
        """Queue n random settings from the current search state.

        Asking for more trials is asking for them to run: when the budget would not reach them, the
        scheduler's budget grows to cover the queue (for this session; the space file keeps its own).
        """
        trials = self.study.sample(n)
        msg = f"queued {len(trials)} setting(s)"
        if self.autostart:
            sched = self.scheduler
            need = self.study.budget_used() + len(self.study.queue())
            if need > sched.budget:
                sched.budget = need
                msg += f"; budget raised to {need} so they run"
        return msg

    def zoom(self) -> str:
        """Narrow the search around the best finished trials (coarse to fine)."""
        from tui_tuner.sampling import zoom

        done = [t for t in self.study.finished() if t.status == "done" and t.objective is not None]
        state = self.study.search_state
        sched = self.scheduler   # the same zoom settings as its automatic coarse-to-fine rounds
        new = zoom(self.space, state, [(t.params, t.objective) for t in done],
                   maximize=self.config.maximize, top=sched.zoom_top, margin=sched.zoom_margin,
                   ids=[t.id for t in done])
        self.study.search_state = new
        replaced = self._resample_queue()
        ranges = new.ranges(self.space)
        shown = "; ".join(f"{n} {ranges[n]}" for n in new.searched(self.space))
        extra = f" (re-sampled {replaced} queued)" if replaced else ""
        return f"zoom {len(new.levels)}: {shown}{extra}"

    def unzoom(self) -> str:
        """Undo the last zoom."""
        from tui_tuner.sampling import unzoom

        new = unzoom(self.study.search_state)
        self.study.search_state = new
        replaced = self._resample_queue()
        extra = f" (re-sampled {replaced} queued)" if replaced else ""
        return f"zoom {len(new.levels)}{extra}"

    def _resample_queue(self) -> int:
        """Queued random settings were drawn from the old region: draw them again from the new one.

        Settings the user put there (manual, forks) stay as they are.
        """
        stale = [t for t in self.study.queue() if t.source in ("random", "zoom")]
        if not stale:
            return 0
        for t in stale:
            self.study.drop(t.id)
        self.study.sample(len(stale))
        return len(stale)

    def set_stage(self, stage: int) -> str:
        """Search tiers <= stage; raising it keeps what was learned around the best trial."""
        from tui_tuner.sampling import set_stage

        best = self.study.best(1)
        new = set_stage(self.space, self.study.search_state, stage, best[0].params if best else None)
        self.study.search_state = new
        self._resample_queue()
        names = ", ".join(new.searched(self.space)) or "nothing"
        return f"stage {stage}: searching {names}"

    def toggle_freeze(self, name: str) -> str:
        """Freeze a parameter at the best trial's value (or its default), or unfreeze it."""
        from tui_tuner.sampling import freeze, unfreeze

        if name not in self.space:
            raise SpaceError(f"params.{name}: no such parameter")
        state = self.study.search_state
        if name in state.frozen:
            self.study.search_state = unfreeze(state, name)
            self._resample_queue()
            return f"{name} searched again"
        best = self.study.best(1)
        value = best[0].params.get(name, self.space[name].default) if best else self.space[name].default
        where = f"best trial #{best[0].id}" if best else "default"
        self.study.search_state = freeze(state, name, value, self.space)
        self._resample_queue()
        return f"{name} frozen at {fmt_value(value)} ({where})"

    def drop(self, trial_id: int) -> str:
        """Remove a queued setting."""
        self.study.drop(trial_id)
        return f"dropped #{trial_id}"

    def move(self, trial_id: int, delta: int) -> None:
        """Move a queued setting up (negative) or down."""
        self.study.move(trial_id, delta)

    def edit(self, trial_id: int, changes: dict[str, Any]) -> str:
        """Change settings of a queued trial."""
        if not changes:
            raise StudyError("nothing changed")
        self.study.edit(trial_id, changes)
        return f"#{trial_id}: " + ", ".join(f"{k} = {fmt_value(v)}" for k, v in changes.items())

    def run_now(self, trial_id: int) -> str:
        """Start a queued trial now, whatever `parallel` says."""
        trial = self.study.trial(trial_id)
        if trial.status != "queued":
            raise StudyError(f"trial {trial_id} is {trial.status}, not queued")
        self.runner.start(trial)
        self.focus, self.focus_explicit = trial_id, True
        return f"started #{trial_id}"

    def export(self, trial_id: int | None, path: str | None) -> Path:
        """Write a trial's setting as TOML; returns the absolute path written."""
        from tui_tuner.export import export_trial

        out = export_trial(self.study, trial_id, Path(path).expanduser() if path else None)
        return out.resolve()

    def default_export_path(self, trial_id: int | None) -> str:
        """The path the export prompt offers first."""
        from tui_tuner.export import choose_trial, default_path

        try:
            return str(default_path(self.study, choose_trial(self.study, trial_id)))
        except TunerError:
            return str(self.study.dir / "export.toml")

    def output(self, trial_id: int, n: int = 40) -> Output:
        """A trial's status, reason and the last n lines of its output."""
        trial = self.study.trial(trial_id)
        return Output(trial_id, trial.status, trial.reason, self.runner.output_tail(trial_id, n))

    def stop_all(self, timeout: float | None = None) -> bool:
        """Stop every run and wait until they have ended; True when all did.

        Starting stops first: a tick queued behind this command would otherwise fill the freed
        slots from the queue, and those runs would outlive a "stop all and quit".
        """
        self.autostart = False
        if self._scheduler is not None:
            self._scheduler.holding = True
        return self.runner.stop_all(timeout)

    def _tick(self) -> None:
        if not self.autostart or self._halt.is_set():
            self._tick_pending = False
            return
        try:
            sched = self.scheduler
            sched.tick()
            if sched.message and sched.message != self._said_sched:
                self._said_sched = sched.message
                self._notice("Study", sched.message, "information")
        except TunerError as e:
            # A bad setting or a study that cannot start more: say it once, keep the app going.
            self._notice(e.title, e.message, "error")
            self.autostart = False
        finally:
            self._tick_pending = False

    # -- events -----------------------------------------------------------------------------------

    def _on_event(self, ev: RunEvent) -> None:
        """Called from the runner's poll thread: record, never render."""
        if ev.kind == "ended":
            status = ev.data.get("status")
            if status in ("failed", "diverged"):
                reason = (ev.data.get("reason") or "").splitlines()
                first = reason[0] if reason else status
                self._notice(f"Trial #{ev.trial_id} {status}",
                             f"{first} (its output: select #{ev.trial_id} in Trials, press v)", "warning")
        elif ev.kind == "error":
            self._notice("Runner", str(ev.data.get("message", "error")), "error")
        if ev.kind != "metrics":
            self._study_stale = True   # a status or a setting changed: read the study again
        self._dirty.set()

    def _notice(self, title: str, message: str, severity: str) -> None:
        with self._notice_lock:
            self._notices.append((title, message, severity))
        self._dirty.set()

    def take_notices(self) -> list[tuple[str, str, str]]:
        """The (title, message, severity) notices not yet shown; each is handed out once.

        Kept apart from snapshots: a snapshot may be superseded before it is drawn, a notice must not be.
        """
        with self._notice_lock:
            out, self._notices = self._notices, []
        return out

    def poke(self) -> None:
        """Ask for a new snapshot soon (the UI changed what it looks at)."""
        self._study_stale = True
        self._dirty.set()

    # -- view thread --------------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest snapshot (replaced whole, so reading it from the loop is safe)."""
        return self._snapshot

    def _view_loop(self) -> None:
        last_build = 0.0
        last_tick = 0.0
        while not self._halt.is_set():
            self._dirty.wait(self.frame)
            if self._halt.is_set():
                break
            now = time.monotonic()
            if self.autostart and now - last_tick >= self.tick and not self._tick_pending:
                last_tick = now
                self._tick_pending = True
                try:
                    # Not through submit(): a tick that starts nothing must not force a study re-read
                    # (a start is a runner event, which does).
                    self._commands.submit(self._tick)
                except RuntimeError:  # the executor shut down: closing
                    break
            # Active runs' clocks tick even without events: at least once a second.
            stale = now - last_build >= 1.0
            if not (self._dirty.is_set() or stale):
                continue
            wait = self.frame - (now - last_build)
            if wait > 0:
                # Bounded frame rate: coalesce everything that arrives in the meantime.
                self._halt.wait(wait)
            self._dirty.clear()
            last_build = time.monotonic()
            try:
                self.refresh()
            except Exception as e:  # noqa: BLE001 - the view must keep going; show what broke
                self._notice("View", f"{type(e).__name__}: {e}", "error")

    def refresh(self, *, curve_budget: float = CURVE_BUDGET, light: bool = False) -> Snapshot:
        """Build a new snapshot now (on the calling thread) and publish it (see build)."""
        snap = self.build(curve_budget=curve_budget, light=light)
        self._snapshot = snap
        cb = self.on_snapshot
        if cb is not None:
            cb()
        return snap

    def build(self, *, curve_budget: float = CURVE_BUDGET, light: bool = False) -> Snapshot:
        """Read the study and the runner into one immutable Snapshot.

        light: the app's very first frame, drawn on the loop before anything else: only the
        database, no run history read back from disk (the view thread fills curves in next).
        """
        study, space, cfg = self.study, self.space, self.config
        trials, counts, state, best, queued = self._read_study()
        by_id = {t.id: t for t in trials}

        focus = self._resolve_focus(trials, best)
        focused = self._run_view(by_id[focus], light) if focus is not None else None
        if light:
            curve_budget = 0.0
            self._dirty.set()

        deadline = time.monotonic() + curve_budget
        rows = []
        objectives: dict[int, float | None] = {}
        for t in trials:
            if t.status == "queued":
                continue
            step, objective = t.step, t.objective
            if t.status in ACTIVE and not light:
                # The study records progress once a second per run; the runner knows it now.
                latest = self.runner.latest(t.id)
                step = latest.get("step", step)
                objective = latest.get("objective", objective)
            objectives[t.id] = objective
            rows.append(TrialRow(id=t.id, status=t.status, objective=objective, step=step,
                                 source=t.source, parent=t.parent, fork_step=t.fork_step,
                                 curve=() if light else self._curve(t.id, t.status, deadline),
                                 reason=t.reason))
        searched = set(state.searched(space))
        queue = tuple(QueueRow(id=t.id, source=t.source, parent=t.parent,
                               params={k: v for k, v in t.params.items() if k in searched} or dict(t.params))
                      for t in queued)

        scores, method = self._importance_scores(counts.get("done", 0))
        ranges = state.ranges(space)
        run_params = focused.params if focused is not None else {}
        params = tuple(
            ParamRow(name=p.name, tier=p.tier, scale=p.scale_label, range=ranges.get(p.name, p.range_label()),
                     run=run_params.get(p.name), best=best.params.get(p.name) if best else None,
                     importance=scores.get(p.name), searched=p.name in searched,
                     frozen=p.name in state.frozen, live=p.live)
            for p in space.by_priority())

        cards = []
        for t in sorted((t for t in trials if t.status in ACTIVE), key=lambda t: t.id):
            raw = () if light else self.runner.series(t.id, cfg.objective)
            series = [(s, v) for s, v in raw if math.isfinite(v)]
            points = tuple(series[:: max(1, len(series) // CARD_POINTS)])
            # The trial's objective as the trials table shows it (best or last, per `reduce`), so the
            # strip's leader is the table's; the last point of a downsampled series is an average.
            value = objectives.get(t.id)
            if value is None and series:
                value = series[-1][1]
            cards.append(Card(id=t.id, status=t.status, value=value, points=points))

        curves = points = boxes = None
        if self.view == "curves" and not light:
            curves = self._curves_view(trials, rows, best, deadline)
        elif self.view == "search":
            points = tuple(Point(id=t.id, status=t.status, objective=objectives.get(t.id), params=dict(t.params))
                           for t in trials if t.status != "queued")
            boxes = boxes_of(state)

        self._seq += 1
        zoom_levels = sum(1 for lv in state.levels if getattr(lv, "kind", "zoom") == "zoom")
        return Snapshot(
            seq=self._seq, name=study.name, objective=cfg.objective, maximize=cfg.maximize,
            counts=tuple(counts.items()), zoom=zoom_levels, stage=state.stage,
            budget=self._scheduler.budget if self._scheduler is not None else cfg.budget,
            zero_code=cfg.zero_code, params=params, trials=tuple(rows), queue=queue, focused=focused,
            cards=tuple(cards), best_id=best.id if best else None, order=self.order,
            gpu=None if light else self._gpu_line(), importance_method=method,
            curves=curves, points=points, boxes=boxes or ())

    def _curves_view(self, trials: list, rows: list[TrialRow], best: Any, deadline: float) -> Curves:
        """Every started trial's curve of the selected metric: live ones each frame, finished ones
        read back once (within the frame's time budget, like the trials table's curves)."""
        metric = self.curve_metric or self.config.objective
        names = self._metric_names
        lines = []
        for row in rows:
            if row.status in ACTIVE:
                series = self.runner.series(row.id, metric)
                applied = self.runner.changes(row.id)
                self._add_names(self.runner.metric_names(row.id))
                lines.append(line_of(row, series, applied))
                continue
            key = (row.id, metric)
            line = self._lines.get(key)
            if line is None or line.status != row.status:
                if time.monotonic() > deadline:
                    self._dirty.set()   # more to read back: next frame
                    continue
                line = line_of(row, self.runner.series(row.id, metric), self.runner.changes(row.id))
                self._add_names(self.runner.metric_names(row.id))
                self._lines[key] = line
            lines.append(line)
        if self.config.objective not in names:
            names.insert(0, self.config.objective)
        return Curves(metric=metric, metrics=tuple(names), lines=tuple(lines),
                      best_id=best.id if best else None, maximize=self.config.maximize)

    def _add_names(self, names: list[str]) -> None:
        for n in names:
            if n not in self._metric_names:
                self._metric_names.append(n)

    def _resolve_focus(self, trials: list, best: Any) -> int | None:
        ids = {t.id for t in trials if t.status != "queued"}
        if self.focus in ids and (self.focus_explicit or _status(trials, self.focus) in ACTIVE):
            return self.focus
        active = sorted(t.id for t in trials if t.status in ACTIVE)
        if active:
            choice = active[0]
        elif best is not None:
            choice = best.id
        else:
            started = [t for t in trials if t.started is not None]
            choice = max(started, key=lambda t: t.started).id if started else None
        self.focus = choice
        return choice

    def _run_view(self, trial: Any, light: bool = False) -> RunView:
        objective = self.config.objective
        if light:
            # The first frame is drawn on the event loop: the runner would read a live run's whole
            # events.jsonl back from disk here (seconds for a long run). The database is enough.
            latest: dict[str, Any] = {"step": trial.step, "params": trial.params,
                                      "elapsed": (trial.ended - trial.started) if trial.ended and trial.started
                                      else None}
            names: list[str] = []
        else:
            latest = self.runner.latest(trial.id)
            names = self.runner.metric_names(trial.id)
        loss_name = LOSS if LOSS in names else objective
        loss = self._live_curve(trial.id, loss_name, CHART_POINTS) if names else ()
        obj = self._live_curve(trial.id, objective, CHART_POINTS) if names and objective != loss_name else ()
        metrics = latest.get("metrics") or {}
        active = trial.status in ACTIVE
        return RunView(
            id=trial.id, status=trial.status if not active else (latest.get("status") or trial.status),
            step=latest.get("step", trial.step), metrics=tuple(sorted(metrics.items())),
            elapsed=latest.get("elapsed"), stalled=bool(latest.get("stalled")), loss_name=loss_name,
            loss=loss, objective_name=objective, objective=obj,
            can_adjust=active and self.runner.can_adjust(trial.id),
            params=dict(latest.get("params") or trial.params), parent=trial.parent,
            fork_step=trial.fork_step, reason=trial.reason)

    def _live_curve(self, trial_id: int, metric: str, points: int) -> tuple[float, ...]:
        series = self.runner.series(trial_id, metric)
        return tuple(downsample(finite([v for _, v in series]), points))

    def _curve(self, trial_id: int, status: str, deadline: float) -> tuple[float, ...]:
        """A short curve of the objective for the trials table; finished ones are read once."""
        if status in ACTIVE:
            return self._live_curve(trial_id, self.config.objective, CELL_POINTS)
        if trial_id in self._curves:
            return self._curves[trial_id]
        if time.monotonic() > deadline:
            self._dirty.set()  # more to read back: next frame
            return ()
        curve = self._live_curve(trial_id, self.config.objective, CELL_POINTS)
        self._curves[trial_id] = curve
        return curve

    def _read_study(self) -> tuple[list, dict[str, int], Any, Any, list]:
        """Trials, counts, search state, best trial and queue: read again only when something other
        than metrics happened (a status, a command, a new view) or once a second, so a frame of a
        run reporting thousands of steps a second costs no database reads beyond the live runs'."""
        now = time.monotonic()
        cached = self._study_cache
        if cached is not None and not self._study_stale and now - cached[0] < 1.0 and cached[1] == self.order:
            return cached[2]
        self._study_stale = False
        study = self.study
        best = study.best(1)
        data = (study.trials(self.order), study.counts(), study.search_state, best[0] if best else None,
                study.queue())
        self._study_cache = (now, self.order, data)
        return data

    def _importance_scores(self, n_done: int) -> tuple[dict[str, float], str]:
        """Measured importance, recomputed off this thread when the number of done trials changes."""
        study = self.study
        key, scores, method = self._importance
        if n_done != key and not self._importance_busy:
            self._importance_busy = True
            done = [(t.params, t.objective) for t in study.finished()
                    if t.status == "done" and t.objective is not None]
            threading.Thread(target=self._compute_importance, args=(n_done, done),
                             name="tui-tuner-importance", daemon=True).start()
        return scores, method

    def _compute_importance(self, key: int, done: list[tuple[dict, float]]) -> None:
        try:
            from tui_tuner.importance import importance

            imp = importance(self.space, done, self.config.maximize)
            self._importance = (key, dict(imp.scores), str(imp.method))
        except Exception:  # noqa: BLE001 - importance is a nicety: without it the column stays empty
            self._importance = (key, {}, "")
        finally:
            self._importance_busy = False
            self._dirty.set()

    def compute_importance_now(self) -> None:
        """Compute measured importance on the calling thread (deterministic first frames in tests)."""
        n_done = self.study.counts().get("done", 0)
        done = [(t.params, t.objective) for t in self.study.finished()
                if t.status == "done" and t.objective is not None]
        self._compute_importance(n_done, done)

    def _gpu_line(self) -> str | None:
        if self._gpu is None:
            return None
        now = time.monotonic()
        if now - self._gpu_at >= 2.0:
            self._gpu_at = now
            self._gpu_text = self._gpu.read()
        return self._gpu_text


def _status(trials: list, trial_id: int | None) -> str | None:
    for t in trials:
        if t.id == trial_id:
            return t.status
    return None

