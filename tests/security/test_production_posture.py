"""What production serves a browser, against a real gunicorn in production mode (finding: production served
GraphiQL, which keeps bearer tokens in the browser, answered introspection, and sent its HTML pages with no
Content-Security-Policy).

GraphiQL and introspection are off unless enabled (NEXUS_GRAPHIQL, NEXUS_GRAPHQL_INTROSPECTION); every page, the
API docs and the admin among them, carries a Content-Security-Policy whose scripts are this site's files or inline
ones with the response's nonce."""

from __future__ import annotations

import re
import secrets

import pytest

from tests.security.conftest import call, start_web
from tests.service_urls import service_urls

pytestmark = pytest.mark.django_db(transaction=True)

HTML = {"Accept": "text/html", "Host": "127.0.0.1"}
INTROSPECTION = {"query": "{ __schema { types { name } } }"}


def production(**extra: str) -> dict[str, str]:
    return dict(
        NEXUS_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",  # plain http here; the redirect itself is tests/core/test_production_settings
        NEXUS_REQUEST_LOGGING="off",
        **service_urls(),  # production never starts the embedded servers
        **extra,
    )


@pytest.fixture(scope="module")
def production_web(django_db_setup, django_db_blocker):
    server = start_web(**production())
    try:
        yield server
    finally:
        server.stop()


def script_sources(policy: str) -> list[str]:
    directive = next(d.strip() for d in policy.split(";") if d.strip().startswith("script-src"))
    return directive.split()[1:]


def test_graphiql_and_introspection_are_off_in_production(production_web):
    status, _, body = call(production_web.port, "GET", "/graphql/", headers=HTML)
    assert status == 404 and body["errors"][0]["extensions"]["code"] == "not_found"
    status, _, body = call(production_web.port, "POST", "/graphql/", INTROSPECTION)
    assert "introspection has been disabled" in body["errors"][0]["message"]
    status, _, body = call(production_web.port, "POST", "/graphql/", {"query": "{ __typename polls { id } }"})
    assert status == 200 and body["data"]["__typename"] == "Query"  # ordinary queries still answer


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/", "/admin/login/", "/api/polls/", "/nowhere/"])
def test_every_page_carries_a_content_security_policy(production_web, path):
    status, headers, body = call(production_web.port, "GET", path, headers=HTML)
    assert status in (200, 404, 406)  # 406: production has no browsable API, the JSON list refuses text/html
    policy = headers["Content-Security-Policy"]
    assert script_sources(policy)[0] == "'self'" and "'unsafe-inline'" not in script_sources(policy)
    for directive in ("default-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in policy
    if isinstance(body, bytes) and b"<script" in body:  # every inline script carries this response's nonce
        nonces = [s for s in script_sources(policy) if s.startswith("'nonce-")]
        for tag in re.findall(rb"<script(?![^>]*\bsrc=)[^>]*>", body):
            assert nonces and f'nonce="{nonces[0][7:-1]}"'.encode() in tag, tag


def test_graphiql_can_be_turned_on_and_then_runs_under_the_policy(django_db_blocker):
    server = start_web(**production(NEXUS_GRAPHIQL="true"))
    try:
        status, headers, body = call(server.port, "GET", "/graphql/", headers=HTML)
        assert status == 200 and b"graphiql" in body.lower()
        nonce = next(s for s in script_sources(headers["Content-Security-Policy"]) if s.startswith("'nonce-"))
        assert f'<script nonce="{nonce[7:-1]}">'.encode() in body
        status, _, body = call(server.port, "POST", "/graphql/", INTROSPECTION)  # GraphiQL needs it: it follows
        assert status == 200 and body["data"]["__schema"]["types"]
    finally:
        server.stop()
