"""A run's elapsed time stops while it is paused: paused time is counted from the paused/resumed
events (with the times the trainer wrote them, so a replay after a restart counts them right)."""

from __future__ import annotations

import re

import pytest
from ui_helpers import header, make_app, open_study, piloting, space_text, wait_until

from tui_tuner.ui.pauses import PausedTime


@pytest.mark.parametrize(("events", "now", "paused"), [
    ([], 100.0, 0.0),
    ([("paused", 10.0)], 15.0, 5.0),                                   # open pause, up to now
    ([("paused", 10.0), ("resumed", 14.0)], 50.0, 4.0),
    ([("paused", 10.0), ("resumed", 14.0), ("paused", 20.0), ("resumed", 21.5)], 50.0, 5.5),
    ([("paused", 10.0), ("ended", 12.0)], 50.0, 2.0),                  # stopped while paused
    ([("resumed", 14.0)], 50.0, 0.0),                                  # a resume without a pause
    ([("paused", 10.0), ("paused", 12.0), ("resumed", 13.0)], 50.0, 3.0),   # a repeated pause event
    ([("metrics", 10.0), ("started", 11.0)], 50.0, 0.0),               # other events change nothing
])
def test_paused_time_from_events(events, now, paused):
    clock = PausedTime()
    for kind, t in events:
        clock.event(7, kind, t)
    assert clock.paused(7, now) == pytest.approx(paused)
    assert clock.paused(8, now) == 0.0
    assert clock.running_time(7, 60.0, now) == pytest.approx(60.0 - paused)
    assert clock.running_time(7, None, now) is None


def shown_seconds(app) -> int | None:
    """The elapsed time the run panel shows, in seconds (42s, 3m07s)."""
    m = re.search(r"\s(?:(\d+)m)?(\d+)s(?:\s|$)", header(app))
    return None if m is None else int(m.group(1) or 0) * 60 + int(m.group(2))


async def test_elapsed_time_stops_while_the_run_is_paused(study_dir, tmp_path):
    app = make_app(open_study(study_dir, space_text(delay=0.02)), tmp_path)
    async with piloting(app) as pilot:
        await wait_until(pilot, lambda: "running" in header(app) and (shown_seconds(app) or 0) >= 1, 20,
                         "the run to have run a second")
        await pilot.press("p")
        await wait_until(pilot, lambda: "paused" in header(app), 10, "the run to show paused")
        at_pause = shown_seconds(app)
        await pilot.pause(3.0)
        assert shown_seconds(app) <= at_pause + 1, header(app)   # a wall clock would show 3s more
        await pilot.press("p")
        await wait_until(pilot, lambda: "running" in header(app), 10, "the run to resume")
        await wait_until(pilot, lambda: shown_seconds(app) >= at_pause + 2, 10, "the clock to go on")
