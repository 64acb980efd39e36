"""What the screens use of the app, as a Protocol: the screens then depend on this, not on the app module.

The app (ui/app.py) composes the screens, so a screen that imported the app for its type would close
a circle; `Tuner` names the few things a screen asks of it: the session and its command path, what
to say, the back end's UI state, and Textual's own screen and worker calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from tui_tuner.runtime.session import Session
from tui_tuner.ui.backend import Backend


class Tuner(Protocol):
    """The app as a screen sees it (TunerApp implements it)."""

    backend: Backend
    live: bool

    @property
    def session(self) -> Session:
        """The session whose commands the screens send."""

    @property
    def main(self) -> Any:
        """The main screen."""

    def command(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a session command on the back end's command thread; say its message or error."""

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run it there and return its result (its error propagates)."""

    async def call_or_say(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run it there; an error is said and None returned."""

    def say(self, message: str, *, title: str = "", severity: str = "information") -> None:
        """A toast."""

    def said(self, result: str | None) -> None:
        """A dialog closed with a message: say it."""

    def quit(self, *, stop_runs: bool) -> None:
        """Quit, leaving the runs going unless stop_runs."""

    def redraw_soon(self) -> None:
        """Ask for a new frame."""

    def push_screen(self, screen: Any, callback: Any = None) -> Any:
        """Textual's own."""

    def pop_screen(self) -> Any:
        """Textual's own."""

    def run_worker(self, work: Any, **kw: Any) -> Any:
        """Textual's own."""
