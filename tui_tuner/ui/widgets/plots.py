"""A picture as a widget: a plotext figure (or the curves' BrailleFigure), built off the event loop
at a bounded rate.

textual-plotext's own PlotextPlot rebuilds its figure inside `render()`, on the event loop, at every
refresh. Plotext is pure Python: twenty overlaid curves take tens of milliseconds to build (more on
a big terminal), which would stall the keys and, at ten frames a second, cost most of a core. So this
widget keeps textual-plotext's `Plot` (a plotext figure with no global state) but builds it in a
thread, at most one build at a time, never more often than every `MIN_INTERVAL` seconds nor more
than `DUTY` of the time, and shows the last finished build until the next one is ready. The curves
picture draws into a `BrailleFigure` instead (pictures/braille.py says why), whose rows become the
widget's text directly, with no ANSI string in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.message import Message
from textual.widget import Widget
from textual_plotext import Plot

from tui_tuner.pictures.braille import BrailleFigure, Run
from tui_tuner.pictures.plotting import Picture

MIN_INTERVAL = 0.2   # seconds between builds at most (5 frames a second)
DUTY = 0.12          # share of the time spent building, at most: slow builds are spaced out
# A build that falls due with a request older than FRESH waits up to NEXT_WAIT for the next one:
# while runs report, a new snapshot comes every frame (0.1 s), and building from it rather than from
# the one before puts reports on screen a frame's age sooner, for the same number of builds.
FRESH = 0.04
NEXT_WAIT = 0.1

Drawer = Callable[[Any, int, int], Picture]


class PicturePlot(Widget):
    """Draws what its `drawer(figure, width, height)` puts into a plotext figure."""

    DEFAULT_CSS = """
    PicturePlot { height: 1fr; width: 1fr; }
    """

    class Drawn(Message):
        """A build is on screen: its title and legend, for the lines around the plot."""

        def __init__(self, picture: Picture) -> None:
            super().__init__()
            self.picture = picture

    def __init__(self, *, figure: Any = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._figure = figure if figure is not None else Plot()
        self._text = Text("")
        self._pending: tuple[Any, Drawer] | None = None
        self._request: tuple[Any, Drawer] | None = None   # the last draw() asked for
        self._shown_key: Any = None     # the key of the request the shown text was built from
        self._flight: Any = None        # the key of the build in flight
        self._busy = False
        self._last = 0.0                # when the last build started
        self._cost = 0.0                # CPU seconds the last build took
        self._timer: Any = None
        self._asked = 0.0               # when the pending request came
        self._waiting = False           # a build is due and waits for a fresh request (NEXT_WAIT)
        self.picture: Picture | None = None
        self.builds = 0

    def draw(self, key: Any, drawer: Drawer) -> None:
        """Show what `drawer` draws; `key` says what it depends on (an equal key draws nothing new)."""
        self._request = (key, drawer)
        full = (key, self.size.width, self.size.height)
        # What will be on screen once the build in flight lands (or what is there now).
        coming = self._flight if self._busy else self._shown_key
        if full == coming:
            self._pending = None
            return
        self._pending = (full, drawer)
        self._asked = time.monotonic()
        if self._waiting and not self._busy and self.is_mounted:
            # The build that was due waited for this fresher request: build it now.
            self._waiting = False
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            self._start()
            return
        self._schedule()

    @property
    def idle(self) -> bool:
        """True when what was asked last is on screen (tests wait for it)."""
        return self._pending is None and not self._busy

    def _schedule(self) -> None:
        if self._busy or self._pending is None or not self.is_mounted:
            return
        wait = max(MIN_INTERVAL, self._cost / DUTY) - (time.monotonic() - self._last)
        if wait > 0:
            if self._timer is None:
                self._timer = self.set_timer(wait, self._fire)
            return
        self._start()

    def _fire(self) -> None:
        self._timer = None
        stale = self._pending is not None and time.monotonic() - self._asked > FRESH
        if stale and not self._waiting and not self._busy and self.is_mounted:
            self._waiting = True
            self._timer = self.set_timer(NEXT_WAIT, self._fire)
            return
        self._waiting = False
        self._schedule()

    def _start(self) -> None:
        assert self._pending is not None
        key, drawer = self._pending
        self._pending = None
        self._busy, self._flight = True, key
        self._last = time.monotonic()
        width, height = key[1], key[2]
        self.run_worker(self._build(key, drawer, width, height), group="plot", exit_on_error=False)

    async def _build(self, key: Any, drawer: Drawer, width: int, height: int) -> None:
        try:
            picture, text = await asyncio.to_thread(self._render_figure, drawer, width, height)
            self._text = text
            self.picture = picture
            self._shown_key = key
            self.builds += 1
            self.refresh()
            self.post_message(self.Drawn(picture))
        except Exception as e:  # noqa: BLE001 - a drawing bug must not kill the app; say it
            self._text = Text(f"cannot draw this picture: {type(e).__name__}: {e}", style="bold red")
            self._shown_key = key
            self.refresh()
        finally:
            self._busy = False
            self._schedule()

    def _render_figure(self, drawer: Drawer, width: int, height: int) -> tuple[Picture, Text]:
        # The build's own CPU time, not its wall time: on a loaded machine the wall time counts the
        # wait for a core, and spacing builds out for that would only make the picture stale.
        t0 = time.thread_time()
        try:
            picture = drawer(self._figure, width, height)
            if isinstance(self._figure, BrailleFigure):
                return picture, rows_text(self._figure.rows())
            return picture, Text.from_ansi(self._figure.build(), no_wrap=True, overflow="crop")
        finally:
            self._cost = time.thread_time() - t0

    def on_resize(self) -> None:
        """A new size needs a new build (the figure is drawn to fit)."""
        if self._request is not None:
            self.draw(*self._request)

    def render(self) -> Text:
        """The last finished build."""
        return self._text


def rows_text(rows: list[list[Run]]) -> Text:
    """A BrailleFigure's rows as one Text (the styles Text.from_ansi would give its ANSI string)."""
    text = Text(no_wrap=True, overflow="crop")
    for i, row in enumerate(rows):
        if i:
            text.append("\n")
        for chunk, code, bold in row:
            text.append(chunk, _style(code, bold))
    return text


@lru_cache(maxsize=64)
def _style(code: int | None, bold: bool) -> Style | None:
    if code is None and not bold:
        return None
    return Style(color=Color.from_ansi(code) if code is not None else None, bold=bold or None)
