"""The poll API through the cache, end to end, against the real PostgreSQL and Redis: every write is visible to the
next read, hits do no database work, and the per-namespace counters agree with the test's own count.

These tests commit (``transaction=True``): invalidation happens after commit, so a test inside a rolled-back
transaction would only ever see the cache bypassed."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from nexus_backend.caching import config, keys, metrics
from nexus_backend.polls import selectors, services

from ..waiting import sleep_until

pytestmark = pytest.mark.django_db(transaction=True)


def results(client, poll_id):
    response = client.get(f"/api/polls/{poll_id}/results/")
    assert response.status_code == 200, response.content
    return response.json(), response.headers["X-Cache"]


def detail(client, poll_id):
    response = client.get(f"/api/polls/{poll_id}/")
    return response, response.headers.get("X-Cache")


def vote(client, poll_id, option_id):
    return client.post(f"/api/polls/{poll_id}/vote/", {"option": option_id}, format="json")


def test_a_vote_is_in_the_very_next_results_read(api_client, client_for, make_user, poll):
    cheese = poll.options.first()
    assert results(api_client, poll.pk)[1] == "miss"
    body, outcome = results(api_client, poll.pk)
    assert outcome == "hit" and body["total_votes"] == 0

    assert vote(client_for(make_user()), poll.pk, cheese.pk).status_code == 201
    body, outcome = results(api_client, poll.pk)
    assert outcome == "miss" and body["total_votes"] == 1
    assert body["options"][0] == {"id": cheese.pk, "text": "Cheese", "votes": 1}
    assert results(api_client, poll.pk) == (body, "hit")


def test_concurrent_voters_never_read_results_missing_an_acknowledged_vote(client_for, make_user, poll):
    """Voters vote and read at once while readers keep the entry hot: every results answer counts at least the
    votes acknowledged before it was asked, and each voter sees its own vote."""
    voters = [make_user() for _ in range(16)]
    options = list(poll.options.values_list("pk", flat=True))
    acknowledged = 0
    lock = threading.Lock()
    start = threading.Barrier(len(voters) + 4)
    problems: list[str] = []
    stop = threading.Event()

    def read_checked(client) -> str:
        with lock:
            floor = acknowledged
        body, outcome = results(client, poll.pk)
        if body["total_votes"] < floor:
            problems.append(f"read {body['total_votes']} votes after {floor} were acknowledged ({outcome})")
        return outcome

    def voter(user, option_id):
        nonlocal acknowledged
        client = client_for(user)
        try:
            start.wait(timeout=30)
            assert vote(client, poll.pk, option_id).status_code == 201
            with lock:
                acknowledged += 1
            read_checked(client)
        finally:
            connections.close_all()

    def reader():
        client = APIClient()
        seen = Counter()
        try:
            start.wait(timeout=30)
            while not stop.is_set():
                seen[read_checked(client)] += 1
        finally:
            connections.close_all()
        return seen

    with ThreadPoolExecutor(max_workers=len(voters) + 4) as pool:
        readers = [pool.submit(reader) for _ in range(4)]
        voting = [pool.submit(voter, u, options[i % len(options)]) for i, u in enumerate(voters)]
        for future in voting:
            future.result(timeout=60)
        stop.set()
        outcomes = sum((f.result(timeout=60) for f in readers), Counter())

    assert problems == []
    final, _ = results(APIClient(), poll.pk)
    assert final["total_votes"] == len(voters)
    assert outcomes["hit"] > 0  # the cache was in play, not bypassed


def test_editing_a_poll_refreshes_its_detail_and_the_list(api_client, auth_client, poll):
    assert detail(api_client, poll.pk)[1] == "miss"
    assert api_client.get("/api/polls/").headers["X-Cache"] == "miss"
    assert detail(api_client, poll.pk)[1] == "hit"

    response = auth_client.patch(f"/api/polls/{poll.pk}/", {"question": "Best pasta shape?"}, format="json")
    assert response.status_code == 200
    body, outcome = detail(api_client, poll.pk)
    assert (body.json()["question"], outcome) == ("Best pasta shape?", "miss")
    listed = api_client.get("/api/polls/")
    assert listed.headers["X-Cache"] == "miss"
    assert [p["question"] for p in listed.json()["results"]] == ["Best pasta shape?"]
    assert results(api_client, poll.pk)[0]["question"] == "Best pasta shape?"


def test_a_new_poll_is_in_the_next_list_page(api_client, auth_client, poll):
    assert api_client.get("/api/polls/").json()["count"] == 1
    assert api_client.get("/api/polls/").headers["X-Cache"] == "hit"
    created = auth_client.post(
        "/api/polls/", {"question": "Tea or coffee?", "options": ["Tea", "Coffee"]}, format="json"
    )
    assert created.status_code == 201
    listed = api_client.get("/api/polls/")
    assert listed.json()["count"] == 2 and listed.json()["results"][0]["id"] == created.json()["id"]


def test_a_deleted_poll_is_gone_at_once(api_client, auth_client, poll):
    assert detail(api_client, poll.pk)[0].status_code == 200
    assert detail(api_client, poll.pk)[1] == "hit"
    results(api_client, poll.pk)
    assert auth_client.delete(f"/api/polls/{poll.pk}/").status_code == 204
    assert detail(api_client, poll.pk)[0].status_code == 404
    assert api_client.get(f"/api/polls/{poll.pk}/results/").status_code == 404
    assert api_client.get("/api/polls/").json()["count"] == 0


def test_closing_expired_polls_refreshes_what_is_cached(api_client, make_poll):
    poll = make_poll(expires_at=timezone.now() + timedelta(days=1))
    assert detail(api_client, poll.pk)[0].json()["is_closed"] is False
    assert detail(api_client, poll.pk)[1] == "hit"
    assert services.polls_close_expired(now=timezone.now() + timedelta(days=2)) == 1
    body, outcome = detail(api_client, poll.pk)
    assert body.json()["is_closed"] is True and outcome == "miss"
    assert results(api_client, poll.pk)[0]["is_open"] is False


def test_an_open_poll_is_not_cached_past_its_expiry(api_client, make_poll):
    poll = make_poll(expires_at=timezone.now() + timedelta(seconds=5))  # a generous window for the first reads
    assert detail(api_client, poll.pk)[0].json()["is_open"] is True
    assert results(api_client, poll.pk)[0]["is_open"] is True
    assert detail(api_client, poll.pk)[1] == "hit"
    sleep_until(poll.expires_at)
    body, outcome = detail(api_client, poll.pk)
    assert body.json()["is_open"] is False and outcome == "miss"  # expired: no write happened, the entry ended
    body, outcome = results(api_client, poll.pk)
    assert body["is_open"] is False and outcome == "miss"
    assert results(api_client, poll.pk) == (body, "hit")


def test_a_hit_does_no_database_query_and_answers_the_same_bytes(api_client, poll):
    with config.configured(enabled=False):
        uncached = api_client.get(f"/api/polls/{poll.pk}/results/")
    assert uncached.headers["X-Cache"] == "off"
    api_client.get(f"/api/polls/{poll.pk}/results/")
    with CaptureQueriesContext(connection) as queries:
        hit = api_client.get(f"/api/polls/{poll.pk}/results/")
    assert hit.headers["X-Cache"] == "hit" and len(queries) == 0, [q["sql"] for q in queries]
    assert hit.content == uncached.content
    assert hit.headers["Content-Type"] == "application/json"
    for path in (f"/api/polls/{poll.pk}/", "/api/polls/?page_size=5"):
        with config.configured(enabled=False):
            plain = api_client.get(path).content
        api_client.get(path)
        assert api_client.get(path).content == plain


def test_the_browsable_api_still_renders_a_cached_body(api_client, poll):
    api_client.get(f"/api/polls/{poll.pk}/")
    page = api_client.get(f"/api/polls/{poll.pk}/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"Best pizza topping?" in page.content
    assert page.headers["X-Cache"] == "hit"


def test_list_pages_are_cached_per_query(api_client, make_poll):
    for _ in range(3):
        make_poll()
    first = api_client.get("/api/polls/", {"page_size": 2})
    second = api_client.get("/api/polls/", {"page_size": 2, "page": 2})
    assert first.headers["X-Cache"] == second.headers["X-Cache"] == "miss"
    assert first.json()["results"] != second.json()["results"]
    assert api_client.get("/api/polls/", {"page_size": 2, "utm_source": "x"}).headers["X-Cache"] == "hit"
    assert api_client.get("/api/polls/", {"page": 99}).status_code == 404  # errors are not cached
    assert api_client.get("/api/polls/", {"active": "maybe"}).status_code == 400


def test_hundred_concurrent_misses_on_one_results_key_recompute_once(api_client, poll, monkeypatch):
    computed = Counter()
    real = selectors.poll_results

    def counting(**kwargs):
        computed["results"] += 1
        time.sleep(0.3)  # an expensive count: every other request arrives while it runs
        return real(**kwargs)

    monkeypatch.setattr(selectors, "poll_results", counting)
    start = threading.Barrier(100)

    def read():
        client = APIClient()
        try:
            start.wait(timeout=30)
            return results(client, poll.pk)
        finally:
            connections.close_all()

    with metrics.measure() as window, ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(pool.map(lambda _: read(), range(100)))

    assert computed["results"] == 1
    assert {a[0]["total_votes"] for a in answers} == {0}
    outcomes = Counter(a[1] for a in answers)
    assert outcomes["miss"] == 1 and sum(outcomes.values()) == 100
    counted = window.result["namespaces"]["poll_results"]
    assert counted["computes"] == 1 and counted["hits"] + counted["misses"] == 100


def test_namespace_hit_ratio_matches_the_clients_own_count(api_client, client_for, make_user, make_poll, conn):
    """Seeded reads and votes through the API. Before each read the test asks Redis itself (its own GETs of the
    version counters and EXISTS on the value key) whether the answer is cached: its own count of hits and misses.
    The namespace counters must agree within 1% (they do exactly); INFO does not."""
    rng = random.Random(6)
    polls = [make_poll() for _ in range(5)]
    options = {p.pk: list(p.options.values_list("pk", flat=True)) for p in polls}
    crowd = [client_for(make_user()) for _ in range(40)]
    votes_cast = Counter()
    predicted = {name: Counter() for name in ("poll_results", "poll_detail")}
    seen = Counter()

    def is_cached(entry: keys.Entry) -> bool:
        versions = [(conn.get(k) or b"0").decode() for k in entry.version_keys]
        return bool(conn.exists(entry.value_key(versions)))

    with metrics.measure() as window:
        for _ in range(400):
            poll = polls[min(int(rng.paretovariate(1.0)) - 1, len(polls) - 1)]
            roll = rng.random()
            if roll < 0.15 and votes_cast[poll.pk] < len(crowd):
                voter = crowd[votes_cast[poll.pk]]
                assert vote(voter, poll.pk, rng.choice(options[poll.pk])).status_code == 201
                votes_cast[poll.pk] += 1
            elif roll < 0.7:
                cached = is_cached(keys.poll_results_entry(poll_id=poll.pk))
                predicted["poll_results"]["hit" if cached else "miss"] += 1
                seen[results(api_client, poll.pk)[1]] += 1
            else:
                cached = is_cached(keys.poll_detail_entry(poll_id=poll.pk))
                predicted["poll_detail"]["hit" if cached else "miss"] += 1
                seen[detail(api_client, poll.pk)[1]] += 1

    for name, own in predicted.items():
        counted = window.result["namespaces"][name]
        own_ratio = own["hit"] / (own["hit"] + own["miss"])
        assert abs(counted["hit_ratio"] - own_ratio) <= 0.01, (name, counted, own)
        assert (counted["hits"], counted["misses"]) == (own["hit"], own["miss"])
    assert seen["hit"] == sum(c["hit"] for c in predicted.values())  # the X-Cache headers agree too


def test_writes_outside_the_services_invalidate_too(api_client, poll):
    """The admin or a shell saves models directly: the Poll and Option signals invalidate what they change."""
    detail(api_client, poll.pk)
    assert detail(api_client, poll.pk)[1] == "hit"
    poll.question = "Edited in the admin?"
    poll.save()
    body, outcome = detail(api_client, poll.pk)
    assert (body.json()["question"], outcome) == ("Edited in the admin?", "miss")
    option = poll.options.first()
    option.text = "Extra cheese"
    option.save()
    assert detail(api_client, poll.pk)[0].json()["options"][0]["text"] == "Extra cheese"
