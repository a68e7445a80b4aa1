"""Fault injection for the fault tests (``tests/faults``): does nothing unless ``NEXUS_FAULT_PAUSE_AT`` is set.

``NEXUS_FAULT_PAUSE_AT=<point>`` makes the process that reaches :func:`pause_point` ``<point>`` stop there until
it is killed, so a test can SIGKILL a worker at an exact moment (e.g. ``flush-after-commit``: the request logs
are committed, the Redis stream entries not yet deleted, the task not yet acknowledged). With
``NEXUS_FAULT_PIDFILE`` the first process to arrive writes its pid there and pauses; later arrivals (the
redelivered task) pass, so the test sees the task finish after the kill."""

from __future__ import annotations

import logging
import os
import time

logger = logging.getLogger(__name__)


def pause_point(name: str) -> None:
    if os.environ.get("NEXUS_FAULT_PAUSE_AT") != name:
        return
    pidfile = os.environ.get("NEXUS_FAULT_PIDFILE")
    if pidfile:
        try:
            fd = os.open(pidfile, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # paused once already
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    logger.warning("fault injection: pid %s paused at %r until it is killed", os.getpid(), name)
    while True:
        time.sleep(3600)
