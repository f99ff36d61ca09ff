"""Refreshing a materialized view, with guardrails; plain functions over a connection."""

from __future__ import annotations

import logging

import psycopg2
from psycopg2 import errorcodes, sql

from shared.errors import PermanentJobError

logger = logging.getLogger(__name__)

TRACE_SUMMARIES_VIEW = "otel_trace_summaries"
# Two-key advisory locks take int4 keys: (class, hashtext(view)).
REFRESH_LOCK_CLASS = 0x51AB6


class ViewMissing(PermanentJobError):
    """The materialized view does not exist (run `srjobs migrate`)."""


class RefreshBusy(PermanentJobError):
    """Another refresh of the same view is running; this one is skipped."""


class NoUniqueIndex(PermanentJobError):
    """REFRESH ... CONCURRENTLY needs a unique index on the view."""


class RefreshTimeout(PermanentJobError):
    """The refresh ran past its statement timeout; retrying at once would only add load."""


def refresh_view(
    dbapi_conn: psycopg2.extensions.connection,
    view: str,
    *,
    statement_timeout_s: float,
    lock_timeout_s: float,
) -> str:
    """Refresh `view` in one transaction; return "concurrent" or "plain" (never populated)."""
    with dbapi_conn.cursor() as cur:
        cur.execute(
            "SELECT c.relispopulated FROM pg_class c WHERE c.oid = to_regclass(%s)"
            " AND c.relkind = 'm'",
            (view,),
        )
        row = cur.fetchone()
        if row is None:
            raise ViewMissing(f"materialized view {view!r} does not exist")
        cur.execute(
            "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", (REFRESH_LOCK_CLASS, view)
        )
        if not cur.fetchone()[0]:
            raise RefreshBusy(f"a refresh of {view!r} is already running; skipped")
        cur.execute(
            "SELECT set_config('statement_timeout', %s, true),"
            " set_config('lock_timeout', %s, true)",
            (f"{int(statement_timeout_s * 1000)}ms", f"{int(lock_timeout_s * 1000)}ms"),
        )
        name = sql.Identifier(view)
        try:
            if not row[0]:
                logger.info(
                    "view %s was never populated: running one plain REFRESH",
                    view,
                    extra={"event": "refresh_plain", "view": view},
                )
                cur.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(name))
                return "plain"
            cur.execute(sql.SQL("REFRESH MATERIALIZED VIEW CONCURRENTLY {}").format(name))
        except psycopg2.Error as exc:
            permanent = permanent_error(exc, view, statement_timeout_s)
            if permanent is None:
                raise  # e.g. the connection dropped: failed, retried with backoff
            raise permanent from exc
        return "concurrent"


def permanent_error(
    exc: psycopg2.Error, view: str, statement_timeout_s: float
) -> PermanentJobError | None:
    """The permanent error a refresh failure stands for; None when a retry may help."""
    if exc.pgcode == errorcodes.OBJECT_NOT_IN_PREREQUISITE_STATE:
        return NoUniqueIndex(
            f"cannot refresh {view!r} concurrently: it needs a unique index"
            f" ({exc.diag.message_primary})"
        )
    if exc.pgcode == errorcodes.QUERY_CANCELED and "timeout" in (exc.diag.message_primary or ""):
        return RefreshTimeout(
            f"refreshing {view!r} took longer than {statement_timeout_s:g}s"
            " (SRJOBS_REFRESH_STATEMENT_TIMEOUT); the next scheduled run tries again"
        )
    return None
