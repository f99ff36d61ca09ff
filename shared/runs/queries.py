"""Reading runs (SQLAlchemy Core): one run, history pages, the outbox's due runs, orphans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Select,
    Text,
    and_,
    bindparam,
    false,
    func,
    or_,
    select,
    true,
)

from shared.errors import UnknownRun
from shared.runs.id_bounds import NO_BOUNDS, IdBounds, read_bounds
from shared.runs.model import FAILED, PENDING, RUN_COLUMNS, RUNNING, Run, to_run
from shared.tables import job_runs, worker_nodes

runs_c = job_runs.c


def get_run(conn: Connection, run_id: int) -> Run:
    """One run; raises UnknownRun."""
    row = conn.execute(select(*RUN_COLUMNS).where(runs_c.id == run_id)).first()
    if row is None:
        raise UnknownRun(f"unknown run {run_id}")
    return to_run(row)


def any_runs(conn: Connection, job_name: str) -> bool:
    """Whether the job has any run (one index probe): a new schedule's name may be a deleted
    one's, whose runs stay."""
    return bool(
        conn.execute(select(select(runs_c.id).where(runs_c.job_name == job_name).exists())).scalar()
    )


def get_traceback(conn: Connection, run_id: int) -> str | None:
    """The stored traceback of a failed run."""
    return conn.execute(select(runs_c.traceback).where(runs_c.id == run_id)).scalar()


def runs_query(
    job_name: str | None = None,
    *,
    limit: int = 50,
    state: str | None = None,
    before: int | None = None,
    trigger: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    bounds: IdBounds = NO_BOUNDS,
) -> Select:
    """The statement of `list_runs`, given the id bounds `read_bounds` found for `since` and
    `until` (the benchmark explains it as it is)."""
    stmt = select(*RUN_COLUMNS).order_by(runs_c.id.desc()).limit(limit)
    for column, value in ((runs_c.job_name, job_name), (runs_c.state, state)):
        if value is not None:
            stmt = stmt.where(column == value)
    if trigger is not None:
        stmt = stmt.where(runs_c.trigger == trigger)
    if before is not None:
        stmt = stmt.where(runs_c.id < before)
    window = []
    if since is not None:
        window.append(runs_c.created_at >= since)
    if until is not None:
        window.append(runs_c.created_at < until)
    if window:
        test = and_(*window)
        if bounds.bounded:
            # The time test stays exact. The id bounds already select the window: seen as
            # well, the test would count it twice (the planner takes the two as unrelated),
            # promise a few rows and have them all read and sorted. Wrapped, it is a filter
            # of unknown selectivity, and the scan along the ids stops at the page's end.
            test = func.coalesce(test, false())
        stmt = stmt.where(test)
    if bounds.empty:
        stmt = stmt.where(false())
    if bounds.low is not None:
        stmt = stmt.where(runs_c.id >= bounds.low)
    if bounds.high is not None:
        stmt = stmt.where(runs_c.id <= bounds.high)
    return stmt


def list_runs(
    conn: Connection,
    job_name: str | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    **filters: Any,
) -> list[Run]:
    """Runs newest first, optionally of one job, in one state, with one trigger, created in
    [since, until), with ids below `before` (keyset pages): `runs_query`'s keywords."""
    bounds = read_bounds(conn, since, until)
    if bounds.empty:
        return []
    stmt = runs_query(job_name, since=since, until=until, bounds=bounds, **filters)
    return [to_run(r) for r in conn.execute(stmt)]


def retries_of(conn: Connection, run_id: int) -> list[Run]:
    """The runs started as retries of this one, newest first."""
    rows = conn.execute(
        select(*RUN_COLUMNS).where(runs_c.retry_of == run_id).order_by(runs_c.id.desc())
    )
    return [to_run(r) for r in rows]


def cancel_requested(conn: Connection, run_ids: list[int]) -> list[int]:
    """Which of these runs (running in one worker process) an admin asked to cancel: one
    index probe per id. In any state: a run whose `running` transition Postgres lost reads
    `enqueued`, and a cancel then discards it at once, while its job still runs here."""
    if not run_ids:
        return []
    rows = conn.execute(
        select(runs_c.id).where(
            runs_c.id.in_(run_ids),
            runs_c.cancel_requested_at.is_not(None),
        )
    )
    return [row.id for row in rows]


def last_runs(conn: Connection, job_names: list[str]) -> dict[str, Run]:
    """The newest run of each named job (one index probe per job)."""
    if not job_names:
        return {}
    names = (
        func.unnest(bindparam("names", job_names, type_=ARRAY(Text)))
        .table_valued("name")
        .render_derived("j")
    )
    newest = (
        select(*RUN_COLUMNS)
        .where(runs_c.job_name == names.c.name)
        .order_by(runs_c.id.desc())
        .limit(1)
        .lateral("r")
    )
    rows = conn.execute(select(newest).select_from(names).join(newest, true()))
    # The lateral's columns are RUN_COLUMNS, in Run's field order: built by position.
    return {row.job_name: Run(*row) for row in rows}


@dataclass(frozen=True)
class PendingSend:
    """A pending run the outbox may (re-)send, with its failed hand-overs so far."""

    run: Run
    send_attempts: int


def pending_to_send(
    conn: Connection, *, limit: int, orphan_after_seconds: float, eager: bool = False
) -> list[PendingSend]:
    """Pending runs due for a (re-)send, oldest first.

    Due: a failed send whose backoff has passed (any failed one when `eager`: the broker
    answers again), or a run never sent for `orphan_after_seconds` (its sender died) since
    it was recorded or, for a run recorded ahead of its slot, since that slot: a run is
    never re-sent before its slot.
    """
    never_sent_since = func.greatest(runs_c.created_at, runs_c.scheduled_at)
    never_sent_due = never_sent_since + timedelta(seconds=orphan_after_seconds)
    due = func.coalesce(runs_c.next_send_at, never_sent_due) <= func.now()
    if eager:
        due = or_(due, runs_c.next_send_at.is_not(None))
    rows = conn.execute(
        select(*RUN_COLUMNS, runs_c.send_attempts)
        .where(runs_c.state == PENDING, due)
        .order_by(runs_c.id)
        .limit(limit)
    )
    return [PendingSend(to_run(row), row.send_attempts) for row in rows]


def count_pending(conn: Connection) -> int:
    """How many runs wait to be handed to the broker."""
    return conn.execute(
        select(func.count()).select_from(job_runs).where(runs_c.state == PENDING)
    ).scalar_one()


@dataclass(frozen=True)
class Orphan:
    """A run left `running` by a worker process that stopped heart-beating."""

    id: int
    job_name: str
    attempt: int
    node: str | None
    worker: str | None
    last_seen_at: datetime | None
    cancel_requested_at: datetime | None = None


def find_orphans(conn: Connection, dead_after_seconds: float, limit: int = 500) -> list[Orphan]:
    """Running runs whose worker has not been seen for `dead_after_seconds` (or never)."""
    dead = func.now() - timedelta(seconds=dead_after_seconds)
    workers = worker_nodes.c
    rows = conn.execute(
        select(
            runs_c.id,
            runs_c.job_name,
            runs_c.attempt,
            runs_c.node,
            runs_c.worker,
            workers.last_seen_at,
            runs_c.cancel_requested_at,
        )
        .select_from(job_runs.outerjoin(worker_nodes, workers.worker == runs_c.worker))
        .where(
            runs_c.state == RUNNING,
            runs_c.started_at < dead,
            or_(workers.worker.is_(None), workers.last_seen_at < dead),
        )
        .order_by(runs_c.id)
        .limit(limit)
    )
    return [Orphan(**r._mapping) for r in rows]


def find_stalled_retries(
    conn: Connection, after_seconds: float, limit: int = 500
) -> list[tuple[int, str, int]]:
    """`failed` runs whose retry has not started for `after_seconds`: (id, job, attempt)."""
    rows = conn.execute(
        select(runs_c.id, runs_c.job_name, runs_c.attempt)
        .where(
            runs_c.state == FAILED,
            runs_c.finished_at < func.now() - timedelta(seconds=after_seconds),
        )
        .order_by(runs_c.id)
        .limit(limit)
    )
    return [(r.id, r.job_name, r.attempt) for r in rows]
