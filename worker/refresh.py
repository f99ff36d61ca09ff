"""Refreshing a materialized view, with guardrails; plain functions over a connection."""

from __future__ import annotations

import logging

import psycopg2
from psycopg2 import errorcodes, sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from shared.errors import PermanentJobError
from worker.summaries import TRACE_SUMMARIES_VIEW, refresh_incremental

logger = logging.getLogger(__name__)

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
    dbapi_conn: Connection,
    view: str,
    *,
    statement_timeout_s: float,
    lock_timeout_s: float,
) -> str:
    """Refresh `view` in one transaction; return "concurrent", "plain" (never populated) or
    "incremental" (otel_trace_summaries kept as a table, see worker.summaries)."""
    with dbapi_conn.cursor() as cur:
        # The lock first: a conversion of the summaries' mode holds it until it commits.
        if not take_refresh_lock(cur, view, wait=False):
            raise RefreshBusy(f"a refresh of {view!r} is already running; skipped")
        cur.execute(
            "SELECT c.relkind, c.relispopulated FROM pg_class c WHERE c.oid = to_regclass(%s)",
            (view,),
        )
        row = cur.fetchone()
        incremental = row is not None and row[0] == "r" and view == TRACE_SUMMARIES_VIEW
        if row is None or (row[0] != "m" and not incremental):
            raise ViewMissing(f"materialized view {view!r} does not exist")
        cur.execute(
            "SELECT set_config('statement_timeout', %s, true),"
            " set_config('lock_timeout', %s, true)",
            (f"{int(statement_timeout_s * 1000)}ms", f"{int(lock_timeout_s * 1000)}ms"),
        )
        name = sql.Identifier(view)
        try:
            if incremental:
                run = refresh_incremental(cur)
                logger.info(
                    "updated %s incrementally: %d trace(s) touched, %d row(s) written%s",
                    view,
                    run.touched,
                    run.rows,
                    " (rebuilt)" if run.rebuilt else "",
                    extra={
                        "event": "summaries_incremental",
                        "touched": run.touched,
                        "rows": run.rows,
                        "rebuilt": run.rebuilt,
                    },
                )
                return "incremental"
            if not row[1]:
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


def take_refresh_lock(cur: Cursor, view: str, *, wait: bool) -> bool:
    """The refresh's transaction-level lock on `view`: wait for it, or try once."""
    if wait:
        cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (REFRESH_LOCK_CLASS, view))
        return True
    cur.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", (REFRESH_LOCK_CLASS, view))
    return bool(cur.fetchone()[0])


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
