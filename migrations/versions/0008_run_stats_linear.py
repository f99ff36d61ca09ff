"""The run stats' UPDATE trigger in time linear in the rows a statement changes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

Migration 0005's `srjobs_run_stats_updated` paired each run's old and new version by joining
the two transition tables on `id`. Transition tables carry no statistics, so the planner
takes each for one row and joins them in a nested loop: a statement changing n runs compared
n x n pairs (the worker's batch of 1,000 succeeded runs: a million, 200 ms of the
statement's 280). The changes are now the two set differences of the versions that have a
part in the stats (EXCEPT ALL, hashed or sorted): an old version not found among the new ones
is removed, a new version not found among the old ones is added. Within one statement each
run has one old and one new version, so that is exactly the pairs the join found different,
and `srjobs_run_stats_apply` is given the same changes (it does not depend on their order).
A statement whose runs have no part in the stats before or after (a start at attempt 1)
passes nothing, as before.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# As in 0005 (kept verbatim: the stats depend on them).
OUTCOME = """(r.state IN ('succeeded', 'failed')
              OR (r.state = 'discarded' AND (r.error IS NULL OR r.error NOT LIKE 'cancelled%'))
              OR (r.state = 'running' AND r.attempt > 1))"""
COUNTED = """(r.state = 'failed'
              OR (r.state = 'discarded' AND (r.error IS NULL OR r.error NOT LIKE 'cancelled%')))"""
# A run version with a part in the stats (the rows of OUTCOME only).
PART = f"""ROW(r.job_name, r.id, true, r.state,
               CASE WHEN r.state = 'succeeded' THEN r.finished_at END,
               {COUNTED})::srjobs_run_change"""

# Only the constants above are spliced in.
LINEAR = f"""
CREATE OR REPLACE FUNCTION srjobs_run_stats_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM srjobs_run_stats_apply(ARRAY(
        SELECT ROW((g.c).job_name, (g.c).id, false, (g.c).state, (g.c).finished_at,
                   (g.c).counted)::srjobs_run_change
          FROM (SELECT {PART} AS c FROM old_runs r WHERE {OUTCOME}
                EXCEPT ALL
                SELECT {PART} FROM new_runs r WHERE {OUTCOME}) AS g
        UNION ALL
        SELECT a.c
          FROM (SELECT {PART} AS c FROM new_runs r WHERE {OUTCOME}
                EXCEPT ALL
                SELECT {PART} FROM old_runs r WHERE {OUTCOME}) AS a));
    RETURN NULL;
END $$;
"""  # noqa: S608

CHANGE = f"""CASE WHEN {OUTCOME} THEN {PART} END"""

# 0005's function, for a downgrade.
JOINED = f"""
CREATE OR REPLACE FUNCTION srjobs_run_stats_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM srjobs_run_stats_apply(ARRAY(
        SELECT c FROM (
            SELECT o.c AS was, n.c AS became
              FROM (SELECT r.id, {CHANGE} AS c FROM old_runs r) AS o
              JOIN (SELECT r.id, {CHANGE} AS c FROM new_runs r) AS n USING (id)) AS v,
        LATERAL (VALUES (CASE WHEN (was).id IS NOT NULL THEN
                              ROW((was).job_name, (was).id, false, (was).state,
                                  (was).finished_at, (was).counted)::srjobs_run_change END),
                        (became)) AS x(c)
         WHERE was IS DISTINCT FROM became AND (c).id IS NOT NULL));
    RETURN NULL;
END $$;
"""  # noqa: S608


def upgrade() -> None:
    op.execute(LINEAR)


def downgrade() -> None:
    op.execute(JOINED)
