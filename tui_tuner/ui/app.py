"""The Textual app: renders the back end's snapshots and sends it commands; nothing more.

The back end (the session's study, runner and scheduler) runs on its own threads. It tells the app a snapshot is ready
with one replaceable message, so the screen is drawn at a bounded rate however fast the trainers
report. Every command runs off the loop; a TunerError it raises is shown, never raised.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.screen import Screen

from tui_tuner.core.printable import printable
from tui_tuner.errors import TunerError
from tui_tuner.ui.backend import Backend
from tui_tuner.ui.messages import SnapshotReady
from tui_tuner.ui.screens.main import MainScreen


class TunerApp(App[int]):
    """tui-tuner's terminal app on one open study."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-tuner"
    ENABLE_COMMAND_PALETTE = False
    NOTIFICATION_TIMEOUT = 6

    def __init__(self, backend: Backend, *, live: bool = True) -> None:
        super().__init__()
        self.backend = backend
        self.live = live
        # What was said to the user (severity, title, message): the toasts fade, this stays for tests.
        self.said_log: deque[tuple[str, str, str]] = deque(maxlen=200)
        self.frames = 0

    def get_default_screen(self) -> Screen:
        """The main screen."""
        return MainScreen()

    @property
    def main(self) -> MainScreen:
        """The main screen (whatever modal is on top)."""
        return self.screen_stack[0]  # type: ignore[return-value]

    def on_main_screen_ready(self, _: MainScreen.Ready) -> None:
        """The main screen is mounted: draw the first frame at once, then start the back end."""
        backend = self.backend
        backend.on_snapshot = self._snapshot_ready
        try:
            snap = backend.snapshot or backend.refresh(light=True)
            self.main.show(snap)
            self.frames += 1
        except TunerError as e:
            self.say(e.message, title=e.title, severity="error")
        if self.live:
            backend.start()

    def _snapshot_ready(self) -> None:
        """Called from the view thread: one replaceable message, never a widget call."""
        self.post_message(SnapshotReady())

    def on_snapshot_ready(self, _: SnapshotReady) -> None:
        """Draw the latest snapshot."""
        if self._exit or not self.screen_stack:
            return  # closing: the widgets are going away
        for title, message, severity in self.backend.take_notices():
            self.say(message, title=title, severity=severity)
        main = self.main
        snap = self.backend.snapshot
        if snap is not None and snap is not main.snap and main.is_mounted:
            try:
                main.show(snap)
            except NoMatches:
                return  # the screen is being torn down (the app is exiting)
            self.frames += 1

    def redraw_soon(self) -> None:
        """What the screen looks at changed (a picture opened or closed): ask for a new frame."""
        self.backend.poke()

    # -- commands -------------------------------------------------------------------------------

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run fn on the back end's command thread and return its result (its exception propagates)."""
        return await asyncio.wrap_future(self.backend.submit(fn, *args))

    async def call_or_say(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Like call, but an error is shown to the user and None returned."""
        try:
            return await self.call(fn, *args)
        except TunerError as e:
            self.say(e.message, title=e.title, severity="error")
        except Exception as e:  # noqa: BLE001 - a bug must not kill the app; show it
            self.say(f"{type(e).__name__}: {e}", title="Internal error", severity="error")
        return None

    def command(self, fn: Callable[..., Any], *args: Any) -> None:
        """Fire a back-end command; its message (or error) is shown when it returns."""
        async def run() -> None:
            result = await self.call_or_say(fn, *args)
            if isinstance(result, str) and result:
                self.say(result)
        self.run_worker(run(), group="command")

    def say(self, message: str, *, title: str = "", severity: SeverityLevel | str = "information") -> None:
        """Tell the user something (a toast), and keep it in `said_log`."""
        sev: Any = severity if severity in ("information", "warning", "error") else "information"
        self.said_log.append((sev, title, message))
        # A reason or a metric name may hold a trainer's escape sequences: shown, never sent raw.
        self.notify(printable(message, newlines=True), title=printable(title), severity=sev, markup=False,
                    timeout=12 if sev == "error" else None)

    def said(self, result: str | None) -> None:
        """A dialog closed with a message: show it."""
        if result:
            self.say(result)

    # -- quitting -------------------------------------------------------------------------------

    def quit(self, *, stop_runs: bool) -> None:
        """Quit; with stop_runs every run is stopped first (else they keep going, re-adopted next time)."""
        if stop_runs:
            n = len(self.main.snap.active_ids) if self.main.snap else 0
            if n:
                self.say(f"stopping {n} run(s)…")

            async def stop_then_exit() -> None:
                await self.call_or_say(self.backend.stop_all)
                self.exit(0)
            self.run_worker(stop_then_exit(), group="quit", exclusive=True)
        else:
            self.exit(0)

    async def on_unmount(self) -> None:
        """Stop the back end's threads (not the runs)."""
        await asyncio.to_thread(self.backend.close)


def run_app(study: Any, *, cwd: str | None = None, gpu: bool = True,
            scheduler_options: dict[str, Any] | None = None) -> int:
    """Open the app on an open study until the user quits; the study is closed on the way out.

    `cwd` is where trial commands run (default: the current directory); `scheduler_options`
    (budget, parallel, strategy) override the space file's for this session, as `run` flags do.
    """
    options: dict[str, Any] = {"cwd": cwd} if cwd is not None else {}
    backend = Backend(study, gpu=gpu, runner_options=options, scheduler_options=scheduler_options)
    app = TunerApp(backend)
    try:
        code = app.run()
    finally:
        backend.close()
        study.close()
    return int(code or 0)
