"""The thread that polls the runs: every `interval` seconds, and every FAST_POLL seconds for a moment
after a command, so its answer (paused, applied, a checkpoint) shows up in milliseconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

FAST_POLL = 0.003          # poll-thread period for FAST_WINDOW seconds after a command
FAST_WINDOW = 0.5


class PollThread:
    """Calls `poll` from a daemon thread; an exception it raises goes to `on_error`, and polling goes on."""

    def __init__(self, poll: Callable[[], None], on_error: Callable[[Exception], None]) -> None:
        self._poll = poll
        self._on_error = on_error
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._kick = threading.Event()
        self._fast_until = 0.0

    def start(self, interval: float) -> None:
        """Start polling every `interval` seconds (nothing when already started)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._halt.clear()
        self._thread = threading.Thread(target=self._loop, args=(interval,), name="tui-tuner-runner",
                                        daemon=True)
        self._thread.start()

    def _loop(self, interval: float) -> None:
        while True:
            wait = FAST_POLL if time.time() < self._fast_until else interval
            # _kick wakes the thread at once when a command is written.
            if self._kick.wait(wait):
                self._kick.clear()
            if self._halt.is_set():
                return
            try:
                self._poll()
            except Exception as e:  # noqa: BLE001 - the thread must survive to settle later runs
                self._on_error(e)

    def hurry(self) -> None:
        """Poll now and fast for a moment: a command was just sent and its answer is on its way."""
        self._fast_until = time.time() + FAST_WINDOW
        self._kick.set()

    def stop(self) -> None:
        """Stop the thread and wait for it (a few seconds at most)."""
        self._halt.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
