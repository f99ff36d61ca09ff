"""Freshness and alerts: stale_after_seconds, enabled_at, alerts, the last alerted health.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEDULES = """
ALTER TABLE job_schedules
    ADD COLUMN stale_after_seconds integer
        CHECK (stale_after_seconds IS NULL OR stale_after_seconds BETWEEN 60 AND 31622400),
    -- When the job was created or last enabled: staleness counts from here at the earliest.
    ADD COLUMN enabled_at timestamptz NOT NULL DEFAULT now();
UPDATE job_schedules SET enabled_at = created_at;

CREATE FUNCTION srjobs_schedules_enabled_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.enabled AND NOT OLD.enabled THEN
        NEW.enabled_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER job_schedules_enabled_at
    BEFORE UPDATE OF enabled ON job_schedules
    FOR EACH ROW EXECUTE FUNCTION srjobs_schedules_enabled_at();
"""

RUNS = """
-- Health per job: the last success, the newest outcome and the failures since the success are
-- each one index probe (a job's runs newest first).
CREATE INDEX job_runs_last_success ON job_runs (job_name, id DESC) WHERE state = 'succeeded';
CREATE INDEX job_runs_failures ON job_runs (job_name, id DESC)
    WHERE state IN ('failed', 'discarded');

-- Wakes the leader's health watch when a run gets an outcome, whoever wrote it (a worker,
-- orphan rescue, a cancel, plain SQL). Postgres folds equal notifications of a transaction.
CREATE FUNCTION srjobs_runs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('srjobs_runs', NEW.job_name);
    RETURN NULL;
END $$;

CREATE TRIGGER job_runs_outcome_notify
    AFTER UPDATE OF state ON job_runs
    FOR EACH ROW
    WHEN (NEW.state IN ('succeeded', 'failed', 'discarded')
          AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION srjobs_runs_notify();
CREATE TRIGGER job_runs_inserted_outcome_notify
    AFTER INSERT ON job_runs
    FOR EACH ROW
    WHEN (NEW.state IN ('succeeded', 'failed', 'discarded'))
    EXECUTE FUNCTION srjobs_runs_notify();
"""

ALERTS = """
CREATE TABLE alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name        text NOT NULL,
    event           text NOT NULL CHECK (event IN ('job.failing', 'job.stale', 'job.recovered')),
    health          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    -- The rest of the webhook body, fixed when the alert is recorded (re-sends are identical).
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    next_attempt_at timestamptz DEFAULT now(),
    -- Per URL, keyed by a hash of it: {"target" (the URL masked), "delivered_at",
    -- "attempts", "last_error"}. Webhook URLs often carry a token: it is never stored.
    deliveries      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX alerts_due ON alerts (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX alerts_job_newest ON alerts (job_name, id DESC);

-- The health each job was last alerted in (ok when absent): the leader compares with it and
-- changes it in the transaction that records the alert, so a transition alerts once.
CREATE TABLE job_alert_state (
    job_name   text PRIMARY KEY REFERENCES job_schedules (name) ON DELETE CASCADE,
    health     text NOT NULL CHECK (health IN ('ok', 'failing', 'stale')),
    changed_at timestamptz NOT NULL DEFAULT now()
);
"""


def upgrade() -> None:
    for script in (SCHEDULES, RUNS, ALERTS):
        op.execute(script)


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS job_alert_state, alerts;
        DROP TRIGGER IF EXISTS job_runs_outcome_notify ON job_runs;
        DROP TRIGGER IF EXISTS job_runs_inserted_outcome_notify ON job_runs;
        DROP FUNCTION IF EXISTS srjobs_runs_notify();
        DROP INDEX IF EXISTS job_runs_last_success, job_runs_failures;
        DROP TRIGGER IF EXISTS job_schedules_enabled_at ON job_schedules;
        DROP FUNCTION IF EXISTS srjobs_schedules_enabled_at();
        ALTER TABLE job_schedules DROP COLUMN IF EXISTS stale_after_seconds,
            DROP COLUMN IF EXISTS enabled_at;
        """
    )
