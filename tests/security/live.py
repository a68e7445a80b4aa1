"""A real gunicorn for the authentication and client-address attacks, and a small HTTP client to replay them.

The server runs on the test database (tests using it are ``django_db(transaction=True)``, so what a test creates
is committed and visible to the workers) and the same Redis: rate-limit windows and the request-log stream are
shared with this process, which resets them between tests (``tests/conftest.py``) and flushes the log.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

from nexus_lab.benchmark import HOST, Gunicorn, server_env

ROOT = Path(__file__).resolve().parents[2]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: dict[str, str] = field(default_factory=dict)

    def json(self):
        return json.loads(self.body)


@dataclass
class Live:
    server: Gunicorn

    @property
    def log(self) -> str:
        return self.server.log.read_text(errors="replace")

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body=None,
        body: bytes | str | None = None,
        content_type: str | None = None,
        client_ip: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request from 127.0.0.1. ``client_ip``: what a trusted proxy on this machine would have appended
        to X-Forwarded-For (it only counts where the server trusts a loopback proxy)."""
        sent = {"User-Agent": BROWSER, "Accept": "application/json"}
        if json_body is not None:
            body, content_type = json.dumps(json_body), "application/json"
        if content_type:
            sent["Content-Type"] = content_type
        if client_ip:
            sent["X-Forwarded-For"] = client_ip
        sent.update(headers or {})
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=30)
        try:
            conn.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=sent)
            response = conn.getresponse()
            cookies = SimpleCookie()
            for value in response.headers.get_all("Set-Cookie") or []:
                cookies.load(value)
            return Answer(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
                {name: morsel.value for name, morsel in cookies.items()},
            )
        finally:
            conn.close()

    def login(self, username: str, password: str, **kwargs) -> Answer:
        return self.call("POST", "/api/auth/token/", json_body={"username": username, "password": password}, **kwargs)

    def graphql(self, query: str, *, token: str | None = None, **kwargs) -> Answer:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.call("POST", "/graphql/", json_body={"query": query}, headers=headers, **kwargs)


@contextmanager
def live_server(**settings: str) -> Iterator[Live]:
    """gunicorn (2 sync workers, request logging on) with ``settings`` as environment variables."""
    env = server_env(NEXUS_REQUEST_LOGGING="on", ALLOWED_HOSTS="127.0.0.1,localhost", **settings)
    server = Gunicorn(root=ROOT, workers=2, env=env)
    server.start()
    try:
        server.wait_healthy()
        yield Live(server)
    finally:
        server.stop()


def token_for(user) -> str:
    """A real access token for ``user``, as a login would have given."""
    from rest_framework_simplejwt.tokens import RefreshToken

    return str(RefreshToken.for_user(user).access_token)


def logged(path_prefix: str, *, ips: list[str], expect: int, timeout: float = 20.0) -> list[tuple[str, str, str, int]]:
    """(ip, method, path, status) of the request-log rows of ``ips`` under ``path_prefix``, once ``expect`` are in.

    The workers hand their records to the Redis stream every 0.25 s; this flushes the stream into the table until
    the rows are there or the deadline passes (then the assertion that follows shows what did arrive).
    """
    from nexus_backend.tracking import flusher
    from nexus_backend.tracking.models import RequestLog

    deadline = time.monotonic() + timeout
    while True:
        flusher.flush()
        rows = list(
            RequestLog.objects.filter(path__startswith=path_prefix, ip_address__in=ips)
            .order_by("timestamp", "id")
            .values_list("ip_address", "method", "path", "status_code")
        )
        if len(rows) >= expect or time.monotonic() > deadline:
            return [(str(ip), method, path, status) for ip, method, path, status in rows]
        time.sleep(0.2)
