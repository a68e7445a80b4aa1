"""Three ways to count votes, behind one interface, so the API, the notebook and the benchmark can switch by name.

=========  ==========================================  ==================================  ======================
strategy   a results read does                         a vote (write) also does            freshness
=========  ==========================================  ==================================  ======================
count      ``COUNT(*) ... WHERE poll_id = ? GROUP BY   nothing                             exact
           option_id`` over the poll's votes (an
           index-only scan of vote_poll_option_idx:
           cost grows with the poll's votes)
counter    read ``polls_option.vote_count`` (one        ``UPDATE polls_option SET           exact (same transaction)
           index lookup, ~constant cost)               vote_count = vote_count + 1``
                                                       (``F()``), holding that row's lock
                                                       until commit
summary    read the materialised view                  nothing; a Celery task runs         stale by up to the
           ``polls_vote_summary`` (one index lookup)   ``REFRESH MATERIALIZED VIEW         refresh interval
                                                       CONCURRENTLY`` (cost grows with
                                                       *all* votes)
=========  ==========================================  ==================================  ======================

**The API reads ``counter``** (:data:`RESULTS_STRATEGY`). The measurements (``manage.py bench_votes`` and
``notebooks/01-schema-design.ipynb``) show why: at 1M votes a hot poll's ``COUNT(*)`` reads its whole slice of the
index on every request, while the counter answers in about the time of any primary-key lookup, is never stale, and
costs each vote one extra single-row ``UPDATE``. Its price is contention: votes for the *same option* queue on that
option's row lock until each transaction commits, so a very hot option caps at roughly one vote per commit
latency. The usual next step, if that ever binds, is a sharded counter (N rows per option, add to a random one,
sum on read). The summary is as fast to read but stale, and its refresh re-counts every vote in the database.

Because deletions bypass the services (cascades from a deleted user, poll or option), a statement-level trigger
decrements the counter (migration 0003), and :func:`counters_rebuild` recounts from the votes when in doubt.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from .models import VOTE_SUMMARY_VIEW, Option

# What the results endpoint, GraphQL and poll_results() read unless told otherwise.
RESULTS_STRATEGY = getattr(settings, "POLLS_RESULTS_STRATEGY", "counter")

_SUMMARY_LOCK = "nexus-polls:vote-summary-refresh"


@dataclass(frozen=True)
class Strategy:
    """One way of counting. ``sql`` returns ``(option id, text, votes)`` for one poll, in display order, and
    takes :meth:`params` (the notebook runs ``EXPLAIN`` on exactly this statement)."""

    name: str
    title: str
    sql: str
    maintains_counter: bool  # does a vote under this strategy pay for the counter update?
    fresh: bool  # does a read see every committed vote?
    trade_off: str

    def params(self, poll_id: int) -> list:
        return [poll_id] * self.sql.count("%s")

    def option_counts(self, *, poll_id: int) -> list[tuple[int, str, int]]:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, self.params(poll_id))
            return [(int(i), t, int(v)) for i, t, v in cursor.fetchall()]


COUNT = Strategy(
    name="count",
    title="COUNT(*) GROUP BY at read time",
    sql="""
        SELECT o.id, o.text, COALESCE(c.votes, 0) AS votes
        FROM polls_option o
        LEFT JOIN (
            SELECT option_id, COUNT(*) AS votes FROM polls_vote WHERE poll_id = %s GROUP BY option_id
        ) c ON c.option_id = o.id
        WHERE o.poll_id = %s
        ORDER BY o.position, o.id
    """,
    maintains_counter=False,
    fresh=True,
    trade_off="No write cost and always exact; every read re-counts the poll, so hot polls get slow.",
)

COUNTER = Strategy(
    name="counter",
    title="denormalised counter (F() + 1 in the vote transaction)",
    sql="""
        SELECT o.id, o.text, o.vote_count AS votes
        FROM polls_option o
        WHERE o.poll_id = %s
        ORDER BY o.position, o.id
    """,
    maintains_counter=True,
    fresh=True,
    trade_off="Constant-time exact reads; each vote pays one row UPDATE, and votes for one option serialise "
    "on its row lock until commit (contention on hot options).",
)

SUMMARY = Strategy(
    name="summary",
    title=f"materialised view {VOTE_SUMMARY_VIEW} refreshed by Celery",
    sql=f"""
        SELECT o.id, o.text, COALESCE(s.votes, 0) AS votes
        FROM polls_option o
        LEFT JOIN {VOTE_SUMMARY_VIEW} s ON s.poll_id = o.poll_id AND s.option_id = o.id
        WHERE o.poll_id = %s
        ORDER BY o.position, o.id
    """,
    maintains_counter=False,
    fresh=False,
    trade_off="Constant-time reads and no write cost; stale until the next refresh, and each refresh "
    "re-counts every vote in the database.",
)

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (COUNT, COUNTER, SUMMARY)}

_override: ContextVar[str | None] = ContextVar("polls_results_strategy", default=None)


def get_strategy(name: str | None = None) -> Strategy:
    """The strategy called ``name``; ``None`` means the one the API uses now (:func:`results_strategy`)."""
    name = results_strategy() if name is None else name
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown counting strategy {name!r} (choose from {', '.join(STRATEGIES)})") from None


def results_strategy() -> str:
    return _override.get() or RESULTS_STRATEGY


@contextlib.contextmanager
def using(name: str) -> Iterator[Strategy]:
    """Make the API read with ``name`` inside this block (this thread/context only): for the benchmark and
    the notebook, which measure the real endpoint under each strategy."""
    strategy = get_strategy(name)
    token = _override.set(strategy.name)
    try:
        yield strategy
    finally:
        _override.reset(token)


# --------------------------------------------------------------------------- the write side


def counter_increment(*, option_id: int) -> None:
    """``UPDATE polls_option SET vote_count = vote_count + 1``: atomic in the database (no read-modify-write
    in Python, so no lost updates), and it takes the row's lock until the caller's transaction ends."""
    Option.objects.filter(pk=option_id).update(vote_count=F("vote_count") + 1)


def counters_rebuild(*, poll_ids: Iterable[int] | None = None) -> int:
    """Recount ``vote_count`` from the votes (all polls, or ``poll_ids``); returns how many options were wrong.

    Needed only after writes that skipped the counter on purpose (the benchmark measuring the other
    strategies) or a bulk load; :func:`counters_drift` says whether it is."""
    where, params = "", []
    if poll_ids is not None:
        where, params = "AND o.poll_id = ANY(%s)", [list(poll_ids)]
    sql = f"""
        UPDATE polls_option o SET vote_count = actual.votes
        FROM (
            SELECT o2.id, (SELECT COUNT(*) FROM polls_vote v WHERE v.poll_id = o2.poll_id AND v.option_id = o2.id)
                AS votes
            FROM polls_option o2
        ) actual
        WHERE o.id = actual.id AND o.vote_count <> actual.votes {where}
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def counters_drift(*, poll_ids: Sequence[int] | None = None) -> list[tuple[int, int, int]]:
    """``(option id, counter, COUNT(*))`` for every option whose counter disagrees with its votes."""
    where, params = "", []
    if poll_ids is not None:
        where, params = "WHERE o.poll_id = ANY(%s)", [list(poll_ids)]
    sql = f"""
        SELECT o.id, o.vote_count, COALESCE(c.votes, 0)
        FROM polls_option o
        LEFT JOIN (SELECT option_id, COUNT(*) AS votes FROM polls_vote GROUP BY option_id) c ON c.option_id = o.id
        {where}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(i, counter, actual) for i, counter, actual in cursor.fetchall() if counter != actual]


def summary_refresh(*, concurrently: bool = True) -> float | None:
    """Refresh the materialised view; returns the seconds it took, or ``None`` when another refresh holds the
    lock (two beat ticks never refresh at once; the second one has nothing to add).

    ``CONCURRENTLY`` lets readers keep reading the old rows during the refresh (it needs the view's unique
    index); plain refresh is faster but blocks them."""
    mode = "CONCURRENTLY " if concurrently else ""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [_SUMMARY_LOCK])
        if not cursor.fetchone()[0]:
            return None
        start = time.perf_counter()
        cursor.execute(f"REFRESH MATERIALIZED VIEW {mode}{VOTE_SUMMARY_VIEW}")
        return time.perf_counter() - start
