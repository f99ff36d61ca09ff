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

# Two-key advisory locks take int4 keys: (class, hashtext(view)). The view's name in the key
# is the one `lock_name` gives, so two names of one view take the same lock.
REFRESH_LOCK_CLASS = 0x51AB6

# The relation a view name stands for: as written, when one of that exact name is visible on
# the search path, else `schema.view` split at the first dot. Names are compared as they
# are, never parsed as SQL: quotes, spaces or semicolons are part of the name. A plain table
# answers too (otel_trace_summaries in incremental mode); the caller decides what it accepts.
FIND_VIEW = """
SELECT c.relkind, c.relispopulated, n.nspname, c.relname, pg_table_is_visible(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('m', 'r')
   AND ((c.relname = %(name)s AND pg_table_is_visible(c.oid))
        OR (n.nspname = %(schema)s AND c.relname = %(rest)s))
 ORDER BY (c.relname = %(name)s AND pg_table_is_visible(c.oid)) DESC
 LIMIT 1
"""


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
    """Refresh `view` (optionally `schema.view`) in one transaction; return "concurrent",
    "plain" (never populated) or "incremental" (otel_trace_summaries kept as a table, see
    worker.summaries). The name reaches SQL only as a quoted identifier."""
    with dbapi_conn.cursor() as cur:
        if not take_refresh_lock(cur, lock_name(find_view(cur, view), view), wait=False):
            raise RefreshBusy(f"a refresh of {view!r} is already running; skipped")
        # Read again under the lock: a conversion of the summaries' mode holds it until it
        # commits, and may have replaced the relation meanwhile.
        row = find_view(cur, view)
        incremental = row is not None and row[0] == "r" and row[3] == TRACE_SUMMARIES_VIEW
        if row is None or (row[0] != "m" and not incremental):
            raise ViewMissing(f"materialized view {view!r} does not exist")
        cur.execute(
            "SELECT set_config('statement_timeout', %s, true),"
            " set_config('lock_timeout', %s, true)",
            (f"{int(statement_timeout_s * 1000)}ms", f"{int(lock_timeout_s * 1000)}ms"),
        )
        name = sql.Identifier(row[2], row[3])
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


def find_view(cur: Cursor, view: str) -> tuple | None:
    """(relkind, populated, schema, name, visible) of the relation `view` names, or None."""
    schema, _, rest = view.partition(".")
    cur.execute(FIND_VIEW, {"name": view, "schema": schema, "rest": rest})
    return cur.fetchone()


def lock_name(found: tuple | None, view: str) -> str:
    """The name a view's refresh lock is keyed on: its bare name when it is visible on the
    search path (as the summaries' conversion names it), else `schema.name`; a name that
    matches nothing keeps its own."""
    if found is None:
        return view
    _, _, schema, name, visible = found
    return name if visible else f"{schema}.{name}"


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
