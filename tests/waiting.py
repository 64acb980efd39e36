"""Polling for the tests that drive real processes: wait until a condition holds, or fail saying what."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(cond: Callable[[], Any], timeout: float = 15.0, interval: float = 0.01, what: str | None = None) -> Any:
    """Poll cond() until it returns something truthy and return that; fail after timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or cond}")
