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
START_PARAMS = ("id", "attempt", "node", "worker", "running", "failed", "waiting")
START_TYPES = "bigint, integer, text, text, text, text, text[]"
START_PREPARED = "srjobs_start_run"


def _positional(statement: str, names: Sequence[str]) -> str:
    for number, name in enumerate(names, 1):
        statement = statement.replace(f"%({name})s", f"${number}")
    return statement


PREPARE_START = (
    f"PREPARE {START_PREPARED} ({START_TYPES}) AS {_positional(START_RUN, START_PARAMS)}"
)
EXECUTE_START = f"EXECUTE {START_PREPARED} ({', '.join(f'%({n})s' for n in START_PARAMS)})"

# Without an attempt, any attempt's run; with a measured duration, only a started run, and
# `finished_at` is `started_at` plus that duration (a batched write keeps each run's times).
FINISH = """
UPDATE job_runs AS r
   SET state = v.state, error = v.error, traceback = v.traceback,
       finished_at = COALESCE(r.started_at + make_interval(secs => v.seconds), now())
  FROM unnest(CAST(%(ids)s AS bigint[]), CAST(%(states)s AS text[]),
              CAST(%(attempts)s AS integer[]), CAST(%(seconds)s AS float8[]),
              CAST(%(errors)s AS text[]), CAST(%(tracebacks)s AS text[]))
       AS v(id, state, attempt, seconds, error, traceback)
 WHERE r.id = v.id AND r.state IN %(active)s
   AND (v.attempt IS NULL OR r.attempt = v.attempt)
   AND (v.seconds IS NULL OR r.state = %(running)s)
"""

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
    """Prepare `start_run` on a connection, for `start_run_prepared` (once per connection)."""
    cursor.execute(PREPARE_START)


def start_run_prepared(
    cursor: psycopg2.extensions.cursor, run_id: int, attempt: int, node: str, worker: str | None
) -> bool:
    """`start_run` through the statement `prepare_start` prepared on the cursor's connection."""
    params = {"id": run_id, "attempt": attempt, "node": node, "worker": worker, **START_STATES}
    cursor.execute(EXECUTE_START, params)
    return cursor.rowcount == 1


@dataclass(frozen=True)
class Finish:
    """One finished attempt: the run's outcome, and the attempt it must still be at."""

    run_id: int
    state: str
    attempt: int | None = None
    seconds: float | None = None  # how long it ran, as the worker measured it
    error: str | None = None
    traceback: str | None = None


def finish_many(conn: Db, finished: Sequence[Finish]) -> int:
    """active -> succeeded | failed | discarded for many runs in one statement; how many moved.

    An item with an `attempt` changes the run only while it is at that attempt."""
    if not finished:
        return 0
    bad = {f.state for f in finished} - set(model.OUTCOMES)
    if bad:
        raise ValueError(f"not a finished state: {', '.join(sorted(bad))}")
    params = {
        "ids": [f.run_id for f in finished],
        "states": [f.state for f in finished],
        "attempts": [f.attempt for f in finished],
        "seconds": [f.seconds for f in finished],
        "errors": [model.clip_error(f.error) for f in finished],
        "tracebacks": [model.clip_traceback(f.traceback) for f in finished],
        "active": model.ACTIVE_STATES,
        "running": model.RUNNING,
    }
    return _execute(conn, FINISH, params)


def mark_finished(
    conn: Db,
    run_id: int,
    state: str,
    *,
    error: str | None = None,
    traceback: str | None = None,
    attempt: int | None = None,
) -> bool:
    """-> succeeded | failed | discarded; only that attempt's when `attempt` is given."""
    return finish_many(conn, [Finish(run_id, state, attempt, None, error, traceback)]) == 1


def mark_succeeded_many(conn: Db, done: Sequence[tuple[int, int, float]]) -> int:
    """running -> succeeded for many `(run_id, attempt, seconds it ran)`; how many changed."""
    return finish_many(conn, [Finish(i, model.SUCCEEDED, a, s) for i, a, s in done])


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
