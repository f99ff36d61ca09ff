"""Creating runs (SQLAlchemy Core): cron fires, "Run now", messages sent straight from code."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Connection, DateTime, Text, bindparam, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB, insert

from shared.errors import RunConflict
from shared.runs.model import (
    ACTIVE_STATES,
    MANUAL_LOCK_CLASS,
    PENDING,
    RUN_COLUMNS,
    RUNNING,
    Run,
    to_run,
)
from shared.tables import job_runs


def create_cron_runs(
    conn: Connection,
    fires: list[tuple[str, datetime]],
    args: list[dict[str, Any]] | None = None,
) -> list[Run]:
    """Record many cron fires `(job, slot)` as `pending` in one statement; slots that already
    have a run are left out (fencing: the unique index decides). `args`, when given, holds
    each fire's keyword arguments (its schedule's at fire time)."""
    if not fires:
        return []
    fired = (
        func.unnest(
            bindparam("names", [name for name, _ in fires], type_=ARRAY(Text)),
            bindparam("slots", [slot for _, slot in fires], type_=ARRAY(DateTime(timezone=True))),
            bindparam("args", [a or {} for a in args or [{}] * len(fires)], type_=ARRAY(JSONB)),
        )
        .table_valued("name", "slot", "args")
        .render_derived()
    )
    stmt = (
        insert(job_runs)
        .from_select(
            ["job_name", "trigger", "scheduled_at", "args"],
            select(fired.c.name, literal("cron"), fired.c.slot, fired.c.args),
        )
        .on_conflict_do_nothing(index_elements=["job_name", "scheduled_at"])
        .returning(*RUN_COLUMNS)
    )
    return [to_run(row) for row in conn.execute(stmt)]


def create_cron_run(
    conn: Connection,
    job_name: str,
    scheduled_at: datetime,
    args: dict[str, Any] | None = None,
) -> Run | None:
    """Record one cron fire; None when that slot already has its run."""
    created = create_cron_runs(conn, [(job_name, scheduled_at)], None if args is None else [args])
    return created[0] if created else None


def create_manual_run(
    conn: Connection,
    job_name: str,
    *,
    state: str = PENDING,
    args: dict[str, Any] | None = None,
    retry_of: int | None = None,
) -> Run:
    """Record a manual run (with its `args`, and the run it retries); raises RunConflict with
    the active run when one exists.

    Concurrent callers are serialised by a transaction-level advisory lock per job, so that
    many simultaneous "Run now" requests produce exactly one run. Commit promptly.
    """
    conn.execute(select(func.pg_advisory_xact_lock(MANUAL_LOCK_CLASS, func.hashtext(job_name))))
    active = conn.execute(
        select(*RUN_COLUMNS)
        .where(job_runs.c.job_name == job_name, job_runs.c.state.in_(ACTIVE_STATES))
        .order_by(job_runs.c.id.desc())
        .limit(1)
    ).first()
    if active is not None:
        raise RunConflict(to_run(active))
    row = conn.execute(
        insert(job_runs)
        .values(
            job_name=job_name, trigger="manual", state=state, args=args or {}, retry_of=retry_of
        )
        .returning(*RUN_COLUMNS)
    ).one()
    return to_run(row)


def create_direct_run(
    conn: Connection,
    job_name: str,
    node: str,
    *,
    attempt: int = 1,
    worker: str | None = None,
    args: dict[str, Any] | None = None,
) -> Run:
    """Record a run for a message sent straight from code (no run id): already running."""
    row = conn.execute(
        insert(job_runs)
        .values(
            job_name=job_name,
            trigger="manual",
            state=RUNNING,
            started_at=func.now(),
            enqueued_at=func.now(),
            attempt=attempt,
            node=node,
            worker=worker,
            args=args or {},
        )
        .returning(*RUN_COLUMNS)
    ).one()
    return to_run(row)
