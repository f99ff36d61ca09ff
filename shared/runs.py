"""Data access for `job_runs`: the only module that writes it.

Each state transition is one short statement guarded by the states it may leave, so no row
lock is held while a job runs and a late or repeated transition changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    Connection,
    DateTime,
    Text,
    bindparam,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from shared.errors import RunConflict, UnknownRun
from shared.tables import job_runs

STATES = ("pending", "enqueued", "running", "succeeded", "failed", "discarded")
ACTIVE_STATES = ("pending", "enqueued", "running")
FINISHED_STATES = ("succeeded", "discarded")
# A `failed` run will be retried, so it may start again.
STARTABLE_STATES = ("pending", "enqueued", "running", "failed")
MAX_ERROR_LENGTH = 2000
MAX_TRACEBACK_LENGTH = 20000
# Serialises "Run now" per job (with the job name's hash as second key).
MANUAL_LOCK_CLASS = 0x51AB5
# Held by the worker connection running a job declared `unique` (same second key).
UNIQUE_LOCK_CLASS = 0x51AB7


@dataclass(frozen=True)
class Run:
    """One row of `job_runs`, as the API shows it."""

    id: int
    job_name: str
    trigger: str
    state: str
    scheduled_at: datetime | None
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    attempt: int
    node: str | None
    error: str | None
    created_at: datetime

    def as_json(self) -> dict:
        """JSON-ready dict; times in ISO 8601 with offset."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
        return out


RUN_COLUMNS = [job_runs.c[name] for name in Run.__dataclass_fields__]


def _run(row) -> Run:
    return Run(**row._mapping)


def create_cron_run(conn: Connection, job_name: str, scheduled_at: datetime) -> Run | None:
    """Record a cron fire as `pending`; None when that slot already has its run (fencing)."""
    row = conn.execute(
        insert(job_runs)
        .values(job_name=job_name, trigger="cron", scheduled_at=scheduled_at)
        .on_conflict_do_nothing(index_elements=["job_name", "scheduled_at"])
        .returning(*RUN_COLUMNS)
    ).first()
    return _run(row) if row else None


def create_manual_run(conn: Connection, job_name: str, *, state: str = "pending") -> Run:
    """Record a manual run; raises RunConflict with the active run when one exists.

    Concurrent callers are serialised by a transaction-level advisory lock per job, so that
    many simultaneous "Run now" requests produce exactly one run. Commit promptly.
    """
    conn.execute(
        text("SELECT pg_advisory_xact_lock(:cls, hashtext(:name))"),
        {"cls": MANUAL_LOCK_CLASS, "name": job_name},
    )
    active = conn.execute(
        select(*RUN_COLUMNS)
        .where(job_runs.c.job_name == job_name, job_runs.c.state.in_(ACTIVE_STATES))
        .order_by(job_runs.c.id.desc())
        .limit(1)
    ).first()
    if active is not None:
        raise RunConflict(_run(active))
    row = conn.execute(
        insert(job_runs)
        .values(job_name=job_name, trigger="manual", state=state)
        .returning(*RUN_COLUMNS)
    ).one()
    return _run(row)


def create_direct_run(
    conn: Connection, job_name: str, node: str, *, attempt: int = 1, worker: str | None = None
) -> Run:
    """Record a run for a message sent straight from code (no run id): already running."""
    row = conn.execute(
        insert(job_runs)
        .values(
            job_name=job_name,
            trigger="manual",
            state="running",
            started_at=func.now(),
            enqueued_at=func.now(),
            attempt=attempt,
            node=node,
            worker=worker,
        )
        .returning(*RUN_COLUMNS)
    ).one()
    return _run(row)


def mark_enqueued(conn: Connection, run_id: int) -> bool:
    """pending -> enqueued, once the broker has the message."""
    result = conn.execute(
        update(job_runs)
        .where(job_runs.c.id == run_id, job_runs.c.state == "pending")
        .values(
            state="enqueued", enqueued_at=func.now(), send_attempts=job_runs.c.send_attempts + 1
        )
    )
    return result.rowcount == 1


def mark_send_failed(conn: Connection, run_id: int, retry_in_seconds: float) -> None:
    """Count a failed hand-over to the broker; the run stays pending for the outbox."""
    conn.execute(
        update(job_runs)
        .where(job_runs.c.id == run_id, job_runs.c.state == "pending")
        .values(
            send_attempts=job_runs.c.send_attempts + 1,
            next_send_at=func.now()
            + text("make_interval(secs => :delay)").bindparams(delay=retry_in_seconds),
        )
    )


# The worker's hot path runs this on a raw DBAPI cursor: one round trip, no statement building.
START_RUN = """
UPDATE job_runs
   SET state = 'running', started_at = now(), finished_at = NULL, error = NULL,
       attempt = %(attempt)s, node = %(node)s, worker = %(worker)s,
       enqueued_at = COALESCE(enqueued_at, now())
 WHERE id = %(id)s
   AND (state IN ('pending', 'enqueued')
        OR (state = 'running' AND attempt <= %(attempt)s)
        OR (state = 'failed' AND attempt < %(attempt)s))
"""


def start_run(cursor, run_id: int, attempt: int, node: str, worker: str | None) -> bool:
    """-> running on a DBAPI cursor; False when the run is finished or the message is stale.

    A message is stale when it carries an attempt older than the run's: a `failed` attempt is
    only ever followed by the next one, and a `running` one only by itself (a redelivery).
    The worker calls this once per message, on a raw autocommit connection.
    """
    cursor.execute(START_RUN, {"id": run_id, "attempt": attempt, "node": node, "worker": worker})
    return cursor.rowcount == 1


def try_lock_job(cursor, job_name: str) -> bool:
    """Take the session lock that keeps a `unique` job to one running run; False if held."""
    cursor.execute(
        "SELECT pg_try_advisory_lock(%(cls)s, hashtext(%(name)s))",
        {"cls": UNIQUE_LOCK_CLASS, "name": job_name},
    )
    return bool(cursor.fetchone()[0])


def unlock_job(cursor, job_name: str) -> None:
    """Release the lock taken by `try_lock_job` on the same connection."""
    cursor.execute(
        "SELECT pg_advisory_unlock(%(cls)s, hashtext(%(name)s))",
        {"cls": UNIQUE_LOCK_CLASS, "name": job_name},
    )


def mark_running(
    conn: Connection, run_id: int, attempt: int, node: str, *, worker: str | None = None
) -> bool:
    """`start_run` inside a SQLAlchemy transaction."""
    cursor = conn.connection.cursor()
    try:
        return start_run(cursor, run_id, attempt, node, worker)
    finally:
        cursor.close()


MARK_SUCCEEDED = text(
    """
    UPDATE job_runs AS r
       SET state = 'succeeded', error = NULL, traceback = NULL,
           finished_at = r.started_at + make_interval(secs => v.seconds)
      FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS integer[]),
                  CAST(:seconds AS float8[])) AS v(id, attempt, seconds)
     WHERE r.id = v.id AND r.state = 'running' AND r.attempt = v.attempt
    """
)


def mark_succeeded_many(conn: Connection, done: list[tuple[int, int, float]]) -> int:
    """running -> succeeded for many `(run_id, attempt, seconds it ran)` in one statement.

    `finished_at` is `started_at` plus the duration the worker measured, so a batched write
    keeps each run's own times. Returns how many runs changed.
    """
    if not done:
        return 0
    ids, attempts, seconds = (list(col) for col in zip(*done, strict=True))
    result = conn.execute(MARK_SUCCEEDED, {"ids": ids, "attempts": attempts, "seconds": seconds})
    return result.rowcount


def mark_lost(conn: Connection, run_id: int, attempt: int, state: str, error: str) -> bool:
    """A run whose worker died (`running`) or whose retry never came (`failed`) -> `state`."""
    assert state in ("failed", "discarded")
    c = job_runs.c
    result = conn.execute(
        update(job_runs)
        .where(c.id == run_id, c.attempt == attempt, c.state.in_(("running", "failed")))
        .values(state=state, finished_at=func.now(), error=error[:MAX_ERROR_LENGTH])
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class Orphan:
    """A run left `running` by a worker process that stopped heart-beating."""

    id: int
    job_name: str
    attempt: int
    node: str | None
    worker: str | None
    last_seen_at: datetime | None


ORPHANS = text(
    """
    SELECT r.id, r.job_name, r.attempt, r.node, r.worker, w.last_seen_at
      FROM job_runs r
      LEFT JOIN worker_nodes w ON w.worker = r.worker
     WHERE r.state = 'running'
       AND r.started_at < now() - make_interval(secs => :dead)
       AND (w.worker IS NULL OR w.last_seen_at < now() - make_interval(secs => :dead))
     ORDER BY r.id
     LIMIT :limit
    """
)


def find_orphans(conn: Connection, dead_after_seconds: float, limit: int = 500) -> list[Orphan]:
    """Running runs whose worker has not been seen for `dead_after_seconds` (or never)."""
    rows = conn.execute(ORPHANS, {"dead": dead_after_seconds, "limit": limit})
    return [Orphan(**r._mapping) for r in rows]


STALLED = text(
    """
    SELECT id, job_name, attempt FROM job_runs
     WHERE state = 'failed' AND finished_at < now() - make_interval(secs => :after)
     ORDER BY id LIMIT :limit
    """
)


def find_stalled_retries(
    conn: Connection, after_seconds: float, limit: int = 500
) -> list[tuple[int, str, int]]:
    """`failed` runs whose retry has not started for `after_seconds`: (id, job, attempt)."""
    rows = conn.execute(STALLED, {"after": after_seconds, "limit": limit})
    return [(r.id, r.job_name, r.attempt) for r in rows]


PRUNE = text(
    """
    DELETE FROM job_runs WHERE id IN (
        SELECT id FROM job_runs
         WHERE finished_at < now() - make_interval(days => :days)
           AND state IN ('succeeded', 'discarded')
         ORDER BY finished_at
         LIMIT :batch
           FOR UPDATE SKIP LOCKED)
    """
)


def prune_finished(conn: Connection, older_than_days: int, batch: int) -> int:
    """Delete up to `batch` finished runs older than the retention; return how many."""
    return conn.execute(PRUNE, {"days": older_than_days, "batch": batch}).rowcount


def mark_finished(
    conn: Connection,
    run_id: int,
    state: str,
    *,
    error: str | None = None,
    traceback: str | None = None,
    attempt: int | None = None,
) -> bool:
    """running -> succeeded | failed | discarded; only that attempt's when `attempt` is given."""
    assert state in ("succeeded", "failed", "discarded")
    guard = [job_runs.c.id == run_id, job_runs.c.state.in_(("running", "pending", "enqueued"))]
    if attempt is not None:
        guard.append(job_runs.c.attempt == attempt)
    result = conn.execute(
        update(job_runs)
        .where(*guard)
        .values(
            state=state,
            finished_at=func.now(),
            error=error[:MAX_ERROR_LENGTH] if error else None,
            traceback=traceback[-MAX_TRACEBACK_LENGTH:] if traceback else None,
        )
    )
    return result.rowcount == 1


def get_run(conn: Connection, run_id: int) -> Run:
    """One run; raises UnknownRun."""
    row = conn.execute(select(*RUN_COLUMNS).where(job_runs.c.id == run_id)).first()
    if row is None:
        raise UnknownRun(f"unknown run {run_id}")
    return _run(row)


def get_traceback(conn: Connection, run_id: int) -> str | None:
    """The stored traceback of a failed run."""
    return conn.execute(select(job_runs.c.traceback).where(job_runs.c.id == run_id)).scalar()


def list_runs(
    conn: Connection,
    job_name: str | None = None,
    *,
    limit: int = 50,
    state: str | None = None,
    before: int | None = None,
) -> list[Run]:
    """Runs newest first, optionally of one job, in one state, with ids below `before`."""
    stmt = select(*RUN_COLUMNS).order_by(job_runs.c.id.desc()).limit(limit)
    if job_name is not None:
        stmt = stmt.where(job_runs.c.job_name == job_name)
    if state is not None:
        stmt = stmt.where(job_runs.c.state == state)
    if before is not None:
        stmt = stmt.where(job_runs.c.id < before)
    return [_run(r) for r in conn.execute(stmt)]


LAST_RUNS = text(
    """
    SELECT r.* FROM unnest(CAST(:names AS text[])) AS j(name)
    CROSS JOIN LATERAL (
        SELECT id, job_name, trigger, state, scheduled_at, enqueued_at, started_at,
               finished_at, attempt, node, error, created_at
          FROM job_runs WHERE job_name = j.name ORDER BY id DESC LIMIT 1
    ) AS r
    """
)


def last_runs(conn: Connection, job_names: list[str]) -> dict[str, Run]:
    """The newest run of each named job (one index probe per job)."""
    if not job_names:
        return {}
    return {row.job_name: _run(row) for row in conn.execute(LAST_RUNS, {"names": job_names})}


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
    answers again), or a run never sent for `orphan_after_seconds` (its sender died).
    """
    due = (
        func.coalesce(
            job_runs.c.next_send_at,
            job_runs.c.created_at
            + text("make_interval(secs => :orphan)").bindparams(orphan=orphan_after_seconds),
        )
        <= func.now()
    )
    if eager:
        due = or_(due, job_runs.c.next_send_at.is_not(None))
    rows = conn.execute(
        select(*RUN_COLUMNS, job_runs.c.send_attempts)
        .where(job_runs.c.state == "pending", due)
        .order_by(job_runs.c.id)
        .limit(limit)
    )
    fields = Run.__dataclass_fields__
    return [
        PendingSend(Run(**{k: row._mapping[k] for k in fields}), row.send_attempts) for row in rows
    ]


def count_pending(conn: Connection) -> int:
    """How many runs wait to be handed to the broker."""
    return conn.execute(
        select(func.count()).select_from(job_runs).where(job_runs.c.state == "pending")
    ).scalar_one()


def create_cron_runs(conn: Connection, fires: list[tuple[str, datetime]]) -> list[Run]:
    """Record many cron fires in one statement; slots that already have a run are left out."""
    if not fires:
        return []
    fired = (
        func.unnest(
            bindparam("names", [name for name, _ in fires], type_=ARRAY(Text)),
            bindparam("slots", [slot for _, slot in fires], type_=ARRAY(DateTime(timezone=True))),
        )
        .table_valued("name", "slot")
        .render_derived()
    )
    stmt = (
        insert(job_runs)
        .from_select(
            ["job_name", "trigger", "scheduled_at"],
            select(fired.c.name, literal("cron"), fired.c.slot),
        )
        .on_conflict_do_nothing(index_elements=["job_name", "scheduled_at"])
        .returning(*RUN_COLUMNS)
    )
    return [_run(row) for row in conn.execute(stmt)]


MARK_ENQUEUED_AT = text(
    """
    UPDATE job_runs AS r
       SET state = 'enqueued', enqueued_at = v.at, send_attempts = r.send_attempts + 1
      FROM unnest(CAST(:ids AS bigint[]), CAST(:ats AS timestamptz[])) AS v(id, at)
     WHERE r.id = v.id AND r.state = 'pending'
    """
)


def mark_enqueued_many(
    conn: Connection, run_ids: list[int], sent_at: list[datetime] | None = None
) -> int:
    """pending -> enqueued for many runs the broker now has; returns how many moved.

    `sent_at` gives each run's own hand-over time (default: now), so that writing them in
    one statement does not move `enqueued_at` later than the hand-over."""
    if not run_ids:
        return 0
    if sent_at is not None:
        return conn.execute(MARK_ENQUEUED_AT, {"ids": run_ids, "ats": sent_at}).rowcount
    result = conn.execute(
        update(job_runs)
        .where(job_runs.c.id.in_(run_ids), job_runs.c.state == "pending")
        .values(
            state="enqueued", enqueued_at=func.now(), send_attempts=job_runs.c.send_attempts + 1
        )
    )
    return result.rowcount
