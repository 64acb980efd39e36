"""The session's event stream: the typed events it publishes, its listeners, and STUDY/tuner.log.

Whoever watches a session (the app's back end, the headless printer) subscribes to one stream of
RunEvents, Notices for the user and Decisions (study/decision_log.py: made by the automation loop or
by a key, as they begin and as they end). Every notice and
decision is also a line in STUDY/tuner.log, so nothing that goes wrong is lost with the screen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tui_tuner.runtime.runner import RunEvent
from tui_tuner.study.decision_log import Decision
from tui_tuner.study.study import Study
from tui_tuner.trainer.protocol import append_line

LOG_FILE = "tuner.log"   # STUDY/tuner.log: one JSON object a line per notice, private like the study

Severity = Literal["information", "warning", "error"]


@dataclass(frozen=True)
class Notice:
    """Something the user should read: a toast in the app, a line in headless mode, a log line."""

    title: str
    message: str
    severity: Severity = "information"


SessionEvent = RunEvent | Notice | Decision
Listener = Callable[[SessionEvent], None]


class EventStream:
    """The listeners of one session and its study's log; publishing never lets a listener's error escape."""

    def __init__(self, study: Study) -> None:
        self.study = study
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._log_failed = False

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event from now on; returns the function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)
        return unsubscribe

    def publish(self, event: SessionEvent) -> None:
        """Hand `event` to every listener; one that raises is reported, never dropped silently."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception as e:  # noqa: BLE001 - reported below; the others still get the event
                what = type(event).__name__ if not isinstance(event, RunEvent) else f"a {event.kind} event"
                failure = Notice("Listener", f"{_name(listener)} failed on {what}: {type(e).__name__}: {e}", "error")
                self.log(failure)
                if not isinstance(event, Notice):   # a listener failing on notices is only logged
                    self.publish(failure)

    def notice(self, title: str, message: str, severity: Severity = "information") -> None:
        """Tell whoever watches, and write it to the study's log."""
        event = Notice(title, message, severity)
        self.log(event)
        self.publish(event)

    def decided(self, decision: Decision) -> None:
        """A decision begun or ended: publish it; once it has ended, write it to the study's log too."""
        if not decision.pending:
            state = "" if decision.state == "done" else f" ({decision.state})"
            what = f"undone: {decision.undone}" if decision.is_undone else decision.message
            self.log(Notice(f"Decision #{decision.id}: {decision.kind}{state}", what, "information"))
        self.publish(decision)

    def log(self, notice: Notice) -> None:
        """Append a notice to STUDY/tuner.log (a read-only study logs nothing); a failure is said once."""
        if self.study.readonly:
            return
        path = self.study.dir / LOG_FILE
        try:
            append_line(path, {"t": time.time(), "severity": notice.severity, "title": notice.title,
                               "message": notice.message})
        except (OSError, ValueError) as e:
            if not self._log_failed:   # said once, not once per notice
                self._log_failed = True
                self.publish(Notice("Study log", f"cannot write {path}: {e}", "error"))


def _name(listener: Listener) -> str:
    owner = getattr(listener, "__self__", None)
    name = getattr(listener, "__qualname__", None) or type(listener).__name__
    return f"{type(owner).__name__}.{listener.__name__}" if owner is not None else str(name)
