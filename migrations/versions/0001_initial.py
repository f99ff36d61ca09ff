"""Initial schema: schedules, runs, scheduler peers, audit log, telemetry view.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEDULES = """
CREATE TABLE job_schedules (
    name        text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 200),
    actor       text NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
    queue       text NOT NULL DEFAULT 'default',
    cron        text NOT NULL CHECK (length(cron) BETWEEN 1 AND 200),
    timezone    text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 64),
    enabled     boolean NOT NULL DEFAULT true,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every change, from the API, the UI or plain SQL, reaches the leader at once. The payload
-- carries the change's time so the leader can report how long the change took to apply.
CREATE FUNCTION srjobs_schedules_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('srjobs_schedules', json_build_object(
        'name', COALESCE(NEW.name, OLD.name),
        'at', extract(epoch FROM clock_timestamp()))::text);
    RETURN NULL;
END $$;

CREATE TRIGGER job_schedules_notify
    AFTER INSERT OR UPDATE OR DELETE ON job_schedules
    FOR EACH ROW EXECUTE FUNCTION srjobs_schedules_notify();

CREATE FUNCTION srjobs_schedules_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER job_schedules_touch
    BEFORE UPDATE ON job_schedules
    FOR EACH ROW EXECUTE FUNCTION srjobs_schedules_touch();
"""

RUNS = """
CREATE TABLE job_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name     text NOT NULL,
    trigger      text NOT NULL CHECK (trigger IN ('cron', 'manual')),
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'enqueued', 'running', 'succeeded', 'failed',
                                  'discarded')),
    scheduled_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    enqueued_at  timestamptz,
    started_at   timestamptz,
    finished_at  timestamptz,
    attempt      integer NOT NULL DEFAULT 0,
    node         text,
    error        text,
    traceback    text,
    send_attempts integer NOT NULL DEFAULT 0,
    next_send_at timestamptz,
    -- The worker process (worker_nodes.worker) running it: orphan rescue follows its heartbeat.
    worker       text,
    CHECK (trigger = 'manual' OR scheduled_at IS NOT NULL)
);

-- Fencing: one cron run per slot, whoever believes it leads (NULLs, manual runs, are distinct).
CREATE UNIQUE INDEX job_runs_one_per_slot ON job_runs (job_name, scheduled_at);
-- "Runs of job X, newest first" and keyset pages of it.
CREATE INDEX job_runs_job_newest ON job_runs (job_name, id DESC);
CREATE INDEX job_runs_state_newest ON job_runs (state, id DESC);
-- The outbox and orphan rescue scan only the unfinished runs.
CREATE INDEX job_runs_unfinished ON job_runs (state, id)
    WHERE state IN ('pending', 'enqueued', 'running');
CREATE INDEX job_runs_finished_at ON job_runs (finished_at)
    WHERE finished_at IS NOT NULL;
"""

PEERS = """
CREATE TABLE scheduler_nodes (
    node         text PRIMARY KEY,
    role         text NOT NULL CHECK (role IN ('leader', 'follower')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    leader_since timestamptz
);

-- APScheduler's SQLAlchemy job store (written only by the leader's scheduler).
CREATE TABLE apscheduler_jobs (
    id            varchar(191) PRIMARY KEY,
    next_run_time double precision,
    job_state     bytea NOT NULL
);
CREATE INDEX ix_apscheduler_jobs_next_run_time ON apscheduler_jobs (next_run_time);

-- One row per worker process lifetime (`node/pid/boot id`), so that a restart under the same
-- NODE_NAME never vouches for the runs its predecessor left behind.
CREATE TABLE worker_nodes (
    worker       text PRIMARY KEY,
    node         text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX worker_nodes_last_seen ON worker_nodes (last_seen_at);

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    who        text NOT NULL,
    action     text NOT NULL,
    job_name   text NOT NULL,
    old_values jsonb,
    new_values jsonb
);
CREATE INDEX audit_log_job_newest ON audit_log (job_name, id DESC);
"""

TELEMETRY = """
CREATE TABLE otel_traces (
    timestamp            timestamptz NOT NULL,
    trace_id             text NOT NULL,
    span_id              text NOT NULL,
    parent_span_id       text,
    name                 text,
    kind                 integer,
    start_time_unix_nano bigint,
    end_time_unix_nano   bigint,
    service_name         text,
    status_code          integer,
    status_message       text,
    attributes           jsonb NOT NULL DEFAULT '{}'::jsonb,
    resource_attributes  jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (timestamp, trace_id, span_id)
);
CREATE INDEX otel_traces_trace_id ON otel_traces (trace_id);

-- One row per trace seen in the last 7 days.
CREATE MATERIALIZED VIEW otel_trace_summaries AS
WITH recent AS (
    SELECT * FROM otel_traces WHERE timestamp > now() - interval '7 days'
),
roots AS (
    SELECT DISTINCT ON (trace_id)
           trace_id, span_id, name, service_name, kind, status_code
      FROM recent
     WHERE parent_span_id IS NULL OR parent_span_id = ''
     ORDER BY trace_id, start_time_unix_nano, span_id
),
spans AS (
    SELECT trace_id,
           max(timestamp)                            AS timestamp,
           min(start_time_unix_nano)                 AS start_time_unix_nano,
           max(end_time_unix_nano)                   AS end_time_unix_nano,
           array_agg(DISTINCT service_name ORDER BY service_name)
               FILTER (WHERE service_name IS NOT NULL) AS service_set,
           count(*)                                  AS span_count,
           count(*) FILTER (WHERE status_code = 2)   AS error_count
      FROM recent
     GROUP BY trace_id
)
SELECT spans.trace_id,
       spans.timestamp,
       roots.span_id      AS root_span_id,
       roots.name         AS root_span_name,
       roots.service_name AS root_service_name,
       roots.kind         AS root_span_kind,
       roots.status_code  AS status_code,
       spans.start_time_unix_nano,
       spans.end_time_unix_nano,
       (spans.end_time_unix_nano - spans.start_time_unix_nano) / 1000000.0 AS duration_ms,
       COALESCE(spans.service_set, ARRAY[]::text[]) AS service_set,
       spans.span_count,
       spans.error_count
  FROM spans
  LEFT JOIN roots USING (trace_id);

CREATE UNIQUE INDEX otel_trace_summaries_trace_id ON otel_trace_summaries (trace_id);
CREATE INDEX otel_trace_summaries_newest ON otel_trace_summaries (timestamp DESC);
CREATE INDEX otel_trace_summaries_root_service
    ON otel_trace_summaries (root_service_name, timestamp DESC);
"""


def upgrade() -> None:
    for script in (SCHEDULES, RUNS, PEERS, TELEMETRY):
        op.execute(script)


def downgrade() -> None:
    op.execute(
        """
        DROP MATERIALIZED VIEW IF EXISTS otel_trace_summaries;
        DROP TABLE IF EXISTS otel_traces, audit_log, worker_nodes, apscheduler_jobs,
            scheduler_nodes, job_runs,
            job_schedules;
        DROP FUNCTION IF EXISTS srjobs_schedules_notify(), srjobs_schedules_touch();
        """
    )
