"""The screen's Snapshot, built from the session: the study's trials and the runner's live values.

Built on the back end's view thread, never on the event loop. It keeps what makes a frame cheap:
the study read again only when something other than metrics happened, finished trials' curves
read back once, measured importance recomputed off-thread when the number of done trials changes.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from tui_tuner.pictures.plotting import Curves, Line, Point, boxes_of, line_of
from tui_tuner.runtime.devices import DeviceLoad, device_of
from tui_tuner.runtime.hand_moves import current_values
from tui_tuner.runtime.session import Session
from tui_tuner.search.trials import ACTIVE
from tui_tuner.ui.format import CHANGE_MARK, FORK_MARK, PAUSE_MARK, downsample, finite, mark_positions
from tui_tuner.ui.gpu import GpuProbe
from tui_tuner.ui.model import Card, ParamRow, QueueRow, RunView, Snapshot, TrialRow
from tui_tuner.ui.pauses import PausedTime

# Points kept per curve in a snapshot: the widest chart on a big terminal, and a trials-table cell.
CHART_POINTS = 240
CELL_POINTS = 12
CARD_POINTS = 120
# A finished trial's curve is read back from its run directory once; this caps the time one frame
# spends on that, so opening a big study does not delay the first frames.
CURVE_BUDGET = 0.05
LOSS = "loss"
ORDERS = ("best", "start")


class SnapshotBuilder:
    """Turns the session's study and runner into immutable Snapshots, for what the screen looks at."""

    def __init__(self, session: Session, wake: Callable[[], None], gpu: GpuProbe | None = None) -> None:
        self.session = session
        self._wake = wake   # asks for another frame soon (more curves to read, importance ready)
        self._gpu = gpu
        self._gpu_text: str | None = None
        self._gpu_at = 0.0
        # What the screen looks at (set by the back end's follow/set_order; read here).
        self.focus: int | None = None
        self.focus_explicit = False
        self.order = "best"
        self.study_stale = True
        self.paused = PausedTime()   # so a run's elapsed time stops while it is paused
        self._seq = 0
        self._curves: dict[int, tuple[float, ...]] = {}
        self._importance: tuple[int, dict[str, float], str] = (-1, {}, "")
        self._importance_busy = False
        self._importance_worker = None   # the process measuring importance, started on first use
        self._study_cache: tuple[float, str, Any] | None = None
        # The picture on screen ("curves", "search" or None) and the curves' metric (None: the
        # objective): their data is gathered only while one is open.
        self.view: str | None = None
        self.curve_metric: str | None = None
        self._lines: dict[tuple[int, str], Line] = {}     # finished trials' curves, read back once
        self._started: dict[int, dict[str, Any]] = {}     # what each run started with (params.json)
        self._metric_names: list[str] = []
        self._devices: dict[int, str | None] = {}          # ended runs' devices (params.json), read once

    def build(self, *, curve_budget: float = CURVE_BUDGET, light: bool = False) -> Snapshot:
        """Read the study and the runner into one immutable Snapshot.

        light: the app's very first frame, drawn on the loop before anything else: only the
        database, no run history read back from disk (the view thread fills curves in next).
        """
        session = self.session
        study, space, cfg, runner = session.study, session.space, session.config, session.runner
        trials, counts, state, best, queued, inexact = self._read_study()
        by_id = {t.id: t for t in trials}
        auto = session.automation.view

        # A picture covers the main screen: its curves (run charts, the strip's cards, the trials
        # table's cells) are not drawn, so not gathered; the first snapshot after it closes has them.
        covered = self.view is not None
        focus = self._resolve_focus(trials, best)
        focused = self._run_view(by_id[focus], light, trials, charts=not covered) if focus is not None else None
        if focused is not None and focus in inexact:
            focused = dataclasses.replace(focused, inexact=inexact[focus])
        if light:
            curve_budget = 0.0
            self._wake()

        deadline = time.monotonic() + curve_budget
        rows = []
        objectives: dict[int, float | None] = {}
        for t in trials:
            if t.status == "queued":
                continue
            step, objective, waiting = t.step, t.objective, None
            if t.status in ACTIVE and not light:
                # The study records progress once a second per run; the runner knows it now.
                latest = runner.queries.latest(t.id)
                step = latest.get("step", step)
                objective = latest.get("objective", objective)
                waiting = latest.get("waiting")
            objectives[t.id] = objective
            rows.append(TrialRow(id=t.id, status=t.status, objective=objective, step=step,
                                 source=t.source, parent=t.parent, fork_step=t.fork_step,
                                 curve=() if light or covered else self._curve(t.id, t.status, deadline),
                                 reason=t.reason, pinned=t.id in auto.pinned, inexact=t.id in inexact,
                                 device=self._device(t.id) if runner.table.with_devices else None,
                                 waiting=waiting))
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
        for t in sorted((t for t in trials if t.status in ACTIVE and not covered), key=lambda t: t.id):
            raw = () if light else runner.queries.series(t.id, cfg.objective)
            series = [(s, v) for s, v in raw if math.isfinite(v)]
            points = tuple(series[:: max(1, len(series) // CARD_POINTS)])
            # The trial's objective as the trials table shows it (best or last, per `reduce`), so the
            # strip's leader is the table's; the last point of a downsampled series is an average.
            value = objectives.get(t.id)
            if value is None and series:
                value = series[-1][1]
            cards.append(Card(id=t.id, status=t.status, value=value, points=points))

        self._seq += 1
        zoom_levels = sum(1 for lv in state.levels if getattr(lv, "kind", "zoom") == "zoom")
        curves = points = boxes = None
        if self.view == "curves" and not light:
            curves = self._curves_view(rows, best, deadline)
        elif self.view == "search":
            points = tuple(Point(id=t.id, status=t.status, objective=objectives.get(t.id), params=dict(t.params))
                           for t in trials if t.status != "queued")
            boxes = boxes_of(state)
        return Snapshot(
            seq=self._seq, name=study.name, objective=cfg.objective, maximize=cfg.maximize,
            counts=tuple(counts.items()), zoom=zoom_levels, stage=state.stage,
            budget=self.session.budget,
            zero_code=cfg.zero_code, params=params, trials=tuple(rows), queue=queue, focused=focused,
            cards=tuple(cards), best_id=best.id if best else None, order=self.order,
            gpu=None if light else self._gpu_line(), importance_method=method, k=self._k_line(),
            devices=self._devices_line(),
            early_stop=auto.early_stop, autopilot=auto.autopilot,
            pending=auto.pending + (("queue paused",) if session.scheduler.fail_fast.paused_at is not None else ()),
            curves=curves, points=points, boxes=boxes or (), view=self.view)

    def _curves_view(self, rows: list[TrialRow], best: Any, deadline: float) -> Curves:
        """Every started trial's curve of the selected metric: live ones each frame, finished ones
        read back once (within the frame's time budget, like the trials table's curves)."""
        runner, cfg = self.session.runner, self.session.config
        metric = self.curve_metric or cfg.objective
        names = self._metric_names
        lines = []
        for row in rows:
            if row.status in ACTIVE:
                self._add_names(runner.queries.metric_names(row.id))
                lines.append(line_of(row, runner.queries.series(row.id, metric), runner.queries.changes(row.id)))
                continue
            key = (row.id, metric)
            line = self._lines.get(key)
            if line is None or line.status != row.status:
                if time.monotonic() > deadline:
                    self._wake()   # more to read back: next frame
                    continue
                line = line_of(row, runner.queries.series(row.id, metric), runner.queries.changes(row.id))
                self._add_names(runner.queries.metric_names(row.id))
                self._lines[key] = line
            lines.append(line)
        if cfg.objective not in names:
            names.insert(0, cfg.objective)
        return Curves(metric=metric, metrics=tuple(names), lines=tuple(lines),
                      best_id=best.id if best else None, maximize=cfg.maximize)

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
        if not (self.focus_explicit and self.focus is not None and self.focus not in ids):
            # A run the user asked for that this frame's read does not hold yet (a fork's child read
            # a moment before it started) stays asked for: the next frame shows it.
            self.focus = choice
        return choice

    def _run_view(self, trial: Any, light: bool = False, trials: list | None = None,
                  charts: bool = True) -> RunView:
        runner = self.session.runner
        objective = self.session.config.objective
        if light:
            # The first frame is drawn on the event loop: the runner would read a live run's whole
            # events.jsonl back from disk here (seconds for a long run). The database is enough.
            latest: dict[str, Any] = {"step": trial.step, "params": trial.params,
                                      "elapsed": (trial.ended - trial.started) if trial.ended and trial.started
                                      else None}
            names: list[str] = []
        else:
            latest = runner.queries.latest(trial.id)
            names = runner.queries.metric_names(trial.id)
        loss_name = LOSS if LOSS in names else objective
        loss = self._live_curve(trial.id, loss_name, CHART_POINTS) if names and charts else ()
        obj = (self._live_curve(trial.id, objective, CHART_POINTS) if names and charts and objective != loss_name
               else ())
        metrics = latest.get("metrics") or {}
        active = trial.status in ACTIVE
        marks = () if light or not names or not charts else self._marks(trial.id, loss_name, trials or [])
        params = dict(latest.get("params") or trial.params)
        return RunView(
            id=trial.id, status=trial.status if not active else (latest.get("status") or trial.status),
            step=latest.get("step", trial.step), metrics=tuple(sorted(metrics.items())),
            elapsed=self.paused.running_time(trial.id, latest.get("elapsed")), stalled=bool(latest.get("stalled")), loss_name=loss_name,
            loss=loss, objective_name=objective, objective=obj,
            can_adjust=active and runner.commands.can_adjust(trial.id),
            params=params, parent=trial.parent,
            fork_step=trial.fork_step, reason=trial.reason, marks=marks,
            pinned=trial.id in self.session.automation.view.pinned,
            current=current_values(self.session.space, {"params": params, "metrics": metrics,
                                                        "step": latest.get("step")},
                                   runner.queries.changes(trial.id) if active and not light else ()),
            started=self._started_with(trial.id) if active and not light else {},
            device=self._device(trial.id) if runner.table.with_devices else None,
            waiting=latest.get("waiting") if active else None)

    def _started_with(self, trial_id: int) -> dict[str, Any]:
        """The settings a run started with (its params.json), read once per run."""
        if trial_id not in self._started:
            from tui_tuner.trainer.protocol import PARAMS, read_json

            kept = read_json(self.session.study.run_dir(trial_id) / PARAMS)
            params = kept.get("params") if isinstance(kept, dict) else None
            self._started[trial_id] = dict(params) if isinstance(params, dict) else {}
        return self._started[trial_id]

    def _marks(self, trial_id: int, metric: str, trials: list) -> tuple[tuple[float, str], ...]:
        """Where on the run's curve a live change, a pause or a fork of it happened."""
        runner = self.session.runner
        steps = [s for s, v in runner.queries.series(trial_id, metric) if math.isfinite(v)]
        marks = [(c.get("step"), CHANGE_MARK) for c in runner.queries.changes(trial_id)]
        marks += [(s, PAUSE_MARK) for s in runner.queries.pauses(trial_id)]
        marks += [(t.fork_step, FORK_MARK) for t in trials if t.parent == trial_id]
        return mark_positions(steps, marks)

    def _live_curve(self, trial_id: int, metric: str, points: int) -> tuple[float, ...]:
        series = self.session.runner.queries.series(trial_id, metric)
        return tuple(downsample(finite([v for _, v in series]), points))

    def _curve(self, trial_id: int, status: str, deadline: float) -> tuple[float, ...]:
        """A short curve of the objective for the trials table; finished ones are read once."""
        if status in ACTIVE:
            return self._live_curve(trial_id, self.session.config.objective, CELL_POINTS)
        if trial_id in self._curves:
            return self._curves[trial_id]
        if time.monotonic() > deadline:
            self._wake()  # more to read back: next frame
            return ()
        curve = self._live_curve(trial_id, self.session.config.objective, CELL_POINTS)
        self._curves[trial_id] = curve
        return curve

    def _read_study(self) -> tuple[list, dict[str, int], Any, Any, list, dict[int, str]]:
        """Trials, counts, search state, best trial, queue and inexact forks: read again only when something other
        than metrics happened (a status, a command, a new view) or once a second, so a frame of a
        run reporting thousands of steps a second costs no database reads beyond the live runs'."""
        now = time.monotonic()
        cached = self._study_cache
        if cached is not None and not self.study_stale and now - cached[0] < 1.0 and cached[1] == self.order:
            return cached[2]
        self.study_stale = False
        study = self.session.study
        best = study.best(1)
        data = (study.trials(self.order), study.counts(), study.search_state, best[0] if best else None,
                study.queue(), study.inexact())
        self._study_cache = (now, self.order, data)
        return data

    def _importance_scores(self, n_done: int) -> tuple[dict[str, float], str]:
        """Measured importance, recomputed off this thread when the number of done trials changes."""
        study = self.session.study
        key, scores, method = self._importance
        if n_done != key and not self._importance_busy:
            self._importance_busy = True
            done = [(t.params, t.objective) for t in study.finished()
                    if t.status == "done" and t.objective is not None]
            threading.Thread(target=self._compute_importance, args=(n_done, done),
                             name="tui-tuner-importance", daemon=True).start()
        return scores, method

    def _compute_importance(self, key: int, done: list[tuple[dict, float]], *, here: bool = False) -> None:
        try:
            if here:
                from tui_tuner.search.importance import importance

                imp = importance(self.session.space, done, self.session.config.maximize)
            else:
                # In a worker process: optuna's importance package brings scikit-learn and scipy
                # (~130 MB), which would take the app past 150 MB (issue 20).
                if self._importance_worker is None:
                    from tui_tuner.runtime.model_worker import ModelWorker

                    self._importance_worker = ModelWorker()
                imp = self._importance_worker.importance(self.session.space, done, self.session.config.maximize)
            self._importance = (key, dict(imp.scores), str(imp.method))
        except Exception as e:  # noqa: BLE001 - the column stays empty, and the user is told why
            self._importance = (key, {}, "")
            self.session.notice("Importance", f"measuring importance over {len(done)} done trial(s) failed: "
                                f"{type(e).__name__}: {e}", "warning")
        finally:
            self._importance_busy = False
            self._wake()

    def close(self) -> None:
        """End the importance worker, if one was started."""
        if self._importance_worker is not None:
            self._importance_worker.close()

    def compute_importance_now(self) -> None:
        """Compute measured importance on the calling thread (deterministic first frames in tests)."""
        n_done = self.session.study.counts().get("done", 0)
        done = [(t.params, t.objective) for t in self.session.study.finished()
                if t.status == "done" and t.objective is not None]
        self._compute_importance(n_done, done, here=True)

    def _device(self, trial_id: int) -> str | None:
        """The device a trial's run was given: the runner's, else its params.json's, read once."""
        run = self.session.runner.runs.get(trial_id)
        if run is not None:
            return run.device
        if trial_id not in self._devices:
            self._devices[trial_id] = device_of(self.session.study.run_dir(trial_id))
        return self._devices[trial_id]

    def _devices_line(self) -> tuple[DeviceLoad, ...] | None:
        loads = self.session.device_loads()
        return tuple(loads) if loads is not None else None

    def _k_line(self) -> str | None:
        status = self.session.k_status()
        return status.text() if status is not None else None

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

