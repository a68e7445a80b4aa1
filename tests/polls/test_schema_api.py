"""Bad votes through the API: a clear 400/404/409 with a code, and nothing changes (no vote, no counter moved)."""

from __future__ import annotations

import pytest

from nexus_backend.polls import counting
from nexus_backend.polls.models import Vote

pytestmark = pytest.mark.django_db


def vote_url(poll_id) -> str:
    return f"/api/polls/{poll_id}/vote/"


def _state():
    return Vote.objects.count(), counting.counted()


@pytest.fixture
def voter_client(client_for, make_user):
    return client_for(make_user("voter"))


@pytest.mark.parametrize(
    ("case", "status", "code", "field"),
    [
        ("option_of_another_poll", 400, "invalid", "option"),
        ("option_that_does_not_exist", 400, "invalid", "option"),
        ("option_missing", 400, "invalid", "option"),
        ("option_not_a_number", 400, "invalid", "option"),
        ("expired_poll", 409, "poll_closed", None),
        ("closed_poll", 409, "poll_closed", None),
        ("poll_that_does_not_exist", 404, "not_found", None),
    ],
)
def test_a_refused_vote_is_clear_and_changes_nothing(voter_client, poll, make_poll, case, status, code, field):
    other = make_poll()
    expired = make_poll(expired=True)
    closed = make_poll()
    closed.is_closed = True
    closed.save()
    target, body = poll.pk, {"option": poll.options.first().pk}
    if case == "option_of_another_poll":
        body = {"option": other.options.first().pk}
    elif case == "option_that_does_not_exist":
        body = {"option": 10**12}
    elif case == "option_missing":
        body = {}
    elif case == "option_not_a_number":
        body = {"option": "first"}
    elif case == "expired_poll":
        target, body = expired.pk, {"option": expired.options.first().pk}
    elif case == "closed_poll":
        target, body = closed.pk, {"option": closed.options.first().pk}
    elif case == "poll_that_does_not_exist":
        target = 10**12
    before = _state()

    response = voter_client.post(vote_url(target), body, format="json")

    assert response.status_code == status, response.content
    payload = response.json()
    assert payload["code"] == code and payload["detail"]
    if field:
        assert payload[field], payload
    assert _state() == before


def test_the_option_message_names_the_option_and_the_poll(voter_client, poll, make_poll):
    foreign = make_poll().options.first()
    response = voter_client.post(vote_url(poll.pk), {"option": foreign.pk}, format="json")
    assert response.json()["option"] == [f"Option {foreign.pk} is not an option of poll {poll.pk}."]


def test_an_accepted_vote_moves_exactly_one_counter(voter_client, poll):
    chosen = poll.options.last()
    response = voter_client.post(vote_url(poll.pk), {"option": chosen.pk}, format="json")
    assert response.status_code == 201
    assert counting.counted(poll_ids=[poll.pk]) == {
        pk: int(pk == chosen.pk) for pk in poll.options.values_list("pk", flat=True)
    }
    again = voter_client.post(vote_url(poll.pk), {"option": chosen.pk}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "already_voted"
    assert counting.counted(poll_ids=[poll.pk])[chosen.pk] == 1
