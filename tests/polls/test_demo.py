"""Demo data: seeded, idempotent, confined to its username prefix."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count

from nexus_backend.polls import services
from nexus_backend.polls.demo import TOPICS, demo_reset, demo_seed
from nexus_backend.polls.models import Option, Poll, Vote

User = get_user_model()


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    """Seeding registers users through the service; a cheap (real) hasher keeps these tests quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def snapshot(prefix: str) -> list:
    """Everything demo data decides, without row ids or timestamps."""
    polls = Poll.objects.filter(owner__username__startswith=prefix).select_related("owner").order_by("id")
    state = []
    for poll in polls:
        options = (
            Option.objects.filter(poll=poll).annotate(n=Count("votes")).order_by("position").values_list("text", "n")
        )
        voters = sorted(poll.votes.values_list("user__username", "option__text"))
        expires = None if poll.expires_at is None else round((poll.expires_at - poll.created_at).total_seconds())
        state.append((poll.owner.username, poll.question, expires, list(options), voters))
    users = sorted(User.objects.filter(username__startswith=prefix).values_list("username", flat=True))
    return [users, state]


@pytest.mark.django_db
def test_seed_twice_gives_the_same_state():
    first = demo_seed(seed=3, polls=3, users=6, prefix="t_")
    before = snapshot("t_")
    second = demo_seed(seed=3, polls=3, users=6, prefix="t_")
    assert snapshot("t_") == before
    assert first["users_created"] == 6 and second["users_created"] == 0
    assert first["votes"] == second["votes"] == Vote.objects.filter(user__username__startswith="t_").count()
    assert before[0] == [f"t_user{i:03d}" for i in range(1, 7)]
    assert len(before[1]) == 3 and first["votes"] > 0


@pytest.mark.django_db
def test_the_seed_decides_the_votes():
    demo_seed(seed=1, polls=4, users=8, prefix="t_")
    one = snapshot("t_")
    demo_seed(seed=2, polls=4, users=8, prefix="t_")
    assert snapshot("t_") != one


@pytest.mark.django_db
def test_reseeding_with_fewer_users_or_polls_removes_the_rest():
    demo_seed(seed=5, polls=4, users=6, prefix="t_")
    summary = demo_seed(seed=5, polls=2, users=3, prefix="t_")
    users, polls = snapshot("t_")
    assert users == ["t_user001", "t_user002", "t_user003"]
    assert len(polls) == 2 == summary["polls"]


@pytest.mark.django_db
def test_more_polls_than_topics_get_distinct_questions():
    demo_seed(seed=1, polls=len(TOPICS) + 2, users=2, prefix="t_")
    questions = list(Poll.objects.filter(owner__username__startswith="t_").values_list("question", flat=True))
    assert len(questions) == len(set(questions)) == len(TOPICS) + 2
    assert any(q.endswith("(round 2)") for q in questions)


@pytest.mark.django_db
def test_reset_removes_only_its_prefix(make_user):
    outsider = make_user("tina")  # not "t_..."
    their_poll = services.poll_create(owner=outsider, question="Mine?", options=["a", "b"])
    demo_seed(seed=1, polls=2, users=3, prefix="t_")
    voter = User.objects.get(username="t_user001")
    services.vote_cast(poll_id=their_poll.pk, option_id=their_poll.options.first().pk, user=voter)

    removed = demo_reset(prefix="t_")

    assert removed["users"] == 3 and removed["polls"] == 2 and removed["votes"] >= 1
    assert not User.objects.filter(username__startswith="t_").exists()
    assert not Vote.objects.filter(poll=their_poll).exists()  # t_user001's vote went with the user
    assert Poll.objects.filter(pk=their_poll.pk).exists()
    assert User.objects.filter(pk=outsider.pk).exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefix": ""}, "prefix must be"),
        ({"prefix": "demo"}, "prefix must be"),
        ({"prefix": "a%_"}, "prefix must be"),
        ({"polls": 0}, "polls must be an integer from 1"),
        ({"users": "3"}, "users must be an integer"),
        ({"users": True}, "users must be an integer"),
        ({"seed": -1}, "seed must be an integer"),
    ],
)
@pytest.mark.django_db
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        demo_seed(**{"prefix": "t_", **kwargs})
    assert not User.objects.filter(username__startswith="t_").exists()


def test_reset_refuses_a_prefix_that_could_match_everyone():
    with pytest.raises(ValueError, match="prefix must be"):
        demo_reset(prefix="")


@pytest.mark.django_db
def test_seed_demo_command_prints_one_line(capsys):
    call_command("seed_demo", "--users", "3", "--polls", "2", "--seed", "4")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith("demo data: 3 users (3 new), 2 polls, ")
    assert User.objects.filter(username__startswith="demo_").count() == 3


@pytest.mark.django_db
def test_seed_demo_command_bad_arguments():
    with pytest.raises(CommandError, match="^polls must be an integer from 1 to 500, got 0$"):
        call_command("seed_demo", "--polls", "0")
