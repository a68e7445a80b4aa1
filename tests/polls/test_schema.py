"""The schema enforces its own rules: refused by PostgreSQL even when the services are bypassed, under
concurrency, and through migrations that apply and reverse cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from nexus_backend.polls import counting, services
from nexus_backend.polls.models import VOTE_OPTION_IN_POLL_FK, Option, Poll, Vote
from nexus_lab.polls import bench, datagen, explain

ROOT = Path(__file__).resolve().parents[2]


def _constraint(exc: IntegrityError) -> str | None:
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)


def _refused(constraint: str, action) -> None:
    """``action`` fails with an IntegrityError naming ``constraint``, and the failed statement leaves no trace."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        action()
    assert _constraint(caught.value) == constraint, caught.value


# ------------------------------------------------------------------------- rules as facts (services bypassed)
@pytest.mark.django_db
class TestTheDatabaseRefuses:
    def test_a_vote_for_an_option_of_another_poll(self, poll, make_poll, other_user):
        elsewhere = make_poll().options.first()
        _refused(VOTE_OPTION_IN_POLL_FK, lambda: Vote.objects.create(poll=poll, option=elsewhere, user=other_user))
        assert Vote.objects.count() == 0

    def test_a_second_vote_by_the_same_user_in_a_poll(self, poll, other_user):
        first, second = poll.options.all()[:2]
        Vote.objects.create(poll=poll, option=first, user=other_user)
        _refused("one_vote_per_user_per_poll", lambda: Vote.objects.create(poll=poll, option=second, user=other_user))
        assert Vote.objects.count() == 1

    def test_a_poll_expiring_before_it_was_created(self, user):
        now = timezone.now()
        _refused(
            "poll_expires_after_creation",
            lambda: Poll.objects.create(owner=user, question="Q?", created_at=now, expires_at=now - timedelta(1)),
        )
        _refused(
            "poll_expires_after_creation",
            lambda: Poll.objects.create(owner=user, question="Q?", created_at=now, expires_at=now),
        )

    def test_blank_question_and_option_text(self, poll, user):
        _refused("poll_question_not_blank", lambda: Poll.objects.create(owner=user, question="   "))
        _refused("option_text_not_blank", lambda: Option.objects.create(poll=poll, text=" \t", position=9))

    def test_a_negative_counter(self, poll):
        _refused("option_vote_count_not_negative", lambda: poll.options.update(vote_count=-1))

    def test_changing_a_cast_vote(self, poll, other_user):
        first, second = poll.options.all()[:2]
        vote = services.vote_cast(poll_id=poll.pk, option_id=first.pk, user=other_user)
        _refused("vote_is_immutable", lambda: Vote.objects.filter(pk=vote.pk).update(option=second))
        assert Vote.objects.get(pk=vote.pk).option_id == first.pk


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["counter", "delta", "delta folded"])
def test_deleting_votes_by_cascade_keeps_the_counters_right(poll, make_user, path):
    """Votes deleted around the services (a user deleted, the admin's bulk delete) still update the counts: a
    statement-level trigger decrements the counter, or removes the vote's delta while it is pending."""
    option = poll.options.first()
    voters = [make_user() for _ in range(3)]
    for voter in voters:
        services.vote_cast(poll_id=poll.pk, option_id=option.pk, user=voter, strategy=path.split()[0])
    if path == "delta folded":
        assert counting.deltas_fold() == 3

    def count() -> int:
        return counting.counted(poll_ids=[poll.pk])[option.pk]

    assert count() == 3

    voters[0].delete()  # Django's cascade: DELETE FROM polls_vote WHERE user_id IN (...)
    assert count() == 2

    Vote.objects.filter(poll=poll).delete()  # one statement, two rows
    assert count() == 0
    assert counting.counters_drift(poll_ids=[poll.pk]) == [] and counting.deltas_pending() == 0


# ------------------------------------------------------------------------- indexes that match the queries
@pytest.mark.django_db
def test_indexes_match_the_queries_and_none_duplicates_a_prefix():
    names = set(explain.index_names())
    assert {
        "vote_poll_option_idx",
        "one_vote_per_user_per_poll",
        "option_id_poll_unique",
        "option_text_unique_per_poll",
        "poll_created_id_idx",
        "poll_open_expires_idx",
    } <= names
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indrelid::regclass::text, array_agg(a.attname ORDER BY k.ord)::text[] "
            "FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid::regclass::text = ANY(%s) GROUP BY i.indexrelid, i.indrelid",
            [list(explain.SCHEMA_TABLES)],
        )
        keys = [(table, tuple(cols)) for table, cols in cursor.fetchall()]
    single_column = {(t, c[0]) for t, c in keys if len(c) == 1}
    # A one-column index on poll_id would only duplicate the leading column of a composite one.
    assert ("polls_vote", "poll_id") not in single_column
    assert ("polls_option", "poll_id") not in single_column
    assert ("polls_vote", ("poll_id", "option_id")) in keys


@pytest.mark.django_db
def test_explain_drops_indexes_only_inside_a_rolled_back_transaction(poll, other_user):
    services.vote_cast(poll_id=poll.pk, option_id=poll.options.first().pk, user=other_user)
    before = explain.index_names()
    plans = explain.compare(
        counting.COUNT,
        poll_id=poll.pk,
        variants={"no vote index on poll_id": ["vote_poll_option_idx", "one_vote_per_user_per_poll"]},
        settings={"enable_seqscan": "off"},  # a tiny table: make the planner show what the index can do
    )
    on_poll_id = {"vote_poll_option_idx", "one_vote_per_user_per_poll"}  # (no statistics yet: either may win)
    assert plans["with every index"].indexes_used() & on_poll_id
    without = plans["no vote index on poll_id"]
    assert not without.indexes_used() & on_poll_id
    assert without.rows == 3 and "Sort" in without.node_types()
    assert explain.index_names() == before  # the schema is as it was
    assert explain.summary_frame(plans)["dropped"].tolist() == ["-", "vote_poll_option_idx, one_vote_per_user_per_poll"]


# ------------------------------------------------------------------------- concurrency (real transactions)
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_votes_by_one_user_store_exactly_one(poll, other_user):
    options = list(poll.options.values_list("pk", flat=True))
    ballots = [(other_user.pk, options[i % len(options)]) for i in range(50)]
    race = bench.race_votes(poll_id=poll.pk, ballots=ballots, workers=50)
    assert race.outcomes == {"created": 1, "already_voted": 49}, race.outcomes
    assert Vote.objects.filter(poll=poll, user=other_user).count() == 1
    assert sum(counting.counted(poll_ids=[poll.pk]).values()) == 1
    assert counting.counters_drift(poll_ids=[poll.pk]) == []


@pytest.mark.django_db(transaction=True)
def test_a_thousand_concurrent_votes_leave_the_counter_equal_to_count(poll, make_user):
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"crowd{i:04d}", email=f"crowd{i:04d}@example.com", password="!") for i in range(1000)
    )
    hot, *others = list(poll.options.values_list("pk", flat=True))
    # Two thirds on one option: many transactions queue on that option's row lock.
    ballots = [(u.pk, hot if i % 3 else others[i % len(others)]) for i, u in enumerate(users)]
    race = bench.race_votes(poll_id=poll.pk, ballots=ballots, workers=16)
    assert race.outcomes == {"created": 1000}, race.outcomes
    counted = dict(Vote.objects.filter(poll=poll).values_list("option").annotate(n=Count("id")))
    assert sum(counted.values()) == 1000
    assert counting.counted(poll_ids=[poll.pk]) == {pk: counted.get(pk, 0) for pk in [hot, *others]}
    assert counting.counters_drift(poll_ids=[poll.pk]) == []


# ------------------------------------------------------------------------- migrations, on a scratch database
SCRIPT = textwrap.dedent(
    """
    import json, django
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    def schema():
        with connection.cursor() as c:
            c.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                      "WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text LIKE 'polls%' "
                      "ORDER BY 1, 2")
            constraints = c.fetchall()
            c.execute("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename LIKE 'polls%' "
                      "ORDER BY 1, 2")
            indexes = c.fetchall()
            c.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1")
            triggers = c.fetchall()
            c.execute("SELECT relname, relkind FROM pg_class WHERE relname LIKE 'polls%' AND relkind IN ('r', 'm') "
                      "ORDER BY 1")
            relations = c.fetchall()
        return {"constraints": constraints, "indexes": indexes, "triggers": triggers, "relations": relations}

    out = {}
    call_command("migrate", verbosity=0)
    out["forward"] = schema()
    call_command("migrate", "polls", "0001", verbosity=0)
    with connection.cursor() as c:  # data written by the old schema: one user, one poll, two options, one vote
        c.execute("INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
                  "is_active, date_joined) VALUES ('!', false, 'm', '', '', '', false, true, now()) RETURNING id")
        user = c.fetchone()[0]
        c.execute("INSERT INTO polls_poll (question, description, owner_id, created_at, is_closed) "
                  "VALUES ('Q?', '', %s, now(), false) RETURNING id", [user])
        poll = c.fetchone()[0]
        c.execute("INSERT INTO polls_option (poll_id, text, position) VALUES (%s, 'A', 0), (%s, 'B', 1) "
                  "RETURNING id", [poll, poll])
        option = c.fetchall()[0][0]
        c.execute("INSERT INTO polls_vote (poll_id, option_id, user_id, created_at) VALUES (%s, %s, %s, now())",
                  [poll, option, user])
    out["at_0001"] = schema()
    call_command("migrate", verbosity=0)
    with connection.cursor() as c:
        c.execute("SELECT text, vote_count FROM polls_option ORDER BY position")
        out["backfilled"] = c.fetchall()
    call_command("migrate", "polls", "zero", verbosity=0)
    out["at_zero"] = schema()
    call_command("migrate", verbosity=0)
    out["again"] = schema()
    print("RESULT " + json.dumps(out))
    """
)


def _admin_connection():
    settings = dict(connection.settings_dict)
    conn = psycopg2.connect(
        dbname="postgres",
        user=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or None,
        port=settings.get("PORT") or None,
    )
    conn.autocommit = True
    return conn


@pytest.mark.timeout(240)
def test_migrations_apply_reverse_and_reapply_cleanly_on_a_scratch_database():
    scratch = f"nexus_scratch_{uuid.uuid4().hex[:10]}"
    admin = _admin_connection()
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{scratch}"')
        env = dict(os.environ, NEXUS_DB_NAME=scratch, DJANGO_SETTINGS_MODULE="nexus_backend.settings")
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=220
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        admin.close()

    forward = out["forward"]
    names = {c[1] for c in forward["constraints"]}
    assert {VOTE_OPTION_IN_POLL_FK, "option_id_poll_unique", "one_vote_per_user_per_poll"} <= names
    assert ["polls_vote_summary", "m"] in forward["relations"]
    assert {"vote_is_immutable", "vote_counter_on_delete"} <= {t[0] for t in forward["triggers"]}

    at_0001 = out["at_0001"]  # 0002 and 0003 undone: exactly the objects they added are gone
    assert VOTE_OPTION_IN_POLL_FK not in {c[1] for c in at_0001["constraints"]}
    assert ["polls_vote_summary", "m"] not in at_0001["relations"]
    assert not {"vote_is_immutable", "vote_counter_on_delete"} & {t[0] for t in at_0001["triggers"]}
    assert "poll_expires_at_idx" in {i[1] for i in at_0001["indexes"]}

    assert out["backfilled"] == [["A", 1], ["B", 0]]  # the counter column starts with the votes already cast
    assert out["at_zero"]["relations"] == [] and out["at_zero"]["constraints"] == []
    assert out["again"] == forward  # zero and back: the same schema, object for object


@pytest.mark.django_db
def test_the_admin_can_view_and_delete_votes_but_not_add_or_change_them(client, staff_user, poll, other_user):
    """Adding a vote in the admin would skip the counter; changing one is refused by the trigger anyway."""
    from django.contrib.admin.sites import site

    staff_user.is_superuser = True
    staff_user.save()
    vote = services.vote_cast(poll_id=poll.pk, option_id=poll.options.first().pk, user=other_user)
    admin = site._registry[Vote]
    request = type("Request", (), {"user": staff_user})()
    assert not admin.has_add_permission(request) and not admin.has_change_permission(request, vote)
    assert admin.has_delete_permission(request, vote) and admin.has_view_permission(request, vote)
    client.force_login(staff_user)
    assert client.get(f"/admin/polls/vote/{vote.pk}/change/").status_code == 200  # a read-only view
    assert client.get("/admin/polls/vote/add/").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_compare_vacuums_first_so_an_index_only_scan_skips_the_heap(poll, make_user):
    """Fresh votes leave their pages out of the visibility map: without a vacuum the index-only scan fetches them
    from the heap, and a notebook comparing pages touched would measure the database's state, not the index."""
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"fresh{i:04d}", email=f"fresh{i:04d}@example.com", password="!") for i in range(600)
    )
    options = list(poll.options.values_list("pk", flat=True))
    Vote.objects.bulk_create(
        Vote(poll_id=poll.pk, option_id=options[i % len(options)], user=u) for i, u in enumerate(users)
    )
    forced = {"enable_seqscan": "off", "enable_bitmapscan": "off"}  # a small table: show what the index can do

    def index_only(plans):
        plan = plans["with every index"]
        assert plan.uses_index("vote_poll_option_idx", only=True), plan.scans()
        return plan

    stale = index_only(explain.compare(counting.COUNT, poll_id=poll.pk, variants={}, vacuum=False, settings=forced))
    assert stale.heap_fetches > 0  # the mechanism's absence is visible...
    fresh = index_only(explain.compare(counting.COUNT, poll_id=poll.pk, variants={}, settings=forced))
    assert fresh.heap_fetches == 0  # ...and the default vacuum removes it
    assert fresh.shared_buffers < stale.shared_buffers


@pytest.mark.django_db(transaction=True)
def test_compare_vacuums_the_heap_clean_even_when_few_pages_hold_deleted_rows():
    """`make bench` leaves a million votes; a notebook then deletes and regenerates its own few thousand. Its deleted
    rows sit on far fewer than 2 % of the table's pages, so a plain VACUUM skips the index pass, leaves those pages
    out of the visibility map, and the index-only scan fetches the heap (make reports failed on this). Here: a few
    votes deleted from a generated table of 40,000."""
    generated = datagen.generate(votes=40_000, polls=20, prefix="background_", seed=3)
    hot_poll = generated.poll_ids[0]
    doomed = list(Vote.objects.filter(poll_id=hot_poll).order_by("pk").values_list("pk", flat=True)[::500][:5])
    Vote.objects.filter(pk__in=doomed).delete()  # dead rows on at most 5 pages
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size('polls_vote') / current_setting('block_size')::int")
        pages = cursor.fetchone()[0]
    assert pages > 50 * len(doomed)  # ... well under 2 % of the table's pages
    forced = {"enable_seqscan": "off", "enable_bitmapscan": "off"}
    plan = explain.compare(counting.COUNT, poll_id=hot_poll, variants={}, settings=forced)["with every index"]
    assert plan.uses_index("vote_poll_option_idx", only=True), plan.scans()
    assert plan.heap_fetches == 0
