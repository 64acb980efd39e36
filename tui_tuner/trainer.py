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

Cost: report() checks the metrics are plain finite numbers, appends them to an in-memory queue and
stats control.jsonl (at most once a millisecond; reading it only when it grew). A daemon thread writes the queue every 100 ms; it is
also written before a pause blocks, after each command, and at exit. This module imports only the
standard library (no textual, numpy or torch).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from tui_tuner import protocol as P

FLUSH_INTERVAL = 0.1   # seconds between background writes of queued events
CHECK_INTERVAL = 0.001  # at most one stat of control.jsonl per this many seconds (and per report)
PAUSE_POLL = 0.015     # seconds between control-file checks while paused

_TRUE = ("true", "1", "yes", "on", "t", "y")
_FALSE = ("false", "0", "no", "off", "f", "n")


class Params(dict):
    """A run's settings: a dict whose keys are also attributes (hp["lr"] or hp.lr).

    A name that is also a dict method (items, values, copy, ...) needs hp["name"].
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r} (known: {', '.join(self)})") from None


class Run:
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
        self._save: Callable[[str], Any] | None = None
        self._save_later = False              # save(path) only asks; checkpoint_saved() answers
        self._waiting: list[Any] = []         # seqs of checkpoint requests a deferred save still owes
        self._stop = False
        self._paused = False
        self._last_step: int | None = None
        self._crashed = False
        self._closed = False
        self._warned_write = False
        self._pid = os.getpid()
        # Events waiting to be written: (t, step, metrics) tuples or event dicts. deque.append and
        # popleft are atomic, so report() never takes the lock the writer holds.
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._ctl: P.JsonlTail | None = None   # control.jsonl, read only when it grew
        self._ctl_seq = 0
        self._next_check = 0.0
        self._keys: dict[str, str] = {}   # metric name -> its JSON '"name":' prefix
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._hook: Callable[..., None] | None = None
        self._prev_hook: Callable[..., None] | None = None
        if self.run_dir is not None:
            self._open_run()

    # -- setup ------------------------------------------------------------------------------------

    def _open_run(self) -> None:
        assert self.run_dir is not None
        os.makedirs(self.run_dir, exist_ok=True)
        data = P.read_json(os.path.join(self.run_dir, P.PARAMS))
        if data is None:
            _warn(f"no readable {P.PARAMS} in {self.run_dir}: using the script's defaults")
            data = {}
        params = data.get("params")
        self._from_file = dict(params) if isinstance(params, dict) else {}
        self._params.update(self._from_file)
        trial = data.get("trial")
        self.trial = trial if isinstance(trial, int) else None
        resume = data.get("resume")
        self._resume = P.resolve_resume(self.run_dir, resume) if isinstance(resume, str) else None
        self._fd = os.open(os.path.join(self.run_dir, P.EVENTS), os.O_WRONLY | os.O_APPEND | os.O_CREAT, P.PRIVATE_FILE)
        self._ctl = P.JsonlTail(os.path.join(self.run_dir, P.CONTROL))
        prev_hook = sys.excepthook

        def hook(*exc: Any) -> None:
            # An uncaught exception means no "done" event at exit.
            self._crashed = True
            prev_hook(*exc)

        self._prev_hook = prev_hook
        self._hook = hook
        sys.excepthook = hook
        self._thread = threading.Thread(target=self._flusher, name="tui-tuner-flush", daemon=True)
        self._thread.start()

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
            overrides, unknown = _parse_argv(self.argv, fresh, help_ok=first, config=config)
            if first and unknown:
                _warn(f"ignoring unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                      f"(known: {', '.join('--' + k for k in self._declared)})")
            for name, default in fresh.items():
                if name in self._from_file:
                    value = _coerce_like(self._from_file[name], default)
                else:
                    value = overrides.get(name, default)
                self._params[name] = value
        return self._params

    def _config(self, path: str) -> dict[str, Any]:
        if path not in self._configs:
            self._configs[path] = _load_config(path)
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
                metrics = _clean(metrics)
                break
        first = self._last_step is None
        self._last_step = step
        if self._fd is None:
            if self.run_dir is None:
                self._print(step, metrics)
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
        if self._fd is None:
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
        self._save = save
        self._save_later = deferred
        return save

    def checkpoint_saved(self, path: str | os.PathLike[str], step: int | None = None) -> None:
        """Answer the pending deferred checkpoint requests: path (a file or folder) holds the full state."""
        waiting, self._waiting = self._waiting, []
        if not waiting or self.run_dir is None:
            return
        where = os.path.abspath(os.path.join(self.run_dir, os.fspath(path)))
        inside = where.startswith(self.run_dir + os.sep)
        rel = os.path.relpath(where, self.run_dir) if inside else where
        step = step if step is not None else (self._last_step if self._last_step is not None else 0)
        for seq in waiting:
            self._event(P.EV_CHECKPOINT, seq=seq, path=rel, step=int(step))
        self._next_check = 0.0   # a paused run blocks again at the next report() or poll()
        self.flush()

    def resume_path(self) -> str | None:
        """Absolute path of the checkpoint this (forked) run starts from, or None."""
        return self._resume

    def should_stop(self) -> bool:
        """True once the tuner asked this run to stop."""
        return self._stop

    def last_step(self) -> int | None:
        """The step of the latest report() call (the step a checkpoint taken now belongs to)."""
        return self._last_step

    def flush(self) -> None:
        """Write queued events now."""
        if self._fd is None or not self._queue:
            return
        with self._lock:
            q = self._queue
            n = len(q)
            if not n or self._fd is None:
                return
            lines = []
            for _ in range(n):
                item = q.popleft()
                lines.append(self._metrics_line(*item) if type(item) is tuple else _dumps(item))
            data = ("\n".join(lines) + "\n").encode()
            try:
                P._write_all(self._fd, data)
            except OSError as e:
                if not self._warned_write:
                    self._warned_write = True
                    _warn(f"cannot write {P.EVENTS}: {e} (metrics are being lost)")

    def _metrics_line(self, t: float, step: int, m: dict[str, Any]) -> str:
        """One metrics event as JSON, built by hand: twice as fast as json.dumps for this fixed shape."""
        keys = self._keys
        parts = []
        for k, v in m.items():
            kj = keys.get(k)
            if kj is None:
                kj = keys[k] = json.dumps(str(k)) + ":"
            # report() left only finite floats, ints and the non-finite strings; repr of a finite
            # float is a valid JSON number.
            tv = type(v)
            parts.append(kj + (repr(v) if tv is float else str(v) if tv is int else json.dumps(v)))
        return f'{{"t":{t:.3f},"step":{step},"metrics":{{{",".join(parts)}}}}}'

    def close(self) -> None:
        """Write `done` (unless an exception escaped) and everything queued; called at exit."""
        if self._closed or os.getpid() != self._pid or self._fd is None:
            return
        self._closed = True
        for seq in self._waiting:
            self._event(P.EV_CHECKPOINT, seq=seq, error="the run ended before its checkpoint was written")
        self._waiting = []
        if not self._crashed:
            self._event(P.EV_DONE)
        self._closing.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        self.flush()
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        if self._hook is not None and sys.excepthook is self._hook:
            sys.excepthook = self._prev_hook

    # -- internals ----------------------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> None:
        obj = {"t": round(time.time(), 3), "event": kind}
        obj.update(fields)
        self._queue.append(obj)

    def _flusher(self) -> None:
        while not self._closing.wait(FLUSH_INTERVAL):
            if self._queue:
                self.flush()

    def _print(self, step: int, m: dict[str, Any]) -> None:
        parts = [f"step {step}"]
        for k, v in m.items():
            parts.append(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}")
        print(" | ".join(parts), file=self._out or sys.stdout, flush=True)

    def _poll_control(self) -> None:
        """Read control.jsonl's new lines and apply each command once, in order."""
        if self._ctl is None:
            return
        handled = False
        for cmd in self._ctl.read_all(final=False):   # a line not yet ended waits for its end
            seq = cmd.get("seq")
            if isinstance(seq, int) and not isinstance(seq, bool):
                if seq <= self._ctl_seq:
                    continue   # already applied (the file is only ever appended to)
                self._ctl_seq = seq
            self._apply(cmd)
            handled = True
        if handled:
            self.flush()   # answer commands promptly, not at the next 100 ms tick

    def _apply(self, cmd: dict[str, Any]) -> None:
        name = cmd.get("cmd")
        if name == P.CMD_PAUSE:
            if not self._paused and not self._stop:
                self._paused = True
                self._event(P.EV_PAUSED)
        elif name == P.CMD_RESUME:
            if self._paused:
                self._paused = False
                self._event(P.EV_RESUMED)
        elif name == P.CMD_STOP:
            self._stop = True
            self._paused = False
        elif name == P.CMD_SET:
            changes = cmd.get("params")
            if isinstance(changes, dict) and changes:
                applied = {}
                for k, v in changes.items():
                    if k in self._params:
                        v = _coerce_like(v, self._params[k])
                    self._params[k] = v
                    self._changes[k] = v
                    applied[k] = v
                self._event(P.EV_APPLIED, params=applied)
        elif name == P.CMD_CHECKPOINT:
            self._checkpoint(cmd.get("seq"))
        # Unknown commands are skipped: a newer tuner may know more than this trainer.

    def _checkpoint(self, seq: Any) -> None:
        assert self.run_dir is not None
        if self._save is None:
            self._event(P.EV_CHECKPOINT, seq=seq, error="the trainer registered no checkpoint function "
                                                        "(trainer.on_checkpoint)")
            return
        step = self._last_step if self._last_step is not None else 0
        rel = P.checkpoint_relpath(step)
        path = os.path.join(self.run_dir, rel)
        try:
            os.makedirs(os.path.dirname(path), mode=P.PRIVATE_DIR, exist_ok=True)
            self._save(path)
        except Exception as e:  # noqa: BLE001 - a failed save must not end the training run
            traceback.print_exc()
            msg = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
            self._event(P.EV_CHECKPOINT, seq=seq, error=f"checkpoint failed: {msg}")
            return
        if self._save_later:
            self._waiting.append(seq)
            return
        self._event(P.EV_CHECKPOINT, seq=seq, path=rel, step=step)

    def _wait_paused(self) -> None:
        """Block until resume or stop, still answering set and checkpoint commands.

        A deferred checkpoint cannot be written while the loop is blocked here: its request ends the
        wait, the framework writes it, and the next report() or poll() blocks again.
        """
        self.flush()
        while self._paused and not self._waiting:
            time.sleep(PAUSE_POLL)
            if self._ctl is not None and self._ctl.grew():
                self._poll_control()


# -- helpers ------------------------------------------------------------------------------------------


def _warn(msg: str) -> None:
    print(f"tui-tuner: {msg}", file=sys.stderr, flush=True)


def _clean(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics as plain numbers, the non-finite ones as their protocol strings."""
    out = {}
    for k, v in metrics.items():
        if type(v) is not float:
            v = _number(k, v)
        out[k] = v if v - v == 0 else P.encode_metric(v)
    return out


def _number(name: str, v: Any) -> float | int:
    """A metric value as a plain Python number (tensors and numpy scalars via .item())."""
    if type(v) is int:
        return v
    if isinstance(v, bool):
        return float(v)
    item = getattr(v, "item", None)
    if item is not None:
        v = item()
        if type(v) is int or type(v) is float:
            return v
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"report(): metric {name!r} must be a number, got {type(v).__name__}") from None


def _sanitize(obj: Any) -> Any:
    """Replace non-finite floats anywhere in obj by their protocol strings."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return P.encode_metric(obj)
    if isinstance(obj, dict):
        return {k: _sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v) for v in obj]
    return obj


def _dumps(obj: dict[str, Any]) -> str:
    try:
        return P.dumps(obj)
    except ValueError:   # a NaN somewhere other than the metrics (e.g. in applied params)
        return P.dumps(_sanitize(obj))
    except TypeError:
        return json.dumps(_sanitize(obj), separators=(",", ":"), default=str)


def _coerce_like(value: Any, like: Any) -> Any:
    """A JSON value given the type of the script's default where that is lossless (1 -> 1.0 for a float)."""
    if isinstance(like, bool) or like is None:
        return value
    if isinstance(like, float) and type(value) is int:
        return float(value)
    if isinstance(like, int) and type(value) is float and value.is_integer():
        return int(value)
    return value


def _parse_value(flag: str, text: str, like: Any) -> Any:
    """Parse a command-line value with the type of the default; exit 2 with one line if it does not fit."""
    try:
        if isinstance(like, bool):
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if isinstance(like, int):
            x = float(text)
            if not x.is_integer():
                raise ValueError
            return int(x) if "." in text or "e" in text.lower() else int(text)
        if isinstance(like, float):
            return float(text)
        if isinstance(like, str):
            return text
        return json.loads(text)
    except ValueError:
        if like is None:
            return text
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(type(like), type(like).__name__)
        print(f"tui-tuner: {flag}: expected {kind}, got {text!r}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _fail(message: str) -> SystemExit:
    print(f"tui-tuner: {message}", file=sys.stderr, flush=True)
    return SystemExit(2)


def _load_config(path: str) -> dict[str, Any]:
    """The values of a `tui-tuner export` TOML file, its [tuner] table of metadata left out."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised only on 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise _fail(f"--config {path}: cannot read: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise _fail(f"--config {path}: TOML syntax error: {e}") from None
    data.pop("tuner", None)   # export.TUNER_TABLE (not imported: this module stays light)
    return data


def _config_value(path: str, key: str, value: Any, like: Any) -> Any:
    """A --config file's value, typed like the script's default; exit 2 with one line if it does not fit."""
    v = _coerce_like(value, like)
    if like is None or (isinstance(v, type(like)) and isinstance(v, bool) == isinstance(like, bool)):
        return v
    kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        type(like), type(like).__name__)
    raise _fail(f"--config {path}: {key}: expected {kind}, got {value!r}")


def _parse_argv(argv: list[str], declared: dict[str, Any], *, help_ok: bool,
                config: Callable[[str], dict[str, Any]] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Overrides for declared names from --name value / --name=value; also the unknown flags seen.

    With `config` (a loader), --config FILE sets the declared names FILE holds, where it stands:
    a flag after it wins, one before it loses.
    """
    out: dict[str, Any] = {}
    unknown: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok == "--":
            break
        if help_ok and tok in ("-h", "--help"):
            _print_help(declared, config is not None)
            raise SystemExit(0)
        if not tok.startswith("--") or len(tok) == 2:
            continue
        name, eq, text = tok[2:].partition("=")
        key = name if name in declared else name.replace("-", "_")
        nxt = argv[i] if i < len(argv) else None
        if name == "config" and config is not None:
            if not eq:
                if nxt is None:
                    raise _fail("--config: expected a file (a tui-tuner export, e.g. best.toml)")
                text, i = nxt, i + 1
            values = config(text)
            for k, v in values.items():
                if k in declared:
                    out[k] = _config_value(text, k, v, declared[k])
            extra = [k for k in values if k not in declared]
            if extra and help_ok:
                unknown.append(f"{', '.join(extra)} (in {text})")
            continue
        if key not in declared:
            unknown.append(f"--{name}")
            if not eq and nxt is not None and not nxt.startswith("--"):
                i += 1   # skip its value too
            continue
        like = declared[key]
        if not eq:
            if isinstance(like, bool) and (nxt is None or nxt.strip().lower() not in _TRUE + _FALSE):
                out[key] = True   # a bare --flag switches a boolean on
                continue
            if nxt is None:
                print(f"tui-tuner: --{name}: expected a value", file=sys.stderr, flush=True)
                raise SystemExit(2)
            text = nxt
            i += 1
        out[key] = _parse_value(f"--{name}", text, like)
    return out, unknown


def _print_help(declared: dict[str, Any], config: bool = False) -> None:
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "trainer"
    usage = "[--config FILE.toml] [--NAME VALUE ...]" if config else "[--NAME VALUE ...]"
    print(f"usage: {prog} {usage}\n\nsettings (tui-tuner trainer.params) and their defaults:")
    for k, v in declared.items():
        print(f"  --{k:<20} {v!r}")
    if config:
        print(f"  --{'config FILE.toml':<20} the values of a `tui-tuner export` (flags after it win)")


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
        r._fd = None


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


def should_stop() -> bool:
    """True once a stop was asked for."""
    return (_run or _get()).should_stop()


def last_step() -> int | None:
    """The step of the latest report() call."""
    return (_run or _get()).last_step()


def flush() -> None:
    """Write queued events now (they are written every 100 ms and at exit anyway)."""
    (_run or _get()).flush()


def run_dir() -> str | None:
    """This run's directory under the tuner, or None standalone."""
    return (_run or _get()).run_dir
