"""Each job's newest run id, and an index of manual runs per job: reads at 20M runs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

`job_run_newest` holds, per job name, the highest run id ever recorded for it: never below
the id of its newest run, and equal to it while that run exists (ids only grow, and a run
enters a job only by INSERT or by an UPDATE of `job_name` or `id`, which raise it). The jobs
list reads the run with that id (a primary-key probe among the newest runs, whose pages are
hot) instead of probing `job_runs_job_newest` once per job; when the run is gone (pruned,
deleted, moved to another job), it probes the job's runs below that id, as before
(shared.job_listing). Deleting runs leaves the table alone: retention and workers never
touch it, and only writers that add runs to the same job wait on each other's row.

A statement-level trigger raises each INSERT's jobs in name order (one upsert per job: the
leader's batch of fires takes its jobs' rows in the same order, so concurrent inserts cannot
deadlock on them); a row trigger raises the job a run is moved to.

`job_runs_job_manual` serves the run search of one job's manual runs (1 in 50 at most in
practice): newest first without walking the job's cron runs.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

RAISE = """
ON CONFLICT (job_name) DO UPDATE SET run_id = EXCLUDED.run_id
 WHERE EXCLUDED.run_id > n.run_id"""

# Only the constant above is spliced in.
SCHEMA = f"""
CREATE TABLE job_run_newest (
    job_name text PRIMARY KEY,
    run_id   bigint NOT NULL
);

CREATE FUNCTION srjobs_run_newest_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_run_newest AS n (job_name, run_id)
    SELECT job_name, max(id) FROM new_runs GROUP BY job_name ORDER BY job_name
    {RAISE};
    RETURN NULL;
END $$;

CREATE FUNCTION srjobs_run_newest_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_run_newest AS n (job_name, run_id) VALUES (NEW.job_name, NEW.id)
    {RAISE};
    RETURN NULL;
END $$;

CREATE TRIGGER job_runs_newest AFTER INSERT ON job_runs
    REFERENCING NEW TABLE AS new_runs
    FOR EACH STATEMENT EXECUTE FUNCTION srjobs_run_newest_inserted();
CREATE TRIGGER job_runs_newest_moved AFTER UPDATE OF job_name, id ON job_runs
    FOR EACH ROW
    WHEN (OLD.job_name IS DISTINCT FROM NEW.job_name OR OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION srjobs_run_newest_moved();

CREATE INDEX job_runs_job_manual ON job_runs (job_name, id DESC) WHERE trigger = 'manual';
"""  # noqa: S608

# The triggers above hold job_runs against writes until the migration commits, so the
# backfill and the triggers agree. The job names are walked along `job_runs_job_newest` (one
# probe per job, not a scan of every run), each with its highest id.
BACKFILL = """
WITH RECURSIVE jobs AS (
    (SELECT job_name FROM job_runs ORDER BY job_name LIMIT 1)
    UNION ALL
    SELECT (SELECT r.job_name FROM job_runs r WHERE r.job_name > j.job_name
             ORDER BY r.job_name LIMIT 1)
      FROM jobs j WHERE j.job_name IS NOT NULL
)
INSERT INTO job_run_newest (job_name, run_id)
SELECT j.job_name, (SELECT max(r.id) FROM job_runs r WHERE r.job_name = j.job_name)
  FROM jobs j WHERE j.job_name IS NOT NULL ORDER BY 1;
ANALYZE job_run_newest;
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(BACKFILL)


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX IF EXISTS job_runs_job_manual;
        DROP TRIGGER IF EXISTS job_runs_newest ON job_runs;
        DROP TRIGGER IF EXISTS job_runs_newest_moved ON job_runs;
        DROP FUNCTION IF EXISTS srjobs_run_newest_inserted(), srjobs_run_newest_moved();
        DROP TABLE IF EXISTS job_run_newest;
        """
    )
