"""Waiting in tests: for a condition with a deadline, or until a moment has passed; never a fixed short sleep."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from nexus_lab.notebooks.workers import wait_for  # the one implementation, shared with the notebooks

__all__ = ["sleep_until", "wait_for"]


def sleep_until(moment: datetime, *, timeout: float = 60) -> None:
    """Return once the wall clock is past ``moment`` (an aware datetime), however slow or fast the machine."""
    wait_for(lambda: timezone.now() > moment, timeout, f"the clock to pass {moment:%H:%M:%S.%f}", interval=0.05)
