"""otel_trace_summaries in tests: the view's own definition as the oracle, conversions, runs."""

from __future__ import annotations

import psycopg2
from psycopg2.extras import execute_values

from shared.db import dsn
from worker.refresh import TRACE_SUMMARIES_VIEW, refresh_view
from worker.summaries_mode import convert

SPAN_COLUMNS = (
    "timestamp, trace_id, span_id, parent_span_id, name, kind, start_time_unix_nano,"
    " end_time_unix_nano, service_name, status_code"
)
# A span: (seconds before now() of its `timestamp`, trace_id, span_id, parent_span_id, name,
# kind, start, end, service_name, status_code).
INSERT_SPANS = f"INSERT INTO otel_traces ({SPAN_COLUMNS}) VALUES %s ON CONFLICT DO NOTHING"
SPAN_TEMPLATE = "(now() - make_interval(secs => %s), %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def connect(database_url: str):
    return psycopg2.connect(dsn(database_url))


def view_definition(conn) -> str:
    """The materialized view's query as the server stores it (the view of migration 0001)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_get_viewdef(to_regclass(%s))", (TRACE_SUMMARIES_VIEW,))
        definition = cur.fetchone()[0]
    conn.rollback()
    return definition.strip().rstrip(";")


def differences(cur, definition: str) -> tuple[int, int, int]:
    """(rows only in the table, rows only in the view's query, rows in the table), every
    column compared, in the caller's transaction (so at the same now())."""
    cur.execute(
        f"""
        SELECT (SELECT count(*) FROM (TABLE otel_trace_summaries EXCEPT ({definition})) a),
               (SELECT count(*) FROM (({definition}) EXCEPT TABLE otel_trace_summaries) b),
               (SELECT count(*) FROM otel_trace_summaries)
        """
    )
    return cur.fetchone()


def run_and_compare(conn, definition: str) -> tuple[str, tuple[int, int, int]]:
    """One refresh, compared with the view's query in the refresh's own transaction."""
    try:
        mode = refresh_view(conn, TRACE_SUMMARIES_VIEW, statement_timeout_s=120, lock_timeout_s=30)
        with conn.cursor() as cur:
            found = differences(cur, definition)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return mode, found


def set_mode(conn, mode: str) -> bool:
    with conn.cursor() as cur:
        changed = convert(cur, mode)
    conn.commit()
    return changed


def insert_spans(conn, spans: list[tuple]) -> None:
    """Insert spans in one statement and commit."""
    with conn.cursor() as cur:
        execute_values(cur, INSERT_SPANS, spans, template=SPAN_TEMPLATE, page_size=len(spans))
    conn.commit()


def scalar(conn, query: str, args: tuple = ()) -> object:
    with conn.cursor() as cur:
        cur.execute(query, args)
        value = cur.fetchone()[0]
    conn.commit()
    return value


def span(
    trace: str,
    span_id: str,
    *,
    ago: float = 60.0,
    parent: str | None = None,
    name: str | None = "op",
    start: int | None = 1_000,
    end: int | None = 2_000_000,
    service: str | None = "api",
    status: int | None = 1,
    kind: int | None = 1,
) -> tuple:
    """One span row for insert_spans; `ago` is how many seconds before now() its timestamp is."""
    return (ago, trace, span_id, parent, name, kind, start, end, service, status)


DAY = 86_400.0
WINDOW = 7 * DAY
