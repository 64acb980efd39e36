"""The commands on what the study will run next, rather than on runs: the queue (sample, drop, move,
edit) and the search region (zoom, unzoom, stage, freeze, through study/moves.py: the same moves the
scheduler makes). A part of the session (`session.search`), given the study and the scheduler."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tui_tuner.errors import StudyError
from tui_tuner.formatting import short_value
from tui_tuner.runtime.scheduler import Scheduler
from tui_tuner.study import moves
from tui_tuner.study import settings as study_settings
from tui_tuner.study.study import Study


class SearchCommands:
    """The queue and the search region of one open study. `autostart()` says whether the session
    starts queued trials by itself (then asking for settings is asking for them to run)."""

    def __init__(self, study: Study, scheduler: Scheduler, autostart: Callable[[], bool]) -> None:
        self.study = study
        self.scheduler = scheduler
        self._autostart = autostart

    # -- the queue ------------------------------------------------------------------------------

    def sample(self, n: int) -> str:
        """Queue n random settings from the current search state.

        Asking for more trials is asking for them to run: when the budget would not reach them, the
        budget grows to cover the queue, and the study keeps the new budget.
        """
        trials = self.study.sample(n)
        msg = f"queued {len(trials)} setting(s)"
        if self._autostart():
            sched = self.scheduler
            need = self.study.budget_used() + len(self.study.queue())
            if need > sched.budget:
                sched.budget = need
                if not self.study.readonly:
                    study_settings.remember(self.study, "budget", need)
                msg += f"; budget raised to {need} so they run"
        return msg

    def drop(self, trial_id: int) -> str:
        """Remove a queued setting."""
        self.study.drop(trial_id)
        return f"dropped #{trial_id}"

    def move(self, trial_id: int, delta: int) -> None:
        """Move a queued setting up (negative) or down."""
        self.study.move(trial_id, delta)

    def edit(self, trial_id: int, changes: Mapping[str, Any]) -> str:
        """Change settings of a queued trial."""
        if not changes:
            raise StudyError("nothing changed")
        self.study.edit(trial_id, dict(changes))
        return f"#{trial_id}: " + ", ".join(f"{k} = {short_value(v)}" for k, v in changes.items())

    # -- the search region ----------------------------------------------------------------------

    def zoom(self, force: bool = False) -> str:
        """Narrow the search around the best done trials, with the scheduler's zoom settings.

        Too few done trials raise ZoomTooFewError (its numbers let the app ask) unless `force`.
        """
        sched = self.scheduler
        return moves.zoom(self.study, top=sched.zoom_top, margin=sched.zoom_margin, force=force)

    def unzoom(self) -> str:
        """Undo the last zoom."""
        return moves.unzoom(self.study)

    def set_stage(self, stage: int) -> str:
        """Search tiers <= stage."""
        return moves.set_stage(self.study, stage)

    def toggle_freeze(self, name: str) -> str:
        """Freeze a parameter at the best trial's value, or search it again."""
        return moves.toggle_freeze(self.study, name)
