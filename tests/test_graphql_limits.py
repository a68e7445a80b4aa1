"""/graphql/ refuses queries that are too deep, too aliased or too long, before any resolver runs.

The limits are settings (NEXUS_GRAPHQL_MAX_DEPTH / _ALIASES / _TOKENS, read on every request), so tests lower
them where the real schema is too shallow to go past the default. A refused document is answered like any
document that fails GraphQL validation: HTTP 200, ``data: null`` and one error naming the limit.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from graphql import get_introspection_query

URL = "/graphql/"
NORMAL = "{ polls { id question ownerUsername options { id text } } }"  # depth 2, as the notebooks and tests ask


def post(query: str) -> dict:
    response = Client().post(URL, json.dumps({"query": query}), content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def aliases(count: int) -> str:
    return "{ " + " ".join(f"a{i}: polls(limit: 1) {{ id }}" for i in range(count)) + " }"


@pytest.fixture
def refused_before_running(django_assert_num_queries):
    """A refused document must not reach a resolver: not one database query."""
    with django_assert_num_queries(0):
        yield


def test_a_normal_query_and_the_graphiql_introspection_still_work(poll):
    body = post(NORMAL)
    assert "errors" not in body
    assert [option["text"] for option in body["data"]["polls"][0]["options"]] == ["Cheese", "Mushroom", "Pineapple"]
    introspection = post(get_introspection_query(descriptions=True))  # GraphiQL's, nested ~10 deep: not counted
    assert "errors" not in introspection
    assert introspection["data"]["__schema"]["queryType"]["name"] == "Query"


def test_a_query_nested_past_the_limit_is_refused(db, settings, refused_before_running):
    settings.NEXUS_GRAPHQL_MAX_DEPTH = 1
    body = post("query Nested { polls { options { text } } }")
    assert body["data"] is None
    assert [error["message"] for error in body["errors"]] == ["'Nested' exceeds maximum operation depth of 1"]


def test_the_default_depth_limit_refuses_deep_nesting_through_fragments(db, refused_before_running):
    # Nine levels below `polls`, hidden in fragments (the limiter follows them). The fields need not exist for
    # an attacker to try; the depth error is reported beside the unknown-field ones and nothing runs.
    levels = 9
    fragments = " ".join(f"fragment L{i} on Option {{ n{i} {{ ...L{i + 1} }} }}" for i in range(levels))
    query = f"{{ polls {{ options {{ ...L0 }} }} }} {fragments} fragment L{levels} on Option {{ id }}"
    body = post(query)
    assert body["data"] is None
    assert "'anonymous' exceeds maximum operation depth of 8" in [error["message"] for error in body["errors"]]


def test_an_alias_bomb_is_refused(db, refused_before_running):
    body = post(aliases(16))
    assert body == {"data": None, "errors": [{"message": "16 aliases found. Allowed: 15"}]}


def test_aliases_up_to_the_limit_are_answered(poll):
    assert len(post(aliases(15))["data"]) == 15


def test_the_alias_limit_comes_from_settings(db, settings):
    settings.NEXUS_GRAPHQL_MAX_ALIASES = 2
    assert post(aliases(3))["errors"] == [{"message": "3 aliases found. Allowed: 2"}]
    assert len(post(aliases(2))["data"]) == 2


def test_a_huge_query_is_refused_while_parsing(db, refused_before_running):
    query = "{ polls { " + " ".join(["id"] * 3000) + " } }"
    body = post(query)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == "Syntax Error: Document contains more than 2000 tokens. Parsing aborted."
