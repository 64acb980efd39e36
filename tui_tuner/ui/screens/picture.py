"""What the two picture views share: a title line, the plot, a legend line and the footer.

A view is a full screen over the main one. While it is open the back end gathers its data
(`Backend.view`), the main screen hands each snapshot to it instead of redrawing itself under it,
and the plot is rebuilt off the loop at a bounded rate (PicturePlot).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui_tuner.core.plotting import Picture
from tui_tuner.core.printable import printable
from tui_tuner.ui.model import Snapshot
from tui_tuner.ui.widgets.plots import PicturePlot

if TYPE_CHECKING:
    from tui_tuner.ui.app import TunerApp


def legend_line(picture: Picture) -> Text:
    """The legend: each glyph in bold, then what it stands for."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, (glyph, what) in enumerate(picture.legend):
        if i:
            text.append("  ")
        text.append(glyph, style="bold")
        text.append(f" {what}")
    return text


class PictureScreen(Screen):
    """A picture of the study, redrawn from each snapshot; esc goes back to the main screen."""

    CSS_PATH = "pictures.tcss"
    VIEW: ClassVar[str] = ""
    NAME: ClassVar[str] = ""
    FIGURE: ClassVar[Callable[[], Any] | None] = None   # the plot's figure (None: plotext's)
    BINDINGS: ClassVar[list[Binding]] = [
        Binding("escape", "back", "Back"),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="picture")
        self.snap: Snapshot | None = None
        self.frames = 0
        self._binding_state: Any = None

    @property
    def tuner(self) -> TunerApp:
        """The app (typed)."""
        return self.app  # type: ignore[return-value]

    @property
    def plot(self) -> PicturePlot:
        """The plot widget."""
        return self.query_one(PicturePlot)

    def compose(self) -> ComposeResult:
        """Title line, plot, legend line, footer."""
        yield Static("", id="picture-title", markup=False)
        yield PicturePlot(id="picture-plot", figure=self.FIGURE() if self.FIGURE is not None else None)
        yield Static("", id="picture-legend", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Ask the back end for this view's data, and draw what there is now."""
        self.tuner.backend.view = self.VIEW
        snap = self.tuner.main.snap
        if snap is not None:
            self.show(snap)
        self.new_frame()

    def new_frame(self) -> None:
        """Ask for a snapshot with this view's data (what it shows changed)."""
        if self.tuner.live:
            self.tuner.redraw_soon()
        else:
            # A still app (no back-end threads): build the frame here; it arrives as any other.
            self.tuner.backend.refresh(curve_budget=math.inf)

    def on_unmount(self) -> None:
        """Stop gathering this view's data; the next frame is the main screen's, whole again."""
        backend = self.tuner.backend
        if backend.view == self.VIEW:
            backend.view = None
            if self.tuner.live:
                self.tuner.redraw_soon()
            elif backend.snapshot is not None and backend.snapshot.view is not None and self.tuner.main.is_mounted:
                # A still app builds no frame of its own: build the main screen's (not while it quits).
                backend.refresh(curve_budget=math.inf)

    def show(self, snap: Snapshot) -> None:
        """Draw a snapshot (the plot is rebuilt only when what it shows changed)."""
        self.snap = snap
        self.frames += 1
        self.redraw()
        state = self.bindings_key()
        if state != self._binding_state:
            self._binding_state = state
            self.refresh_bindings()

    def bindings_key(self) -> Any:
        """Which keys apply now: the footer is re-checked (recomposed) only when that changes."""
        return tuple(self.check_action(b.action, ()) for b in self.BINDINGS)

    def redraw(self) -> None:
        """Hand the plot what to draw now."""
        raise NotImplementedError

    def title_prefix(self) -> str:
        """What the title line starts with (the view's state)."""
        return self.NAME

    @on(PicturePlot.Drawn)
    def _drawn(self, event: PicturePlot.Drawn) -> None:
        pic = event.picture
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(self.title_prefix(), style="bold")
        title.append(f" · {printable(pic.title)}")
        if pic.note:
            title.append(f" · {printable(pic.note)}", style="dim")
        self.query_one("#picture-title", Static).update(title, layout=False)
        self.query_one("#picture-legend", Static).update(legend_line(pic), layout=False)

    def action_back(self) -> None:
        """Back to the main screen."""
        self.app.pop_screen()

    def action_help(self) -> None:
        """This view's keys."""
        from tui_tuner.ui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen([(f"{self.NAME} view", list(self.BINDINGS)),
                                         ("Anywhere", [Binding("ctrl+q", "quit", "Quit")])]))

    def say(self, message: str, **kw: Any) -> None:
        """Tell the user something."""
        self.tuner.say(message, **kw)
