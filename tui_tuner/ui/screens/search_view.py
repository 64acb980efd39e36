"""The search view (coarse to fine): trials over two parameters, and the zoom boxes.

Each axis is in its parameter's sampling scale (the unit space the sampler and the zoom work in),
so a log learning rate spreads its decades evenly and β spreads 0.9, 0.99, 0.999 evenly. Keys
cycle the pair of parameters in priority order, and zoom and unzoom here, so the box is seen to move.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from textual.binding import Binding

from tui_tuner.pictures.axes import axis_pairs
from tui_tuner.pictures.plotting import draw_search
from tui_tuner.ui.screens import zoom_ask
from tui_tuner.ui.screens.picture import PictureScreen


class SearchScreen(PictureScreen):
    """The coarse-to-fine scatter."""

    VIEW = "search"
    NAME = "Search"
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("right_square_bracket", "next_pair", "Next pair", key_display="]"),
        Binding("left_square_bracket", "prev_pair", "Prev pair", key_display="["),
        Binding("x", "cycle_x", "X axis"),
        Binding("y", "cycle_y", "Y axis"),
        Binding("z", "zoom", "Zoom"),
        Binding("Z", "unzoom", "Unzoom"),
        Binding("escape", "back", "Back", key_display="esc"),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
    ]

    def __init__(self) -> None:
        super().__init__(id="search")
        self.pairs: list[tuple[str, str]] = []
        self.x = self.y = ""

    def on_mount(self) -> None:
        """Start on the first pair in priority order."""
        self.pairs = axis_pairs(self.tuner.session.space)
        if self.pairs:
            self.x, self.y = self.pairs[0]
        super().on_mount()

    def title_prefix(self) -> str:
        """'Search · zoom 2'."""
        zoom = self.snap.zoom if self.snap is not None else 0
        return f"{self.NAME} · zoom {zoom}" if zoom else f"{self.NAME} · no zoom yet"

    def redraw(self) -> None:
        """Ask the plot for the scatter as it is now."""
        snap = self.snap
        if snap is None or snap.points is None or not self.x:
            return   # the back end has not gathered this view's data yet
        space = self.tuner.session.space
        x, y, maximize = self.x, self.y, snap.maximize
        # Running trials are drawn hollow whatever their value: their live objective changing must
        # not rebuild the picture.
        points = tuple(replace(p, objective=None) if p.status in ("running", "paused") else p
                       for p in snap.points)
        boxes = snap.boxes

        def drawer(fig: Any, width: int, height: int) -> Any:
            return draw_search(fig, space, points, boxes, x, y, width, height, maximize=maximize)

        self.plot.draw((points, boxes, x, y), drawer)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out what does not apply now."""
        snap = self.snap
        if action in ("next_pair", "prev_pair", "cycle_x", "cycle_y"):
            return True if len(self.pairs) > 1 else None
        if action == "zoom":
            return True if snap is not None and snap.count("done") >= 2 else None
        if action == "unzoom":
            return True if snap is not None and snap.zoom > 0 else None
        return True

    # -- keys ---------------------------------------------------------------------------------------

    def _pair(self, delta: int) -> None:
        if not self.pairs:
            return
        current = (self.x, self.y)
        i = self.pairs.index(current) if current in self.pairs else -1
        self.x, self.y = self.pairs[(i + delta) % len(self.pairs)]
        self.redraw()

    def action_next_pair(self) -> None:
        """The next pair of parameters in priority order."""
        self._pair(1)

    def action_prev_pair(self) -> None:
        """The previous pair."""
        self._pair(-1)

    def _cycle(self, axis: str) -> None:
        names = [p.name for p in self.tuner.session.space.by_priority()]
        other = self.y if axis == "x" else self.x
        current = self.x if axis == "x" else self.y
        i = names.index(current)
        for k in range(1, len(names)):
            cand = names[(i + k) % len(names)]
            if cand != other:
                setattr(self, axis, cand)
                break
        self.redraw()

    def action_cycle_x(self) -> None:
        """The next parameter on the x axis, in priority order."""
        self._cycle("x")

    def action_cycle_y(self) -> None:
        """The next parameter on the y axis, in priority order."""
        self._cycle("y")

    def action_zoom(self) -> None:
        """Zoom into the region of the best trials: a new box appears (asking first when too few finished)."""
        zoom_ask.zoom(self.tuner)

    def action_unzoom(self) -> None:
        """Undo the last zoom."""
        self.tuner.command(self.tuner.session.search.unzoom)
