"""The four counting strategies behind one interface: same numbers (the summary after a refresh, the counter after
a fold), the API reads delta, the summary is stale until refreshed, and the counter can be checked and rebuilt.
The delta strategy's own guarantees (exact before and after folds, under concurrency, deletes racing a fold) are in
test_counting_delta.py; processes killed mid-way in tests/faults/test_counting_killed.py."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from nexus_backend.polls import counting, selectors, services, tasks
from nexus_backend.polls.models import VOTE_DELTA_TABLE, Option

pytestmark = pytest.mark.django_db


@pytest.fixture
def voted(poll, make_user):
    """``poll`` with 3 votes for its first option and 1 for its second."""
    first, second, _ = poll.options.all()
    for option in (first, first, first, second):
        services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=make_user())
    return poll


def _votes(results) -> list[int]:
    return [o.votes for o in results.options]


def test_every_strategy_counts_the_same_once_the_summary_is_refreshed_and_the_deltas_folded(voted):
    assert counting.deltas_fold() == 4
    counting.summary_refresh()
    for name in counting.STRATEGIES:
        results = selectors.poll_results(poll_id=voted.pk, strategy=name)
        assert _votes(results) == [3, 1, 0], name
        assert results.total_votes == 4 and results.strategy == name


def test_the_summary_is_stale_until_its_refresh(voted, make_user):
    counting.summary_refresh()
    services.vote_cast(poll_id=voted.pk, option_id=voted.options.last().pk, user=make_user())
    assert _votes(selectors.poll_results(poll_id=voted.pk, strategy="summary")) == [3, 1, 0]
    assert _votes(selectors.poll_results(poll_id=voted.pk, strategy="count")) == [3, 1, 1]
    assert _votes(selectors.poll_results(poll_id=voted.pk, strategy="delta")) == [3, 1, 1]
    took = tasks.refresh_vote_summary()  # the Celery task, called in-process
    assert took is not None and took >= 0
    assert _votes(selectors.poll_results(poll_id=voted.pk, strategy="summary")) == [3, 1, 1]


def test_the_api_and_graphql_read_the_counter_plus_the_pending_deltas(voted, api_client):
    """Proof by sabotage: a counter changed behind the services' back, and a pending delta that no vote made, are
    both in what the results endpoint and GraphQL show."""
    assert counting.RESULTS_STRATEGY == "delta"
    first, _second, third = voted.options.all()
    Option.objects.filter(pk=first.pk).update(vote_count=42)  # none of its 3 votes is folded yet: 42 + 3
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {VOTE_DELTA_TABLE} (vote_id, poll_id, option_id) VALUES (0, %s, %s)", [voted.pk, third.pk]
        )
    body = api_client.get(f"/api/polls/{voted.pk}/results/").json()
    assert [o["votes"] for o in body["options"]] == [45, 1, 1] and body["total_votes"] == 47
    query = '{ results(pollId: "' + str(voted.pk) + '") { totalVotes } }'
    assert api_client.post("/graphql/", {"query": query}, format="json").json()["data"]["results"]["totalVotes"] == 47
    with counting.using("count"):
        body = api_client.get(f"/api/polls/{voted.pk}/results/").json()
    assert [o["votes"] for o in body["options"]] == [3, 1, 0]
    assert counting.results_strategy() == "delta"  # the override ended with its block


def test_the_setting_names_exactly_the_strategies():
    assert tuple(settings.POLLS_COUNTING_STRATEGIES) == tuple(counting.STRATEGIES)
    assert settings.POLLS_RESULTS_STRATEGY == counting.RESULTS_STRATEGY


def test_a_vote_takes_the_api_strategys_write_path(poll, other_user):
    """Under ``delta`` a vote appends a pending row and leaves the counter alone (no row lock on the option)."""
    option = poll.options.first()
    services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=other_user)
    option.refresh_from_db()
    assert option.vote_count == 0 and counting.deltas_pending(poll_ids=[poll.pk]) == 1
    assert counting.counted(poll_ids=[poll.pk])[option.pk] == 1


def test_drift_is_found_and_rebuilt(voted):
    first = voted.options.first()
    assert counting.counters_drift() == []
    counting.deltas_fold()
    Option.objects.filter(pk=first.pk).update(vote_count=7)
    assert counting.counters_drift(poll_ids=[voted.pk]) == [(first.pk, 7, 3)]
    assert counting.counters_rebuild(poll_ids=[voted.pk]) == 1
    assert counting.counters_drift() == []
    assert counting.counters_rebuild() == 0


def test_the_count_write_path_skips_the_counter(poll, other_user):
    """What the benchmark measures for 'count' and 'summary': the vote without the counter update."""
    option = poll.options.first()
    services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=other_user, strategy="count")
    option.refresh_from_db()
    assert option.vote_count == 0 and counting.deltas_pending(poll_ids=[poll.pk]) == 0
    assert counting.counters_drift(poll_ids=[poll.pk]) == [(option.pk, 0, 1)]


def test_unknown_strategies_are_refused_by_name(poll):
    with pytest.raises(
        ValueError, match="unknown counting strategy 'fast' \\(choose from count, counter, summary, delta\\)"
    ):
        selectors.poll_results(poll_id=poll.pk, strategy="fast")
    with pytest.raises(ValueError), counting.using("nope"):
        pass


def test_results_take_two_queries_whatever_the_strategy(voted, django_assert_num_queries):
    for name in counting.STRATEGIES:
        with django_assert_num_queries(2):
            selectors.poll_results(poll_id=voted.pk, strategy=name)
