"""Active runs side by side, their objective curves on one shared scale, so the best curve stands out."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui_tuner.ui.format import bounds_of, fmt_value, spark_rows_by_step
from tui_tuner.ui.model import Card

CARD_MIN = 12


class RunStrip(Widget):
    """One card per running or paused trial: id, latest objective, and its curve."""

    DEFAULT_CSS = """
    RunStrip { height: 4; }
    RunStrip > .strip--bar { color: $success; }
    RunStrip > .strip--paused { color: $warning; }
    RunStrip > .strip--focus { text-style: bold reverse; }
    RunStrip > .strip--best { color: $accent; text-style: bold; }
    RunStrip > .strip--label { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"strip--bar", "strip--paused", "strip--focus", "strip--best", "strip--label"}

    # What is drawn: assigning an equal value does nothing, a new one repaints (once per frame).
    cards: reactive[tuple[Card, ...]] = reactive(())
    focus_id: reactive[int | None] = reactive(None)
    higher_better: reactive[bool] = reactive(False)
    log_y: reactive[bool] = reactive(False)

    _strip_styles: dict[str, Style] | None = None

    def _styles(self) -> dict[str, Style]:
        # Textual drops its component-style cache at every repaint: recomputing five styles was a
        # third of a render. They change only with the stylesheet (notify_style_update).
        if self._strip_styles is None:
            self._strip_styles = {k: self.get_component_rich_style(f"strip--{k}")
                                  for k in ("bar", "paused", "focus", "best", "label")}
        return self._strip_styles

    def notify_style_update(self) -> None:
        """The stylesheet changed: the component styles are looked up again."""
        self._strip_styles = None
        super().notify_style_update()

    def show(self, cards: tuple[Card, ...], focus_id: int | None, maximize: bool, log: bool) -> None:
        """Draw these cards (nothing happens when they are what is shown)."""
        self.cards, self.focus_id, self.higher_better, self.log_y = cards, focus_id, maximize, log

    def watch_cards(self, cards: tuple[Card, ...]) -> None:
        """Side by side is for comparing: the strip shows from two runs on."""
        self.display = len(cards) >= 2

    def render(self) -> Text:
        """Cards left to right; those that do not fit are counted at the end."""
        width, height = self.size.width, self.size.height
        cards = self.cards
        if not cards or width <= 0:
            return Text("")
        fit = max(1, min(len(cards), width // CARD_MIN))
        shown, hidden = cards[:fit], len(cards) - fit
        w = width // fit
        rows_h = max(height - 1, 1)
        bounds = bounds_of([[v for _, v in c.points] for c in shown])
        step_max = max((c.points[-1][0] for c in shown if c.points), default=0)
        use_log = self.log_y and bounds is not None and bounds[0] > 0
        values = [c.value for c in shown if c.value is not None]
        lead = (max(values) if self.higher_better else min(values)) if values else None
        styles = self._styles()

        lines = [Text(no_wrap=True, overflow="crop") for _ in range(rows_h + 1)]
        for i, c in enumerate(shown):
            cw = w if i < fit - 1 else width - w * (fit - 1)
            cw_inner = max(cw - 1, 1)
            mark = "▶" if c.id == self.focus_id else " "
            head = f"{mark}#{c.id}{' ‖' if c.status == 'paused' else ''} {fmt_value(c.value)}"
            if c.value is not None and c.value == lead and len(shown) > 1:
                head += " ★"
            head_style = styles["focus"] if c.id == self.focus_id else (
                styles["best"] if c.value == lead else styles["label"])
            lines[0].append(head[:cw_inner].ljust(cw_inner), head_style)
            lines[0].append(" ")
            bar = styles["paused"] if c.status == "paused" else styles["bar"]
            # One step axis for every card: a younger run's curve is shorter, not stretched.
            rows = spark_rows_by_step(c.points, cw_inner, rows_h, step_max, log=use_log, bounds=bounds)
            for r, row in enumerate(rows):
                lines[r + 1].append(row, bar)
                lines[r + 1].append(" ")
        if hidden:
            lines[0].append(f" +{hidden}", styles["label"])
        out = Text("\n", no_wrap=True, overflow="crop").join(lines)
        return out
