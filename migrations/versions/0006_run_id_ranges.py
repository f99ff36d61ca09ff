"""Id ranges per creation-time bucket: the run search turns `since`/`until` into id bounds.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

`job_run_id_ranges` holds, per bucket of `created_at` (`width` seconds from `starts_at`, at
three widths: 10 s, an hour, a day), the lowest and highest id of the runs created in it.
Runs are ordered by id, but ids follow `created_at` only roughly (`created_at` is the
transaction's start; an earlier transaction may insert later ids; plain SQL may set any
time), so the run search cannot walk the ids to a time. With these ranges it can:
`created_at < until` implies `id <= ` the highest `max_id` over the buckets starting before
`until`; `created_at >= since` implies `id >= ` the lowest `min_id` over the buckets that end
after `since`. Three widths keep either set small (up to 360 + 24 buckets, plus the days).

A statement-level trigger adds each INSERT's runs (grouped by `created_at` first): one
upsert per (width, bucket) the statement touches (one per width for the leader's batch of
fires, all created at the same `now()`), in key order, so concurrent inserts cannot deadlock
on them. A row trigger widens the ranges when `created_at` is changed by hand. Ranges only
ever widen: runs deleted or moved leave them looser, never wrong.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The start of `r.created_at`'s bucket of `w.width` seconds (epoch-aligned, so UTC days).
STARTS = "date_bin(w.width * interval '1 second', r.created_at, 'epoch')"
WIDTHS = "(VALUES (10), (3600), (86400)) AS w(width)"
UPSERT = """
ON CONFLICT (width, starts_at) DO UPDATE
   SET min_id = LEAST(g.min_id, EXCLUDED.min_id), max_id = GREATEST(g.max_id, EXCLUDED.max_id)
 WHERE EXCLUDED.min_id < g.min_id OR EXCLUDED.max_id > g.max_id"""

# Only the constants above are spliced in.
SCHEMA = f"""
CREATE TABLE job_run_id_ranges (
    width     integer     NOT NULL,
    starts_at timestamptz NOT NULL,
    min_id    bigint      NOT NULL,
    max_id    bigint      NOT NULL,
    PRIMARY KEY (width, starts_at)
);

CREATE FUNCTION srjobs_run_ids_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_run_id_ranges AS g (width, starts_at, min_id, max_id)
    SELECT w.width, {STARTS}, min(r.min_id), max(r.max_id)
      FROM (SELECT created_at, min(id) AS min_id, max(id) AS max_id
              FROM new_runs GROUP BY created_at) AS r
     CROSS JOIN {WIDTHS}
     GROUP BY 1, 2 ORDER BY 1, 2
    {UPSERT};
    RETURN NULL;
END $$;

CREATE FUNCTION srjobs_run_ids_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_run_id_ranges AS g (width, starts_at, min_id, max_id)
    SELECT w.width, {STARTS}, r.id, r.id
      FROM (SELECT NEW.id, NEW.created_at) AS r(id, created_at) CROSS JOIN {WIDTHS}
     ORDER BY 1, 2
    {UPSERT};
    RETURN NULL;
END $$;

CREATE TRIGGER job_runs_id_ranges AFTER INSERT ON job_runs
    REFERENCING NEW TABLE AS new_runs
    FOR EACH STATEMENT EXECUTE FUNCTION srjobs_run_ids_inserted();
CREATE TRIGGER job_runs_id_ranges_moved AFTER UPDATE OF created_at ON job_runs
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION srjobs_run_ids_moved();
"""  # noqa: S608

# The triggers above hold job_runs against writes until the migration commits, so the
# backfill and the triggers agree. One scan of the runs for the finest width; the wider ones
# are made from it. Rows are written in key order, as the trigger appends them: a search reads
# neighbouring buckets from few pages.
BACKFILL = f"""
INSERT INTO job_run_id_ranges (width, starts_at, min_id, max_id)
SELECT 10, {STARTS.replace("w.width", "10")}, min(r.id), max(r.id)
  FROM job_runs r GROUP BY 2 ORDER BY 2;
INSERT INTO job_run_id_ranges (width, starts_at, min_id, max_id)
SELECT w.width, {STARTS.replace("r.created_at", "g.starts_at")}, min(g.min_id), max(g.max_id)
  FROM job_run_id_ranges g CROSS JOIN (VALUES (3600), (86400)) AS w(width)
 WHERE g.width = 10
 GROUP BY 1, 2 ORDER BY 1, 2;
ANALYZE job_run_id_ranges;
"""  # noqa: S608


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(BACKFILL)


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER IF EXISTS job_runs_id_ranges ON job_runs;
        DROP TRIGGER IF EXISTS job_runs_id_ranges_moved ON job_runs;
        DROP FUNCTION IF EXISTS srjobs_run_ids_inserted(), srjobs_run_ids_moved();
        DROP TABLE IF EXISTS job_run_id_ranges;
        """
    )
