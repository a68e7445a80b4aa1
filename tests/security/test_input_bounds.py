"""Bounded input, against a real gunicorn (findings: a 1 MB poll description was accepted and five GraphQL aliases
returned 15 MB; 1,500 search terms took 8.9 s; an expiry in year 9999 was accepted and its Celery task published).

Every text field has a maximum length (model, serializer, schema), search takes a bounded number of words and
characters, ``expires_at`` a bounded horizon, pages and GraphQL queries a bounded size: each refusal is a 400
naming the field, before anything is written or queried."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from django.apps import apps
from django.conf import settings
from django.db import models
from django.utils import timezone

from nexus_backend.core.models import OutboxMessage
from nexus_backend.polls.models import Poll
from tests.conftest import bearer
from tests.security.conftest import ROOT, call

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(make_user) -> dict:
    return {"Authorization": bearer(make_user("writer"))}


def new_poll(**fields) -> dict:
    return {"question": "Tea or coffee?", "options": ["Tea", "Coffee"], **fields}


def test_a_long_description_is_refused_naming_the_field(web, token):
    status, _, body = call(web.port, "POST", "/api/polls/", new_poll(description="x" * 200_000), token)
    assert status == 400 and "description" in body, body
    limit = Poll._meta.get_field("description").max_length
    status, _, body = call(web.port, "POST", "/api/polls/", new_poll(description="x" * limit), token)
    assert status == 201, body
    assert Poll.objects.count() == 1


def test_every_text_field_of_every_model_has_a_maximum_length():
    unbounded = [
        f"{model._meta.label}.{field.name}"
        for model in apps.get_models()
        if model._meta.app_label.startswith(("polls", "tracking", "core", "caching"))
        for field in model._meta.get_fields()
        if isinstance(field, models.TextField) or (isinstance(field, models.CharField) and not field.max_length)
    ]
    assert unbounded == []


def test_the_openapi_schema_documents_every_text_input_s_maximum_length():
    schema = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    missing = []
    for name, component in schema["components"]["schemas"].items():
        # Inputs only (COMPONENT_SPLIT_REQUEST); JWTs (Token*) are checked by signature, and the 1 MB body limit.
        if not name.endswith("Request") or name.startswith("Token"):
            continue
        for field, spec in (component.get("properties") or {}).items():
            spec = spec.get("items", spec) if spec.get("type") == "array" else spec
            if spec.get("type") == "string" and "format" not in spec and "enum" not in spec and "maxLength" not in spec:
                missing.append(f"{name}.{field}")
    assert missing == []
    assert schema["components"]["schemas"]["PollCreateRequest"]["properties"]["description"]["maxLength"] == 2000


def test_graphql_answers_stay_small_with_aliases(web, make_poll):
    limit = Poll._meta.get_field("description").max_length
    make_poll(question="Long one", options=["A", "B"])
    Poll.objects.update(description="y" * limit)  # the largest description the database now holds
    aliases = " ".join(f"a{n}: polls(limit: 100) {{ description }}" for n in range(settings.NEXUS_GRAPHQL_MAX_ALIASES))
    status, _, body = call(web.port, "POST", "/graphql/", {"query": f"{{ {aliases} }}"})
    assert status == 200 and "errors" not in body
    status, _, body = call(web.port, "POST", "/graphql/", {"query": f"{{ {aliases} b: polls {{ id }} }}"})
    assert "errors" in body  # one alias more than the limit is refused before running
    status, _, body = call(web.port, "POST", "/graphql/", {"query": "{ polls(limit: 1000) { id } }"})
    assert body["errors"][0]["extensions"]["field"] == "limit"


def test_search_takes_a_bounded_number_of_words_and_characters(web):
    many = "+".join(f"w{n}" for n in range(1500))  # the finding's 1,500 words: past gunicorn's request-line limit
    assert call(web.port, "GET", f"/api/polls/?search={many}")[0] == 414
    many = "+".join(f"w{n}" for n in range(300))
    status, _, body = call(web.port, "GET", f"/api/polls/?search={many}")
    assert status == 400 and "search" in body, body
    words = "+".join(["tea"] * (settings.NEXUS_SEARCH_MAX_TERMS + 1))
    status, _, body = call(web.port, "GET", f"/api/polls/?search={words}")
    assert status == 400 and "search" in body, body
    status, _, body = call(web.port, "GET", f"/api/polls/?search={'t' * (settings.NEXUS_SEARCH_MAX_LENGTH + 1)}")
    assert status == 400 and "search" in body, body
    words = "+".join(["tea"] * settings.NEXUS_SEARCH_MAX_TERMS)
    assert call(web.port, "GET", f"/api/polls/?search={words}")[0] == 200


def test_an_expiry_beyond_the_horizon_is_refused_and_schedules_nothing(web, token, make_poll, user):
    tasks_before = OutboxMessage.objects.count()
    status, _, body = call(web.port, "POST", "/api/polls/", new_poll(expires_at="9999-12-31T00:00:00Z"), token)
    assert status == 400 and "expires_at" in body, body
    horizon = timezone.now() + timedelta(days=settings.NEXUS_POLL_MAX_LIFETIME_DAYS)
    status, _, body = call(
        web.port, "POST", "/api/polls/", new_poll(expires_at=(horizon + timedelta(days=1)).isoformat()), token
    )
    assert status == 400 and "expires_at" in body, body
    assert Poll.objects.count() == 0 and OutboxMessage.objects.count() == tasks_before
    status, _, body = call(
        web.port, "POST", "/api/polls/", new_poll(expires_at=(horizon - timedelta(days=1)).isoformat()), token
    )
    assert status == 201, body
    poll_id = body["id"]
    status, _, body = call(web.port, "PATCH", f"/api/polls/{poll_id}/", {"expires_at": "9999-12-31T00:00:00Z"}, token)
    assert status == 400 and "expires_at" in body, body


def test_page_sizes_are_clamped(web, make_poll):
    for n in range(3):
        make_poll(question=f"Poll {n}", options=["A", "B"])
    status, _, body = call(web.port, "GET", "/api/polls/?page_size=1000000")
    assert status == 200 and len(body["results"]) == 3
    from nexus_backend.core.pagination import PageNumberPagination

    assert PageNumberPagination.max_page_size == 100
