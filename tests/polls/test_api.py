"""The polls REST API: shapes, permissions, validation, listing, voting and results."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from nexus_backend.polls import services
from nexus_backend.polls.models import Option, Poll, Vote

pytestmark = pytest.mark.django_db

POLLS = "/api/polls/"


def detail(poll_id) -> str:
    return f"{POLLS}{poll_id}/"


def vote_url(poll_id) -> str:
    return f"{POLLS}{poll_id}/vote/"


def results_url(poll_id) -> str:
    return f"{POLLS}{poll_id}/results/"


# ---------------------------------------------------------------- create and read
def test_create_poll_returns_the_documented_shape(auth_client, user):
    expires = timezone.now() + timedelta(days=3)
    response = auth_client.post(
        POLLS,
        {
            "question": "  Where should the offsite be?  ",
            "description": "Pick one.",
            "options": ["Lagos", "Nairobi", "Kigali"],
            "expires_at": expires.isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert {
        "id",
        "question",
        "description",
        "options",
        "created_at",
        "expires_at",
        "is_open",
        "owner",
    } <= set(body)
    assert body["question"] == "Where should the offsite be?"
    assert [o["text"] for o in body["options"]] == ["Lagos", "Nairobi", "Kigali"]
    assert all(isinstance(o["id"], int) for o in body["options"])
    assert body["is_open"] is True and body["owner"] == user.pk and body["owner_username"] == "alice"
    poll = Poll.objects.get(pk=body["id"])
    assert poll.owner == user and poll.expires_at == expires
    assert list(poll.options.values_list("text", flat=True)) == ["Lagos", "Nairobi", "Kigali"]


def test_anonymous_can_read_list_detail_and_results(api_client, poll):
    assert api_client.get(POLLS).status_code == 200
    response = api_client.get(detail(poll.pk))
    assert response.status_code == 200
    assert response.json()["question"] == "Best pizza topping?"
    assert api_client.get(results_url(poll.pk)).status_code == 200


def test_expired_poll_reads_as_not_open(api_client, make_poll):
    poll = make_poll(expired=True)
    body = api_client.get(detail(poll.pk)).json()
    assert body["is_open"] is False and body["is_closed"] is False


# ---------------------------------------------------------------- permissions
def test_anonymous_writes_are_401(api_client, poll):
    assert api_client.post(POLLS, {"question": "q?", "options": ["a", "b"]}, format="json").status_code == 401
    assert api_client.patch(detail(poll.pk), {"question": "x?"}, format="json").status_code == 401
    assert api_client.put(detail(poll.pk), {"question": "x?", "options": ["a", "b"]}, format="json").status_code == 401
    assert api_client.delete(detail(poll.pk)).status_code == 401
    response = api_client.post(vote_url(poll.pk), {"option": poll.options.first().pk}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert Poll.objects.filter(pk=poll.pk, question="Best pizza topping?").exists()


def test_other_users_cannot_change_or_delete_a_poll(client_for, other_user, poll):
    client = client_for(other_user)
    response = client.patch(detail(poll.pk), {"question": "Hijacked?"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert client.put(detail(poll.pk), {"question": "x?", "options": ["a", "b"]}, format="json").status_code == 403
    assert client.delete(detail(poll.pk)).status_code == 403
    poll.refresh_from_db()
    assert poll.question == "Best pizza topping?"


def test_owner_can_patch_put_and_delete(auth_client, poll):
    response = auth_client.patch(detail(poll.pk), {"description": "Be honest."}, format="json")
    assert response.status_code == 200
    assert response.json()["description"] == "Be honest."
    assert response.json()["question"] == "Best pizza topping?"

    response = auth_client.put(
        detail(poll.pk), {"question": "Best pasta?", "options": ["Penne", "Fusilli"]}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["question"] == "Best pasta?" and body["description"] == ""
    assert [o["text"] for o in body["options"]] == ["Penne", "Fusilli"]

    assert auth_client.delete(detail(poll.pk)).status_code == 204
    assert auth_client.get(detail(poll.pk)).status_code == 404


def test_staff_can_change_and_delete_any_poll(client_for, staff_user, poll):
    client = client_for(staff_user)
    assert client.patch(detail(poll.pk), {"question": "Moderated?"}, format="json").status_code == 200
    assert Poll.objects.get(pk=poll.pk).question == "Moderated?"
    assert client.delete(detail(poll.pk)).status_code == 204
    assert not Poll.objects.filter(pk=poll.pk).exists()


def test_patch_expires_at_null_removes_the_expiry(auth_client, make_poll, user):
    poll = make_poll(owner=user, expires_at=timezone.now() + timedelta(hours=1))
    response = auth_client.patch(detail(poll.pk), {"expires_at": None}, format="json")
    assert response.status_code == 200
    assert response.json()["expires_at"] is None


def test_options_cannot_change_after_votes(auth_client, client_for, other_user, poll):
    client_for(other_user).post(vote_url(poll.pk), {"option": poll.options.first().pk}, format="json")
    response = auth_client.patch(detail(poll.pk), {"options": ["A", "B"]}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict" and "options" in response.json()
    assert poll.options.count() == 3


def test_session_users_must_send_a_csrf_token(user, poll):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.patch(detail(poll.pk), {"description": "x"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


# ---------------------------------------------------------------- validation
def test_malformed_json_is_a_400(auth_client):
    response = auth_client.post(POLLS, data='{"question": "Hi?", "options": [', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert Poll.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"question": "   ", "options": ["a", "b"]}, "question", "blank"),
        ({"question": ["a list"], "options": ["a", "b"]}, "question", "valid string"),
        ({"question": "x" * 301, "options": ["a", "b"]}, "question", "300"),
        ({"options": ["a", "b"]}, "question", "required"),
        ({"question": "Q?", "options": ["only one"]}, "options", "at least 2"),
        ({"question": "Q?", "options": []}, "options", "at least 2"),
        ({"question": "Q?", "options": [f"o{i}" for i in range(21)]}, "options", "20"),
        ({"question": "Q?", "options": ["Same", "same "]}, "options", "distinct"),
        ({"question": "Q?", "options": "a,b"}, "options", "list"),
        ({"question": "Q?"}, "options", "required"),
        ({"question": "Q?", "options": ["a", {"x": 1}]}, "options", "valid string"),
        ({"question": "Q?", "options": ["a", "b" * 201]}, "options", "200"),
        ({"question": "Q?", "options": ["a", "b"], "expires_at": "tomorrow"}, "expires_at", "format"),
    ],
)
def test_invalid_poll_input_is_a_400_naming_the_field(auth_client, payload, field, fragment):
    response = auth_client.post(POLLS, payload, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body, body
    assert fragment in str(body[field]), body[field]
    assert Poll.objects.count() == 0


def test_expiry_in_the_past_is_refused(auth_client):
    past = (timezone.now() - timedelta(minutes=5)).isoformat()
    response = auth_client.post(POLLS, {"question": "Q?", "options": ["a", "b"], "expires_at": past}, format="json")
    assert response.status_code == 400
    assert "later than" in response.json()["expires_at"][0]


def test_patch_validates_like_create(auth_client, poll):
    assert auth_client.patch(detail(poll.pk), {"question": ""}, format="json").status_code == 400
    assert auth_client.patch(detail(poll.pk), {"options": ["x"]}, format="json").status_code == 400
    response = auth_client.put(detail(poll.pk), {"question": "Only question?"}, format="json")
    assert response.status_code == 400 and "options" in response.json()


@pytest.mark.parametrize("suffix", ["", "vote/", "results/"])
def test_unknown_and_non_numeric_poll_ids_are_json_404s(auth_client, suffix):
    for poll_id in ("999999", "abc", "99999999999999999999999"):
        method = auth_client.post if suffix == "vote/" else auth_client.get
        response = method(f"{POLLS}{poll_id}/{suffix}", {"option": 1}, format="json")
        assert response.status_code == 404, (poll_id, response.content)
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "not_found"


def test_unknown_poll_writes_are_404(auth_client):
    assert auth_client.patch(detail(424242), {"question": "x?"}, format="json").status_code == 404
    assert auth_client.delete(detail(424242)).status_code == 404


def test_non_numeric_ids_are_json_404s_even_with_debug_on(api_client, settings):
    settings.DEBUG = True  # Django would otherwise answer its HTML debug page
    response = api_client.get(f"{POLLS}abc/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_error_handlers_answer_json():
    from django.urls import get_resolver

    from nexus_backend.core import exceptions

    resolver = get_resolver()
    assert resolver.resolve_error_handler(400) is exceptions.json_400
    assert resolver.resolve_error_handler(403) is exceptions.json_403
    assert resolver.resolve_error_handler(404) is exceptions.json_404
    assert resolver.resolve_error_handler(500) is exceptions.json_500


def test_unknown_api_path_is_a_json_404(api_client):
    response = api_client.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found", "request_id": response["X-Request-ID"]}


def test_wrong_method_is_a_json_405(auth_client, poll):
    response = auth_client.delete(results_url(poll.pk))
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


# ---------------------------------------------------------------- list: pagination, filters, ordering
def test_list_is_paginated(api_client, make_poll):
    for _ in range(5):
        make_poll()
    response = api_client.get(POLLS, {"page_size": 2})
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 5 and len(body["results"]) == 2 and body["previous"] is None
    assert "page=2" in body["next"]
    last = api_client.get(POLLS, {"page_size": 2, "page": 3}).json()
    assert len(last["results"]) == 1 and last["next"] is None
    seen = {
        p["id"] for page in (1, 2, 3) for p in api_client.get(POLLS, {"page_size": 2, "page": page}).json()["results"]
    }
    assert len(seen) == 5
    assert api_client.get(POLLS, {"page": 99}).status_code == 404


def test_list_filters_by_active_and_owner(api_client, make_poll, user, other_user):
    open_mine = make_poll(owner=user)
    expired_mine = make_poll(owner=user, expired=True)
    closed_theirs = make_poll(owner=other_user)
    Poll.objects.filter(pk=closed_theirs.pk).update(is_closed=True)
    open_theirs = make_poll(owner=other_user, expires_at=timezone.now() + timedelta(days=1))

    def ids(**params):
        return {p["id"] for p in api_client.get(POLLS, params).json()["results"]}

    assert ids(active="true") == {open_mine.pk, open_theirs.pk}
    assert ids(active="false") == {expired_mine.pk, closed_theirs.pk}
    assert ids(owner=user.pk) == {open_mine.pk, expired_mine.pk}
    assert ids(owner=other_user.pk, active="true") == {open_theirs.pk}
    assert ids() == {open_mine.pk, expired_mine.pk, closed_theirs.pk, open_theirs.pk}


@pytest.mark.parametrize(("params", "field"), [({"active": "maybe"}, "active"), ({"owner": "abc"}, "owner")])
def test_bad_filter_values_are_400(api_client, params, field):
    response = api_client.get(POLLS, params)
    assert response.status_code == 400
    assert field in response.json()


def test_list_searches_questions(api_client, make_poll):
    pizza = make_poll(question="Favourite pizza?")
    make_poll(question="Favourite pasta?")
    results = api_client.get(POLLS, {"search": "PIZZA"}).json()["results"]
    assert [p["id"] for p in results] == [pizza.pk]


def test_list_ordering(api_client, make_poll):
    now = timezone.now()
    old = make_poll(question="old", created_at=now - timedelta(days=3))
    mid = make_poll(question="mid", created_at=now - timedelta(days=2), expires_at=now + timedelta(days=9))
    new = make_poll(question="new", expires_at=now + timedelta(days=1))

    def order(value):
        return [p["id"] for p in api_client.get(POLLS, {"ordering": value}).json()["results"]]

    assert [p["id"] for p in api_client.get(POLLS).json()["results"]] == [new.pk, mid.pk, old.pk]
    assert order("-created_at") == [new.pk, mid.pk, old.pk]
    assert order("created_at") == [old.pk, mid.pk, new.pk]
    assert order("expires_at") == [new.pk, mid.pk, old.pk]  # no expiry sorts last in PostgreSQL


def test_list_uses_a_constant_number_of_queries(api_client, make_poll, django_assert_max_num_queries):
    make_poll()
    with CaptureQueriesContext(connection) as few:
        assert api_client.get(POLLS).status_code == 200
    for _ in range(15):
        make_poll()
    with django_assert_max_num_queries(3):  # count, page, options of the page
        response = api_client.get(POLLS)
    assert len(response.json()["results"]) == 16
    with CaptureQueriesContext(connection) as many:
        api_client.get(POLLS)
    assert len(many) == len(few)


# ---------------------------------------------------------------- voting and results
def test_vote_happy_path(client_for, other_user, poll):
    option = poll.options.get(text="Mushroom")
    response = client_for(other_user).post(vote_url(poll.pk), {"option": option.pk}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "poll", "option", "created_at"}
    assert (body["poll"], body["option"]) == (poll.pk, option.pk)
    vote = Vote.objects.get(pk=body["id"])
    assert (vote.user, vote.option) == (other_user, option)


def test_second_vote_is_409_already_voted(auth_client, poll):
    first, second = poll.options.all()[:2]
    assert auth_client.post(vote_url(poll.pk), {"option": first.pk}, format="json").status_code == 201
    response = auth_client.post(vote_url(poll.pk), {"option": second.pk}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "already_voted"
    assert response.json()["detail"]
    assert list(Vote.objects.filter(poll=poll).values_list("option_id", flat=True)) == [first.pk]


def test_vote_on_an_expired_or_closed_poll_is_409_poll_closed(auth_client, make_poll):
    expired = make_poll(expired=True)
    response = auth_client.post(vote_url(expired.pk), {"option": expired.options.first().pk}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "poll_closed"

    closed = make_poll()
    Poll.objects.filter(pk=closed.pk).update(is_closed=True)
    response = auth_client.post(vote_url(closed.pk), {"option": closed.options.first().pk}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "poll_closed"
    assert Vote.objects.count() == 0


@pytest.mark.parametrize("bad", ["other-poll", "missing", "absent", "abc", None, -1, 1.5, [1], 10**20, True])
def test_vote_with_a_bad_option_is_400_on_field_option(auth_client, make_poll, poll, bad):
    other = make_poll()
    named = {
        "other-poll": {"option": other.options.first().pk},
        "missing": {"option": 987654321},
        "absent": {},
    }
    payload = named[bad] if isinstance(bad, str) and bad in named else {"option": bad}
    response = auth_client.post(vote_url(poll.pk), payload, format="json")
    assert response.status_code == 400, response.content
    assert "option" in response.json()
    assert Vote.objects.count() == 0


def test_results_count_votes_per_option(api_client, client_for, make_user, poll):
    cheese, mushroom, pineapple = poll.options.all()
    for choice in (cheese, cheese, mushroom):
        client_for(make_user()).post(vote_url(poll.pk), {"option": choice.pk}, format="json")
    services.vote_cast(poll_id=poll.pk, option_id=cheese.pk, user=make_user())
    body = api_client.get(results_url(poll.pk)).json()
    assert body == {
        "poll": poll.pk,
        "question": "Best pizza topping?",
        "total_votes": 4,
        "is_open": True,
        "options": [
            {"id": cheese.pk, "text": "Cheese", "votes": 3},
            {"id": mushroom.pk, "text": "Mushroom", "votes": 1},
            {"id": pineapple.pk, "text": "Pineapple", "votes": 0},
        ],
    }


def test_votes_in_one_poll_do_not_leak_into_another(api_client, auth_client, make_poll, poll):
    other = make_poll(options=["Cheese", "Ham"])
    auth_client.post(vote_url(other.pk), {"option": other.options.first().pk}, format="json")
    assert api_client.get(results_url(poll.pk)).json()["total_votes"] == 0
    assert api_client.get(results_url(other.pk)).json()["total_votes"] == 1
    assert Option.objects.filter(poll=poll, votes__isnull=False).count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_votes_by_one_user_give_one_201_and_one_409(client_for, other_user, poll):
    """Both requests run in their own thread, connection and transaction, released at the same moment."""
    first, second = poll.options.all()[:2]
    start = threading.Barrier(2)

    def attempt(option_id: int):
        client = client_for(other_user)
        try:
            start.wait(timeout=10)
            response = client.post(vote_url(poll.pk), {"option": option_id}, format="json")
            return response.status_code, response.json()
        finally:
            connections.close_all()  # this thread's connection, before the test database is flushed

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(attempt, [first.pk, second.pk]), key=lambda outcome: outcome[0])

    assert [status for status, _ in outcomes] == [201, 409], outcomes
    assert outcomes[1][1]["code"] == "already_voted"
    votes = list(Vote.objects.filter(poll=poll, user=other_user))
    assert len(votes) == 1 and votes[0].pk == outcomes[0][1]["id"]
