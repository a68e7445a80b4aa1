"""GraphQL at /graphql/: queries, the vote mutation and its refusals, authentication (JWT and session)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from nexus_backend.polls import services
from nexus_backend.polls.models import Poll, Vote
from tests.conftest import bearer

pytestmark = pytest.mark.django_db

URL = "/graphql/"

VOTE = """
mutation Vote($poll: ID!, $option: ID!) {
  vote(pollId: $poll, optionId: $option) { id pollId optionId createdAt }
}
"""


def gql(query: str, variables: dict | None = None, *, user=None, client: Client | None = None, **headers):
    client = client or Client()
    if user is not None:
        headers["HTTP_AUTHORIZATION"] = bearer(user)
    response = client.post(
        URL, {"query": query, "variables": variables or {}}, content_type="application/json", **headers
    )
    return response


def data_of(response) -> dict:
    assert response.status_code == 200, response.content
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def error_of(response) -> dict:
    body = response.json()
    assert body.get("errors"), body
    return body["errors"][0]


def test_polls_query_lists_polls_with_options(make_poll, poll):
    expired = make_poll(question="Old news?", expired=True)
    query = """query($active: Boolean) {
      polls(active: $active) { id question isOpen ownerUsername options { id text } }
    }"""
    everything = data_of(gql(query))["polls"]
    assert [p["id"] for p in everything] == [str(poll.pk), str(expired.pk)]  # newest first
    open_only = data_of(gql(query, {"active": True}))["polls"]
    assert open_only == [
        {
            "id": str(poll.pk),
            "question": "Best pizza topping?",
            "isOpen": True,
            "ownerUsername": "alice",
            "options": [{"id": str(o.pk), "text": o.text} for o in poll.options.all()],
        }
    ]
    closed = data_of(gql(query, {"active": False}))["polls"]
    assert [p["id"] for p in closed] == [str(expired.pk)]


def test_polls_query_uses_a_constant_number_of_queries(make_poll, django_assert_max_num_queries):
    query = "{ polls { id question ownerUsername options { text } } }"
    make_poll()
    with CaptureQueriesContext(connection) as few:
        data_of(gql(query))
    for _ in range(10):
        make_poll()
    with django_assert_max_num_queries(len(few)):
        assert len(data_of(gql(query))["polls"]) == 11
    assert len(few) <= 2  # polls with owners, then their options


def test_polls_query_limit_is_bounded(poll):
    error = error_of(gql("{ polls(limit: 1000) { id } }"))
    assert error["extensions"]["code"] == "invalid"


def test_poll_by_id_and_unknown_ids(poll):
    data = data_of(gql("query($id: ID!) { poll(id: $id) { question description expiresAt } }", {"id": poll.pk}))
    assert data["poll"] == {"question": "Best pizza topping?", "description": "", "expiresAt": None}
    for unknown in ("999999", "abc", "-3"):
        response = gql("query($id: ID!) { poll(id: $id) { id } }", {"id": unknown})
        assert response.status_code == 200
        error = error_of(response)
        assert error["extensions"]["code"] == "not_found", error
        assert "does not exist" in error["message"]


def test_results_query_counts_votes(make_user, poll):
    cheese, mushroom, _ = poll.options.all()
    for option in (cheese, mushroom, cheese):
        services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=make_user())
    query = "query($p: ID!) { results(pollId: $p) { pollId totalVotes isOpen options { id text votes } } }"
    data = data_of(gql(query, {"p": poll.pk}))["results"]
    assert data["pollId"] == str(poll.pk) and data["totalVotes"] == 3 and data["isOpen"] is True
    assert [(o["text"], o["votes"]) for o in data["options"]] == [
        ("Cheese", 2),
        ("Mushroom", 1),
        ("Pineapple", 0),
    ]


def test_vote_mutation_with_a_jwt(other_user, poll):
    option = poll.options.get(text="Pineapple")
    vote = data_of(gql(VOTE, {"poll": poll.pk, "option": option.pk}, user=other_user))["vote"]
    assert (vote["pollId"], vote["optionId"]) == (str(poll.pk), str(option.pk))
    stored = Vote.objects.get(pk=vote["id"])
    assert (stored.user, stored.option) == (other_user, option)


def test_second_vote_is_refused_with_already_voted(other_user, poll):
    first, second = poll.options.all()[:2]
    data_of(gql(VOTE, {"poll": poll.pk, "option": first.pk}, user=other_user))
    error = error_of(gql(VOTE, {"poll": poll.pk, "option": second.pk}, user=other_user))
    assert error["extensions"]["code"] == "already_voted"
    assert error["message"] == "You have already voted in this poll."
    assert error["path"] == ["vote"]
    assert Vote.objects.filter(poll=poll).count() == 1


def test_unauthenticated_vote_is_refused(poll):
    response = gql(VOTE, {"poll": poll.pk, "option": poll.options.first().pk})
    error = error_of(response)
    assert error["extensions"]["code"] == "not_authenticated"
    assert "Authentication required" in error["message"]
    assert response.json()["data"] is None
    assert Vote.objects.count() == 0


def test_invalid_bearer_token_is_a_401(poll):
    response = gql("{ polls { id } }", HTTP_AUTHORIZATION="Bearer not.a.token")
    assert response.status_code == 401
    assert error_of(response)["extensions"]["code"] == "token_not_valid"


def test_vote_refusals_carry_the_rest_codes(make_poll, other_user, poll):
    expired = make_poll(expired=True)
    error = error_of(gql(VOTE, {"poll": expired.pk, "option": expired.options.first().pk}, user=other_user))
    assert error["extensions"]["code"] == "poll_closed"

    error = error_of(gql(VOTE, {"poll": poll.pk, "option": expired.options.first().pk}, user=other_user))
    assert error["extensions"] == {"code": "invalid", "status": 400, "field": "option"}

    error = error_of(gql(VOTE, {"poll": poll.pk, "option": "abc"}, user=other_user))
    assert error["extensions"]["field"] == "option"

    error = error_of(gql(VOTE, {"poll": 999999, "option": poll.options.first().pk}, user=other_user))
    assert error["extensions"]["code"] == "not_found"
    assert Vote.objects.count() == 0


def test_vote_mutation_obeys_the_vote_rate_limit(make_poll, other_user, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "vote_user": "2/min"},
    }
    polls = [make_poll() for _ in range(3)]
    for poll in polls[:2]:
        data_of(gql(VOTE, {"poll": poll.pk, "option": poll.options.first().pk}, user=other_user))
    error = error_of(gql(VOTE, {"poll": polls[2].pk, "option": polls[2].options.first().pk}, user=other_user))
    assert error["extensions"]["code"] == "throttled"
    assert error["extensions"]["status"] == 429
    assert error["message"].startswith("Too many votes: try again in ")
    assert Vote.objects.filter(user=other_user).count() == 2


def test_session_user_can_vote_with_csrf_and_is_refused_without(other_user, poll):
    client = Client(enforce_csrf_checks=True)
    client.force_login(other_user)
    variables = {"poll": poll.pk, "option": poll.options.first().pk}
    refused = gql(VOTE, variables, client=client)
    assert refused.status_code == 403
    assert error_of(refused)["extensions"]["code"] == "csrf_failed"

    client.get(URL, HTTP_ACCEPT="text/html")  # GraphiQL page sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    data = data_of(gql(VOTE, variables, client=client, HTTP_X_CSRFTOKEN=token))
    assert Vote.objects.get(pk=data["vote"]["id"]).user == other_user


def test_anonymous_queries_need_no_csrf_token(poll):
    response = gql("{ polls { id } }", client=Client(enforce_csrf_checks=True))
    assert data_of(response)["polls"] == [{"id": str(poll.pk)}]


def test_mutations_are_not_allowed_over_get(other_user, poll):
    response = Client().get(
        URL,
        {"query": f'mutation {{ vote(pollId: "{poll.pk}", optionId: "1") {{ id }} }}'},
        HTTP_AUTHORIZATION=bearer(other_user),
    )
    assert response.status_code == 400
    assert b"mutations are not allowed when using GET" in response.content
    assert Vote.objects.count() == 0


def test_malformed_json_body_is_a_400(poll):
    response = Client().post(URL, data='{"query": "{ polls { id } ', content_type="application/json")
    assert response.status_code == 400


def test_syntax_errors_and_unexpected_failures(monkeypatch, poll):
    error = error_of(gql("{ polls { id "))
    assert "Syntax Error" in error["message"]

    def explode(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("nexus_backend.polls.selectors.poll_results", explode)
    error = error_of(gql("query($p: ID!) { results(pollId: $p) { totalVotes } }", {"p": poll.pk}))
    assert error["message"] == "Unexpected error."
    assert "secret" not in str(error)


def test_graphiql_page_is_served(poll):
    response = Client().get(URL, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"graphiql" in response.content.lower()
    assert Poll.objects.count() == 1


def test_the_request_log_records_each_operation_as_rest_would(monkeypatch, poll, other_user):
    """`/graphql/<type>/<first field>` with the status REST would give (the detector's rules read these)."""
    from nexus_backend.tracking import flusher
    from nexus_backend.tracking.models import RequestLog
    from nexus_backend.tracking.recorder import RECORDER

    option = poll.options.first()
    gql(VOTE, {"poll": poll.pk, "option": option.pk}, user=other_user)  # 201
    gql(f"{{ first: poll(id: {poll.pk}) {{ id }} polls {{ id }} }}")  # 200, named by its first field, not its alias
    gql("{ a: polls { id } } { b: polls { id } }")  # two anonymous operations: invalid, no operation to name
    gql("{ " + " ".join(f"a{i}: polls {{ id }}" for i in range(16)) + " }")  # over the alias limit: 400

    def explode(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("nexus_backend.polls.selectors.poll_results", explode)
    gql("query($p: ID!) { results(pollId: $p) { totalVotes } }", {"p": poll.pk})  # 500
    RECORDER.flush_buffer()
    flusher.flush()
    rows = list(
        RequestLog.objects.filter(path__startswith=URL).order_by("timestamp").values_list("path", "status_code")
    )
    assert rows == [
        ("/graphql/mutation/vote", 201),
        ("/graphql/query/poll", 200),
        ("/graphql/", 400),
        ("/graphql/query/polls", 400),
        ("/graphql/query/results", 500),
    ]
