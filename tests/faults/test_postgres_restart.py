"""PostgreSQL restarted: the running app reconnects without a restart.

Against real servers: a PostgreSQL of the test's own (pgserver's binaries, 127.0.0.1:<spare port>), migrated;
gunicorn (2 workers) serving the uncached poll list and the health check from it; a request-log flusher writing
into it. The server is restarted (``pg_ctl restart -m fast``: every connection is cut). The same gunicorn workers
answer every later request (``CONN_HEALTH_CHECKS`` makes a worker test its persistent connection before the first
query of a request, and reconnect), and the flusher, which failed while the server was away, stores every
request's log."""

from __future__ import annotations

import os
import shutil

import psutil
import pytest

from .harness import (
    AGENT,
    ROOT,
    Flusher,
    Gunicorn,
    OwnPostgres,
    get,
    load,
    manage,
    needs_pgserver,
    shared_folder,
    wait_for,
)

pytestmark = [pytest.mark.services, pytest.mark.timeout(300), needs_pgserver]

DB = "nexus_faults"


@pytest.fixture
def postgres():
    folder = shared_folder("nexus-pg-")  # PostgreSQL runs as an unprivileged user: it must reach its folder
    server = OwnPostgres(folder)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _stored(postgres: OwnPostgres) -> int:
    conn = postgres.connect(DB)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM tracking_requestlog WHERE user_agent = %s", [AGENT])
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_postgres_restarted_the_running_app_reconnects(postgres, tmp_path):
    admin = postgres.connect()
    admin.cursor().execute(f"CREATE DATABASE {DB}")
    admin.close()
    env = {k: v for k, v in os.environ.items() if k != "NEXUS_DB_NAME"}
    env.update(
        DATABASE_URL=postgres.url(DB),
        NEXUS_CACHE_ENABLED="false",  # every poll list is read from PostgreSQL
        NEXUS_REQUEST_LOGGING="on",
        NEXUS_REQUEST_LOG_BUFFER_SECONDS="0.1",
        NEXUS_REQUEST_LOG_SPOOL_DIR=str(tmp_path / "spool"),
        DEBUG="false",
    )
    manage(env, "migrate", "--noinput", timeout=240)
    web = Gunicorn(root=ROOT, workers=2, env=env)
    flusher = Flusher(root=ROOT, env=env, interval=0.3)
    web.start()
    flusher.start()
    try:
        web.wait_healthy()
        before = load(web.port, 40, "/api/polls/")  # both workers hold a persistent connection now
        workers = sorted(p.pid for p in psutil.Process(web.proc.pid).children())
        old_postmaster = postgres.pid

        postgres.restart()
        assert postgres.pid != old_postmaster

        after = load(web.port, 60, "/api/polls/")
        assert before == [200] * 40
        assert after == [200] * 60, f"{len([s for s in after if s >= 500])} answers were 5xx after the restart"
        assert get(web.port, "/health/") == 200
        assert sorted(p.pid for p in psutil.Process(web.proc.pid).children()) == workers  # not restarted
        # The flusher lost its connection too, reconnected, and stored every request once.
        total = 40 + 60 + 1
        wait_for(lambda: _stored(postgres) >= total, 60, f"{total} request logs in the restarted database")
        assert _stored(postgres) == total
    finally:
        web.stop()
        flusher.stop()
