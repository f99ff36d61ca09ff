"""The outcome of an attempt: active -> succeeded | failed | discarded, many runs a statement.

A worker commits each `running` transition without waiting for the WAL flush
(shared/runs/transitions.py, START_SESSION), so a Postgres crash or a failover right after it
can take the run back to the state it started from. The worker's outcome therefore carries the
start it made (`started_at`, `node`, `worker`): when the run is not `running` at that attempt
but in a state that start could have left (START_RUN's guard: `pending`, `enqueued`, an older
attempt `running` or `failed`), the outcome records the start again with the outcome, instead
of finding nothing and stranding the run. A finished run, or one a newer attempt moved on, is
never changed. The outcome is always committed synchronously: once it is durable, so is every
start before it (the WAL is written in order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.runs import model
from shared.runs.transitions import Db, _execute

# `v.restarted`: the run is not `running` at the worker's attempt, its start was lost.
# Repeated in each column rather than computed once: Postgres evaluates the SET list on the
# row version the WHERE clause matched (again, if a concurrent change made it re-check).
FINISH = """
UPDATE job_runs AS r
   SET state = v.state, error = v.error, traceback = v.traceback,
       attempt = CASE WHEN v.started_at IS NOT NULL
                       AND (r.state <> %(running)s OR r.attempt <> v.attempt)
                      THEN v.attempt ELSE r.attempt END,
       node = CASE WHEN v.started_at IS NOT NULL
                    AND (r.state <> %(running)s OR r.attempt <> v.attempt)
                   THEN v.node ELSE r.node END,
       worker = CASE WHEN v.started_at IS NOT NULL
                      AND (r.state <> %(running)s OR r.attempt <> v.attempt)
                     THEN v.worker ELSE r.worker END,
       enqueued_at = CASE WHEN v.started_at IS NOT NULL
                           AND (r.state <> %(running)s OR r.attempt <> v.attempt)
                          THEN COALESCE(r.enqueued_at, to_timestamp(v.started_at))
                          ELSE r.enqueued_at END,
       started_at = CASE WHEN v.started_at IS NOT NULL
                          AND (r.state <> %(running)s OR r.attempt <> v.attempt)
                         THEN to_timestamp(v.started_at) ELSE r.started_at END,
       finished_at = COALESCE(
           CASE WHEN v.started_at IS NOT NULL
                 AND (r.state <> %(running)s OR r.attempt <> v.attempt)
                THEN to_timestamp(v.started_at) ELSE r.started_at END
           + make_interval(secs => v.seconds),
           now())
  FROM unnest(CAST(%(ids)s AS bigint[]), CAST(%(states)s AS text[]),
              CAST(%(attempts)s AS integer[]), CAST(%(seconds)s AS float8[]),
              CAST(%(errors)s AS text[]), CAST(%(tracebacks)s AS text[]),
              CAST(%(started)s AS float8[]), CAST(%(nodes)s AS text[]),
              CAST(%(workers)s AS text[]))
       AS v(id, state, attempt, seconds, error, traceback, started_at, node, worker)
 WHERE r.id = v.id
   AND ((r.state IN %(active)s
         AND (v.attempt IS NULL OR r.attempt = v.attempt)
         AND (v.seconds IS NULL OR r.state = %(running)s))
        OR (v.started_at IS NOT NULL AND v.attempt IS NOT NULL
            AND (r.state IN %(waiting)s
                 OR (r.state IN %(retried)s AND r.attempt < v.attempt))))
"""


@dataclass(frozen=True)
class Finish:
    """One finished attempt: the run's outcome, and the attempt it must still be at.

    With `started_at` (epoch seconds), `node` and `worker`, the start the worker made for this
    attempt is recorded again when Postgres lost it (see the module's docstring)."""

    run_id: int
    state: str
    attempt: int | None = None
    seconds: float | None = None  # how long it ran, as the worker measured it
    error: str | None = None
    traceback: str | None = None
    started_at: float | None = None
    node: str | None = None
    worker: str | None = None


# (run id, attempt, seconds it ran, started_at epoch, node, worker): a succeeded attempt as
# the worker buffers it.
Success = tuple[int, int, float, float, str, str | None]


def _params(columns: dict[str, Any]) -> dict[str, Any]:
    return {
        **columns,
        "active": model.ACTIVE_STATES,
        "running": model.RUNNING,
        "waiting": (model.PENDING, model.ENQUEUED),
        "retried": (model.RUNNING, model.FAILED),
    }


def finish_many(conn: Db, finished: Sequence[Finish]) -> int:
    """active -> succeeded | failed | discarded for many runs in one statement; how many moved.

    An item with an `attempt` changes the run only while it is at that attempt (or, with its
    start, while in a state that start could have left)."""
    if not finished:
        return 0
    bad = {f.state for f in finished} - set(model.OUTCOMES)
    if bad:
        raise ValueError(f"not a finished state: {', '.join(sorted(bad))}")
    columns: dict[str, Any] = {
        "ids": [f.run_id for f in finished],
        "states": [f.state for f in finished],
        "attempts": [f.attempt for f in finished],
        "seconds": [f.seconds for f in finished],
        "errors": [model.clip_error(f.error) for f in finished],
        "tracebacks": [model.clip_traceback(f.traceback) for f in finished],
        "started": [f.started_at for f in finished],
        "nodes": [f.node for f in finished],
        "workers": [f.worker for f in finished],
    }
    return _execute(conn, FINISH, _params(columns))


def mark_finished(
    conn: Db,
    run_id: int,
    state: str,
    *,
    error: str | None = None,
    traceback: str | None = None,
    attempt: int | None = None,
    started: tuple[float, str, str | None] | None = None,
) -> bool:
    """-> succeeded | failed | discarded; only that attempt's when `attempt` is given.

    `started` (epoch seconds, node, worker) is the start this worker made for the attempt."""
    at, node, worker = started if started is not None else (None, None, None)
    item = Finish(run_id, state, attempt, None, error, traceback, at, node, worker)
    return finish_many(conn, [item]) == 1


def mark_succeeded_many(conn: Db, done: Sequence[Success]) -> int:
    """running -> succeeded for many attempts as the worker buffered them; how many changed."""
    if not done:
        return 0
    ids, attempts, seconds, started, nodes, workers = (list(c) for c in zip(*done, strict=True))
    columns: dict[str, Any] = {
        "ids": ids,
        "states": [model.SUCCEEDED] * len(ids),
        "attempts": attempts,
        "seconds": seconds,
        "errors": [None] * len(ids),
        "tracebacks": [None] * len(ids),
        "started": started,
        "nodes": nodes,
        "workers": workers,
    }
    return _execute(conn, FINISH, _params(columns))
