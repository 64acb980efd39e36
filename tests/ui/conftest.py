"""Fixtures for the UI tests: a study directory whose runs are always killed at the end."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from study_runs import kill_runs
from ui_helpers import finished_study, make_app


@pytest.fixture
def study_dir(tmp_path: Path):
    """Where the test's study lives; any trainer still running afterwards is killed."""
    d = tmp_path / "study"
    yield d
    kill_runs(d)


@pytest.fixture
def snap_app(study_dir, tmp_path, monkeypatch):
    """make(build=finished_study, no_color=False): the app on the study `build` makes, its first
    frame already built (for the snapshot tests)."""
    studies = []

    def make(build=finished_study, *, no_color: bool = False):
        if no_color:
            monkeypatch.setenv("NO_COLOR", "1")
        study = build(study_dir, monkeypatch)
        studies.append(study)
        app = make_app(study, tmp_path, live=False, autostart=False)
        app.backend.compute_importance_now()
        app.backend.refresh(curve_budget=math.inf)
        return app

    yield make
    for s in studies:
        s.close()
