"""schemathesis over the committed openapi.yaml: every operation, as an anonymous client, a user and a staff
user, against the real WSGI app, PostgreSQL and Redis. No 5xx, no status code, content type, header or body
the schema does not document, and invalid input refused.

``FUZZ_EXAMPLES`` sets Hypothesis's examples per operation (default 6: the whole file stays near a minute on
the 2-core development machine); ``make fuzz`` runs 200. Each generated request is sent once per identity, so
a run makes about ``3 x operations x examples`` requests (printed at the end).

One check is left out: ``positive_data_acceptance`` expects every schema-valid request to succeed, but the
API has rules a JSON schema cannot state (a password too common or too similar to the username, a username
taken, an option of another poll, an expiry in the past, a second vote) and answers them with a documented
400 or 409. Everything else schemathesis checks by default stays on, ``negative_data_rejection`` included.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))

schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")
schema.app = get_wsgi_application()  # in-process WSGI: the whole middleware stack, no network

# poll ids 1-4 in generated paths are swapped for real polls of the current test (see ``world``), so the
# fuzzer reaches the code behind a found poll (edit, vote, results) and not only the 404.
_POLLS: list[int] = []
SENT: Counter = Counter()


def _token(user) -> str:
    """A real access token, from the real endpoint (not minted in the test)."""
    response = APIClient().post("/api/auth/token/", {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["access"]


@pytest.fixture
def world(db, make_user, make_poll):
    """Identities (no credentials, a user's JWT, a staff user's JWT) and polls of both users, one expired,
    one already voted in. All inside the test's transaction (rolled back after it, fast); a request that broke
    that transaction would fail every later request of the test loudly, never hide anything."""
    from nexus_backend.polls import services

    user, staff, other = make_user(), make_user(is_staff=True), make_user()
    polls = [
        make_poll(owner=user),
        make_poll(owner=other),
        make_poll(owner=user, expired=True),
        make_poll(owner=other, options=("Red", "Blue")),
    ]
    services.vote_cast(poll_id=polls[3].pk, option_id=polls[3].options.first().pk, user=other)
    _POLLS[:] = [poll.pk for poll in polls]
    identities = {
        "anonymous": None,
        "user": {"Authorization": f"Bearer {_token(user)}"},
        "staff": {"Authorization": f"Bearer {_token(staff)}"},
    }
    # Django closes the connection after each request when it is inside a transaction, which would end the
    # test's transaction: keep it open across requests (after _token: the test client reconnects the handler).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield identities
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
        _POLLS.clear()


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Print how much was fuzzed (the issue's closing note wants the numbers), even without ``-s``."""
    yield
    if SENT:
        operations = len({operation for operation, _ in SENT})
        identities = ", ".join(sorted({who for _, who in SENT}))
        with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
            print(
                f"\nfuzz: {operations} operations, {sum(SENT.values())} requests "
                f"(FUZZ_EXAMPLES={EXAMPLES} per operation, each request sent as {identities})"
            )


@schema.parametrize()
@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)
def test_every_operation_answers_as_documented(case, world):
    poll_id = (case.path_parameters or {}).get("poll_id")
    if isinstance(poll_id, int) and 1 <= poll_id <= len(_POLLS):
        case.path_parameters["poll_id"] = _POLLS[poll_id - 1]
    for who, headers in world.items():
        SENT[(case.operation.label, who)] += 1
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])


# ---------------------------------------------------------------- what the fuzzer found, pinned down


def test_options_on_a_poll_is_answered_not_a_500(auth_client, poll):
    response = auth_client.options(f"/api/polls/{poll.pk}/")
    assert response.status_code == 200
    assert response.json()["name"] == "Poll Detail"


def test_a_post_to_an_unknown_api_path_is_a_json_404_not_an_html_csrf_page(db):
    response = APIClient().post("/api/polls/1,2/vote/", {"option": 1}, format="json")
    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert response.json()["code"] == "not_found"


def test_a_csrf_failure_is_json(db):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "a", "password": "b"})
    assert (response.status_code, response["Content-Type"]) == (403, "application/json")
    assert response.json()["code"] == "csrf_failed"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page_size=abc", "page_size"),
        ("page_size=0", "page_size"),
        ("owner=", "owner"),
        ("page=", "page"),  # found by make fuzz (200 examples): DRF read an empty page as page 1
        ("page=last", "page"),
        ("page=0", "page"),
    ],
)
def test_invalid_list_parameters_are_refused(db, query, field):
    response = APIClient().get(f"/api/polls/?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_max_length_counts_the_text_as_sent(auth_client):
    # 201 characters, 200 once the leading space is trimmed: the schema's maxLength is 200, so it is refused.
    response = auth_client.post("/api/polls/", {"question": "Q?", "options": [" " + "x" * 200, "b"]}, format="json")
    assert response.status_code == 400
    assert response.json()["options"] == {"0": ["Ensure this field has no more than 200 characters."]}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/polls/", {"question": "Q?", "options": ["a", "b"], "description": 189010}, "description"),
        ("/api/polls/", {"question": 42, "options": ["a", "b"]}, "question"),
        ("/api/auth/register/", {"username": "ada", "email": "ada@example.com", "password": 12345678}, "password"),
    ],
)
def test_a_number_is_not_a_string(auth_client, path, body, field):
    response = auth_client.post(path, body, format="json")
    assert response.status_code == 400
    assert response.json()[field] == ["Not a valid string."]


@pytest.mark.parametrize("option", ["1", 1.0, True])
def test_a_vote_option_must_be_a_json_integer(client_for, other_user, poll, option):
    response = client_for(other_user).post(f"/api/polls/{poll.pk}/vote/", {"option": option}, format="json")
    assert response.status_code == 400
    assert response.json()["option"] == ["A valid integer is required."]
