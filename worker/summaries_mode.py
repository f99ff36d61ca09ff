"""Converting otel_trace_summaries between `view` and `incremental` mode, in one transaction.

The conversion takes the refresh's lock first (so it waits for a running refresh, and no
refresh starts until it commits), builds the new relation under a temporary name while
readers keep reading the old one, then swaps the names. Converting to the mode in force
changes nothing.
"""

from __future__ import annotations

import logging

from psycopg2 import sql
from psycopg2.extensions import cursor as Cursor

from shared.errors import InvalidInput, NotMigrated
from shared.migrate import MIGRATE_HINT
from worker.refresh import take_refresh_lock
from worker.summaries import (
    CAPTURE_TRIGGERS,
    INDEXES,
    MODES,
    SAVE_WINDOW,
    TRACE_SUMMARIES_VIEW,
    WINDOW_START,
    current_mode,
    index_statements,
    summary_query,
)

logger = logging.getLogger(__name__)

NEXT = TRACE_SUMMARIES_VIEW + "_next"
SUFFIX = "_next"
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
GRANTS = """
SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END, a.privilege_type
  FROM pg_class c, aclexplode(c.relacl) a
 WHERE c.oid = to_regclass(%s) AND a.grantee <> c.relowner
"""
OWNER = "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass(%s)"
FORGET_WINDOW = "UPDATE otel_trace_summaries_state SET window_start = NULL"
DROP_CHANGES = "DELETE FROM otel_trace_changes"


def convert(cur: Cursor, target: str) -> bool:
    """Put otel_trace_summaries in `target` mode in the caller's transaction; False when it
    already was (nothing changed)."""
    if target not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, not {target!r}")
    take_refresh_lock(cur, TRACE_SUMMARIES_VIEW, wait=True)
    mode = current_mode(cur)
    if mode is None:
        raise NotMigrated(f"{TRACE_SUMMARIES_VIEW} does not exist: {MIGRATE_HINT}")
    if mode == target:
        return False
    if target == "incremental":
        to_incremental(cur)
    else:
        to_view(cur)
    logger.info(
        "%s converted from %s to %s mode",
        TRACE_SUMMARIES_VIEW,
        mode,
        target,
        extra={"event": "summaries_converted", "from": mode, "to": target},
    )
    return True


def to_incremental(cur: Cursor) -> None:
    """Capture on, then the table computed at once: spans committed later are captured."""
    # Span writers wait from here to the commit: none may slip between the computation's
    # snapshot and the capture.
    set_capture(cur, enabled=True)
    cur.execute(DROP_CHANGES)
    cur.execute(
        sql.SQL("CREATE TABLE {} AS ").format(sql.Identifier(NEXT))
        + summary_query(only_touched=False)
    )
    swap(cur, "TABLE", "MATERIALIZED VIEW")
    cur.execute(sql.SQL(SAVE_WINDOW).format(window_start=WINDOW_START))


def to_view(cur: Cursor) -> None:
    """The view computed under a temporary name, then capture off and the names swapped."""
    cur.execute(
        sql.SQL("CREATE MATERIALIZED VIEW {} AS ").format(sql.Identifier(NEXT))
        + summary_query(only_touched=False)
    )
    set_capture(cur, enabled=False)
    cur.execute(DROP_CHANGES)
    swap(cur, "MATERIALIZED VIEW", "TABLE")
    cur.execute(FORGET_WINDOW)


def swap(cur: Cursor, new_kind: str, old_kind: str) -> None:
    """Index the new relation, give it the old one's owner and grants, drop the old one and
    take its name and index names."""
    for statement in index_statements(NEXT, SUFFIX):
        cur.execute(statement)
    copy_access(cur, new_kind)
    cur.execute(
        sql.SQL("DROP {} {}").format(sql.SQL(old_kind), sql.Identifier(TRACE_SUMMARIES_VIEW))
    )
    cur.execute(
        sql.SQL("ALTER {} {} RENAME TO {}").format(
            sql.SQL(new_kind), sql.Identifier(NEXT), sql.Identifier(TRACE_SUMMARIES_VIEW)
        )
    )
    for name, _ in INDEXES:
        cur.execute(
            sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(name + SUFFIX), sql.Identifier(name)
            )
        )


def copy_access(cur: Cursor, new_kind: str) -> None:
    """Readers keep their access: the old relation's owner and grants, on the new one."""
    target = sql.Identifier(NEXT)
    cur.execute(OWNER, (TRACE_SUMMARIES_VIEW,))
    (owner,) = cur.fetchone()
    cur.execute(OWNER, (NEXT,))
    if cur.fetchone()[0] != owner:
        cur.execute(
            sql.SQL("ALTER {} {} OWNER TO {}").format(
                sql.SQL(new_kind), target, sql.Identifier(owner)
            )
        )
    cur.execute(GRANTS, (TRACE_SUMMARIES_VIEW,))
    for grantee, privilege in cur.fetchall():
        if privilege not in PRIVILEGES:
            continue
        to = sql.SQL("PUBLIC") if grantee is None else sql.Identifier(grantee)
        cur.execute(sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(privilege), target, to))


def set_capture(cur: Cursor, *, enabled: bool) -> None:
    """Enable or disable the capture triggers of migration 0002 on otel_traces."""
    action = sql.SQL("ENABLE TRIGGER {}" if enabled else "DISABLE TRIGGER {}")
    cur.execute(
        sql.SQL("ALTER TABLE otel_traces {}").format(
            sql.SQL(", ").join(action.format(sql.Identifier(t)) for t in CAPTURE_TRIGGERS)
        )
    )
