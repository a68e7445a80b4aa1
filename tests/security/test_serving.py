"""Slow clients do not stop the server (finding: gunicorn's sync workers faced clients directly, and two sockets
sending partial headers made /health/ time out; four parallel sign-ups, each a password hash, slowed a cached GET
from 3 ms to 0.4 s).

gunicorn.conf.py runs gthread workers: a request still arriving, or one waiting on a hash, holds one thread, and
the others keep answering. The same attack against the old sync configuration shows the test can fail. In compose,
nginx buffers requests before gunicorn sees any (tests/security/test_compose.py)."""

from __future__ import annotations

import ast
import contextlib
import http.client
import socket

import pytest

from tests.security.conftest import ROOT, call, start_web

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_CLIENTS = 6  # three times what stopped the sync server, well under workers * threads


@contextlib.contextmanager
def slow_clients(port: int, count: int, *, bodies: bool = True):
    """``count`` connections that send half a request (headers, or with ``bodies`` every other one headers and part
    of a body) and then nothing."""
    socks = []
    try:
        for n in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if n % 2 == 0 or not bodies:
                sock.sendall(b"GET /health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            else:
                sock.sendall(
                    b"POST /api/auth/register/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 200\r\n\r\n{"username": "slow'
                )
            socks.append(sock)
        yield
    finally:
        for sock in socks:
            sock.close()


def health_answers(port: int, timeout: float) -> bool:
    try:
        status, _, _ = call(port, "GET", "/health/", timeout=timeout)
    except (TimeoutError, OSError, http.client.HTTPException):
        return False
    return status in (200, 503)  # answered (503: a backing service is down, still an answer)


def test_half_sent_requests_do_not_stop_health_from_answering(web):
    with slow_clients(web.port, SLOW_CLIENTS):
        assert all(health_answers(web.port, timeout=10) for _ in range(5))


def test_the_same_attack_stops_the_old_sync_configuration(django_db_blocker):
    """Proves the test above can fail: a sync worker held by a slow socket answers nobody else. One worker, so the
    outcome does not depend on how the kernel spreads the sockets between workers (with two, a busy machine once
    left a worker free and /health/ answered)."""
    from nexus_lab.benchmark import Gunicorn

    server = start_web()
    server.stop()  # only for its env; the sync server below is the one attacked
    sync = Gunicorn(root=ROOT, workers=1, env=server.env, as_deployed=False)
    sync.start()
    try:
        sync.wait_healthy()
        with slow_clients(sync.port, 16, bodies=False):
            assert not health_answers(sync.port, timeout=3)
    finally:
        sync.stop()


def test_gunicorn_runs_threads_with_timeouts():
    """Password hashing (PBKDF2 in C, GIL released) holds one thread of a worker, not the worker."""
    tree = ast.parse((ROOT / "gunicorn.conf.py").read_text())  # read, not run: running it sets up metrics
    conf = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    assert conf["worker_class"] == "gthread" and conf["threads"] >= 4
    assert 0 < conf["timeout"] <= 60 and 0 < conf["keepalive"] <= 15
    assert conf["limit_request_fields"] <= 100 and conf["limit_request_line"] <= 8190
