"""Four ways to count votes, behind one interface, so the API, the notebook and the benchmark can switch by name.

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
delta      ``vote_count`` plus the poll's pending      one row appended to                 exact (same statement
           rows in ``polls_vote_delta`` (a small       ``polls_vote_delta`` in the vote's  as the vote)
           table the fold keeps nearly empty)          own ``INSERT`` statement; a Celery
                                                       task folds the rows into
                                                       ``vote_count`` every second
=========  ==========================================  ==================================  ======================

**The API reads ``delta``** (:data:`RESULTS_STRATEGY`, setting ``POLLS_RESULTS_STRATEGY``). The measurements
(``manage.py bench_votes`` and ``notebooks/01-schema-design.ipynb``) show why. At 1M votes a hot poll's ``COUNT(*)``
reads its whole slice of the index on every request. The ``counter`` answers in about the time of any primary-key
lookup, but every vote for an option updates that option's row and holds its lock until commit, so voters for one
hot option queue behind each other: one vote per commit latency, about half the throughput of plain inserts under
8-64 concurrent voters. ``delta`` keeps the counter's read (plus a scan of a few pending rows) and gives writers an
append: a vote inserts its vote row and a three-column delta row, with no index on the delta table and no row that
two voters both write, so there is nothing to wait for. :func:`deltas_fold` (the ``fold_vote_deltas`` task) moves
the deltas into the counters in one transaction (``DELETE ... RETURNING`` feeding the ``UPDATE``).

Why it stays exact, even after a crash at any point: a vote and its delta are written by one statement, so they
commit together or not at all; a fold deletes the deltas and adds them to the counters in one transaction, so a
killed fold leaves the deltas pending and counts nothing twice; two folds at once cannot both take a delta (the
second waits on the row lock and then finds it deleted). A reader sees ``vote_count + pending`` in one statement,
hence one snapshot: before a fold commits it sees the old counter and the deltas, after it the new counter and no
deltas, and every committed vote exactly once either way.

Because deletions bypass the services (cascades from a deleted user, poll or option), a statement-level trigger
keeps ``vote_count + pending deltas`` equal to the votes (migrations 0003 and 0005), and :func:`counters_rebuild`
recounts from the votes when in doubt.
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
from django.utils import timezone

from nexus_backend.core.faults import pause_point

from .models import VOTE_DELTA_TABLE, VOTE_SUMMARY_VIEW, Option, Vote

# What the results endpoint, GraphQL and poll_results() read unless told otherwise (settings/polls.py checks the name).
RESULTS_STRATEGY = getattr(settings, "POLLS_RESULTS_STRATEGY", "delta")

_SUMMARY_LOCK = "nexus-polls:vote-summary-refresh"
_FOLD_LOCK = "nexus-polls:vote-delta-fold"


@dataclass(frozen=True)
class Strategy:
    """One way of counting. ``sql`` returns ``(option id, text, votes)`` for one poll, in display order, and
    takes :meth:`params` (the notebook runs ``EXPLAIN`` on exactly this statement)."""

    name: str
    title: str
    sql: str
    on_vote: str  # what a vote also writes: "nothing", "counter" (F() + 1) or "delta" (one pending row)
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
    on_vote="nothing",
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
    on_vote="counter",
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
    on_vote="nothing",
    fresh=False,
    trade_off="Constant-time reads and no write cost; stale until the next refresh, and each refresh "
    "re-counts every vote in the database.",
)

DELTA = Strategy(
    name="delta",
    title=f"counter + pending deltas ({VOTE_DELTA_TABLE}, folded by Celery)",
    sql=f"""
        SELECT o.id, o.text, o.vote_count + COALESCE(d.votes, 0) AS votes
        FROM polls_option o
        LEFT JOIN (
            SELECT option_id, COUNT(*) AS votes FROM {VOTE_DELTA_TABLE} WHERE poll_id = %s GROUP BY option_id
        ) d ON d.option_id = o.id
        WHERE o.poll_id = %s
        ORDER BY o.position, o.id
    """,
    on_vote="delta",
    fresh=True,
    trade_off="Exact reads that cost a counter lookup plus a scan of the few pending deltas; each vote appends "
    "one unindexed row (no lock shared with other voters), and a periodic task folds the deltas into the counter.",
)

STRATEGIES: dict[str, Strategy] = {s.name: s for s in (COUNT, COUNTER, SUMMARY, DELTA)}

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

# Every write path inserts the vote with this one statement, so a strategy's cost over ``count`` is only what it
# adds; ``delta`` wraps it to append the delta row in the same statement (no extra round trip).
_VOTE_INSERT = """
    INSERT INTO polls_vote (poll_id, option_id, user_id, created_at) VALUES (%s, %s, %s, %s)
    RETURNING id
"""
_VOTE_AND_DELTA_INSERT = f"""
    WITH vote AS (
        INSERT INTO polls_vote (poll_id, option_id, user_id, created_at) VALUES (%s, %s, %s, %s)
        RETURNING id, poll_id, option_id
    ), delta AS (
        INSERT INTO {VOTE_DELTA_TABLE} (vote_id, poll_id, option_id) SELECT id, poll_id, option_id FROM vote
    )
    SELECT id FROM vote
"""


def vote_path() -> Strategy:
    """The write path a vote takes when nobody chooses one: the API strategy's, if it keeps counts; otherwise the
    counter's (so ``counter`` and ``delta`` stay exact whichever strategy the API reads)."""
    strategy = get_strategy(RESULTS_STRATEGY)
    return strategy if strategy.on_vote != "nothing" else COUNTER


def vote_record(*, poll_id: int, option_id: int, user_id: int, strategy: Strategy) -> Vote:
    """Insert one vote and count it the way ``strategy`` counts (``on_vote``), inside the caller's transaction.
    Constraint violations propagate as ``IntegrityError`` (the caller maps them)."""
    created_at = timezone.now()
    sql = _VOTE_AND_DELTA_INSERT if strategy.on_vote == "delta" else _VOTE_INSERT
    with connection.cursor() as cursor:
        cursor.execute(sql, [poll_id, option_id, user_id, created_at])
        vote_id = cursor.fetchone()[0]
    if strategy.on_vote == "counter":
        counter_increment(option_id=option_id)
    return Vote(id=vote_id, poll_id=poll_id, option_id=option_id, user_id=user_id, created_at=created_at)


def counter_increment(*, option_id: int) -> None:
    """``UPDATE polls_option SET vote_count = vote_count + 1``: atomic in the database (no read-modify-write
    in Python, so no lost updates), and it takes the row's lock until the caller's transaction ends."""
    Option.objects.filter(pk=option_id).update(vote_count=F("vote_count") + 1)


_FOLD = f"""
    WITH folded AS (
        DELETE FROM {VOTE_DELTA_TABLE} RETURNING option_id
    ), per_option AS (
        SELECT option_id, COUNT(*) AS votes FROM folded GROUP BY option_id
    ), updated AS (
        UPDATE polls_option o SET vote_count = o.vote_count + p.votes
        FROM per_option p WHERE o.id = p.option_id
        RETURNING p.votes
    )
    SELECT COALESCE(SUM(votes), 0) FROM updated
"""


def deltas_fold() -> int | None:
    """Move every committed pending delta into its option's counter, in one transaction; returns how many votes
    were folded, or ``None`` when another fold holds the lock (it is doing the same work).

    Idempotent and crash-safe: a delta is deleted in the transaction that adds it, so it is counted once whether
    this commits, rolls back or is killed. Deltas of votes still in flight are invisible here and stay pending
    for the next fold. Readers are never blocked; voters neither (a vote takes ``FOR KEY SHARE`` on its option
    for its foreign key, which does not conflict with this ``UPDATE`` of a non-key column). After the commit the
    table is vacuumed (when not called inside a transaction)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [_FOLD_LOCK])
        if not cursor.fetchone()[0]:
            return None
        cursor.execute(_FOLD)
        folded = int(cursor.fetchone()[0])
        pause_point("fold-before-commit")  # fault tests kill the process here (tests/faults/test_counting_killed.py)
    if folded and not connection.in_atomic_block:
        _deltas_vacuum()
    return folded


def _deltas_vacuum() -> None:
    """Make the folded rows' space reusable at once, so the table a read scans stays as small as one fold interval
    of votes (dead rows would otherwise pile up until autovacuum, and every read scans them too). ``SKIP_LOCKED``:
    never wait for another vacuum; ``TRUNCATE false``: never take the exclusive lock that would stall voters."""
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (SKIP_LOCKED, TRUNCATE false) {VOTE_DELTA_TABLE}")


def deltas_pending(*, poll_ids: Sequence[int] | None = None) -> int:
    """How many votes wait in the delta table (all polls, or ``poll_ids``)."""
    where, params = "", []
    if poll_ids is not None:
        where, params = "WHERE poll_id = ANY(%s)", [list(poll_ids)]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {VOTE_DELTA_TABLE} {where}", params)
        return int(cursor.fetchone()[0])


def counters_rebuild(*, poll_ids: Iterable[int] | None = None) -> int:
    """Recount ``vote_count`` from the votes (all polls, or ``poll_ids``), less the votes whose deltas are still
    pending (the fold adds those); returns how many options were wrong.

    Needed only after writes that skipped the counter on purpose (the benchmark measuring the other
    strategies) or a bulk load; :func:`counters_drift` says whether it is."""
    where, params = "", []
    if poll_ids is not None:
        where, params = "AND o.poll_id = ANY(%s)", [list(poll_ids)]
    sql = f"""
        UPDATE polls_option o SET vote_count = actual.votes
        FROM (
            SELECT o2.id,
                (SELECT COUNT(*) FROM polls_vote v WHERE v.poll_id = o2.poll_id AND v.option_id = o2.id)
                - (SELECT COUNT(*) FROM {VOTE_DELTA_TABLE} d WHERE d.option_id = o2.id) AS votes
            FROM polls_option o2
        ) actual
        WHERE o.id = actual.id AND o.vote_count <> actual.votes {where}
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# Per option: what it has counted (the counter plus its pending deltas) and COUNT(*) of its votes, in one statement
# (one snapshot: a vote and its delta commit together, and a fold is seen whole or not at all).
_COUNTED_AND_ACTUAL = f"""
    SELECT o.id, o.vote_count + COALESCE(d.votes, 0), COALESCE(c.votes, 0)
    FROM polls_option o
    LEFT JOIN (SELECT option_id, COUNT(*) AS votes FROM polls_vote GROUP BY option_id) c ON c.option_id = o.id
    LEFT JOIN (SELECT option_id, COUNT(*) AS votes FROM {VOTE_DELTA_TABLE} GROUP BY option_id) d
        ON d.option_id = o.id
"""


def counted(*, poll_ids: Sequence[int] | None = None) -> dict[int, int]:
    """``{option id: votes counted}`` (``vote_count`` + pending deltas: what ``delta`` reads, and ``counter`` once
    folded) for every option, or those of ``poll_ids``. Reads no vote (cheap at any scale)."""
    where, params = "", []
    if poll_ids is not None:
        where, params = "WHERE o.poll_id = ANY(%s)", [list(poll_ids)]
    sql = f"""
        SELECT o.id, o.vote_count + COALESCE(d.votes, 0)
        FROM polls_option o
        LEFT JOIN (SELECT option_id, COUNT(*) AS votes FROM {VOTE_DELTA_TABLE} GROUP BY option_id) d
            ON d.option_id = o.id
        {where}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def counters_drift(*, poll_ids: Sequence[int] | None = None) -> list[tuple[int, int, int]]:
    """``(option id, counter + pending deltas, COUNT(*))`` for every option whose count disagrees with its votes."""
    where, params = "", []
    if poll_ids is not None:
        where, params = "WHERE o.poll_id = ANY(%s)", [list(poll_ids)]
    with connection.cursor() as cursor:
        cursor.execute(f"{_COUNTED_AND_ACTUAL} {where}", params)
        return [(i, n, actual) for i, n, actual in cursor.fetchall() if n != actual]


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
