"""Control plane: schedule arguments, declared schedules, the actor catalogue, run arguments,
retries and cancel requests.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE job_schedules
    ADD COLUMN args jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT job_schedules_args_object CHECK (jsonb_typeof(args) = 'object'),
    ADD COLUMN declared boolean NOT NULL DEFAULT false;
-- Until now every schedule was seeded from a job declared in code.
UPDATE job_schedules SET declared = true;

-- The actors the workers can run, so that the admin (which never imports worker code) can
-- validate a schedule. Written by `srjobs migrate` and by every worker at start.
CREATE TABLE job_actors (
    name        text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    queue       text NOT NULL DEFAULT 'default',
    params      jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(params) = 'array'),
    -- The function also takes **kwargs: any argument name is accepted.
    any_args    boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A plain INSERT (name, actor, cron) is a complete schedule: its queue is the actor's.
CREATE FUNCTION srjobs_schedules_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.queue = 'default' THEN
        NEW.queue := COALESCE((SELECT queue FROM job_actors WHERE name = NEW.actor), 'default');
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER job_schedules_queue
    BEFORE INSERT ON job_schedules
    FOR EACH ROW EXECUTE FUNCTION srjobs_schedules_queue();

ALTER TABLE job_runs
    ADD COLUMN args jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT job_runs_args_object CHECK (jsonb_typeof(args) = 'object'),
    -- No foreign key: finished runs are pruned by retention, a retry may outlive its original.
    ADD COLUMN retry_of bigint,
    ADD COLUMN cancel_requested_at timestamptz;
CREATE INDEX job_runs_retry_of ON job_runs (retry_of) WHERE retry_of IS NOT NULL;
-- The run search filters by creation time.
CREATE INDEX job_runs_created_at ON job_runs (created_at);
"""

DOWNGRADE = """
DROP INDEX IF EXISTS job_runs_created_at;
DROP INDEX IF EXISTS job_runs_retry_of;
ALTER TABLE job_runs DROP COLUMN IF EXISTS cancel_requested_at,
    DROP COLUMN IF EXISTS retry_of, DROP COLUMN IF EXISTS args;
DROP TRIGGER IF EXISTS job_schedules_queue ON job_schedules;
DROP FUNCTION IF EXISTS srjobs_schedules_queue();
DROP TABLE IF EXISTS job_actors;
ALTER TABLE job_schedules DROP COLUMN IF EXISTS declared, DROP COLUMN IF EXISTS args;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
