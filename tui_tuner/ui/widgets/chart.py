"""A multi-row block sparkline of one metric, sized to the widget, with its last, min and max values."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui_tuner.ui.format import finite, fmt_value, spark_rows


class Chart(Widget):
    """One metric's curve in unicode blocks: a label line, then the curve filling the rest."""

    DEFAULT_CSS = """
    Chart {
        height: 1fr;
        min-height: 2;
    }
    Chart > .chart--bar { color: $success; }
    Chart > .chart--label { color: $text-muted; }
    Chart > .chart--value { color: $text; text-style: bold; }
    Chart > .chart--mark { color: $warning; text-style: bold; }
    """
    COMPONENT_CLASSES = {"chart--bar", "chart--label", "chart--value", "chart--mark"}

    # What is drawn: assigning an equal value does nothing, a new one repaints (once per frame).
    metric: reactive[str] = reactive("")
    values: reactive[tuple[float, ...]] = reactive(())
    log_y: reactive[bool] = reactive(False)
    # Where a live change, a pause or a fork happened: (fraction of the width, glyph), on the top row.
    marks: reactive[tuple[tuple[float, str], ...]] = reactive(())

    def __init__(self, name: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.set_reactive(Chart.metric, name)

    _chart_styles: tuple[Style, Style, Style] | None = None

    def _styles(self) -> tuple[Style, Style, Style]:
        # Textual drops its component-style cache at every repaint (ten a second here); they change
        # only with the stylesheet (notify_style_update).
        if self._chart_styles is None:
            self._chart_styles = (self.get_component_rich_style("chart--label"),
                                  self.get_component_rich_style("chart--value"),
                                  self.get_component_rich_style("chart--bar"))
        return self._chart_styles

    def notify_style_update(self) -> None:
        """The stylesheet changed: the component styles are looked up again."""
        self._chart_styles = None
        super().notify_style_update()

    def show(self, metric: str, values: tuple[float, ...], log: bool,
             marks: tuple[tuple[float, str], ...] = ()) -> None:
        """Draw these values and marks (nothing happens when they are what is shown)."""
        self.metric, self.values, self.log_y, self.marks = metric, values, log, marks

    def render(self) -> Text:
        """The label line and the block rows."""
        width, height = self.size.width, self.size.height
        label_style, value_style, bar_style = self._styles()
        vals = finite(self.values)
        text = Text(no_wrap=True, overflow="crop")
        text.append(self.metric, label_style)
        if not vals:
            text.append("  no data yet", label_style)
            text.truncate(width)
            return text
        use_log = self.log_y and min(vals) > 0
        if self.log_y:
            # Right after the name: at 80 columns the end of this line is cut.
            text.append(" (log)" if use_log else " (log n/a)", label_style)
        text.append(" ")
        text.append(fmt_value(vals[-1]), value_style)
        text.append(f"  {fmt_value(min(vals))}..{fmt_value(max(vals))}", label_style)
        # The label must stay one line: a wrapped label would push the curve out of the widget.
        text.truncate(width)
        at = {min(int(frac * width), width - 1): glyph for frac, glyph in self.marks} if width > 0 else {}
        for i, row in enumerate(spark_rows(vals, width, max(height - 1, 1), log=use_log)):
            text.append("\n")
            if i or not at:
                text.append(row, bar_style)
                continue
            mark_style = self.get_component_rich_style("chart--mark")
            for col, cell in enumerate(row):
                glyph = at.get(col)
                text.append(glyph or cell, mark_style if glyph else bar_style)
        return text
