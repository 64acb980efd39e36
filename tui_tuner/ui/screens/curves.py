"""The curves view (caviar): every trial's learning curve of one metric, overlaid, live.

The watched run (the main screen's focused run) is drawn on top in bold dots, the others as thin
lines; fork points, live changes and stops are marked on the curves and the best one is labelled.
Keys cycle the metric, toggle a log y axis, mark trials and draw only the marked ones, and move
the watch from curve to curve or to any trial by number.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual.binding import Binding

from tui_tuner.errors import StudyError
from tui_tuner.pictures.braille import BrailleFigure
from tui_tuner.pictures.plotting import Curves, draw_curves, pick_lines
from tui_tuner.ui.screens.dialogs import Prompt
from tui_tuner.ui.screens.picture import PictureScreen


def parse_trial(text: str) -> int:
    """A trial number as typed: 7, #7 or t0007."""
    s = text.strip().lstrip("#")
    s = s[1:] if s[:1] in ("t", "T") else s
    try:
        return int(s)
    except ValueError:
        raise StudyError(f"trial: must be a number like 7 or #7, got {text.strip()!r}") from None


class CurvesScreen(PictureScreen):
    """All learning curves in one chart."""

    VIEW = "curves"
    NAME = "Curves"
    FIGURE = BrailleFigure   # eight live curves through plotext cost a tenth of a core (pictures/braille.py)
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("m", "metric", "Metric"),
        Binding("l", "log_scale", "Log y"),
        Binding("space", "mark", "Mark"),
        Binding("a", "scope", "All/marked"),
        Binding("right_square_bracket", "next", "Next", key_display="]"),
        Binding("left_square_bracket", "prev", "Prev", key_display="["),
        Binding("g", "goto", "Go to #"),
        Binding("escape,c", "back", "Back", key_display="esc"),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
    ]

    def __init__(self, marked: set[int] | None = None) -> None:
        super().__init__(id="curves")
        # Shared with the main screen, so marks survive closing and reopening the view.
        self.marked: set[int] = marked if marked is not None else set()
        self.log_scale = False
        self.only_marked = False

    @property
    def curves(self) -> Curves | None:
        """The curves of the last snapshot (None until the back end has gathered them)."""
        return self.snap.curves if self.snap is not None else None

    @property
    def watched(self) -> int | None:
        """The watched trial: the main screen's focused run."""
        run = self.snap.focused if self.snap is not None else None
        return run.id if run is not None else None

    def title_prefix(self) -> str:
        """'Curves · watching #3 · 2 marked'."""
        parts = [self.NAME]
        if self.watched is not None:
            parts.append(f"watching #{self.watched}")
        if self.marked:
            parts.append(f"{len(self.marked)} marked")
        return " · ".join(parts)

    def redraw(self) -> None:
        """Ask the plot for the curves as they are now."""
        curves = self.curves
        if curves is None:
            return
        watched, marked = self.watched, frozenset(self.marked)
        log, only = self.log_scale, self.only_marked
        key = (curves, watched, marked, log, only)

        def drawer(fig: Any, width: int, height: int) -> Any:
            return draw_curves(fig, curves, width, height, watched=watched, marked=marked, only_marked=only,
                               log=log)

        self.plot.draw(key, drawer)

    def drawn_ids(self) -> list[int]:
        """Ids of the curves the view draws now, in id order."""
        curves = self.curves
        if curves is None:
            return []
        lines, _ = pick_lines(curves, self.watched, self.marked, only_marked=self.only_marked)
        return sorted(ln.id for ln in lines)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Grey out what does not apply now."""
        if action == "metric":
            return True if self.curves is not None and len(self.curves.metrics) > 1 else None
        if action in ("mark", "next", "prev"):
            return True if self.watched is not None or self.drawn_ids() else None
        if action == "scope":
            return True if self.marked or self.only_marked else None
        return True

    # -- keys ---------------------------------------------------------------------------------------

    def action_metric(self) -> None:
        """Draw the next metric the runs report."""
        curves = self.curves
        if curves is None or not curves.metrics:
            return
        names = list(curves.metrics)
        i = names.index(curves.metric) if curves.metric in names else -1
        backend = self.tuner.backend
        backend.curve_metric = names[(i + 1) % len(names)]
        self.new_frame()

    def action_log_scale(self) -> None:
        """Toggle a log y axis."""
        self.log_scale = not self.log_scale
        self.redraw()

    def action_mark(self) -> None:
        """Mark the watched trial, or unmark it."""
        tid = self.watched
        if tid is None:
            return
        if tid in self.marked:
            self.marked.discard(tid)
            if not self.marked:
                self.only_marked = False
        else:
            self.marked.add(tid)
        self.redraw()
        self.refresh_bindings()

    def action_scope(self) -> None:
        """Draw all trials, or only the marked ones (and the watched one)."""
        self.only_marked = not self.only_marked
        self.redraw()

    def _step(self, delta: int) -> None:
        ids = self.drawn_ids()
        if not ids:
            return
        current = self.watched
        if current in ids:
            nxt = ids[(ids.index(current) + delta) % len(ids)]
        else:
            nxt = ids[0] if delta > 0 else ids[-1]
        self.watch(nxt)

    def watch(self, trial_id: int) -> None:
        """Watch a trial: its curve is highlighted, and the main screen follows it."""
        self.tuner.backend.follow(trial_id)
        self.new_frame()

    def action_next(self) -> None:
        """Watch the next drawn curve (by trial number)."""
        self._step(1)

    def action_prev(self) -> None:
        """Watch the previous drawn curve."""
        self._step(-1)

    def action_goto(self) -> None:
        """Watch a trial by its number."""
        snap = self.snap

        async def apply(trial_id: int) -> str:
            if snap is None or snap.trial(trial_id) is None:
                raise StudyError(f"trial: no started trial #{trial_id}")
            self.watch(trial_id)
            return f"watching #{trial_id}"

        self.app.push_screen(Prompt("Go to trial", "Trial number:", "", apply, parse_trial,
                                    intro="Its curve is highlighted and the main screen follows it.",
                                    id="goto"), self.tuner.said)
