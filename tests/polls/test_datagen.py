"""The data generator: exact, seeded, constraint-respecting data; clear refusals for nonsense scales."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Min

from nexus_backend.polls import counting
from nexus_backend.polls.models import Option, Poll, Vote
from nexus_lab.polls import datagen, explain

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"votes": -1}, "votes must be from 0 to 20,000,000, got -1"),
        ({"votes": 10**9}, "votes must be from 0 to 20,000,000, got 1,000,000,000"),
        ({"votes": 2.5}, "votes must be a whole number from 0 to 20,000,000, got 2.5"),
        ({"votes": True}, "votes must be a whole number"),
        ({"votes": "many"}, "votes must be a whole number"),
        ({"votes": 100, "polls": 0}, "polls must be from 1 to 100,000, got 0"),
        ({"votes": 100, "options": 1}, "options must be from 2 to 20, got 1"),
        ({"votes": 100, "options": 21}, "options must be from 2 to 20, got 21"),
        ({"votes": 100, "skew": -1}, "skew must be a number from 0"),
        ({"votes": 1000, "polls": 1, "users": 10}, "users=10 is too few: one vote per user per poll"),
    ],
)
def test_nonsense_scales_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(datagen.ScaleError) as caught:
        datagen.plan_scale(**kwargs)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_split_is_exact_and_hot_first():
    split = datagen.split_votes(1_000_000, 1_000, 1.0)
    assert sum(split) == 1_000_000 and list(split) == sorted(split, reverse=True)
    assert datagen.split_votes(10, 4, 0.0) == (3, 3, 2, 2)
    scale = datagen.plan_scale(votes=1_000_000)
    assert scale.polls == 1_000 and scale.users >= scale.hottest_poll_votes


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--votes", "-5"], "votes must be from 0 to 20,000,000, got -5"),
        (["--votes", "lots"], "not a number of rows: 'lots'"),
        (["--votes", "1.5"], "not a whole number of rows"),
        (["--votes", "1e6", "--polls", "1", "--users", "5"], "users=5 is too few"),
        (["--votes", "10", "--prefix", "Bad-Prefix"], "prefix must be a lowercase letter"),
    ],
)
def test_the_command_refuses_nonsense_in_one_line(args, message):
    with pytest.raises(CommandError) as caught:
        call_command("gen_votes", *args, "--no-progress")
    assert message in str(caught.value)
    assert Vote.objects.count() == 0


@pytest.mark.django_db
def test_generated_data_is_exact_valid_and_seeded(make_poll):
    others = make_poll()  # someone else's poll: never touched
    made = datagen.generate(votes=3_000, polls=7, options=3, seed=5, prefix="t_", now=NOW)

    polls = Poll.objects.filter(owner__username__startswith="t_")
    assert polls.count() == 7 and made.polls == 7
    votes = Vote.objects.filter(poll__in=polls)
    assert votes.count() == 3_000
    per_poll = dict(votes.values_list("poll").annotate(n=Count("id")))
    assert [per_poll.get(pid, 0) for pid in made.poll_ids] == list(datagen.split_votes(3_000, 7, 1.0))
    assert made.hot_poll_id == made.poll_ids[0] and made.hot_poll_votes == per_poll[made.hot_poll_id]
    assert Option.objects.filter(poll__in=polls).count() == 21
    assert counting.counters_drift() == []  # counters loaded with the votes
    assert get_user_model().objects.filter(username__startswith="t_").count() == made.users
    assert not get_user_model().objects.get(username="t_u0000001").has_usable_password()
    for poll in polls.annotate(first=Min("votes__created_at"), last=Max("votes__created_at")):
        ends = poll.expires_at if poll.expires_at is not None and poll.expires_at < NOW else NOW
        assert poll.created_at < NOW and poll.created_at <= poll.first and poll.last <= ends  # inside the poll's life
        assert poll.is_closed == (poll.expires_at is not None and poll.expires_at <= NOW)
    assert not votes.filter(created_at__gt=NOW).exists()

    shape = sorted(Option.objects.filter(poll__in=polls).values_list("poll__question", "text", "vote_count"))
    again = datagen.generate(votes=3_000, polls=7, options=3, seed=5, prefix="t_", now=NOW)  # replaces t_'s data
    assert sorted(
        Option.objects.filter(poll__in=again.poll_ids).values_list("poll__question", "text", "vote_count")
    ) == (shape)
    assert Poll.objects.filter(owner__username__startswith="t_").count() == 7
    assert Poll.objects.filter(pk=others.pk).exists()

    gone = datagen.delete(prefix="t_")
    assert gone == {"users": made.users, "polls": 7, "votes": 3_000}
    assert not Poll.objects.filter(owner__username__startswith="t_").exists()
    assert Poll.objects.filter(pk=others.pk).exists()


@pytest.mark.django_db
def test_the_bulk_path_restores_every_constraint_and_index():
    """From BULK_VOTES votes the vote table's foreign keys and plain indexes are set aside during COPY and rebuilt."""
    before = explain.index_names()
    made = datagen.generate(votes=datagen.BULK_VOTES, polls=50, seed=1, prefix="bulk_", now=NOW)
    assert "votes_foreign_keys_s" in made.timings and "votes_indexes_s" in made.timings
    assert explain.index_names() == before
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = 'polls_vote'::regclass AND contype = 'f'")
        assert cursor.fetchone()[0] == 4  # poll, option, user, and (option, poll)
    assert Vote.objects.count() == datagen.BULK_VOTES
