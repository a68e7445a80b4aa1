"""Waiting in tests: for a condition with a deadline, or until a moment has passed; never a fixed short sleep."""

from __future__ import annotations

import time
from datetime import datetime

from django.utils import timezone


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    """Poll ``predicate`` until it returns something true (returned), or fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(interval)


def sleep_until(moment: datetime, *, timeout: float = 60) -> None:
    """Return once the wall clock is past ``moment`` (an aware datetime), however slow or fast the machine."""
    wait_for(lambda: timezone.now() > moment, timeout, f"the clock to pass {moment:%H:%M:%S.%f}", interval=0.05)
