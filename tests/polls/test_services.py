"""Services and selectors called directly, as tasks and notebooks call them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from nexus_backend.core.exceptions import Conflict, DomainError, NotFound, PermissionDenied
from nexus_backend.polls import selectors, services
from nexus_backend.polls.models import Poll, Vote

pytestmark = pytest.mark.django_db


def test_poll_create_strips_and_orders_options(user):
    poll = services.poll_create(owner=user, question="  Why?  ", options=[" b ", "a", "c"])
    assert poll.question == "Why?"
    assert list(poll.options.values_list("text", "position")) == [("b", 0), ("a", 1), ("c", 2)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"question": "x" * 301}, "question"),
        ({"options": ["a", "b" * 201]}, "options"),
        ({"options": ["a", "  "]}, "options"),
        ({"options": ["Yes", "YES"]}, "options"),
        ({"expires_at": timezone.now() - timedelta(seconds=1)}, "expires_at"),
    ],
)
def test_poll_create_refuses_bad_input_as_domain_errors(user, kwargs, field):
    """Too long for the column is a DomainError naming the field, not a database error."""
    with pytest.raises(DomainError) as caught:
        services.poll_create(owner=user, **{"question": "Q?", "options": ["a", "b"], **kwargs})
    assert caught.value.field == field
    assert Poll.objects.count() == 0


def test_poll_update_rules(poll, other_user, staff_user):
    with pytest.raises(PermissionDenied):
        services.poll_update(poll_id=poll.pk, user=other_user, question="Mine now?")
    with pytest.raises(NotFound):
        services.poll_update(poll_id=987654, user=staff_user, question="x")
    with pytest.raises(DomainError) as caught:
        services.poll_update(poll_id=poll.pk, user=staff_user, question="y" * 301)
    assert caught.value.field == "question"
    updated = services.poll_update(poll_id=poll.pk, user=staff_user, options=["One", "Two"])
    assert list(updated.options.values_list("text", flat=True)) == ["One", "Two"]

    services.vote_cast(poll_id=poll.pk, option_id=updated.options.first().pk, user=other_user)
    with pytest.raises(Conflict):
        services.poll_update(poll_id=poll.pk, user=staff_user, options=["Three", "Four"])


def test_poll_delete_removes_options_and_votes(poll, other_user, user):
    services.vote_cast(poll_id=poll.pk, option_id=poll.options.first().pk, user=other_user)
    with pytest.raises(PermissionDenied):
        services.poll_delete(poll_id=poll.pk, user=other_user)
    services.poll_delete(poll_id=poll.pk, user=user)
    assert not Poll.objects.filter(pk=poll.pk).exists()
    assert Vote.objects.count() == 0


def test_vote_cast_rules(poll, make_poll, other_user):
    option = poll.options.first()
    vote = services.vote_cast(poll_id=poll.pk, option_id=str(option.pk), user=other_user)
    assert vote.option_id == option.pk
    with pytest.raises(services.AlreadyVoted):
        services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=other_user)
    with pytest.raises(NotFound):
        services.vote_cast(poll_id=10**20, option_id=option.pk, user=other_user)
    with pytest.raises(DomainError) as caught:
        services.vote_cast(poll_id=make_poll().pk, option_id=10**20, user=other_user)
    assert caught.value.field == "option"


def test_polls_close_expired_is_idempotent(make_poll):
    expired, still_open = make_poll(expired=True), make_poll()
    assert services.polls_close_expired() == 1
    assert services.polls_close_expired() == 0
    assert Poll.objects.get(pk=expired.pk).is_closed
    assert not Poll.objects.get(pk=still_open.pk).is_closed


def test_poll_list_active_filter_and_poll_get(make_poll, user):
    open_poll, expired = make_poll(owner=user), make_poll(expired=True)
    assert list(selectors.poll_list(active=True)) == [open_poll]
    assert list(selectors.poll_list(active=False)) == [expired]
    assert list(selectors.poll_list(owner_id=user.pk)) == [open_poll]
    with pytest.raises(NotFound):
        selectors.poll_get(poll_id="abc")


def test_poll_results_counts_every_option(poll, make_user):
    cheese = poll.options.get(text="Cheese")
    for _ in range(2):
        services.vote_cast(poll_id=poll.pk, option_id=cheese.pk, user=make_user())
    results = selectors.poll_results(poll_id=poll.pk)
    assert results.total_votes == 2
    assert [(o.text, o.votes) for o in results.options] == [("Cheese", 2), ("Mushroom", 0), ("Pineapple", 0)]
    assert results.as_dict()["options"][0] == {"id": cheese.pk, "text": "Cheese", "votes": 2}


def test_the_close_task_is_enqueued_by_its_registered_name():
    """Services name the task (they never import the tasks module, which calls them): the name must be the task's."""
    from nexus_backend.polls import tasks

    assert services.CLOSE_POLL_TASK == tasks.close_poll.name
