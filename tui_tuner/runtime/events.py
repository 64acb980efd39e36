"""The runner's lock and the delivery of its RunEvents to the listener, after the lock is released.

Nothing is dropped silently: a listener that raises gets an "error" event about it (a listener that
raises on that too has the message kept in `errors` only), and the runs go on being followed.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from tui_tuner.runtime.run_state import Kind, RunEvent

ERRORS_KEPT = 100          # error messages kept in EventBus.errors


class EventBus:
    """Holds the runner's lock; queues events raised under it and hands them to `on_event` afterwards.

    So a listener may call back into the runner, or block on the UI thread, without deadlock.
    """

    def __init__(self, on_event: Callable[[RunEvent], None] | None = None) -> None:
        self.on_event = on_event
        self.errors: deque[str] = deque(maxlen=ERRORS_KEPT)   # every error reported, newest last
        self._lock = threading.RLock()
        self._depth = 0                       # nesting of locked() by the thread holding the lock
        self._pending: deque[RunEvent] = deque()
        self._dispatching = threading.Lock()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lock; events emitted meanwhile go to on_event once the outermost hold ends."""
        with self._lock:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                outer = self._depth == 0
        if outer:
            self.dispatch()

    def emit(self, kind: Kind, trial_id: int, data: dict[str, Any]) -> None:
        """Queue one event for the listener (nothing when there is none)."""
        if self.on_event is not None:
            self._pending.append(RunEvent(kind, trial_id, data))

    def emit_all(self, events: list[RunEvent]) -> None:
        """Queue events a RunState returned."""
        for ev in events:
            self.emit(ev.kind, ev.trial_id, ev.data)

    def error(self, message: str, trial_id: int = -1) -> None:
        """A failure the runner survived: kept in `errors` and sent as an "error" event."""
        self.errors.append(message)
        self.emit(Kind.ERROR, trial_id, {"message": message})

    def dispatch(self) -> None:
        """Deliver the queued events in order; one thread at a time, another leaves its events to it."""
        while self._pending:
            if not self._dispatching.acquire(blocking=False):
                return
            try:
                while self._pending:
                    ev = self._pending.popleft()
                    callback = self.on_event
                    if callback is None:
                        continue
                    try:
                        callback(ev)
                    except Exception as e:  # noqa: BLE001 - a faulty listener must not stop the runs being followed
                        message = f"the listener of {ev.kind} events failed: {say(e)}"
                        if ev.kind is Kind.ERROR:
                            self.errors.append(message)   # it fails on errors too: kept, not sent again
                        else:
                            self.error(message, ev.trial_id)
            finally:
                self._dispatching.release()


def say(e: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
