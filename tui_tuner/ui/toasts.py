"""Toasts for decisions the tuner makes on its own: a burst of them becomes one toast.

A rung of early stopping can stop several runs within a tick or two; at 80 columns a toast each
would cover the trials and the queue. The back end gathers automatic decisions here and the app
shows one toast per burst ("3 early stops · 1 autopilot replacement · D lists them").
"""

from __future__ import annotations

import time

from tui_tuner.study.decision_log import Decision


class Burst:
    """Automatic decisions that come together become one toast: "3 early stops · 1 autopilot
    replacement (D lists them)". A burst is said once no decision has come for QUIET seconds, or
    once its first is LONGEST seconds old."""

    QUIET, LONGEST = 0.8, 2.5   # the app ticks every 0.5 s: decisions of one burst come a tick or two apart
    NAMES = {"early_stop": ("early stop", "early stops"), "pbt": ("autopilot replacement", "autopilot replacements"),
             "auto_k": ("k change", "k changes"), "promote": ("promotion", "promotions")}

    def __init__(self) -> None:
        self._items: list[tuple[float, Decision]] = []

    def add(self, d: Decision) -> None:
        """Called with the back end's notice lock held."""
        self._items.append((time.monotonic(), d))

    def take(self, now: float) -> list[tuple[str, str, str]]:
        """The toast for the burst, once it is over; [] meanwhile."""
        if not self._items:
            return []
        first, last = self._items[0][0], self._items[-1][0]
        if now - last < self.QUIET and now - first < self.LONGEST:
            return []
        items, self._items = [d for _, d in self._items], []
        if len(items) == 1:
            d = items[0]
            title = d.kind.replace("_", " ").capitalize()
            return [(title, d.message, "information" if d.state == "done" else "warning")]
        counts: dict[str, int] = {}
        for d in items:
            counts[d.kind] = counts.get(d.kind, 0) + 1
        parts = []
        for kind, n in counts.items():
            one, many = self.NAMES.get(kind, (kind.replace("_", " "), kind.replace("_", " ") + "s"))
            parts.append(f"{n} {one if n == 1 else many}")
        return [("Decisions", " · ".join(parts) + " · D lists them", "information")]
