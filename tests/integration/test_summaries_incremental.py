"""otel_trace_summaries in incremental mode against real Postgres: after every run the table
equals the view's own query at the same now(), every column compared both ways."""

import threading
import uuid

import pytest
from psycopg2 import sql

from shared.errors import InvalidInput
from tests.support.summaries import (
    DAY,
    WINDOW,
    connect,
    differences,
    insert_spans,
    run_and_compare,
    scalar,
    set_mode,
    span,
    view_definition,
)
from tests.support.waiting import wait_for
from worker.refresh import RefreshBusy, refresh_view
from worker.summaries import TRACE_SUMMARIES_VIEW, current_mode

COLUMNS = """
SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
 WHERE attrelid = to_regclass('otel_trace_summaries') AND attnum > 0 ORDER BY attnum
"""
INDEXES = "SELECT indexdef FROM pg_indexes WHERE tablename = 'otel_trace_summaries' ORDER BY 1"


@pytest.fixture
def conn(db_url):
    c = connect(db_url)
    yield c
    c.close()


@pytest.fixture
def definition(conn):
    """The view's query as migration 0001 created it: the oracle."""
    return view_definition(conn)


def catalogue(conn) -> tuple[list, list]:
    with conn.cursor() as cur:
        cur.execute(COLUMNS)
        columns = cur.fetchall()
        cur.execute(INDEXES)
        indexes = cur.fetchall()
    conn.commit()
    return columns, indexes


def row(conn, trace_id: str) -> tuple | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT root_span_id, root_service_name, service_set, span_count, error_count"
            " FROM otel_trace_summaries WHERE trace_id = %s",
            (trace_id,),
        )
        found = cur.fetchone()
    conn.commit()
    return found


def test_conversion_keeps_columns_types_indexes_and_rows_and_comes_back(conn, definition):
    insert_spans(conn, [span("t1", "a"), span("t1", "b", parent="a", service="db")])
    assert run_and_compare(conn, definition) == ("concurrent", (0, 0, 1))
    view_catalogue = catalogue(conn)

    assert set_mode(conn, "incremental") is True
    assert (
        scalar(conn, "SELECT relkind FROM pg_class WHERE relname = %s", (TRACE_SUMMARIES_VIEW,))
        == "r"
    )
    assert catalogue(conn) == view_catalogue
    with conn.cursor() as cur:
        assert current_mode(cur) == "incremental"
        assert differences(cur, definition) == (0, 0, 1)
    conn.commit()
    assert set_mode(conn, "incremental") is False  # idempotent

    assert set_mode(conn, "view") is True
    assert view_definition(conn) == definition
    assert catalogue(conn) == view_catalogue
    assert set_mode(conn, "view") is False
    assert run_and_compare(conn, definition) == ("concurrent", (0, 0, 1))


def test_readers_keep_their_grants_both_ways(conn):
    reader = f"srjobs_reader_{uuid.uuid4().hex[:8]}"
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(reader)))
        cur.execute(
            sql.SQL("GRANT SELECT ON otel_trace_summaries TO {}").format(sql.Identifier(reader))
        )
    conn.commit()
    can_read = "SELECT has_table_privilege(%s, 'otel_trace_summaries', 'SELECT')"
    try:
        for mode in ("incremental", "view"):
            assert set_mode(conn, mode) is True
            assert scalar(conn, can_read, (reader,)) is True
    finally:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("REVOKE ALL ON otel_trace_summaries FROM {}").format(sql.Identifier(reader))
            )
            cur.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(reader)))
        conn.commit()


def test_a_bad_mode_changes_nothing(conn):
    with pytest.raises(InvalidInput, match="view, incremental"), conn.cursor() as cur:
        from worker.summaries_mode import convert

        convert(cur, "table")
    conn.rollback()
    with conn.cursor() as cur:
        assert current_mode(cur) == "view"
    conn.rollback()


def test_runs_follow_inserts_late_spans_updates_deletes_and_truncate(conn, definition):
    set_mode(conn, "incremental")
    insert_spans(
        conn,
        [
            span("root-null", "r", parent=None),
            span("root-null", "c", parent="r", service="db", status=2),
            span("root-empty", "r", parent="", service=None, name=None, end=None),
            span("two-roots", "r1", start=5, service="b"),
            span("two-roots", "r2", start=5, service="a"),  # same start: span_id decides
            span("", "empty-trace-id", service="web"),
            span("no-root", "x", parent="gone", service="q"),
            span("old", "r", ago=3 * DAY, service="batch"),
            span("expired", "r", ago=WINDOW + 60),
        ],
    )
    assert run_and_compare(conn, definition) == ("incremental", (0, 0, 6))
    assert row(conn, "root-null") == ("r", "api", ["api", "db"], 2, 1)

    # A late span of a trace days old, with a days-old timestamp; a trace of 3,000 spans.
    insert_spans(conn, [span("old", "late", ago=4 * DAY, parent="r", service="cron", status=2)])
    insert_spans(
        conn,
        [span("big", f"s{i}", parent=None if i == 0 else "s0", start=i) for i in range(3000)],
    )
    assert run_and_compare(conn, definition) == ("incremental", (0, 0, 7))
    assert row(conn, "old") == ("r", "batch", ["batch", "cron"], 2, 1)
    assert row(conn, "big")[3] == 3000

    with conn.cursor() as cur:
        cur.execute("UPDATE otel_traces SET service_name = 'moved' WHERE trace_id = 'root-null'")
        cur.execute("UPDATE otel_traces SET trace_id = 'renamed' WHERE trace_id = 'two-roots'")
        cur.execute("DELETE FROM otel_traces WHERE trace_id = 'no-root'")
    conn.commit()
    assert run_and_compare(conn, definition) == ("incremental", (0, 0, 6))
    assert row(conn, "root-null")[2] == ["moved"]
    assert row(conn, "two-roots") is None and row(conn, "no-root") is None

    with conn.cursor() as cur:
        cur.execute("TRUNCATE otel_traces")
    conn.commit()
    insert_spans(conn, [span("after-truncate", "r")])
    assert run_and_compare(conn, definition) == ("incremental", (0, 0, 1))
    assert run_and_compare(conn, definition) == ("incremental", (0, 0, 1))  # nothing new


def test_traces_leaving_the_window_are_recomputed_or_deleted(conn, definition):
    set_mode(conn, "incremental")
    edge = WINDOW - 3  # these spans leave the window 3 s after they are written
    insert_spans(
        conn,
        [
            span("all-out", "r", ago=edge),
            span("all-out", "c", ago=edge, parent="r", service="db"),
            span("part-out", "r", ago=edge, service="front"),
            span("part-out", "c", ago=60, parent="r", service="back"),
        ],
    )
    assert run_and_compare(conn, definition) == ("incremental", (0, 0, 2))
    assert row(conn, "part-out") == ("r", "front", ["back", "front"], 2, 0)
    wait_for(
        lambda: scalar(
            conn,
            "SELECT now() - interval '7 days' >= max(timestamp) FROM otel_traces"
            " WHERE trace_id = 'all-out'",
        ),
        30,
        "the edge spans to leave the window",
    )
    assert scalar(conn, "SELECT count(*) FROM otel_trace_changes") == 0
    assert run_and_compare(conn, definition) == ("incremental", (0, 0, 1))
    assert row(conn, "all-out") is None
    assert row(conn, "part-out") == (None, None, ["back"], 1, 0)


def test_a_span_committed_during_a_run_is_picked_up_by_the_next(db_url, conn, definition):
    set_mode(conn, "incremental")
    insert_spans(conn, [span("first", "r")])
    writer = connect(db_url)
    try:
        # The run has consumed the changes but not committed when the span commits.
        refresh_view(conn, TRACE_SUMMARIES_VIEW, statement_timeout_s=60, lock_timeout_s=5)
        insert_spans(writer, [span("during", "r"), span("first", "late", parent="r")])
        conn.commit()
        assert scalar(writer, "SELECT count(*) FROM otel_trace_changes") == 2
        assert run_and_compare(conn, definition) == ("incremental", (0, 0, 2))
        assert row(conn, "first")[3] == 2
    finally:
        writer.close()


def test_two_runs_never_interleave(db_url, conn, definition):
    set_mode(conn, "incremental")
    other = connect(db_url)
    try:
        refresh_view(conn, TRACE_SUMMARIES_VIEW, statement_timeout_s=60, lock_timeout_s=5)
        with pytest.raises(RefreshBusy):
            refresh_view(other, TRACE_SUMMARIES_VIEW, statement_timeout_s=60, lock_timeout_s=5)
        other.rollback()
        conn.commit()
    finally:
        other.close()


def test_concurrent_ingest_while_runs_happen(db_url, conn, definition):
    set_mode(conn, "incremental")
    stop = threading.Event()
    errors: list[BaseException] = []

    def ingest(worker: int) -> None:
        writer = connect(db_url)
        try:
            batch = 0
            while not stop.is_set() or batch < 20:
                # New traces, and late spans of this writer's earlier traces.
                spans = [
                    span(f"w{worker}-{batch}-{i % 25}", f"s{i}", parent=None if i < 25 else "s0")
                    for i in range(100)
                ]
                spans += [
                    span(f"w{worker}-{batch // 2}-{i}", f"late{batch}-{i}", parent="s0", ago=DAY)
                    for i in range(10)
                ]
                insert_spans(writer, spans)
                batch += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            writer.close()

    writers = [threading.Thread(target=ingest, args=(n,)) for n in range(2)]
    for w in writers:
        w.start()
    runs = 0
    try:
        while runs < 8:
            # Mid-ingest the comparison may see spans committed after the run's recompute.
            mode, _ = run_and_compare(conn, definition)
            assert mode == "incremental"
            runs += 1
        assert all(w.is_alive() for w in writers), "the writers stopped before the runs"
    finally:
        stop.set()
        for w in writers:
            w.join(60)
    assert errors == []
    mode, found = run_and_compare(conn, definition)
    assert found[:2] == (0, 0) and found[2] == scalar(
        conn, "SELECT count(DISTINCT trace_id) FROM otel_traces"
    )


def alembic_to(engine, revision: str) -> None:
    from alembic import command

    from shared.migrate import _config

    with engine.connect() as c:
        cfg = _config()
        cfg.attributes["connection"] = c
        if revision == "head":
            command.upgrade(cfg, revision)
        else:
            command.downgrade(cfg, revision)
        c.commit()


def test_downgrade_refuses_in_incremental_mode_and_works_in_view_mode(engine, conn):
    head = scalar(conn, "SELECT version_num FROM alembic_version")
    set_mode(conn, "incremental")
    with pytest.raises(Exception, match="srjobs summaries --mode view"):
        alembic_to(engine, "0001")
    assert scalar(conn, "SELECT version_num FROM alembic_version") == head
    set_mode(conn, "view")
    alembic_to(engine, "0001")
    assert scalar(conn, "SELECT to_regclass('otel_trace_changes') IS NULL") is True
    alembic_to(engine, "head")
    assert set_mode(conn, "incremental") is True
