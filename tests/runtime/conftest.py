"""Fixtures shared by the runtime tests."""

from __future__ import annotations

import pytest
from runtime_helpers import Events, make_runner, open_study, toy_space


@pytest.fixture
def env(tmp_path):
    """(study, runner, events) on the toy space; every live run is killed at the end."""
    events = Events()
    study = open_study(tmp_path, toy_space(tmp_path, stall=300))
    runner = make_runner(study, events)
    yield study, runner, events
    runner.stop_timeout = runner.term_timeout = 0.0
    runner.commands.stop_all(timeout=5)
    study.close()
