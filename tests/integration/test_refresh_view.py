"""refresh_view's timeouts against real Postgres, with the view locked by another session."""

import psycopg2
import pytest
from psycopg2 import errorcodes

from shared.db import dsn
from worker.refresh import (
    TRACE_SUMMARIES_VIEW,
    RefreshBusy,
    RefreshTimeout,
    ViewMissing,
    refresh_view,
)


@pytest.fixture
def blocker(settings):
    """A session holding the view's lock, as a refresh that has not committed yet does."""
    conn = psycopg2.connect(dsn(settings.database_url))
    with conn.cursor() as cur:
        cur.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY otel_trace_summaries")
    yield conn
    conn.rollback()
    conn.close()


def refresh(settings, statement_timeout_s, lock_timeout_s):
    conn = psycopg2.connect(dsn(settings.database_url))
    try:
        return refresh_view(
            conn,
            TRACE_SUMMARIES_VIEW,
            statement_timeout_s=statement_timeout_s,
            lock_timeout_s=lock_timeout_s,
        )
    finally:
        conn.rollback()
        conn.close()


def test_statement_timeout_is_a_permanent_error_naming_the_setting(settings, blocker):
    with pytest.raises(RefreshTimeout, match="SRJOBS_REFRESH_STATEMENT_TIMEOUT"):
        refresh(settings, statement_timeout_s=0.2, lock_timeout_s=30)


def test_lock_timeout_is_an_ordinary_error_to_retry(settings, blocker):
    with pytest.raises(psycopg2.Error) as caught:
        refresh(settings, statement_timeout_s=30, lock_timeout_s=0.2)
    assert caught.value.pgcode == errorcodes.LOCK_NOT_AVAILABLE


def test_refresh_is_concurrent_once_populated(settings):
    assert refresh(settings, 30, 5) == "concurrent"


VIEWS = """
CREATE MATERIALIZED VIEW plain_v AS SELECT 1 AS id WITH NO DATA;
CREATE SCHEMA other;
CREATE MATERIALIZED VIEW other.v2 AS SELECT 2 AS id WITH NO DATA;
CREATE MATERIALIZED VIEW "weird; name" AS SELECT 3 AS id WITH NO DATA;
"""


def populated(settings, schema: str, name: str) -> bool:
    conn = psycopg2.connect(dsn(settings.database_url))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT c.relispopulated FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                (schema, name),
            )
            return cur.fetchone()[0]
    finally:
        conn.close()


def refresh_named(settings, view: str) -> str:
    conn = psycopg2.connect(dsn(settings.database_url))
    try:
        mode = refresh_view(conn, view, statement_timeout_s=30, lock_timeout_s=5)
        conn.commit()
        return mode
    finally:
        conn.close()


@pytest.fixture
def views(settings):
    conn = psycopg2.connect(dsn(settings.database_url))
    with conn.cursor() as cur:
        cur.execute(VIEWS)
    conn.commit()
    conn.close()


def test_view_names_are_looked_up_never_executed(settings, views):
    assert refresh_named(settings, "plain_v") == "plain"
    assert populated(settings, "public", "plain_v")
    assert refresh_named(settings, "other.v2") == "plain"
    assert populated(settings, "other", "v2")
    # A name with quotes, spaces or a semicolon is only compared with existing names.
    for name in ("plain_v; DROP TABLE otel_traces", '"plain_v"', "plain_v ", "other . v2"):
        with pytest.raises(ViewMissing):
            refresh_named(settings, name)
    assert refresh_named(settings, "weird; name") == "plain"
    assert populated(settings, "public", "weird; name")
    assert refresh_named(settings, "public.otel_trace_summaries") == "concurrent"
    conn = psycopg2.connect(dsn(settings.database_url))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('otel_traces') IS NOT NULL")
            assert cur.fetchone()[0]
    finally:
        conn.close()


def test_two_refreshes_of_one_view_never_overlap(settings, views):
    first = psycopg2.connect(dsn(settings.database_url))
    try:
        # The first refresh is done but not committed: it still holds the view's lock.
        refresh_view(first, "plain_v", statement_timeout_s=30, lock_timeout_s=5)
        with pytest.raises(RefreshBusy):
            refresh_named(settings, "public.plain_v")  # another name for the same view
        assert refresh_named(settings, "other.v2") == "plain"  # other views are free
        first.rollback()
        assert refresh_named(settings, "public.plain_v") == "plain"
    finally:
        first.close()
