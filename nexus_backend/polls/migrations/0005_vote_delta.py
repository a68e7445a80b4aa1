# Written by hand: the "delta" counting strategy's append-only table, and the delete trigger that keeps
# "counter + pending deltas" exact. Every operation has its reverse, so `migrate polls 0003` undoes it.

from django.db import migrations

# One row per vote not yet folded into polls_option.vote_count. Written in the vote's own statement
# (services.vote_cast), emptied by counting.deltas_fold in one transaction. No primary key and no index on
# purpose: a vote pays one heap insert and nothing else (no index to maintain, no row lock shared with other
# voters); the table stays small because the fold empties it every few seconds, so reads scan it whole.
VOTE_DELTA = """
CREATE TABLE polls_vote_delta (
    vote_id bigint NOT NULL,
    poll_id bigint NOT NULL,
    option_id bigint NOT NULL
);
ALTER TABLE polls_vote_delta SET (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);
"""

VOTE_DELTA_REVERSE = "DROP TABLE polls_vote_delta;"

# A deleted vote leaves "counter + pending deltas" one lower: if its delta is still pending, delete the delta;
# if it was folded already, decrement the counter. Two statements, in this order: a fold running concurrently
# holds the delta rows locked; the DELETE waits for it, and once it committed finds them gone (folded), so the
# UPDATE (which reads the counter the fold wrote) decrements instead.
COUNTER_ON_DELETE = """
CREATE OR REPLACE FUNCTION polls_vote_counter_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pending bigint[];
BEGIN
    WITH gone AS (
        DELETE FROM polls_vote_delta d USING deleted_votes v WHERE d.vote_id = v.id RETURNING d.vote_id
    )
    SELECT COALESCE(array_agg(vote_id), '{}') INTO pending FROM gone;
    UPDATE polls_option o
    SET vote_count = o.vote_count - gone.votes
    FROM (
        SELECT option_id, COUNT(*) AS votes FROM deleted_votes WHERE id <> ALL(pending) GROUP BY option_id
    ) gone
    WHERE o.id = gone.option_id;
    RETURN NULL;
END $$;
"""

# migration 0003's version
COUNTER_ON_DELETE_REVERSE = """
CREATE OR REPLACE FUNCTION polls_vote_counter_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE polls_option o
    SET vote_count = o.vote_count - gone.votes
    FROM (SELECT option_id, COUNT(*) AS votes FROM deleted_votes GROUP BY option_id) gone
    WHERE o.id = gone.option_id;
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("polls", "0004_poll_description_max_length"),
    ]

    operations = [
        migrations.RunSQL(VOTE_DELTA, VOTE_DELTA_REVERSE),
        migrations.RunSQL(COUNTER_ON_DELETE, COUNTER_ON_DELETE_REVERSE),
    ]
