"""Writing a run's events.jsonl from the trainer side: cheap to queue, written off the training loop.

report() appends (time, step, metrics) tuples and other events to an in-memory deque (appends are
atomic, so the training loop never takes a lock); a daemon thread writes the queue every
FLUSH_INTERVAL, and the trainer flushes it itself where a wait matters (the first step, a command's
answer, a pause, exit). Metrics become plain numbers, the non-finite ones protocol strings.
Standard library only: this runs inside the user's training process.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import deque
from typing import Any, TextIO

from tui_tuner.trainer import protocol as P
from tui_tuner.trainer.settings import warn

FLUSH_INTERVAL = 0.1   # seconds between background writes of queued events


class EventWriter:
    """The open events.jsonl of one run, its queue and the thread that writes the queue."""

    def __init__(self, path: str) -> None:
        self.path = path
        # Events waiting to be written: (t, step, metrics) tuples or event dicts.
        self.queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, P.PRIVATE_FILE)
        self._keys: dict[str, str] = {}   # metric name -> its JSON '"name":' prefix
        self._warned = False
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._flusher, name="tui-tuner-flush", daemon=True)
        self._thread.start()

    def flush(self) -> None:
        """Write queued events now."""
        if self._fd is None or not self.queue:
            return
        with self._lock:
            q = self.queue
            n = len(q)
            if not n or self._fd is None:
                return
            lines = []
            for _ in range(n):
                item = q.popleft()
                lines.append(self._metrics_line(*item) if type(item) is tuple else dumps(item))
            data = ("\n".join(lines) + "\n").encode()
            try:
                P._write_all(self._fd, data)
            except OSError as e:
                if not self._warned:
                    self._warned = True
                    warn(f"cannot write {P.EVENTS}: {e} (metrics are being lost)")

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
        """Stop the writer thread, write what is queued and close the file."""
        self._closing.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        self.flush()
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _flusher(self) -> None:
        while not self._closing.wait(FLUSH_INTERVAL):
            if self.queue:
                self.flush()


def clean(metrics: dict[str, Any]) -> dict[str, Any]:
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


def dumps(obj: dict[str, Any]) -> str:
    """An event as one JSON line; non-finite floats become protocol strings, odd objects their str."""
    try:
        return P.dumps(obj)
    except ValueError:   # a NaN somewhere other than the metrics (e.g. in applied params)
        return P.dumps(_sanitize(obj))
    except TypeError:
        return json.dumps(_sanitize(obj), separators=(",", ":"), default=str)


def print_metrics(out: TextIO, step: int, m: dict[str, Any]) -> None:
    """Standalone (no tuner): a step's metrics as one printed line."""
    parts = [f"step {step}"]
    for k, v in m.items():
        parts.append(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}")
    print(" | ".join(parts), file=out, flush=True)
