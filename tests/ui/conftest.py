"""Fixtures for the UI tests: a study directory whose runs are always killed at the end."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ui_helpers import kill_runs  # noqa: E402


@pytest.fixture
def study_dir(tmp_path: Path):
    """Where the test's study lives; any trainer still running afterwards is killed."""
    d = tmp_path / "study"
    yield d
    kill_runs(d)
