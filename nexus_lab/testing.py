"""Test isolation for request tracking (used by ``tests/conftest.py``).

Rate-limit windows live in Redis and the block list is cached in-process, so a test that logs in five times or
blocks an address would otherwise change the answers the next test gets. The block list is reset to "empty and
loaded", which is what a test's database holds, so it costs no query (tests that count queries stay exact).
Request records the test process buffered go to the test database's own stream (its key holds the database
name) and are dropped.
"""

from __future__ import annotations

import contextlib

import redis

from nexus_backend.tracking.blocklist import BLOCKLIST
from nexus_backend.tracking.recorder import RECORDER
from nexus_backend.tracking.stream import lost_key, stream_key
from nexus_backend.tracking.throttles import reset_rate_limits


def reset_tracking_state() -> None:
    reset_rate_limits()
    RECORDER.poll_blocklist(force=True)  # so the tracking thread's next poll sees no change
    BLOCKLIST.reset_empty()  # every test starts with an empty BlockedIP table
    with contextlib.suppress(redis.RedisError, OSError):
        RECORDER.flush_buffer()
        RECORDER.client().delete(stream_key(), lost_key())
