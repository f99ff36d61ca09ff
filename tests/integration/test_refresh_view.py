"""refresh_view's timeouts against real Postgres, with the view locked by another session."""

import psycopg2
import pytest
from psycopg2 import errorcodes

from shared.db import dsn
from worker.refresh import TRACE_SUMMARIES_VIEW, RefreshTimeout, refresh_view


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
