"""Oversized bodies get 413, malformed ones 400/415, always as JSON, on the REST API and on /graphql/.

The first tests go over real HTTP to a gunicorn of their own (NEXUS_MAX_BODY_BYTES=4096): the 413 must come
from the declared Content-Length, before the body is read, so a client announcing 50 MB and sending nothing
is answered at once. The rest run in-process.
"""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from nexus_lab.management.commands.bench import Gunicorn

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 4096
TOO_LARGE = {"code": "request_too_large"}


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        name = connection.settings_dict["NAME"]  # the test database, as the other gunicorn tests use
    env = dict(os.environ, NEXUS_DB_NAME=name, NEXUS_MAX_BODY_BYTES=str(LIMIT), DEBUG="false")
    server = Gunicorn(root=ROOT, workers=1, env=env)
    server.start()
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


def send(port: int, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def graphql_body(size: int) -> bytes:
    """A valid GraphQL request of exactly ``size`` bytes (the query padded with spaces)."""
    body = json.dumps({"query": "{ __typename }"}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


@pytest.mark.parametrize("path", ["/api/polls/", "/api/auth/register/", "/graphql/"])
def test_a_declared_huge_body_is_refused_before_it_is_sent(web, path):
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    try:
        # Headers only: a server that waited for the 50 MB would time out here, not answer.
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", "50000000")
        conn.endheaders()
        response = conn.getresponse()
        status, content_type, payload = response.status, response.getheader("Content-Type"), json.loads(response.read())
    finally:
        conn.close()
    assert (status, content_type, payload["code"]) == (413, "application/json", "request_too_large")
    assert payload["detail"] == "The request body (50,000,000 bytes) is larger than the limit of 4,096 bytes."


def test_a_body_at_the_limit_passes_and_one_byte_more_is_413(web):
    assert send(web.port, "/graphql/", graphql_body(LIMIT)) == (200, {"data": {"__typename": "Query"}})
    status, payload = send(web.port, "/graphql/", graphql_body(LIMIT + 1))
    assert status == 413 and payload.items() >= TOO_LARGE.items()
    status, payload = send(web.port, "/api/auth/register/", b'{"username": "' + b"x" * LIMIT + b'"}')
    assert status == 413 and payload.items() >= TOO_LARGE.items()


def test_malformed_bodies_over_http_are_json_400s(web):
    status, payload = send(web.port, "/api/auth/register/", b'{"username": ')
    assert status == 400 and payload["code"] == "parse_error"
    status, payload = send(web.port, "/graphql/", b'{"query": "\xff"}')
    assert (status, payload["errors"][0]["extensions"]["code"]) == (400, "bad_request")


# ---------------------------------------------------------------- in-process


@pytest.fixture
def small_limit(settings):
    settings.NEXUS_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    return 100


@pytest.mark.parametrize("path", ["/api/polls/", "/api/auth/token/", "/graphql/", "/no/such/path/"])
def test_the_limit_comes_from_settings_and_answers_every_path(db, small_limit, path):
    response = Client().post(path, "x" * 101, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {
        "detail": "The request body (101 bytes) is larger than the limit of 100 bytes.",
        "code": "request_too_large",
        "request_id": response["X-Request-ID"],
    }


def test_a_body_that_outgrows_the_upload_limit_while_read_is_413(db, settings):
    # An operator who sets DATA_UPLOAD_MAX_MEMORY_SIZE lower: Django raises RequestDataTooBig while reading
    # request.body (the GraphQL view does), which is answered 413 too, not a generic 400.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    response = Client().post("/graphql/", json.dumps({"query": "{ __typename }"}), content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


def test_a_content_length_that_is_not_a_number_is_400(db):
    response = Client().post("/api/polls/", "{}", content_type="application/json", CONTENT_LENGTH="12abc")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Content-Length must be a whole number of bytes, got '12abc'.",
        "code": "bad_request",
        "request_id": response["X-Request-ID"],
    }


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"username": "a", ', "application/json", 400, "parse_error"),  # malformed JSON
        (b'{"username": "\xff\xfe"}', "application/json", 400, "parse_error"),  # invalid UTF-8
        (b'["a", "b"]', "application/json", 400, "invalid"),  # JSON, but not an object
        (b"username=a&password=b", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"hello", "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_malformed_rest_bodies_are_json_errors(db, body, content_type, status, code):
    response = Client().post("/api/auth/register/", body, content_type=content_type)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"query": "{ polls { id } ', "application/json", "Unable to parse request body as JSON"),
        (b'{"query": "\xff\xfe"}', "application/json", "The request body is not valid UTF-8."),
        (b'{"query": 5}', "application/json", "The GraphQL operation's `query` must be a string or null, if provided."),
    ],
)
def test_malformed_graphql_bodies_are_json_errors(db, body, content_type, message):
    response = Client().post("/graphql/", body, content_type=content_type)
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": message, "extensions": {"code": "bad_request"}}]}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_graphql_bodies_that_are_not_json_are_415_before_the_view(db, content_type):
    response = Client().post("/graphql/", b"{ polls { id } }", content_type=content_type)
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["code"] == "unsupported_media_type"


def test_a_post_with_no_body_and_no_json_type_is_415_before_the_login(db):
    """A page can make its visitors' browsers POST an empty body cross-site: it must not count as a login attempt."""
    response = Client().post("/api/auth/token/", b"", content_type="")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_a_method_the_view_does_not_implement_stays_405_and_an_unknown_path_404(db):
    assert Client().put("/api/auth/token/", b"x", content_type="text/plain").status_code == 405
    assert Client().post("/api/no-such-thing/", b"x", content_type="text/plain").status_code == 404
