"""The ``delta`` counting strategy (the API's): exact after every vote, before and after a fold; folds are
idempotent and never count a vote twice; concurrent voters with folds running leave counts equal to ``COUNT(*)``;
a delete racing a fold neither loses nor keeps a vote. Real PostgreSQL, real threads and transactions."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from nexus_backend.polls import counting, selectors, services, tasks
from nexus_backend.polls.counting import _FOLD
from nexus_backend.polls.models import Vote
from nexus_lab.polls import bench
from tests.faults.harness import wait_for


def _votes(poll_id: int, strategy: str = "delta") -> list[int]:
    return [o.votes for o in selectors.poll_results(poll_id=poll_id, strategy=strategy).options]


def _crowd(n: int, prefix: str) -> list:
    User = get_user_model()
    return User.objects.bulk_create(
        User(username=f"{prefix}{i:04d}", email=f"{prefix}{i:04d}@example.com", password="!") for i in range(n)
    )


@pytest.mark.django_db
def test_every_vote_is_in_the_next_read_and_a_fold_changes_no_count(poll, make_user):
    first, second, third = poll.options.all()
    expected = [0, 0, 0]
    for i, option in enumerate([first, first, second, first, third, second]):
        services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=make_user())
        expected[[first, second, third].index(option)] += 1
        assert _votes(poll.pk) == expected  # the read right after the vote includes it
        if i % 2:
            assert tasks.fold_vote_deltas() >= 1  # the Celery task, in-process
            assert _votes(poll.pk) == expected == _votes(poll.pk, "counter")
    assert _votes(poll.pk) == _votes(poll.pk, "count")


@pytest.mark.django_db
def test_a_fold_is_idempotent(poll, make_user):
    option = poll.options.first()
    for _ in range(3):
        services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=make_user())
    assert counting.deltas_pending(poll_ids=[poll.pk]) == 3
    assert counting.deltas_fold() == 3
    assert counting.deltas_fold() == 0  # nothing left: running it again changes nothing
    option.refresh_from_db()
    assert option.vote_count == 3 and counting.deltas_pending() == 0
    assert counting.counters_drift(poll_ids=[poll.pk]) == []


@pytest.mark.django_db
def test_a_vote_refused_by_the_database_leaves_no_delta(poll, other_user):
    option = poll.options.first()
    services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=other_user)
    with pytest.raises(services.AlreadyVoted):
        services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=other_user)
    assert counting.deltas_pending(poll_ids=[poll.pk]) == 1 and _votes(poll.pk)[0] == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
def test_concurrent_voters_on_one_option_with_folds_running_count_every_vote_once(poll):
    users = _crowd(600, "hot")
    hot, *others = list(poll.options.values_list("pk", flat=True))
    ballots = [(u.pk, hot if i % 4 else others[i % len(others)]) for i, u in enumerate(users)]
    with bench.folding(interval=0.05) as folded:
        race = bench.race_votes(poll_id=poll.pk, ballots=ballots, workers=32, strategy="delta")
    assert race.outcomes == {"created": 600}, race.outcomes
    assert sum(folded) > 0  # folds really ran during the race (else this proves nothing about them)
    assert bench.counts_exact(strategy="delta", poll_ids=[poll.pk]) == []
    assert counting.counters_drift(poll_ids=[poll.pk]) == []
    assert sum(_votes(poll.pk)) == Vote.objects.filter(poll=poll).count() == 600
    counting.deltas_fold()
    assert bench.counts_exact(strategy="counter", poll_ids=[poll.pk]) == []


def _fold_held_open(holding: threading.Event, release: threading.Event) -> None:
    """The fold's statement in a transaction kept open (its deltas deleted and counters updated, not committed)
    from ``holding`` until ``release``; then it commits."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_FOLD)
            holding.set()
            release.wait(60)
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_voters_are_not_blocked_by_a_fold_holding_its_locks(poll):
    """A fold keeps its transaction open (deltas deleted and counters updated, not committed): votes on the same
    option still go through, and every read sees each committed vote exactly once throughout."""
    users = _crowd(60, "busy")
    option = poll.options.first()
    for u in users[:20]:
        services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=u)
    holding, release = threading.Event(), threading.Event()

    fold = threading.Thread(target=_fold_held_open, args=(holding, release))
    fold.start()
    try:
        assert holding.wait(30)
        race = bench.race_votes(poll_id=poll.pk, ballots=[(u.pk, option.pk) for u in users[20:]], workers=8)
        assert race.outcomes == {"created": 40}
        assert _votes(poll.pk)[0] == 60  # old counter + all 60 deltas (the fold is not committed)
    finally:
        release.set()
        fold.join(30)
    assert _votes(poll.pk)[0] == 60  # new counter (20) + the 40 deltas that arrived during the fold
    assert counting.deltas_pending(poll_ids=[poll.pk]) == 40


def _waiting_on_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_a_vote_deleted_while_a_fold_holds_its_delta_is_subtracted_once(poll, make_user):
    """The delete trigger meets an uncommitted fold: its DELETE of the vote's delta waits for the fold, finds the
    delta gone (folded) once the fold commits, and decrements the counter the fold wrote instead."""
    option = poll.options.first()
    voters = [make_user() for _ in range(3)]
    for voter in voters:
        services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=voter)
    holding, release = threading.Event(), threading.Event()
    deleter_pid: list[int] = []

    def delete_vote():
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                deleter_pid.append(cursor.fetchone()[0])
            Vote.objects.filter(poll=poll, user=voters[0]).delete()
        finally:
            connections.close_all()

    fold = threading.Thread(target=_fold_held_open, args=(holding, release))
    fold.start()
    assert holding.wait(30)
    deleter = threading.Thread(target=delete_vote)
    deleter.start()
    try:
        wait_for(lambda: deleter_pid and _waiting_on_a_lock(deleter_pid[0]), 30, "the delete to wait for the fold")
    finally:
        release.set()
        fold.join(30)
        deleter.join(30)
    assert counting.counted(poll_ids=[poll.pk])[option.pk] == 2
    assert counting.counters_drift(poll_ids=[poll.pk]) == [] and counting.deltas_pending() == 0
