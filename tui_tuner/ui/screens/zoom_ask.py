"""The zoom key (main screen and search view): zoom at once, or ask first when too few trials finished.

A zoom on fewer finished trials than `region.zoom_minimum` (twice the searched parameters) can shut
out the best region, so the app says how many it has and needs, and zooms only on y (forced).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui_tuner.errors import ZoomTooFewError
from tui_tuner.ui.screens.dialogs import Confirm

if TYPE_CHECKING:
    from tui_tuner.runtime.session import Session
    from tui_tuner.ui.tuner import Tuner


def _zoom_or_shortfall(session: Session) -> str | ZoomTooFewError:
    """Zoom (on the command thread); too few finished trials come back as the refusal, to ask about."""
    try:
        return session.search.zoom()
    except ZoomTooFewError as e:
        return e


def question(e: ZoomTooFewError) -> str:
    """'Zoom on 3 finished trials? A sound zoom needs 14 (twice the 7 searched parameters).'"""
    return (f"Zoom on {e.have} finished trial{'s' if e.have != 1 else ''}? A sound zoom needs {e.need} "
            f"(twice the {e.searched} searched parameters).")


def zoom(tuner: Tuner) -> None:
    """Zoom around the best finished trials; with too few of them, ask first (y: force, n/esc: cancel)."""
    # On the app, not the screen: leaving the search view must not cancel a zoom on its way.
    tuner.run_worker(_zoom(tuner), group="zoom")


async def _zoom(tuner: Tuner) -> None:
    session = tuner.session
    result = await tuner.call_or_say(_zoom_or_shortfall, session)
    if isinstance(result, ZoomTooFewError):
        if result.have < 2:
            # Not even a forced zoom can work on fewer than two: nothing to ask.
            tuner.say(result.message, title=result.title, severity="error")
            return

        def answered(answer: str | None) -> None:
            if answer == "yes":
                tuner.command(session.search.zoom, True)

        tuner.push_screen(Confirm("Zoom on few trials", question(result),
                                  hint="y: zoom anyway · n: cancel", id="zoom-confirm"), answered)
    elif result:
        tuner.say(result)
