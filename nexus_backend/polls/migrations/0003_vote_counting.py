# Written by hand: PostgreSQL objects Django's model state does not describe (triggers, a materialised view).
# Every operation has its reverse, so `migrate polls 0002` (or `zero`) undoes it.

from django.db import migrations

VOTE_IMMUTABLE = """
CREATE FUNCTION polls_vote_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a cast vote cannot be changed (vote %): delete it and cast another', OLD.id
        USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'vote_is_immutable';
END $$;
CREATE TRIGGER vote_is_immutable
    BEFORE UPDATE OF poll_id, option_id, user_id ON polls_vote
    FOR EACH ROW EXECUTE FUNCTION polls_vote_immutable();
"""

VOTE_IMMUTABLE_REVERSE = """
DROP TRIGGER vote_is_immutable ON polls_vote;
DROP FUNCTION polls_vote_immutable();
"""

# Votes are inserted by services.vote_cast, which increments the counter with F() in the same transaction.
# They are deleted by cascades the services never see (a user, a poll or an option deleted, the admin), so the
# database decrements: one statement-level trigger per DELETE statement, whatever its size.
COUNTER_ON_DELETE = """
CREATE FUNCTION polls_vote_counter_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE polls_option o
    SET vote_count = o.vote_count - gone.votes
    FROM (SELECT option_id, COUNT(*) AS votes FROM deleted_votes GROUP BY option_id) gone
    WHERE o.id = gone.option_id;
    RETURN NULL;
END $$;
CREATE TRIGGER vote_counter_on_delete
    AFTER DELETE ON polls_vote
    REFERENCING OLD TABLE AS deleted_votes
    FOR EACH STATEMENT EXECUTE FUNCTION polls_vote_counter_on_delete();
"""

COUNTER_ON_DELETE_REVERSE = """
DROP TRIGGER vote_counter_on_delete ON polls_vote;
DROP FUNCTION polls_vote_counter_on_delete();
"""

# The "summary" counting strategy: votes per option, computed by REFRESH MATERIALIZED VIEW CONCURRENTLY (the
# refresh_vote_summary Celery task), read with one index lookup, stale by up to the refresh interval.
# The unique index is what CONCURRENTLY needs (readers are not blocked during a refresh); it leads with
# poll_id, so it also serves the read ("WHERE poll_id = ?").
SUMMARY_VIEW = """
CREATE MATERIALIZED VIEW polls_vote_summary AS
    SELECT poll_id, option_id, COUNT(*)::integer AS votes
    FROM polls_vote
    GROUP BY poll_id, option_id;
CREATE UNIQUE INDEX vote_summary_poll_option_idx ON polls_vote_summary (poll_id, option_id);
"""

SUMMARY_VIEW_REVERSE = "DROP MATERIALIZED VIEW polls_vote_summary;"


class Migration(migrations.Migration):
    dependencies = [
        ("polls", "0002_constraints_and_indexes"),
    ]

    operations = [
        migrations.RunSQL(VOTE_IMMUTABLE, VOTE_IMMUTABLE_REVERSE),
        migrations.RunSQL(COUNTER_ON_DELETE, COUNTER_ON_DELETE_REVERSE),
        migrations.RunSQL(SUMMARY_VIEW, SUMMARY_VIEW_REVERSE),
    ]
