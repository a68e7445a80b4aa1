"""The request id: chosen or generated per request, returned in ``X-Request-ID``, on every log record of the request
(JSON or plain), in every error body (500s with DEBUG on too, never an HTML page), and carried into the Celery
tasks the request enqueues, whose log records in a real worker carry it too."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import include, path
from django.utils import timezone
from rest_framework.views import APIView

from nexus_backend.core import request_id
from nexus_backend.core.logs import logging_config
from nexus_backend.polls.models import Poll
from tests.conftest import bearer

BARE = "/bench/bare/"


# --------------------------------------------------------------------------- a URLconf with views that break


def _boom(request):
    logging.getLogger("nexus_backend.tests").warning("about to fail")
    raise RuntimeError("secret detail that must not reach the client")


class _DRFBoom(APIView):
    authentication_classes = []
    permission_classes = []

    def get(self, request):
        raise ZeroDivisionError("unexpected in a DRF view")


urlpatterns = [
    path("boom/", _boom),
    path("drf-boom/", _DRFBoom.as_view()),
    path("", include("nexus_backend.urls")),
]
handler400 = "nexus_backend.core.exceptions.json_400"
handler403 = "nexus_backend.core.exceptions.json_403"
handler404 = "nexus_backend.core.exceptions.json_404"
handler500 = "nexus_backend.core.exceptions.json_500"


# --------------------------------------------------------------------------- log capture through the real config


@pytest.fixture
def log_lines():
    """Reconfigure logging with the project's config (JSON), writing into a buffer; restore the settings' config."""

    def configure(log_format: str = "json") -> io.StringIO:
        logging.config.dictConfig(logging_config(log_format=log_format, root_level="WARNING", app_level="INFO"))
        stream = io.StringIO()
        logging.getLogger().handlers[0].setStream(stream)
        return stream

    yield configure
    logging.config.dictConfig(django_settings.LOGGING)


def _json_records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


# --------------------------------------------------------------------------- the id itself


def test_a_request_without_an_id_gets_a_new_uuid4(db):
    first = Client().get(BARE)["X-Request-ID"]
    second = Client().get(BARE)["X-Request-ID"]
    for got in (first, second):
        parsed = uuid.UUID(got)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == got
    assert first != second
    assert request_id.current() is None  # nothing leaks out of the request


def test_new_ids_differ_in_forked_workers():
    """gunicorn forks its workers from one master: each must draw different ids (``random`` is reseeded)."""
    drawn = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: draw, report, leave at once (no pytest teardown in here)
            os.write(write, request_id.new().encode())
            os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        drawn.append(os.read(read, 100).decode())
        os.close(read)
    assert drawn[0] != drawn[1] and all(uuid.UUID(d).version == 4 for d in drawn)


@pytest.mark.parametrize("sent", ["abc-123", "req_42.retry:1", "f" * 128, "trace/id+x=y@edge"])
def test_a_sane_incoming_id_is_kept(db, sent):
    assert Client().get(BARE, HTTP_X_REQUEST_ID=sent)["X-Request-ID"] == sent


@pytest.mark.parametrize("sent", ["", "has space", "line\nbreak", "x" * 129, 'quote"d', "ünïcode", "a;b", "<script>"])
def test_an_insane_incoming_id_is_replaced(db, sent):
    got = Client().get(BARE, HTTP_X_REQUEST_ID=sent)["X-Request-ID"]
    assert got != sent
    assert uuid.UUID(got).version == 4


# --------------------------------------------------------------------------- logs


def test_every_json_record_of_a_request_carries_its_id(db, log_lines):
    stream = log_lines("json")
    response = Client().get("/api/polls/999999999/", HTTP_X_REQUEST_ID="find-me-1")
    assert response.status_code == 404
    records = _json_records(stream)
    assert records, "the 404 should have been logged"
    (record,) = [r for r in records if r["logger"] == "django.request"]
    assert record["request_id"] == "find-me-1"
    assert record["level"] == "WARNING"
    assert record["message"] == "Not Found: /api/polls/999999999/"
    assert record["status_code"] == 404
    assert record["timestamp"].endswith("+00:00")
    # outside a request the field is there, and null
    logging.getLogger("nexus_backend.tests").warning("no request here")
    assert _json_records(stream)[-1]["request_id"] is None


def test_plain_records_carry_the_id_too(db, log_lines):
    stream = log_lines("plain")
    Client().get("/api/polls/999999999/", HTTP_X_REQUEST_ID="plain-id-7")
    assert "WARNING django.request [plain-id-7]: Not Found: /api/polls/999999999/" in stream.getvalue()
    logging.getLogger("nexus_backend.tests").warning("no request here")
    assert stream.getvalue().splitlines()[-1].endswith(" WARNING nexus_backend.tests [-]: no request here")


# --------------------------------------------------------------------------- errors as JSON with the id


@pytest.mark.urls("tests.core.test_request_id")
@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG-on", "DEBUG-off"])
@pytest.mark.parametrize("url", ["/boom/", "/drf-boom/"])
def test_an_unexpected_exception_is_a_json_500_with_the_id(db, settings, log_lines, debug, url):
    settings.DEBUG = debug
    stream = log_lines("json")
    client = Client(raise_request_exception=False)
    response = client.get(url, HTTP_ACCEPT="text/html", HTTP_X_REQUEST_ID="boom-id-1")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response["X-Request-ID"] == "boom-id-1"
    assert response.json() == {"detail": "Server error.", "code": "server_error", "request_id": "boom-id-1"}
    assert b"Traceback" not in response.content and b"<html" not in response.content.lower()
    # logged once, with the traceback and the id (the client never sees the traceback; the operator does)
    errors = [r for r in _json_records(stream) if r["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "boom-id-1"
    assert errors[0]["message"] == f"Internal Server Error: {url}"
    assert "Traceback" in errors[0]["exc_info"] and ("RuntimeError" in errors[0]["exc_info"]) == (url == "/boom/")
    if url == "/boom/":
        (warning,) = [r for r in _json_records(stream) if r["message"] == "about to fail"]
        assert warning["request_id"] == "boom-id-1"


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG-on", "DEBUG-off"])
def test_an_unknown_page_is_a_json_404_even_with_debug_on(db, settings, debug):
    settings.DEBUG = debug
    response = Client().get("/no/such/page/", HTTP_ACCEPT="text/html", HTTP_X_REQUEST_ID="nf-1")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found", "request_id": "nf-1"}


def test_api_errors_carry_the_id(db, auth_client, poll):
    not_found = auth_client.get("/api/polls/999999999/", HTTP_X_REQUEST_ID="api-404")
    assert not_found.status_code == 404
    assert not_found.json()["request_id"] == "api-404"

    invalid = auth_client.post("/api/polls/", {"question": "", "options": ["a"]}, format="json")
    assert invalid.status_code == 400
    body = invalid.json()
    assert body["request_id"] == invalid["X-Request-ID"]
    assert body["code"] == "invalid" and "question" in body and "options" in body

    unauthenticated = Client().post("/api/polls/", {}, content_type="application/json")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["request_id"] == unauthenticated["X-Request-ID"]


def test_a_domain_error_carries_the_id(db, client_for, make_poll, make_user):
    voter = make_user()
    poll = make_poll(expired=True)
    response = client_for(voter).post(
        f"/api/polls/{poll.pk}/vote/", {"option": poll.options.first().pk}, format="json", HTTP_X_REQUEST_ID="closed-1"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "poll_closed"
    assert response.json()["request_id"] == "closed-1"


# --------------------------------------------------------------------------- into Celery, through a real worker


@pytest.mark.services
@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_the_id_follows_the_request_into_the_task_it_enqueues(json_worker, user):
    """POST /api/polls/ with an expiry: poll_create enqueues close_poll on commit (eta = expiry). The real worker
    runs it over RabbitMQ, and its JSON log records of that task carry the request's id."""
    sent = f"e2e-{uuid.uuid4().hex}"
    client = Client(HTTP_AUTHORIZATION=bearer(user))
    response = client.post(
        "/api/polls/",
        {"question": "Closes itself?", "options": ["a", "b"], "expires_at": (timezone.now() + timedelta(seconds=2))},
        content_type="application/json",
        HTTP_X_REQUEST_ID=sent,
    )
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == sent
    poll_id = response.json()["id"]

    closed = json_worker.wait_for_record(lambda r: r.get("message") == f"closed poll {poll_id} at its expiry")
    assert closed["request_id"] == sent
    assert closed["task_name"] == "nexus_backend.polls.tasks.close_poll"
    assert closed["logger"] == "nexus_backend.polls.tasks" and closed["poll_id"] == poll_id
    # Celery's own record of the task's success, written by the worker inside the task, carries it too
    succeeded = json_worker.wait_for_record(
        lambda r: r.get("logger") == "celery.app.trace" and r.get("task_id") == closed["task_id"]
    )
    assert succeeded["request_id"] == sent
    assert Poll.objects.get(pk=poll_id).is_closed
    # after the task the worker's context is clean: its later records carry no id
    from tests.core.celery_tasks import succeed

    other = succeed.apply_async()
    assert other.get(timeout=60) == "ok"
    record = json_worker.wait_for_record(
        lambda r: r.get("task_id") == other.id and r.get("logger") == "celery.app.trace"
    )
    assert record["request_id"] is None


def test_seeding_the_global_random_does_not_repeat_ids():
    """Notebooks and seeded tests call ``random.seed``: the ids they cause must still differ run to run (a repeated
    id is dropped from the request log as a duplicate)."""
    import random

    random.seed(7)
    first = [request_id.new() for _ in range(3)]
    random.seed(7)
    second = [request_id.new() for _ in range(3)]
    assert not set(first) & set(second)
