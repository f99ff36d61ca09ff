"""State changes of runs, as named SQL literals in the driver's `%(name)s` style.

Each transition is one short statement guarded by the states it may leave, so no row lock is
held while a job runs and a late or repeated transition changes nothing. A single change is a
batch of one. Statements run on a SQLAlchemy connection (inside the caller's transaction) or,
on the worker's hot path, on a raw DB-API cursor: one round trip, no statement building.
State names are bound from `shared.runs.model`, never written into the SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import psycopg2.extensions
from sqlalchemy import Connection

from shared.runs import model

# A SQLAlchemy connection, or a psycopg2 cursor (the worker's per-thread connections).
Db: TypeAlias = Connection | psycopg2.extensions.cursor

MARK_ENQUEUED = """
UPDATE job_runs AS r
   SET state = %(enqueued)s, enqueued_at = COALESCE(v.at, now()),
       send_attempts = r.send_attempts + 1
  FROM unnest(CAST(%(ids)s AS bigint[]), CAST(%(ats)s AS timestamptz[])) AS v(id, at)
 WHERE r.id = v.id AND r.state = %(pending)s
"""

MARK_SEND_FAILED = """
UPDATE job_runs AS r
   SET send_attempts = r.send_attempts + 1,
       next_send_at = now() + make_interval(secs => v.delay)
  FROM unnest(CAST(%(ids)s AS bigint[]), CAST(%(delays)s AS float8[])) AS v(id, delay)
 WHERE r.id = v.id AND r.state = %(pending)s
"""

# A message is stale when it carries an attempt older than the run's: a `failed` attempt is
# only ever followed by the next one, and a `running` one only by itself (a redelivery).
START_RUN = """
UPDATE job_runs
   SET state = %(running)s, started_at = now(), finished_at = NULL, error = NULL,
       attempt = %(attempt)s, node = %(node)s, worker = %(worker)s,
       enqueued_at = COALESCE(enqueued_at, now())
 WHERE id = %(id)s
   AND (state = ANY (%(waiting)s)
        OR (state = %(running)s AND attempt <= %(attempt)s)
        OR (state = %(failed)s AND attempt < %(attempt)s))
"""
START_STATES = {
    "running": model.RUNNING,
    "failed": model.FAILED,
    "waiting": [model.PENDING, model.ENQUEUED],
}

# The same statement prepared once per connection of the worker's hot path: parsed and
# planned once, not once per message (planning was half its server time in EXPLAIN ANALYZE).
# The state names are bound by the driver when it is prepared; a message binds four values.
START_PARAMS = ("id", "attempt", "node", "worker")
START_TYPES = "bigint, integer, text, text"
START_PREPARED = "srjobs_start_run"


def _positional(statement: str, names: Sequence[str]) -> str:
    for number, name in enumerate(names, 1):
        statement = statement.replace(f"%({name})s", f"${number}")
    return statement


PREPARE_START = (
    f"PREPARE {START_PREPARED} ({START_TYPES}) AS {_positional(START_RUN, START_PARAMS)}"
)
EXECUTE_START = f"EXECUTE {START_PREPARED} (%s, %s, %s, %s)"
# The start connections commit `running` without waiting for the WAL flush: it is visible to
# every other session (cancel, rescue, unique) at once, as before; only a Postgres crash or
# failover in the next moments can lose it, and the attempt's outcome then records the start
# again (shared/runs/finish.py), so the run still ends in its outcome.
START_SESSION = "SET synchronous_commit TO off"

MARK_LOST = """
UPDATE job_runs SET state = %(state)s, finished_at = now(), error = %(error)s
 WHERE id = %(id)s AND attempt = %(attempt)s AND state IN %(lost)s
"""

# One batch of retention, oldest finished first along `job_runs_finished_at`, resuming after
# the previous batch's last `finished_at` (`after`): no batch walks again over the index entries
# of the rows the ones before it deleted. Only the doomed rows are locked, never the runs the
# leader inserts; a row another transaction holds is skipped (the next run takes it).
PRUNE = """
WITH doomed AS (
    SELECT id FROM job_runs
     WHERE finished_at >= %(after)s AND finished_at < %(cutoff)s AND state IN %(finished)s
     ORDER BY finished_at
     LIMIT %(batch)s
       FOR UPDATE SKIP LOCKED),
gone AS (
    DELETE FROM job_runs AS r USING doomed WHERE r.id = doomed.id RETURNING r.finished_at)
SELECT count(*), max(finished_at) FROM gone
"""

# A cancel: a waiting run is discarded at once; a running one is marked for its worker.
CANCEL_WAITING = """
UPDATE job_runs
   SET state = %(discarded)s, finished_at = now(), error = %(error)s,
       cancel_requested_at = COALESCE(cancel_requested_at, now())
 WHERE id = %(id)s AND state IN %(waiting)s
"""
REQUEST_CANCEL = """
UPDATE job_runs SET cancel_requested_at = COALESCE(cancel_requested_at, now())
 WHERE id = %(id)s AND state = %(running)s
"""

TRY_LOCK = "SELECT pg_try_advisory_lock(%(cls)s, hashtext(%(name)s))"
UNLOCK = "SELECT pg_advisory_unlock(%(cls)s, hashtext(%(name)s))"


def _execute(db: Db, sql: str, params: Mapping[str, Any]) -> int:
    """Run one statement on a SQLAlchemy connection or a DB-API cursor; rows it changed."""
    if isinstance(db, Connection):
        return int(db.exec_driver_sql(sql, dict(params)).rowcount)
    db.execute(sql, params)
    return int(db.rowcount)


def mark_enqueued_many(
    conn: Db, run_ids: Sequence[int], sent_at: Sequence[datetime] | None = None
) -> int:
    """pending -> enqueued for many runs the broker now has; returns how many moved.

    `sent_at` gives each run's own hand-over time (default: now), so that writing them in
    one statement does not move `enqueued_at` later than the hand-over."""
    if not run_ids:
        return 0
    ats = list(sent_at) if sent_at is not None else [None] * len(run_ids)
    params = {
        "ids": list(run_ids),
        "ats": ats,
        "enqueued": model.ENQUEUED,
        "pending": model.PENDING,
    }
    return _execute(conn, MARK_ENQUEUED, params)


def mark_enqueued(conn: Db, run_id: int) -> bool:
    """pending -> enqueued, once the broker has the message."""
    return mark_enqueued_many(conn, [run_id]) == 1


def mark_send_failed(conn: Db, run_id: int, retry_in_seconds: float) -> None:
    """Count a failed hand-over to the broker; the run stays pending for the outbox."""
    mark_send_failed_many(conn, [run_id], [retry_in_seconds])


def mark_send_failed_many(
    conn: Db, run_ids: Sequence[int], retry_in_seconds: Sequence[float]
) -> int:
    """`mark_send_failed` for many runs in one statement (each with its own delay)."""
    if not run_ids:
        return 0
    params = {"ids": list(run_ids), "delays": list(retry_in_seconds), "pending": model.PENDING}
    return _execute(conn, MARK_SEND_FAILED, params)


def start_run(db: Db, run_id: int, attempt: int, node: str, worker: str | None = None) -> bool:
    """-> running; False when the run is finished or the message is a stale copy.

    The worker calls this once per message, on its thread's raw autocommit connection.
    """
    params = {"id": run_id, "attempt": attempt, "node": node, "worker": worker, **START_STATES}
    return _execute(db, START_RUN, params) == 1


def prepare_start(cursor: psycopg2.extensions.cursor) -> None:
    """Set up a worker start connection: asynchronous commit, `start_run` prepared (once per
    connection), for `start_run_prepared`."""
    cursor.execute(START_SESSION)
    cursor.execute(PREPARE_START, START_STATES)


def start_run_prepared(
    cursor: psycopg2.extensions.cursor, run_id: int, attempt: int, node: str, worker: str | None
) -> bool:
    """`start_run` through the statement `prepare_start` prepared on the cursor's connection."""
    cursor.execute(EXECUTE_START, (run_id, attempt, node, worker))
    return cursor.rowcount == 1


def mark_lost(conn: Db, run_id: int, attempt: int, state: str, error: str) -> bool:
    """A run whose worker died (`running`) or whose retry never came (`failed`) -> `state`."""
    if state not in (model.FAILED, model.DISCARDED):
        raise ValueError(f"a lost run is failed or discarded, not {state}")
    params = {
        "id": run_id,
        "attempt": attempt,
        "state": state,
        "error": model.clip_error(error),
        "lost": (model.RUNNING, model.FAILED),
    }
    return _execute(conn, MARK_LOST, params) == 1


@dataclass(frozen=True)
class Pruned:
    """One retention batch: how many runs it deleted and the newest `finished_at` among them."""

    count: int
    last_finished_at: datetime | None


def prune_finished(conn: Db, cutoff: datetime, batch: int, after: datetime | None = None) -> Pruned:
    """Delete up to `batch` finished runs that finished before `cutoff` (and at or after
    `after`, the previous batch's `last_finished_at`), oldest first."""
    params = {
        "cutoff": cutoff,
        "after": after or datetime.min.replace(tzinfo=UTC),
        "batch": batch,
        "finished": model.FINISHED_STATES,
    }
    if isinstance(conn, Connection):
        row = conn.exec_driver_sql(PRUNE, params).one()
    else:
        conn.execute(PRUNE, params)
        row = conn.fetchone()
    return Pruned(int(row[0]), row[1])


def try_lock_job(cursor: psycopg2.extensions.cursor, job_name: str) -> bool:
    """Take the session lock that keeps a `unique` job to one running run; False if held."""
    cursor.execute(TRY_LOCK, {"cls": model.UNIQUE_LOCK_CLASS, "name": job_name})
    return bool(cursor.fetchone()[0])


def unlock_job(cursor: psycopg2.extensions.cursor, job_name: str) -> None:
    """Release the lock taken by `try_lock_job` on the same connection."""
    cursor.execute(UNLOCK, {"cls": model.UNIQUE_LOCK_CLASS, "name": job_name})


def cancel_waiting(conn: Db, run_id: int, error: str) -> bool:
    """pending | enqueued | failed -> discarded at once, `error` beginning `cancelled`."""
    if not error.startswith(model.CANCELLED):
        raise ValueError("a cancelled run's error begins with 'cancelled'")
    params = {
        "id": run_id,
        "error": model.clip_error(error),
        "discarded": model.DISCARDED,
        "waiting": model.CANCEL_AT_ONCE_STATES,
    }
    return _execute(conn, CANCEL_WAITING, params) == 1


def request_cancel(conn: Db, run_id: int) -> bool:
    """Mark a running run for its worker to stop (`cancel_requested_at`); False unless running."""
    return _execute(conn, REQUEST_CANCEL, {"id": run_id, "running": model.RUNNING}) == 1
