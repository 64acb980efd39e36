"""The trainer API: the few calls a training script makes so the tuner can watch and steer it.

```python
from tui_tuner import trainer
hp = trainer.params(lr=1e-2, momentum=0.9, hidden=64)   # this run's settings
for step in range(1, hp.steps + 1):
    ...
    trainer.report(step, loss=loss, val_loss=val_loss)  # cheap; applies commands; a pause blocks here
    if trainer.changes(): ...                            # live changes (params() already has them)
    if trainer.should_stop(): break
```

Under the tuner (TUI_TUNER_RUN_DIR set) the settings come from params.json, metrics go to
events.jsonl and commands come from control.jsonl (see tui_tuner.protocol). Standalone, the settings
are the script's defaults with ``--name value`` / ``--name=value`` overrides from the command line, and
metrics are printed, so the same script runs with or without the tuner. ``--config best.toml`` (a
`tui-tuner export`) sets every value it holds; flags after it win over it.

Cost: report() checks the metrics are plain finite numbers, queues them for the events writer
(trainer_events: a thread writes every 100 ms) and stats control.jsonl at most once a millisecond,
reading it only when it grew. Standard library only (no textual, numpy or torch).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from tui_tuner import protocol as P
from tui_tuner.tailing import JsonlTail
from tui_tuner.trainer_checkpoints import Checkpoints
from tui_tuner.trainer_control import PAUSE_POLL as PAUSE_POLL  # public: seconds between checks while paused
from tui_tuner.trainer_control import ControlCommands
from tui_tuner.trainer_events import FLUSH_INTERVAL as FLUSH_INTERVAL  # public: the writer's period
from tui_tuner.trainer_events import EventWriter, clean, print_metrics
from tui_tuner.trainer_settings import Params, coerce_like, load_config, parse_argv, warn
from tui_tuner.trainer_steps import StepLimit

CHECK_INTERVAL = 0.001  # at most one stat of control.jsonl per this many seconds (and per report)


class Run(ControlCommands):
    """The trainer side of one run; the module functions use one shared instance.

    run_dir None means standalone. argv defaults to sys.argv[1:]; out (standalone metrics) to stdout.
    Call it from the training loop's thread; the only other thread is its own event writer.
    """

    def __init__(self, run_dir: str | os.PathLike[str] | None, argv: list[str] | None = None,
                 out: TextIO | None = None) -> None:
        self.run_dir = os.path.abspath(run_dir) if run_dir else None
        self.argv = list(sys.argv[1:] if argv is None else argv)
        self._out = out
        self._params = Params()
        self._declared: dict[str, Any] = {}   # name -> default, for everything params() was given
        self._from_file: dict[str, Any] = {}
        self._configs: dict[str, dict[str, Any]] = {}   # --config FILE -> its values, read once
        self._resume: str | None = None
        self.trial: int | None = None
        self._changes: dict[str, Any] = {}
        self._ckpt = Checkpoints(self._event)
        self._stop = False
        self._paused = False
        self._last_step: int | None = None
        self._crashed = False
        self._closed = False
        self._pid = os.getpid()
        self._writer: EventWriter | None = None   # under the tuner: events.jsonl and its thread
        # Events waiting to be written (the writer's queue under the tuner): report() appends here.
        self._queue: deque[Any] = deque()
        self._ctl: JsonlTail | None = None   # control.jsonl, read only when it grew
        self._ctl_seq = 0
        self._next_check = 0.0
        self._hook: Callable[..., None] | None = None
        self._prev_hook: Callable[..., None] | None = None
        self._limit = StepLimit(self._event, live=self.run_dir is not None)
        self._ckpt.saved = self._limit.keep_beside
        if self.run_dir is not None:
            self._open_run()

    # -- setup ------------------------------------------------------------------------------------

    def _open_run(self) -> None:
        assert self.run_dir is not None
        os.makedirs(self.run_dir, exist_ok=True)
        data = P.read_json(os.path.join(self.run_dir, P.PARAMS))
        if data is None:
            warn(f"no readable {P.PARAMS} in {self.run_dir}: using the script's defaults")
            data = {}
        params = data.get("params")
        self._from_file = dict(params) if isinstance(params, dict) else {}
        self._params.update(self._from_file)
        trial = data.get("trial")
        self.trial = trial if isinstance(trial, int) else None
        resume = data.get("resume")
        self._resume = P.resolve_resume(self.run_dir, resume) if isinstance(resume, str) else None
        self._writer = EventWriter(os.path.join(self.run_dir, P.EVENTS))
        self._queue = self._writer.queue
        self._ctl = JsonlTail(os.path.join(self.run_dir, P.CONTROL))
        prev_hook = sys.excepthook

        def hook(*exc: Any) -> None:
            # An uncaught exception means no "done" event at exit.
            self._crashed = True
            prev_hook(*exc)

        self._prev_hook = prev_hook
        self._hook = hook
        sys.excepthook = hook

    # -- the API ------------------------------------------------------------------------------------

    def params(self, defaults: Mapping[str, Any] | None = None, /, **kw: Any) -> Params:
        """The run's settings: defaults < command-line overrides < params.json (under the tuner)."""
        given = dict(defaults or {})
        given.update(kw)
        fresh = {k: v for k, v in given.items() if k not in self._declared}
        if fresh:
            first = not self._declared
            self._declared.update(fresh)
            # --config is ours unless the script has a setting of that name.
            config = None if "config" in self._declared else self._config
            overrides, unknown = parse_argv(self.argv, fresh, help_ok=first, config=config)
            if first and unknown:
                warn(f"ignoring unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                     f"(known: {', '.join('--' + k for k in self._declared)})")
            for name, default in fresh.items():
                if name in self._from_file:
                    value = coerce_like(self._from_file[name], default)
                else:
                    value = overrides.get(name, default)
                self._params[name] = value
        return self._params

    def _config(self, path: str) -> dict[str, Any]:
        if path not in self._configs:
            self._configs[path] = load_config(path)
        return self._configs[path]

    def report(self, step: int, /, **metrics: Any) -> None:
        """Record metrics for a step and apply pending commands (a pause blocks here until resumed)."""
        self._report(step, metrics)

    def _report(self, step: int, metrics: dict[str, Any]) -> None:
        # The hot path: no copy of the (fresh) kwargs dict unless a value needs converting.
        if type(step) is not int:
            step = int(step)
        for v in metrics.values():
            # v - v is 0.0 for a finite float and NaN for NaN and +-inf.
            if type(v) is not float or v - v != 0.0:
                metrics = clean(metrics)
                break
        first = self._last_step is None
        self._last_step = step
        if self._writer is None:
            if self.run_dir is None:
                print_metrics(self._out or sys.stdout, step, metrics)
            return   # else closed, or a forked worker: nothing to write to
        self._queue.append((time.time(), step, metrics))
        if first:
            # The first step is the one a user (or a fork) waits for: show it now, not at the next tick.
            self.flush()
        now = time.monotonic()   # not time.time(): a clock set back must not silence the commands
        if now < self._next_check:
            return
        # At most one stat per call and per CHECK_INTERVAL: a command waits at most that long.
        self._next_check = now + CHECK_INTERVAL
        ctl = self._ctl
        if ctl is not None and ctl.grew():
            self._poll_control()
        if self._paused:   # also after a pause let a deferred checkpoint through (see _wait_paused)
            self._wait_paused()

    def poll(self) -> None:
        """Apply pending commands without reporting a step (a pause blocks here until resumed)."""
        if self._writer is None:
            return
        self._next_check = time.monotonic() + CHECK_INTERVAL
        ctl = self._ctl
        if ctl is not None and ctl.grew():
            self._poll_control()
        if self._paused:
            self._wait_paused()

    def changes(self) -> dict[str, Any]:
        """Live changes applied since the last call ({} if none); params() already reflects them."""
        c, self._changes = self._changes, {}
        return c

    def pending_changes(self) -> dict[str, Any]:
        """The live changes changes() would return now, without taking them (for a checkpoint)."""
        return dict(self._changes)

    def on_checkpoint(self, save: Callable[[str], Any], *, deferred: bool = False) -> Callable[[str], Any]:
        """Register save(path), which writes the full training state to path (used to fork).

        deferred=True is for a framework that writes checkpoints itself at a later point of its loop:
        save(path) only asks for one, and checkpoint_saved(where) answers the request once it is written.
        """
        self._ckpt.register(save, deferred)
        return save

    def checkpoint_saved(self, path: str | os.PathLike[str], step: int | None = None) -> None:
        """Answer the pending deferred checkpoint requests: path (a file or folder) holds the full state."""
        step = step if step is not None else self._last_step
        if not self._ckpt.answer(self.run_dir, path, step):
            return
        self._next_check = 0.0   # a paused run blocks again at the next report() or poll()
        self.flush()

    def resume_path(self) -> str | None:
        """Absolute path of the checkpoint this (forked) run starts from, or None."""
        return self._resume

    def max_steps(self, default: int) -> int:
        """The step limit to train to: `default` until the tuner extends it (see trainer_steps)."""
        return self._limit.get(default, self._resume)

    def should_stop(self) -> bool:
        """True once the tuner asked this run to stop."""
        return self._stop

    def last_step(self) -> int | None:
        """The step of the latest report() call (the step a checkpoint taken now belongs to)."""
        return self._last_step

    def inexact(self, reason: str) -> None:
        """Say that this forked run does not continue its parent exactly, and why (one line)."""
        if self._writer is not None:
            self._event(P.EV_INEXACT, reason=str(reason))
            self.flush()

    def flush(self) -> None:
        """Write queued events now."""
        w = self._writer
        if w is not None:
            w.flush()

    def close(self) -> None:
        """Write `done` (unless an exception escaped) and everything queued; called at exit."""
        w = self._writer
        if self._closed or os.getpid() != self._pid or w is None:
            return
        self._closed = True
        self._ckpt.abandon()
        if not self._crashed:
            self._event(P.EV_DONE)
        w.close()
        self._writer = None
        if self._hook is not None and sys.excepthook is self._hook:
            sys.excepthook = self._prev_hook

    # -- internals ----------------------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> None:
        obj = {"t": round(time.time(), 3), "event": kind}
        obj.update(fields)
        self._queue.append(obj)


# -- the module-level API (one Run per process) ---------------------------------------------------------

_run: Run | None = None
_run_lock = threading.Lock()


def _get() -> Run:
    global _run
    with _run_lock:
        if _run is None:
            _run = Run(os.environ.get(P.ENV_RUN_DIR) or None)
            atexit.register(_run.close)
        return _run


def _after_fork_in_child() -> None:
    # A forked worker (e.g. a DataLoader process) must not write this run's events or its `done`.
    r = _run
    if r is not None:
        r._queue.clear()
        r._writer = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def params(defaults: Mapping[str, Any] | None = None, /, **kw: Any) -> Params:
    """This run's settings, given the script's defaults: trainer.params(lr=1e-2, ...) or params({...}).

    Under the tuner params.json's values win; standalone, --name value / --name=value on the command
    line override the defaults (typed like the default; booleans take true/false or a bare --name).
    Every call returns the same dict, updated in place by live changes.
    """
    return (_run or _get()).params(defaults, **kw)


def report(step: int, /, **metrics: Any) -> None:
    """Record metrics for a step (cheap); applies pending commands; a pause blocks here until resumed."""
    (_run or _get())._report(step, metrics)


def changes() -> dict[str, Any]:
    """Live changes since the last call ({} if none); params() already has them."""
    return (_run or _get()).changes()


def pending_changes() -> dict[str, Any]:
    """The live changes changes() would return now, without taking them."""
    return (_run or _get()).pending_changes()


def on_checkpoint(save: Callable[[str], Any], *, deferred: bool = False) -> Callable[[str], Any]:
    """Register save(path), which writes the full training state (usable as a decorator).

    deferred=True: save(path) only asks the framework for a checkpoint; call checkpoint_saved() once written.
    """
    return (_run or _get()).on_checkpoint(save, deferred=deferred)


def checkpoint_saved(path: str | os.PathLike[str], step: int | None = None) -> None:
    """Answer deferred checkpoint requests: path (relative to the run dir, or absolute) now holds the state."""
    (_run or _get()).checkpoint_saved(path, step)


def poll() -> None:
    """Apply pending commands without reporting a step (a pause blocks here until resumed)."""
    (_run or _get()).poll()


def resume_path() -> str | None:
    """The checkpoint a forked run starts from (absolute path), or None."""
    return (_run or _get()).resume_path()


def max_steps(default: int) -> int:
    """The step limit a loop trains to: `default` until the tuner says train longer (read it each step)."""
    return (_run or _get()).max_steps(default)


def should_stop() -> bool:
    """True once a stop was asked for."""
    return (_run or _get()).should_stop()


def last_step() -> int | None:
    """The step of the latest report() call."""
    return (_run or _get()).last_step()


def inexact(reason: str) -> None:
    """Say that this forked run does not continue its parent exactly, and why (the app marks its lineage)."""
    (_run or _get()).inexact(reason)


def flush() -> None:
    """Write queued events now (they are written every 100 ms and at exit anyway)."""
    (_run or _get()).flush()


def run_dir() -> str | None:
    """This run's directory under the tuner, or None standalone."""
    return (_run or _get()).run_dir
