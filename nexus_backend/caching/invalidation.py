"""The write path: after a transaction commits, bump the versions of exactly what it changed.

Services call these inside their transaction; the bump is registered with ``transaction.on_commit`` so it happens
after the commit (never for a rolled-back write), before the view answers the client that wrote. Until then the
same transaction reads the entries it changed from the database (see ``store._written_in_this_transaction``).

What each strategy bumps (``NEXUS_CACHE["INVALIDATION"]``):

- ``precise``: a vote -> that poll's votes counter (its results); a poll created, edited, closed or deleted -> that
  poll's counter (detail and results) and the list counter (every list page).
- ``global``: any write -> the epoch (every entry of every namespace).
- ``ttl``: nothing; entries live out their TTL (shown in the cache notebook, never the default).

If Redis does not answer, the keys are remembered and bumped when it answers again (``store.Availability``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from . import keys
from .config import get_config
from .store import REDIS_ERRORS, Invalidation, bump, connection

logger = logging.getLogger(__name__)


def _schedule(precise_keys: Iterable[str], reason: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    strategy = get_config().invalidation
    if strategy == "ttl":
        return
    version_keys = frozenset(keys.everything_keys() if strategy == "global" else precise_keys)
    if _already_pending(version_keys, using):
        return
    transaction.on_commit(Invalidation(version_keys, reason), using=using, robust=True)


def _already_pending(version_keys: frozenset[str], using: str) -> bool:
    """Is an invalidation of these keys already waiting for this commit (e.g. the service's and the model
    signal's for one poll save)? Only one registered where it survives whatever ours would survive counts:
    Django drops the callbacks of a rolled-back savepoint, so its savepoints must be a subset of ours."""
    conn = connections[using]
    if not conn.in_atomic_block:
        return False
    current = set(conn.savepoint_ids)
    return any(
        isinstance(func, Invalidation) and version_keys <= func.version_keys and set(sids) <= current
        for sids, func, *_ in conn.run_on_commit
    )


def poll_changed(*, poll_id: int) -> None:
    """A poll was created, edited (question, options, expiry), closed or deleted."""
    _schedule(keys.poll_changed_keys(poll_id), f"poll {poll_id} changed")


def polls_changed(*, poll_ids: Iterable[int]) -> None:
    """Several polls changed at once (e.g. closed by the expiry task)."""
    version_keys = {k for poll_id in poll_ids for k in keys.poll_changed_keys(poll_id)}
    if version_keys:
        _schedule(version_keys, "polls changed")


def votes_changed(*, poll_id: int) -> None:
    """A vote was cast in the poll: its results change, nothing else does."""
    _schedule(keys.votes_changed_keys(poll_id), f"vote in poll {poll_id}")


def everything() -> None:
    """Drop every cached entry of this database (after the current transaction commits)."""
    transaction.on_commit(Invalidation(keys.everything_keys(), "everything"), robust=True)


def on_model_change(sender, instance, **kwargs) -> None:
    """``post_save``/``post_delete`` of a Poll or an Option: catches writes that do not go through the services
    (the admin, a shell). Votes have no such receiver on purpose: it would stop Django from deleting a poll's
    votes in bulk; votes deleted outside ``services`` (a deleted user's, say) age out with the results' TTL."""
    poll_id = getattr(instance, "poll_id", None) if sender.__name__ == "Option" else instance.pk
    if poll_id is not None:
        poll_changed(poll_id=poll_id)


def after_migrate(sender=None, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """``post_migrate`` (``migrate``, ``flush``, test database set-up): what is cached may not match the database
    any more, so start a new epoch. A Redis that does not answer must not fail the migration."""
    if using != DEFAULT_DB_ALIAS:
        return
    try:
        bump(connection(), keys.everything_keys())
    except (*REDIS_ERRORS, NotImplementedError) as exc:
        logger.warning("could not bump the cache epoch after migrate (%s); entries expire with their TTL", exc)
