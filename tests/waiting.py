"""Polling for the tests that drive real processes: wait until a condition holds, or fail saying what."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

# Every ceiling a test names is multiplied by this. A ceiling only bounds how long a failing test
# takes to say so; on a loaded box (4 workers on 2 cores, another suite beside them) the events come
# later, never wrong, so the bounds are generous: TUI_TUNER_TEST_CEILING=1 gives the written ones.
CEILING = float(os.environ.get("TUI_TUNER_TEST_CEILING", "3"))


def wait_for(cond: Callable[[], Any], timeout: float = 15.0, interval: float = 0.01, what: str | None = None) -> Any:
    """Poll cond() until it returns something truthy and return that; fail after timeout (x CEILING) seconds."""
    timeout *= CEILING
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
