"""The app's back end without a terminal: bounded frame rate, bounded curves, errors as TunerErrors."""

from __future__ import annotations

import threading
import time

import pytest
from ui_helpers import finished_study, make_backend, open_study, space_text
from waiting import wait_for

from tui_tuner.errors import SpaceError, StudyError, TunerError
from tui_tuner.ui.backend import CHART_POINTS
from tui_tuner.ui.format import bar, columns_by_step, fmt_short, resample, short_range, spark, spark_rows


def test_a_fast_trainer_gives_a_bounded_frame_rate_and_bounded_curves(study_dir, tmp_path):
    # delay 0: the trainer reports as fast as it can (thousands of steps a second).
    study = open_study(study_dir, space_text(delay=0.0))
    # Frames half a second apart at most often: far below what an unbounded view would build.
    backend = make_backend(study, tmp_path, frame=0.5)
    frames: list[tuple[float, str]] = []
    backend.on_snapshot = lambda: frames.append((time.monotonic(), threading.current_thread().name))
    try:
        backend.start()
        wait_for(lambda: (snap := backend.snapshot) and snap.focused and (snap.focused.step or 0) > 3000,
                 timeout=10.0, interval=0.05, what="the trainer to get past step 3000")
        starts: list[float] = []     # when each frame's build began (the rate is bounded there)
        build = backend.build
        backend.build = lambda **kw: (starts.append(time.monotonic()), build(**kw))[1]
        frames.clear()
        step0 = backend.snapshot.focused.step
        wait_for(lambda: len(frames) >= 4 and len(starts) >= 4, timeout=10.0, what="four frames")
        steps = backend.snapshot.focused.step - step0
        # Never one frame per report: builds begin at most one a `frame` apart, however fast the trainer
        # reports (measured over three gaps; a loaded machine only spreads them further).
        assert starts[3] - starts[0] >= 3 * 0.5 - 0.05, starts
        assert steps > 10 * len(frames), (steps, len(frames))
        # Frames are built on the view thread, never on the runner's poll thread.
        assert {name for _, name in frames} == {"tui-tuner-view"}
        snap = backend.snapshot
        assert len(snap.focused.loss) <= CHART_POINTS
        assert len(snap.cards[0].points) <= 2 * CHART_POINTS
        assert snap.focused.step > 3000
        # The strip's value is the trial's objective as the trials table shows it.
        card = snap.cards[0]
        assert card.value == next(r.objective for r in snap.trials if r.id == card.id)
    finally:
        backend.close(stop_runs=True, timeout=5)
        study.close()


def test_commands_raise_tuner_errors_the_app_can_show(study_dir, tmp_path, monkeypatch):
    study = open_study(study_dir, space_text())
    backend = make_backend(study, tmp_path, autostart=False)
    try:
        with pytest.raises(SpaceError, match=r"zoom needs at least \d+ finished trials .*, got 0"):
            backend.session.search.zoom()
        with pytest.raises(TunerError, match="nothing to unzoom"):
            backend.session.search.unzoom()
        with pytest.raises(StudyError, match="no finished trial"):
            backend.session.export(None, None)
        with pytest.raises(TunerError, match="not running"):
            backend.session.stop(99)
        with pytest.raises(SpaceError, match="stage must be"):
            backend.session.search.set_stage(7)
    finally:
        backend.close()
        study.close()


def test_snapshot_of_a_finished_study(study_dir, tmp_path, monkeypatch):
    study = finished_study(study_dir, monkeypatch)
    backend = make_backend(study, tmp_path, autostart=False)
    try:
        snap = backend.build(curve_budget=10.0)
        assert [t.id for t in snap.trials] == [9, 3, 7, 5, 1, 4, 2, 8, 6]
        assert snap.best_id == 9 and snap.focused.id == 9 and snap.focused.status == "done"
        assert snap.trial(9).lineage == "#3@200"
        assert [q.id for q in snap.queue] == [10, 11]
        assert [p.name for p in snap.params][:4] == ["lr", "momentum", "hidden", "layers"]
        assert snap.params[0].best == 0.01 and snap.params[0].range == "[0.001, 0.5]"
        assert all(t.curve for t in snap.trials)
        assert dict(snap.counts)["done"] == 8
        backend.order = "start"
        assert [t.id for t in backend.build().trials][0] == 1
    finally:
        backend.close()
        study.close()


@pytest.mark.parametrize(("value", "text"), [
    (0.0031, "3.1e-3"), (0.12, "0.12"), (1_000_000, "1e6"), (64, "64"), (True, "true"), (None, "-"),
    (0.999, "0.999"), (1.5e-8, "1.5e-8"), ("adam", "adam"),
])
def test_short_numbers(value, text):
    assert fmt_short(value) == text


def test_sparklines_and_bars():
    assert spark([], 5) == ""
    assert spark([1.0, 1.0], 4) == "▅▅▅▅"                 # flat: the middle, stretched to the width
    assert spark([3.0, 2.0, 1.0], 3) == "█▅▁"
    assert spark([float("nan"), 1.0, 2.0], 2) == "▁█"      # a diverged value is left out
    assert len(spark(list(range(1000)), 10)) == 10
    assert spark_rows([0.0, 1.0], 2, 2) == [" █", "▁█"]
    assert resample([1.0, 2.0], 4) == [1.0, 1.0, 2.0, 2.0]
    assert bar(0.5, 4) == "██··" and bar(1.0, 4) == "████" and bar(None) == ""
    # A shared step axis: a run at step 50 of 100 fills half the width, then nothing.
    assert columns_by_step([(10, 1.0), (50, 2.0)], 4, 100) == [1.0, 1.0, 2.0, None]
    assert short_range("= 0.9 (frozen)") == "=0.9 frozen" and short_range("= 2 (default)") == "=2"
    assert short_range("{16, 32}") == "{16,32}"


def test_stop_all_starts_nothing_more_from_the_queue(study_dir, tmp_path):
    # "Stop all and quit": a scheduler tick queued behind stop_all must not fill the freed slot.
    study = open_study(study_dir, space_text(parallel=1, budget=4))
    backend = make_backend(study, tmp_path)
    try:
        backend._tick()
        assert [t.id for t in study.active()] == [1]
        assert backend.session.stop_all(timeout=10)
        backend._tick()
        assert study.active() == [] and study.budget_used() == 1
    finally:
        backend.close(stop_runs=True, timeout=5)
        study.close()


def test_an_importance_failure_is_a_notice_and_a_log_line(study_dir, tmp_path, monkeypatch):
    import json

    import tui_tuner.search.importance as importance_module

    def broken(*args, **kwargs):
        raise ValueError("singular matrix")

    study = finished_study(study_dir, monkeypatch)
    monkeypatch.setattr(importance_module, "importance", broken)
    backend = make_backend(study, tmp_path, autostart=False)
    try:
        backend.compute_importance_now()
        (notice,) = backend.take_notices()
        assert notice[0] == "Importance" and notice[2] == "warning"
        assert "ValueError: singular matrix" in notice[1]
        assert all(p.importance is None for p in backend.build().params)   # the column stays empty
        (line,) = [json.loads(x) for x in (study.dir / "tuner.log").read_text().splitlines()]
        assert line["title"] == "Importance" and "singular matrix" in line["message"]
    finally:
        backend.close()
        study.close()


def test_a_run_focused_before_the_frame_holds_it_is_shown_by_the_next_frame(study_dir, tmp_path, monkeypatch):
    # A fork focuses its child as the child starts; a frame whose read of the study came a moment
    # earlier does not hold the child yet. That frame showed another run and the child's focus was
    # lost for good (the fork test saw the parent in the header, under load).
    study = finished_study(study_dir, monkeypatch)
    backend = make_backend(study, tmp_path, autostart=False)
    try:
        backend.follow(10)                                   # still queued: not in the frame's read
        assert backend.build().focused.id == 9               # this frame shows the best run
        study.mark_started(10, 0)
        backend._view_of.study_stale = True                  # what the start's event does
        assert backend.build().focused.id == 10 and backend.focus == 10
    finally:
        backend.close()
        study.close()


def test_the_screen_changes_focus_and_order_through_methods(study_dir, tmp_path, monkeypatch):
    study = finished_study(study_dir, monkeypatch)
    backend = make_backend(study, tmp_path, autostart=False)
    try:
        backend.follow(2)
        backend.toggle_order()
        snap = backend.build()
        assert snap.focused.id == 2 and snap.order == "start" and backend.focus == 2
        with pytest.raises(ValueError, match="order must be one of"):
            backend.set_order("worst")
    finally:
        backend.close()
        study.close()
