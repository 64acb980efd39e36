"""The main screen's hand-move and auto-k keys (mixed into MainScreen): lr ×0.5 / ×2 and "train longer"
on the focused run, and k fixed by hand or back to auto. Each is one session command, so the
autopilot and headless mode use the same operations; the screen only picks the run. And its search
keys: sample, zoom, unzoom, stage (session.search)."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding

from tui_tuner.ui.screens import main_dialogs, zoom_ask

BINDINGS = [
    Binding("less_than_sign", "lr_half", "lr ×0.5", key_display="<"),
    Binding("greater_than_sign", "lr_double", "lr ×2", key_display=">"),
    Binding("L", "train_longer", "Train longer"),
    Binding("k", "toggle_k", "k auto/fixed (+/-)"),
    Binding("plus", "k_up", "k +1", key_display="+", show=False),
    Binding("minus", "k_down", "k -1", key_display="-", show=False),
]
RUN_ACTIONS = ("lr_half", "lr_double", "train_longer")   # need a focused run that takes live changes


class HandMoveKeys:
    """The actions behind BINDINGS; `focused_run` and `tuner` are MainScreen's."""

    focused_run: Any
    tuner: Any

    def hand_move_allowed(self, action: str) -> bool | None:
        """check_action's answer for these keys (None greys the key; no answer for other actions)."""
        run = self.focused_run
        return True if run is not None and run.active and run.can_adjust else None

    def _on_run(self, name: str, *args: Any) -> None:
        run = self.focused_run
        if run is not None:
            self.tuner.command(getattr(self.tuner.backend.session, name), run.id, *args)

    def action_lr_half(self) -> None:
        """The focused run's learning rate ×0.5, without the form."""
        self._on_run("scale_lr", 0.5)

    def action_lr_double(self) -> None:
        """The focused run's learning rate ×2, without the form."""
        self._on_run("scale_lr", 2.0)

    def action_train_longer(self) -> None:
        """Raise the focused run's step limit (its trainer reads trainer.max_steps)."""
        self._on_run("train_longer")

    def action_toggle_k(self) -> None:
        """Fix k where auto-k has it, or return to auto."""
        self.tuner.command(self.tuner.session.toggle_k)

    def action_k_up(self) -> None:
        """Fix k one higher."""
        self.tuner.command(self.tuner.session.bump_k, 1)

    def action_k_down(self) -> None:
        """Fix k one lower."""
        self.tuner.command(self.tuner.session.bump_k, -1)


class SearchKeys:
    """The search keys' actions (the bindings are MainScreen's: n, z, Z, t)."""

    tuner: Any

    def action_sample(self) -> None:
        """Sample N more settings into the queue."""
        main_dialogs.sample(self)

    def action_zoom(self) -> None:
        """Zoom the search into the region of the best trials (asking first when too few finished)."""
        zoom_ask.zoom(self.tuner)

    def action_unzoom(self) -> None:
        """Undo the last zoom."""
        self.tuner.command(self.tuner.session.search.unzoom)

    def action_stage(self) -> None:
        """Change the priority stage: search tiers <= T."""
        main_dialogs.stage(self)
