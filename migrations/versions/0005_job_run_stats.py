"""Per-job run stats kept by triggers: health reads one row per job instead of probing runs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

`job_run_stats` holds, per job name (runs outlive their schedule, so no foreign key):
- `outcome_id`, `outcome_state`: the newest run (highest id) with an outcome: `succeeded`,
  `failed`, `discarded` not cancelled, or `running` at attempt > 1 (a retry in progress);
- `success_id`, `success_at`: the newest `succeeded` run and its `finished_at`;
- `failures`: runs `failed` or `discarded` (cancelled ones excepted) with an id above
  `success_id`, not capped here: readers cap it (shared.run_stats).

Statement-level triggers on `job_runs` (INSERT, UPDATE, DELETE, TRUNCATE) pass the rows whose
part in these numbers changed to `srjobs_run_stats_apply`, which locks the jobs' stats rows in
name order (concurrent batches cannot deadlock on them), then updates each from the changes;
only when the newest success or outcome itself is removed does it probe the job's runs again.
Each statement after the lock takes a fresh snapshot (READ COMMITTED), so a count it makes
sees every change committed before it; later ones apply their own deltas after it.
A statement touching no run with an outcome (a run created, enqueued, started at attempt 1)
costs one scan of its few transition rows. A stats row stays locked until its transaction
ends: one that gives outcomes to runs of several jobs in separate statements should take the
jobs in name order, or Postgres may abort it as a deadlock (srjobs writes one statement per
transaction).
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OUTCOME = """(r.state IN ('succeeded', 'failed')
              OR (r.state = 'discarded' AND (r.error IS NULL OR r.error NOT LIKE 'cancelled%'))
              OR (r.state = 'running' AND r.attempt > 1))"""
COUNTED = """(r.state = 'failed'
              OR (r.state = 'discarded' AND (r.error IS NULL OR r.error NOT LIKE 'cancelled%')))"""
# A run version's part in the stats (NULL when it has none): compared between old and new.
CHANGE = f"""CASE WHEN {OUTCOME} THEN ROW(r.job_name, r.id, true, r.state,
                 CASE WHEN r.state = 'succeeded' THEN r.finished_at END,
                 {COUNTED})::srjobs_run_change END"""

# Only the constants above are spliced in.
SCHEMA = f"""
CREATE TABLE job_run_stats (
    job_name      text PRIMARY KEY,
    outcome_id    bigint,
    outcome_state text,
    success_id    bigint,
    success_at    timestamptz,
    failures      bigint NOT NULL DEFAULT 0
);

-- One run version with an outcome: added (the new version) or removed (the old one).
CREATE TYPE srjobs_run_change AS (
    job_name text, id bigint, added boolean, state text, finished_at timestamptz,
    counted boolean
);

-- The stats of one job from its runs (the probes health used to make at every read).
CREATE FUNCTION srjobs_run_stats_recompute(job text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    o record;
    s record;
BEGIN
    SELECT r.id, r.state INTO o FROM job_runs r
     WHERE r.job_name = job AND {OUTCOME} ORDER BY r.id DESC LIMIT 1;
    SELECT r.id, r.finished_at INTO s FROM job_runs r
     WHERE r.job_name = job AND r.state = 'succeeded' ORDER BY r.id DESC LIMIT 1;
    UPDATE job_run_stats
       SET outcome_id = o.id, outcome_state = o.state, success_id = s.id,
           success_at = s.finished_at,
           failures = (SELECT count(*) FROM job_runs r
                        WHERE r.job_name = job AND r.id > COALESCE(s.id, 0) AND {COUNTED})
     WHERE job_name = job;
END $$;

CREATE FUNCTION srjobs_run_stats_apply(changes srjobs_run_change[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c record;
    counted bigint;
BEGIN
    IF cardinality(changes) IS NULL OR cardinality(changes) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO job_run_stats (job_name)
    SELECT DISTINCT ch.job_name FROM unnest(changes) ch ORDER BY 1
        ON CONFLICT (job_name) DO NOTHING;
    -- Per job (locked in name order): its stats and what the changes add to them.
    FOR c IN
        WITH ch AS MATERIALIZED (SELECT * FROM unnest(changes)),
        st AS MATERIALIZED (
            SELECT * FROM job_run_stats
             WHERE job_name IN (SELECT job_name FROM ch) ORDER BY job_name FOR UPDATE)
        SELECT st.job_name, st.outcome_id, st.outcome_state, st.success_id, st.success_at,
               st.failures,
               COALESCE(bool_or(NOT ch.added AND ch.id = st.success_id
                                AND ch.state = 'succeeded'), false)
                   AND NOT COALESCE(bool_or(ch.added AND ch.id = st.success_id
                                            AND ch.state = 'succeeded'), false) AS lost_success,
               COALESCE(bool_or(NOT ch.added AND ch.id = st.outcome_id), false)
                   AND NOT COALESCE(bool_or(ch.added AND ch.id = st.outcome_id), false)
                   AS lost_outcome,
               count(*) FILTER (WHERE ch.added AND ch.counted
                                  AND ch.id > COALESCE(st.success_id, 0))
               - count(*) FILTER (WHERE NOT ch.added AND ch.counted
                                    AND ch.id > COALESCE(st.success_id, 0)) AS delta,
               max(ch.id) FILTER (WHERE ch.added AND ch.state = 'succeeded') AS top_id,
               (array_agg(ch.finished_at ORDER BY ch.id DESC)
                    FILTER (WHERE ch.added AND ch.state = 'succeeded'))[1] AS top_at,
               max(ch.id) FILTER (WHERE ch.added) AS newest_id,
               (array_agg(ch.state ORDER BY ch.id DESC) FILTER (WHERE ch.added))[1]
                   AS newest_state
          FROM st JOIN ch ON ch.job_name = st.job_name
         GROUP BY st.job_name, st.outcome_id, st.outcome_state, st.success_id, st.success_at,
                  st.failures
    LOOP
        IF c.lost_success OR c.lost_outcome THEN
            PERFORM srjobs_run_stats_recompute(c.job_name);
            CONTINUE;
        END IF;
        IF c.newest_id IS NOT NULL AND c.newest_id >= COALESCE(c.outcome_id, 0) THEN
            c.outcome_id := c.newest_id;
            c.outcome_state := c.newest_state;
        END IF;
        IF c.top_id IS NOT NULL AND c.top_id > COALESCE(c.success_id, 0) THEN
            -- A newer success: the failures now count from it.
            c.success_id := c.top_id;
            c.success_at := c.top_at;
            SELECT count(*) INTO counted FROM job_runs r
             WHERE r.job_name = c.job_name AND r.id > c.top_id AND {COUNTED};
        ELSE
            IF c.top_id IS NOT NULL AND c.top_id = c.success_id THEN
                c.success_at := c.top_at;
            END IF;
            counted := c.failures + c.delta;
        END IF;
        UPDATE job_run_stats
           SET outcome_id = c.outcome_id, outcome_state = c.outcome_state,
               success_id = c.success_id, success_at = c.success_at, failures = counted
         WHERE job_name = c.job_name;
    END LOOP;
END $$;

CREATE FUNCTION srjobs_run_stats_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM srjobs_run_stats_apply(ARRAY(
        SELECT c FROM (SELECT {CHANGE} AS c FROM new_runs r) AS v WHERE (c).id IS NOT NULL));
    RETURN NULL;
END $$;

CREATE FUNCTION srjobs_run_stats_updated() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE FUNCTION srjobs_run_stats_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM srjobs_run_stats_apply(ARRAY(
        SELECT ROW((c).job_name, (c).id, false, (c).state, (c).finished_at,
                   (c).counted)::srjobs_run_change
          FROM (SELECT {CHANGE} AS c FROM old_runs r) AS v WHERE (c).id IS NOT NULL));
    RETURN NULL;
END $$;

CREATE FUNCTION srjobs_run_stats_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_run_stats;
    RETURN NULL;
END $$;

CREATE TRIGGER job_runs_stats_inserted AFTER INSERT ON job_runs
    REFERENCING NEW TABLE AS new_runs
    FOR EACH STATEMENT EXECUTE FUNCTION srjobs_run_stats_inserted();
CREATE TRIGGER job_runs_stats_updated AFTER UPDATE ON job_runs
    REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs
    FOR EACH STATEMENT EXECUTE FUNCTION srjobs_run_stats_updated();
CREATE TRIGGER job_runs_stats_deleted AFTER DELETE ON job_runs
    REFERENCING OLD TABLE AS old_runs
    FOR EACH STATEMENT EXECUTE FUNCTION srjobs_run_stats_deleted();
CREATE TRIGGER job_runs_stats_truncated AFTER TRUNCATE ON job_runs
    FOR EACH STATEMENT EXECUTE FUNCTION srjobs_run_stats_truncated();
"""  # noqa: S608

# The triggers above hold job_runs against writes until the migration commits, so the
# backfill and the triggers agree.
BACKFILL = f"""
INSERT INTO job_run_stats (job_name)
SELECT DISTINCT r.job_name FROM job_runs r WHERE {OUTCOME};
SELECT srjobs_run_stats_recompute(job_name) FROM job_run_stats;
"""  # noqa: S608


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(BACKFILL)


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS job_runs_stats_inserted ON job_runs;
        DROP TRIGGER IF EXISTS job_runs_stats_updated ON job_runs;
        DROP TRIGGER IF EXISTS job_runs_stats_deleted ON job_runs;
        DROP TRIGGER IF EXISTS job_runs_stats_truncated ON job_runs;
        DROP FUNCTION IF EXISTS srjobs_run_stats_inserted(), srjobs_run_stats_updated(),
            srjobs_run_stats_deleted(), srjobs_run_stats_truncated(),
            srjobs_run_stats_apply(srjobs_run_change[]), srjobs_run_stats_recompute(text);
        DROP TYPE IF EXISTS srjobs_run_change;
        DROP TABLE IF EXISTS job_run_stats;
        """
    )
