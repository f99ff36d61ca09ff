"""Change capture on otel_traces for the incremental mode of otel_trace_summaries.

The triggers are created disabled: `srjobs summaries --mode incremental` enables them and
`--mode view` disables them again, so the default view mode writes no change rows. See
docs/architecture.md ("Trace summaries: two modes").

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CAPTURE = """
-- The traces whose spans changed since the refresh job's last incremental run, one row per
-- trace and statement (duplicates are fine). NULL stands for every trace (TRUNCATE). No index:
-- the run reads it whole and deletes exactly the rows it read.
CREATE TABLE otel_trace_changes (
    trace_id text
);

-- The incremental run's watermark: the start of the 7-day window at its last success.
CREATE TABLE otel_trace_summaries_state (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    window_start timestamptz
);
INSERT INTO otel_trace_summaries_state DEFAULT VALUES;

CREATE FUNCTION otel_traces_capture_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO otel_trace_changes (trace_id) SELECT DISTINCT trace_id FROM inserted_spans;
    RETURN NULL;
END $$;

CREATE FUNCTION otel_traces_capture_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO otel_trace_changes (trace_id) SELECT DISTINCT trace_id FROM deleted_spans;
    RETURN NULL;
END $$;

CREATE FUNCTION otel_traces_capture_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO otel_trace_changes (trace_id)
        SELECT trace_id FROM deleted_spans UNION SELECT trace_id FROM inserted_spans;
    RETURN NULL;
END $$;

CREATE FUNCTION otel_traces_capture_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO otel_trace_changes (trace_id) VALUES (NULL);
    RETURN NULL;
END $$;

-- Statement-level, with transition tables: one INSERT per statement whatever its size.
CREATE TRIGGER otel_traces_capture_insert
    AFTER INSERT ON otel_traces REFERENCING NEW TABLE AS inserted_spans
    FOR EACH STATEMENT EXECUTE FUNCTION otel_traces_capture_inserted();
CREATE TRIGGER otel_traces_capture_delete
    AFTER DELETE ON otel_traces REFERENCING OLD TABLE AS deleted_spans
    FOR EACH STATEMENT EXECUTE FUNCTION otel_traces_capture_deleted();
CREATE TRIGGER otel_traces_capture_update
    AFTER UPDATE ON otel_traces
    REFERENCING OLD TABLE AS deleted_spans NEW TABLE AS inserted_spans
    FOR EACH STATEMENT EXECUTE FUNCTION otel_traces_capture_updated();
CREATE TRIGGER otel_traces_capture_truncate
    AFTER TRUNCATE ON otel_traces
    FOR EACH STATEMENT EXECUTE FUNCTION otel_traces_capture_truncated();

ALTER TABLE otel_traces
    DISABLE TRIGGER otel_traces_capture_insert,
    DISABLE TRIGGER otel_traces_capture_delete,
    DISABLE TRIGGER otel_traces_capture_update,
    DISABLE TRIGGER otel_traces_capture_truncate;
"""


def upgrade() -> None:
    op.execute(CAPTURE)


def downgrade() -> None:
    op.execute(
        """
        DO $$
        BEGIN
            IF (SELECT relkind FROM pg_class
                 WHERE oid = to_regclass('otel_trace_summaries')) = 'r' THEN
                RAISE EXCEPTION 'otel_trace_summaries is in incremental mode: run'
                    ' `srjobs summaries --mode view` before downgrading';
            END IF;
        END $$;
        DROP TRIGGER IF EXISTS otel_traces_capture_insert ON otel_traces;
        DROP TRIGGER IF EXISTS otel_traces_capture_delete ON otel_traces;
        DROP TRIGGER IF EXISTS otel_traces_capture_update ON otel_traces;
        DROP TRIGGER IF EXISTS otel_traces_capture_truncate ON otel_traces;
        DROP FUNCTION IF EXISTS otel_traces_capture_inserted(), otel_traces_capture_deleted(),
            otel_traces_capture_updated(), otel_traces_capture_truncated();
        DROP TABLE IF EXISTS otel_trace_changes, otel_trace_summaries_state;
        """
    )
