"""The run panel redraws what a new frame changed, not itself (App.run_test, no study)."""

from __future__ import annotations

from textual.app import App
from textual.widgets import Static

from tui_tuner.ui.model import RunView
from tui_tuner.ui.widgets.chart import Chart
from tui_tuner.ui.widgets.run import RunPanel


def view(step: int, **kw) -> RunView:
    return RunView(id=3, status="running", step=step, metrics=(("loss", 1.0 / step),), elapsed=2.0,
                   stalled=False, loss_name="loss", loss=tuple(1.0 / s for s in range(1, step + 1)),
                   objective_name="val_loss", objective=(), can_adjust=True, **kw)


class PanelApp(App):
    def compose(self):
        yield RunPanel(id="run")


async def test_a_new_frame_repaints_the_header_and_charts_not_the_panel():
    app = PanelApp()
    async with app.run_test(size=(60, 16)) as pilot:
        panel = app.query_one(RunPanel)
        panel.show(view(5), False)
        await pilot.pause()
        refreshed: list[str] = []
        for widget in (panel, *panel.query(Static), *panel.query(Chart)):
            real, name = widget.refresh, widget.id or type(widget).__name__

            def spy(*a, _real=real, _id=name, **kw):
                refreshed.append(_id)
                return _real(*a, **kw)
            widget.refresh = spy
        panel.show(view(6), False)                     # the next frame: one more step
        await pilot.pause()
        assert "run" not in refreshed                  # the panel (its border) is left alone
        assert {"run-header", "run-metrics", "chart-loss"} <= set(refreshed)
        assert "step 6" in str(panel.query_one("#run-header", Static).render())
        refreshed.clear()
        panel.show(view(6, parent=1, fork_step=40), False)   # a new title: the border is redrawn
        await pilot.pause()
        assert "run" in refreshed and panel.border_title == "Run #3 · fork of #1@40"
