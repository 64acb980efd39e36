"""Fixtures for the UI tests: a study directory whose runs are always killed at the end."""

from __future__ import annotations

from pathlib import Path

import pytest
from study_runs import kill_runs


@pytest.fixture
def study_dir(tmp_path: Path):
    """Where the test's study lives; any trainer still running afterwards is killed."""
    d = tmp_path / "study"
    yield d
    kill_runs(d)
