"""otel_trace_summaries: its one SQL definition, its mode, and the incremental run.

In `view` mode it is the materialized view of migration 0001. In `incremental` mode it is a
table of the same name, columns and indexes; `refresh_incremental` recomputes in it only the
traces whose spans changed (recorded by the capture triggers of migration 0002) or crossed the
edge of the 7-day window since its last run. See docs/architecture.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

logger = logging.getLogger(__name__)

TRACE_SUMMARIES_VIEW = "otel_trace_summaries"
MODES = ("view", "incremental")
RELKINDS = {"m": "view", "r": "incremental"}
CAPTURE_TRIGGERS = (
    "otel_traces_capture_insert",
    "otel_traces_capture_delete",
    "otel_traces_capture_update",
    "otel_traces_capture_truncate",
)

# The start of the window: a span is summarised while its `timestamp` is after it.
WINDOW_START = sql.SQL("now() - interval '7 days'")

# The view's query exactly as migration 0001 created it (tests compare the definitions), with
# {window_start} and {only_touched}: empty for the whole window (the view, a rebuild), or a
# filter to the traces listed in the run's temporary table otel_trace_touched.
SUMMARY_QUERY = """
WITH recent AS (
    SELECT * FROM otel_traces WHERE timestamp > {window_start}{only_touched}
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
  LEFT JOIN roots USING (trace_id)
"""
# An array, not a semi-join: the planner cannot tell its size, so it always looks the traces up
# by the trace_id index instead of scanning the window once the touched traces are many.
ONLY_TOUCHED = " AND trace_id = ANY (ARRAY(SELECT DISTINCT trace_id FROM otel_trace_touched))"

# The view's indexes as migration 0001 created them: (name, definition over {table}).
INDEXES = (
    ("otel_trace_summaries_trace_id", "CREATE UNIQUE INDEX {name} ON {table} (trace_id)"),
    ("otel_trace_summaries_newest", "CREATE INDEX {name} ON {table} (timestamp DESC)"),
    (
        "otel_trace_summaries_root_service",
        "CREATE INDEX {name} ON {table} (root_service_name, timestamp DESC)",
    ),
)

RELKIND = "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)"
CREATE_TOUCHED = "CREATE TEMPORARY TABLE otel_trace_touched (trace_id text) ON COMMIT DROP"
# Deletes exactly the change rows this statement's snapshot sees: a span committed after it
# keeps its change row for the next run. NULL (a TRUNCATE) asks for a rebuild.
CONSUME_CHANGES = """
WITH consumed AS (DELETE FROM otel_trace_changes RETURNING trace_id),
     kept AS (INSERT INTO otel_trace_touched SELECT DISTINCT trace_id FROM consumed
               WHERE trace_id IS NOT NULL RETURNING 1)
SELECT (SELECT count(*) FROM kept), EXISTS (SELECT FROM consumed WHERE trace_id IS NULL)
"""
WINDOW_STATE = "SELECT window_start FROM otel_trace_summaries_state"
# Traces with a span between the last run's window start and this one's: leaving the window
# (or entering it, should the window start have moved back).
CROSSED_EDGE = """
INSERT INTO otel_trace_touched
SELECT DISTINCT trace_id FROM otel_traces
 WHERE timestamp > least(%(last)s, {window_start})
   AND timestamp <= greatest(%(last)s, {window_start})
"""
DROP_TOUCHED_ROWS = """
DELETE FROM otel_trace_summaries
 WHERE trace_id = ANY (ARRAY(SELECT DISTINCT trace_id FROM otel_trace_touched))
"""
DROP_ALL_ROWS = "DELETE FROM otel_trace_summaries"
SAVE_WINDOW = "UPDATE otel_trace_summaries_state SET window_start = {window_start}"


@dataclass(frozen=True)
class IncrementalRun:
    """What one incremental run did."""

    rebuilt: bool
    touched: int
    rows: int


def summary_query(*, only_touched: bool) -> sql.Composed:
    """The summaries' query over the whole window, or over the touched traces only."""
    return sql.SQL(SUMMARY_QUERY).format(
        window_start=WINDOW_START,
        only_touched=sql.SQL(ONLY_TOUCHED if only_touched else ""),
    )


def index_statements(table: str, suffix: str = "") -> list[sql.Composed]:
    """CREATE INDEX statements for `table` giving the view's indexes (names + `suffix`)."""
    return [
        sql.SQL(template).format(name=sql.Identifier(name + suffix), table=sql.Identifier(table))
        for name, template in INDEXES
    ]


def current_mode(cur: Cursor) -> str | None:
    """`view`, `incremental`, or None when otel_trace_summaries does not exist."""
    cur.execute(RELKIND, (TRACE_SUMMARIES_VIEW,))
    row = cur.fetchone()
    return RELKINDS.get(row[0]) if row else None


def refresh_incremental(cur: Cursor) -> IncrementalRun:
    """Bring the table up to date in the caller's transaction (which holds the refresh lock)."""
    cur.execute(CREATE_TOUCHED)
    cur.execute(CONSUME_CHANGES)
    touched, truncated = cur.fetchone()
    cur.execute(WINDOW_STATE)
    (last_start,) = cur.fetchone()
    rebuild = truncated or last_start is None
    if rebuild:
        cur.execute(DROP_ALL_ROWS)
    else:
        cur.execute(sql.SQL(CROSSED_EDGE).format(window_start=WINDOW_START), {"last": last_start})
        touched += cur.rowcount
        cur.execute(DROP_TOUCHED_ROWS)
    insert = sql.SQL("INSERT INTO {} ").format(sql.Identifier(TRACE_SUMMARIES_VIEW))
    cur.execute(insert + summary_query(only_touched=not rebuild))
    rows = cur.rowcount
    cur.execute(sql.SQL(SAVE_WINDOW).format(window_start=WINDOW_START))
    return IncrementalRun(rebuilt=rebuild, touched=touched, rows=rows)
