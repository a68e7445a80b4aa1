"""Seeded data at scale: users, polls, options and votes loaded with PostgreSQL ``COPY`` (``manage.py gen_votes``).

Row-by-row ORM saves manage a few thousand votes a second; ``COPY ... FROM STDIN`` streams rows into the table
in bulk, with every constraint, foreign key and index still checked. One million votes load in well under a
minute on a 2-core machine.

What it makes, with ``numpy.random.default_rng(seed)`` (same arguments, same data; row ids aside):

- ``users`` users named ``<prefix>u0000001`` … (unusable passwords: they cannot log in);
- ``polls`` polls owned by those users, created 1–60 days ago; about 30% expired (and closed, as the beat task
  would), 30% with no expiry, the rest expiring in the future;
- ``options`` options per poll (``Option 1`` …), each poll with its own popularity per option;
- ``votes`` votes spread over the polls with a Zipf-like skew (poll *k* gets a share proportional to
  ``1 / k**skew``), so the first poll is *hot*, as real polls are; one vote per user per poll, each cast
  between the poll's creation and its expiry (or now).

The counters (``Option.vote_count``) are set from the generated votes, the planner statistics are refreshed
(``VACUUM ANALYZE``, which also lets index-only scans skip the heap) and so is the summary view, so every counting
strategy reads correct numbers straight away.

Everything belongs to users whose names start with ``prefix``: :func:`generate` replaces what the prefix had,
:func:`delete` removes it, and nobody else's rows are touched.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, cast

import numpy as np
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from nexus_backend.caching import invalidation
from nexus_backend.polls import counting
from nexus_backend.polls.services import MAX_OPTIONS, MIN_OPTIONS

MAX_VOTES = 20_000_000
MAX_POLLS = 100_000
MAX_USERS = 5_000_000
MAX_SKEW = 3.0
DEFAULT_PREFIX = "gen_"
CHUNK = 100_000  # rows per COPY statement (and progress bar step)
BULK_VOTES = 50_000  # from this many votes, load with the vote table's foreign keys and plain indexes set aside
GENERATED_PASSWORD = "!nexus-generated"  # Django treats a password starting with "!" as unusable

_PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,20}_")


class ScaleError(ValueError):
    """The requested scale makes no sense; ``str()`` is one line saying what to change."""


@dataclass(frozen=True)
class Scale:
    """A validated scale: how many of each, and the votes each poll gets (hottest first)."""

    votes: int
    polls: int
    options: int
    users: int
    skew: float
    votes_per_poll: tuple[int, ...] = field(repr=False)

    @property
    def hottest_poll_votes(self) -> int:
        return self.votes_per_poll[0] if self.votes_per_poll else 0


@dataclass
class Generated:
    """What :func:`generate` made. ``poll_ids`` are hottest first; ``hot_poll_id`` is ``poll_ids[0]``."""

    prefix: str
    seed: int
    votes: int
    polls: int
    options: int
    users: int
    skew: float
    hot_poll_id: int
    hot_poll_votes: int
    poll_ids: list[int]
    seconds: float
    rows_per_second: float
    timings: dict[str, float]

    def as_dict(self) -> dict:
        data = asdict(self)
        data["poll_ids"] = f"{len(self.poll_ids)} ids"
        return data


def _whole(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ScaleError(f"{name} must be a whole number from {low:,} to {high:,}, got {value!r}")
    if not low <= value <= high:
        raise ScaleError(f"{name} must be from {low:,} to {high:,}, got {value:,}")
    return int(value)


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not _PREFIX_RE.fullmatch(prefix):
        raise ScaleError(
            f"prefix must be a lowercase letter, up to 20 more letters/digits, then '_' (like 'gen_'), got {prefix!r}"
        )
    return prefix


def default_polls(votes: int) -> int:
    """One poll per thousand votes, between 10 and 1,000."""
    return max(10, min(1_000, votes // 1_000))


def split_votes(votes: int, polls: int, skew: float) -> tuple[int, ...]:
    """``votes`` split over ``polls`` in proportion to ``1 / k**skew`` (largest remainders: exact total)."""
    if polls == 0:
        return ()
    weights = 1.0 / np.arange(1, polls + 1, dtype=float) ** skew
    shares = weights / weights.sum() * votes
    counts = np.floor(shares).astype(np.int64)
    short = votes - int(counts.sum())
    if short:
        counts[np.argsort(-(shares - counts), kind="stable")[:short]] += 1
    return tuple(int(c) for c in counts)


def plan_scale(
    *, votes: int, polls: int | None = None, options: int = 4, users: int | None = None, skew: float = 1.0
) -> Scale:
    """Validate a scale and fill in the defaults; raises :class:`ScaleError` with a one-line reason.

    ``users`` defaults to 10% more than the hottest poll needs (one vote per user per poll), at least 10."""
    votes = _whole("votes", votes, 0, MAX_VOTES)
    polls = default_polls(votes) if polls is None else _whole("polls", polls, 1, MAX_POLLS)
    options = _whole("options", options, MIN_OPTIONS, MAX_OPTIONS)
    if isinstance(skew, bool) or not isinstance(skew, int | float) or not 0 <= skew <= MAX_SKEW:
        raise ScaleError(f"skew must be a number from 0 (even) to {MAX_SKEW} (very hot first poll), got {skew!r}")
    per_poll = split_votes(votes, polls, float(skew))
    hottest = per_poll[0] if per_poll else 0
    if users is None:
        users = min(MAX_USERS, max(10, math.ceil(hottest * 1.1)))
    users = _whole("users", users, 1, MAX_USERS)
    if hottest > users:
        raise ScaleError(
            f"users={users:,} is too few: one vote per user per poll, and the hottest poll gets {hottest:,} of the "
            f"{votes:,} votes; use users >= {hottest:,}, more polls, or a lower skew"
        )
    return Scale(votes=votes, polls=polls, options=options, users=users, skew=float(skew), votes_per_poll=per_poll)


# --------------------------------------------------------------------------- database helpers


def _ids(cursor, table: str, count: int) -> np.ndarray:
    """``count`` fresh ids from the table's own sequence (safe next to concurrent inserts)."""
    if count == 0:
        return np.empty(0, dtype=np.int64)
    cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, int(count)])
    return np.fromiter((r[0] for r in cursor.fetchall()), dtype=np.int64, count=count)


def _copy(cursor, table: str, columns: list[str], frame_chunks, progress=None) -> None:
    # NULL is written \N, so an empty string stays an empty string (CSV's default reads it as NULL).
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
    for chunk in frame_chunks:
        buffer = io.StringIO()
        chunk.to_csv(buffer, header=False, index=False, na_rep="\\N")
        buffer.seek(0)
        cursor.copy_expert(sql, buffer)
        if progress is not None:
            progress.update(len(chunk))


def _raw_cursor(cursor):
    """The psycopg2 cursor under Django's wrapper (``copy_expert`` lives there)."""
    return getattr(cursor, "cursor", cursor)


def _timestamps(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds -> ISO 8601 UTC strings PostgreSQL reads (vectorised, microseconds)."""
    micros = np.round(np.asarray(seconds, dtype=float) * 1e6).astype(np.int64)
    stamps = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us")
    return np.char.add(stamps, "+00")


# Django creates its foreign keys DEFERRABLE INITIALLY DEFERRED. Checking them as each statement runs surfaces a
# violation at the statement that caused it (inside the savepoint that can handle it), and leaves no pending
# checks that would forbid the ALTER TABLE of a bulk load.
_IMMEDIATE = "SET CONSTRAINTS ALL IMMEDIATE"


def _owned_polls_sql(user_table: str) -> str:
    return (
        f"SELECT p.id FROM polls_poll p JOIN {user_table} u ON u.id = p.owner_id WHERE u.username LIKE %s ESCAPE '\\'"
    )


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


# --------------------------------------------------------------------------- delete


def delete(*, prefix: str = DEFAULT_PREFIX) -> dict:
    """Remove every user whose name starts with ``prefix``, their polls, options and votes (bulk SQL, one
    transaction). Votes such users cast in other people's polls go too; the counters follow (trigger)."""
    check_prefix(prefix)
    like = _like(prefix)
    user_table = get_user_model()._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"nexus-datagen:{prefix}"])
        cursor.execute(_IMMEDIATE)
        gone = _delete(cursor, like, user_table)
        invalidation.everything()  # rows went around the services: the cache drops every entry after commit
    if gone["votes"] >= BULK_VOTES:
        _compact_vote_indexes()
        refresh_statistics(vacuum=True)
    if gone["votes"] and not connection.in_atomic_block:
        counting.summary_refresh()  # the deleted polls' rows leave the summary too
    return gone


def _compact_vote_indexes() -> None:
    """After a bulk delete the vote table's indexes keep their empty pages (VACUUM makes them reusable, it does
    not return them), and the planner prices an index by its size: a bloated (poll, option) index can lose to a
    sequential scan it would beat when compact. Rebuild them; ``CONCURRENTLY`` keeps the table writable."""
    with connection.cursor() as cursor:
        if connection.in_atomic_block:  # (tests) CONCURRENTLY cannot run inside a transaction
            cursor.execute("REINDEX TABLE polls_vote")
        else:
            cursor.execute("REINDEX TABLE CONCURRENTLY polls_vote")


def _delete(cursor, like: str, user_table: str, *, users: bool = True) -> dict:
    cursor.execute(f"CREATE TEMP TABLE _gen_polls ON COMMIT DROP AS {_owned_polls_sql(user_table)}", [like])
    cursor.execute("DELETE FROM polls_vote WHERE poll_id IN (SELECT id FROM _gen_polls)")
    votes = cursor.rowcount
    cursor.execute("DELETE FROM polls_option WHERE poll_id IN (SELECT id FROM _gen_polls)")
    cursor.execute("DELETE FROM polls_poll WHERE id IN (SELECT id FROM _gen_polls)")
    polls = cursor.rowcount
    cursor.execute("DROP TABLE _gen_polls")
    gone = 0
    if users:
        gone = _delete_users(cursor, "username LIKE %s ESCAPE '\\'", [like], user_table)
    return {"users": gone, "polls": polls, "votes": votes}


def _delete_users(cursor, where: str, params: list, user_table: str) -> int:
    """Delete generated users with bulk SQL; if some other table refers to one (someone used it), let Django's
    collector follow every relation instead."""
    cursor.execute(f"SELECT id FROM {user_table} WHERE {where}", params)
    ids = [r[0] for r in cursor.fetchall()]
    if not ids:
        return 0
    try:
        with transaction.atomic():  # a savepoint
            cursor.execute("DELETE FROM polls_vote WHERE user_id = ANY(%s)", [ids])
            cursor.execute(f"DELETE FROM {user_table} WHERE id = ANY(%s)", [ids])
            return len(ids)
    except Exception:
        _, per_model = get_user_model().objects.filter(id__in=ids).delete()
        return per_model.get(get_user_model()._meta.label, 0)


# --------------------------------------------------------------------------- generate


def generate(
    *,
    votes: int,
    polls: int | None = None,
    options: int = 4,
    users: int | None = None,
    skew: float = 1.0,
    seed: int = 0,
    prefix: str = DEFAULT_PREFIX,
    now: datetime | None = None,
    progress: bool = False,
    vacuum: bool = True,
) -> Generated:
    """Replace ``prefix``'s data with a freshly generated scale (one transaction), then refresh statistics and
    the summary view. See the module docstring; raises :class:`ScaleError` before touching anything."""
    scale = plan_scale(votes=votes, polls=polls, options=options, users=users, skew=skew)
    check_prefix(prefix)
    seed = _whole("seed", seed, 0, 2**32 - 1)
    now = now or timezone.now()
    rng = np.random.default_rng(seed)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    from tqdm import tqdm

    bar = tqdm(
        total=scale.users + scale.polls * (1 + scale.options) + scale.votes,
        unit="row",
        unit_scale=True,
        desc=f"{prefix} rows",
        disable=not progress,
        leave=False,
    )
    try:
        with transaction.atomic(), connection.cursor() as wrapper:
            cursor = _raw_cursor(wrapper)
            wrapper.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"nexus-datagen:{prefix}"])
            wrapper.execute(_IMMEDIATE)
            t = time.perf_counter()
            previous = _delete(wrapper, _like(prefix), get_user_model()._meta.db_table, users=False)
            timings["delete_previous_s"] = time.perf_counter() - t
            poll_ids = _load(cursor, scale, rng, prefix=prefix, seed=seed, now=now, bar=bar, timings=timings)
            invalidation.everything()  # rows went around the services: the cache drops every entry after commit
    finally:
        bar.close()

    if previous["votes"] >= BULK_VOTES:
        t = time.perf_counter()
        _compact_vote_indexes()
        timings["reindex_s"] = time.perf_counter() - t
    t = time.perf_counter()
    refresh_statistics(vacuum=vacuum)
    timings["analyze_s"] = time.perf_counter() - t
    t = time.perf_counter()
    if not connection.in_atomic_block:
        counting.summary_refresh(concurrently=False)
    timings["summary_refresh_s"] = time.perf_counter() - t
    seconds = time.perf_counter() - started
    rows = scale.users + scale.polls * (1 + scale.options) + scale.votes
    return Generated(
        prefix=prefix,
        seed=seed,
        votes=scale.votes,
        polls=scale.polls,
        options=scale.options,
        users=scale.users,
        skew=scale.skew,
        hot_poll_id=int(poll_ids[0]),
        hot_poll_votes=scale.hottest_poll_votes,
        poll_ids=[int(i) for i in poll_ids],
        seconds=round(seconds, 3),
        rows_per_second=round(rows / seconds, 1) if seconds > 0 else 0.0,
        timings={k: round(v, 3) for k, v in timings.items()},
    )


def _load(cursor, scale: Scale, rng, *, prefix: str, seed: int, now: datetime, bar, timings) -> np.ndarray:
    import pandas as pd

    now_s = now.timestamp()
    day = 86_400.0

    # users: kept across runs (same names, same ids), so regenerating does not delete and re-create them
    t = time.perf_counter()
    User = get_user_model()
    table = User._meta.db_table
    names = np.char.add(f"{prefix}u", np.char.zfill(np.arange(1, scale.users + 1).astype(str), 7))
    cursor.execute(f"SELECT username, id FROM {table} WHERE username LIKE %s ESCAPE '\\'", [_like(prefix)])
    existing = dict(cursor.fetchall())
    wanted = set(names.tolist())
    extra = [name for name in existing if name not in wanted]
    if extra:
        _delete_users(cursor, "username = ANY(%s)", [extra], table)
    missing = np.array([name for name in names.tolist() if name not in existing], dtype=object)
    new_ids = _ids(cursor, table, len(missing))
    if len(missing):
        values: dict[str, Any] = {"id": new_ids, "username": missing, "email": missing + "@example.invalid"}
        values["password"] = GENERATED_PASSWORD
        values["date_joined"] = _timestamps(np.full(len(missing), now_s - 90 * day))
        columns = cast(list[str], [f.column for f in User._meta.concrete_fields])  # concrete: each has a column
        frame = {
            f.column: values.get(f.name, values.get(f.attname, f.get_default())) for f in User._meta.concrete_fields
        }
        _copy(cursor, table, columns, _chunks(pd.DataFrame(frame, columns=columns)), None)
    existing.update(zip(missing.tolist(), new_ids.tolist(), strict=True))
    user_ids = np.array([existing[name] for name in names.tolist()], dtype=np.int64)
    bar.update(scale.users)
    timings["users_s"] = time.perf_counter() - t

    # polls: hottest first; ids ascending in that order
    t = time.perf_counter()
    poll_ids = _ids(cursor, "polls_poll", scale.polls)
    created = now_s - rng.uniform(1, 60, scale.polls) * day
    kind = rng.choice(3, size=scale.polls, p=[0.3, 0.3, 0.4])  # 0 expired, 1 no expiry, 2 expires later
    lifetime = rng.uniform(0.5, 30, scale.polls) * day
    expired_end = created + np.minimum(lifetime, (now_s - created) * rng.uniform(0.3, 0.95, scale.polls))
    future_end = now_s + lifetime
    expires = np.where(kind == 0, expired_end, np.where(kind == 2, future_end, np.nan))
    owners = user_ids[rng.integers(0, scale.users, scale.polls)]
    # An object array of texts and None (NULL); numpy's stubs do not take None as a value here.
    timestamps = _timestamps(np.nan_to_num(expires, nan=now_s)).astype(object)
    expires_text = np.where(np.isnan(expires), None, timestamps)  # type: ignore[call-overload]
    polls_frame = pd.DataFrame(
        {
            "id": poll_ids,
            "question": [
                f"Generated poll {k + 1} of {scale.polls} ({prefix}, seed {seed})" for k in range(len(poll_ids))
            ],
            "description": "",
            "owner_id": owners,
            "created_at": _timestamps(created),
            "expires_at": expires_text,
            "is_closed": np.where(kind == 0, "t", "f"),
        }
    )
    _copy(cursor, "polls_poll", list(polls_frame.columns), _chunks(polls_frame), bar)
    timings["polls_s"] = time.perf_counter() - t

    # votes (drawn before options are written, so option counters can be loaded with their final values)
    t = time.perf_counter()
    option_ids = _ids(cursor, "polls_option", scale.polls * scale.options).reshape(scale.polls, scale.options)
    option_counts = np.zeros((scale.polls, scale.options), dtype=np.int64)
    end = np.where(np.isnan(expires) | (expires > now_s), now_s, expires)
    vote_chunks = _vote_chunks(scale, rng, poll_ids, option_ids, option_counts, user_ids, created, end)
    timings["draw_s"] = time.perf_counter() - t

    t = time.perf_counter()
    options_frame = pd.DataFrame(
        {
            "id": option_ids.ravel(),
            "poll_id": np.repeat(poll_ids, scale.options),
            "text": np.tile([f"Option {k + 1}" for k in range(scale.options)], scale.polls),
            "position": np.tile(np.arange(scale.options), scale.polls),
            "vote_count": option_counts.ravel(),
        }
    )
    _copy(cursor, "polls_option", list(options_frame.columns), _chunks(options_frame), bar)
    timings["options_s"] = time.perf_counter() - t

    t = time.perf_counter()
    with _bulk_load(cursor, "polls_vote", enabled=scale.votes >= BULK_VOTES, timings=timings):
        _copy(cursor, "polls_vote", ["poll_id", "option_id", "user_id", "created_at"], vote_chunks, bar)
    timings["votes_s"] = time.perf_counter() - t
    return poll_ids


@contextlib.contextmanager
def _bulk_load(cursor, table: str, *, enabled: bool, timings: dict):
    """PostgreSQL's advice for populating a table ("Populating a Database" in its manual): load without the
    foreign keys and the non-unique indexes, then put them back. Re-adding a foreign key checks every row with
    one join instead of one lookup (and row lock) per inserted row; an index built from sorted data beats a
    million single inserts.

    All inside the caller's transaction: other sessions wait on the table's lock and never see it without its
    constraints; if anything fails, the rollback restores them. Unique constraints stay: they are rules and
    they also check the generated data (one vote per user per poll)."""
    if not enabled:
        yield
        return
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        [table],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisunique AND NOT i.indisprimary ORDER BY c.relname",
        [table],
    )
    indexes = cursor.fetchall()
    for name, _ in foreign_keys:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    t = time.perf_counter()
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for _, definition in indexes:
        cursor.execute(definition)
    timings["votes_indexes_s"] = time.perf_counter() - t
    t = time.perf_counter()
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    timings["votes_foreign_keys_s"] = time.perf_counter() - t


def _vote_chunks(scale: Scale, rng, poll_ids, option_ids, option_counts, user_ids, created, end):
    """Draw every vote now (so the counters are known before options load); return CSV-ready chunks."""
    import pandas as pd

    polls_col, options_col, users_col, when_col = [], [], [], []
    for k, count in enumerate(scale.votes_per_poll):
        if count == 0:
            continue
        popularity = rng.dirichlet(np.full(scale.options, 1.5))
        picks = rng.choice(scale.options, size=count, p=popularity)
        option_counts[k] = np.bincount(picks, minlength=scale.options)
        voters = np.sort(rng.choice(scale.users, size=count, replace=False))  # index-friendly order
        polls_col.append(np.full(count, poll_ids[k]))
        options_col.append(option_ids[k][picks])
        users_col.append(user_ids[voters])
        when_col.append(created[k] + rng.random(count) * (end[k] - created[k]))
    if not polls_col:
        return []
    frame = pd.DataFrame(
        {
            "poll_id": np.concatenate(polls_col),
            "option_id": np.concatenate(options_col),
            "user_id": np.concatenate(users_col),
            "created_at": _timestamps(np.concatenate(when_col)),
        }
    )
    return _chunks(frame)


def _chunks(frame):
    return [frame.iloc[i : i + CHUNK] for i in range(0, len(frame), CHUNK)] if len(frame) else []


def refresh_statistics(*, vacuum: bool = True) -> None:
    """Fresh planner statistics (so plans match the data) and, outside a transaction, a VACUUM that sets the
    visibility map (so index-only scans really skip the heap).

    ``INDEX_CLEANUP ON``: by default (``AUTO``) PostgreSQL skips the index pass when fewer than 2 % of a table's pages
    hold deleted rows, and a page that still holds them is never marked all-visible. After ``make bench`` (a million
    votes) a notebook's deleted and regenerated rows are far under 2 %, so its hot poll's pages stayed out of the
    visibility map (3,400 heap fetches after a plain VACUUM, 0 with this)."""
    tables = ["polls_vote", "polls_option", "polls_poll", get_user_model()._meta.db_table]
    with connection.cursor() as cursor:
        if vacuum and not connection.in_atomic_block:
            cursor.execute(f"VACUUM (ANALYZE, INDEX_CLEANUP ON) {', '.join(tables)}")
        else:
            cursor.execute(f"ANALYZE {', '.join(tables)}")


def describe(scale: Scale) -> str:
    return (
        f"{scale.votes:,} votes over {scale.polls:,} polls x {scale.options} options by {scale.users:,} users "
        f"(hottest poll {scale.hottest_poll_votes:,} votes, skew {scale.skew:g})"
    )


__all__ = [
    "DEFAULT_PREFIX",
    "Generated",
    "Scale",
    "ScaleError",
    "delete",
    "describe",
    "generate",
    "plan_scale",
    "refresh_statistics",
    "split_votes",
]
