"""What health needs of every job's runs, read in one statement (schedules and their stats).

Per job, `job_run_stats` (kept by triggers on `job_runs`, migration 0005) holds the newest run
with an outcome, the last success and the failures since it, cancelled runs (`discarded` with
an error beginning `cancelled`) left out; reading it is one scan joined with the schedules.
tests/integration/test_run_stats.py checks it against probing the runs themselves.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, text

from shared.freshness import RunStats, health_of, judge, stale_after_for
from shared.schedules import ScheduleRow

# Reported failures stop here (the stored count goes on): a number for people, not a meter.
MAX_COUNTED_FAILURES = 10_000

SCHEDULE_FIELDS = tuple(ScheduleRow.__dataclass_fields__)
# `args` as text: most are `{}`, and decoding ten thousand of them costs more than the query.
ARGS = SCHEDULE_FIELDS.index("args")
COLUMNS = ["CAST(s.args AS text)" if f == "args" else f"s.{f}" for f in SCHEDULE_FIELDS]
STATS = text(  # the schedule columns are the dataclass's field names, nothing else
    f"""
    SELECT {", ".join(COLUMNS)},
           st.outcome_id, st.outcome_state, st.success_at,
           CASE WHEN st.outcome_state IS NULL OR st.outcome_state = 'succeeded' THEN 0
                ELSE LEAST(st.failures, :max_failures) END
      FROM job_schedules s
      LEFT JOIN job_run_stats st ON st.job_name = s.name
     WHERE CAST(:names AS text[]) IS NULL OR s.name = ANY(CAST(:names AS text[]))
     ORDER BY s.name
    """  # noqa: S608
)
FIELDS = len(SCHEDULE_FIELDS)
NO_RUNS = RunStats()


def job_stats(
    conn: Connection, names: list[str] | None = None
) -> tuple[datetime, list[tuple[ScheduleRow, RunStats]]]:
    """The database's clock and every job's (or the named jobs') schedule with its run stats."""
    now = conn.execute(text("SELECT now()")).scalar_one()
    result = conn.execute(STATS, {"names": names, "max_failures": MAX_COUNTED_FAILURES})
    found = []
    n = FIELDS
    for row in result:  # by position: ten thousand rows, so no per-row mapping
        state = row[n + 1]  # a retry in progress counts as its failed attempt
        if state is None:
            stats = NO_RUNS
        else:
            stats = RunStats(
                row[n + 2], row[n + 3], "succeeded" if state == "succeeded" else "failed", row[n]
            )
        raw = row[ARGS]
        values = (*row[:ARGS], {} if raw == "{}" else json.loads(raw), *row[ARGS + 1 : n])
        found.append((ScheduleRow(*values), stats))
    return now, found


# What /metrics needs of every job, times as whole microseconds since the epoch (cheaper to
# read than timestamps, and exact): when staleness counts from, the last success.
HEALTHS = text(
    """
    SELECT s.name, s.enabled, s.cron, s.timezone, s.stale_after_seconds,
           CAST(EXTRACT(epoch FROM GREATEST(COALESCE(s.enabled_at, s.created_at), st.success_at))
                * 1000000 AS bigint),
           CAST(EXTRACT(epoch FROM st.success_at) * 1000000 AS bigint), st.outcome_state,
           CASE WHEN st.outcome_state IS NULL OR st.outcome_state = 'succeeded' THEN 0
                ELSE LEAST(st.failures, :max_failures) END
      FROM job_schedules s
      LEFT JOIN job_run_stats st ON st.job_name = s.name
     ORDER BY s.name
    """
)
NOW = text("SELECT now(), CAST(EXTRACT(epoch FROM now()) * 1000000 AS bigint)")
MICROS = 1_000_000


def job_healths(conn: Connection) -> tuple[datetime, list[tuple[str, str, int | None, int]]]:
    """The database's clock and, per job, `(name, health, last success in microseconds since
    the epoch or None, consecutive failures)`: what `assess` says, without building a
    schedule, stats and freshness object per job."""
    now, now_us = conn.execute(NOW).one()
    found = []
    defaults: dict[tuple[str, str], int | None] = {}
    result = conn.execute(HEALTHS, {"max_failures": MAX_COUNTED_FAILURES})
    for name, enabled, cron, zone, stale_after, since, success, state, failures in result:
        if stale_after is None:
            key = (cron, zone)
            if key not in defaults:
                defaults[key] = stale_after_for(None, cron, zone, now)
            stale_after = defaults[key]
        stale_at = None if stale_after is None else since + stale_after * MICROS
        outcome = None if state is None else "succeeded" if state == "succeeded" else "failed"
        found.append((name, health_of(enabled, stale_at, now_us, outcome), success, failures))
    return now, found


class JobHealth(NamedTuple):
    """What the admin shows of a job's health (the contract's job fields)."""

    health: str
    last_success_at: datetime | None
    consecutive_failures: int
    stale_after_seconds: int | None  # in force (None: the schedule cannot be read)


RUN_STATS = text(
    """
    SELECT job_name, outcome_state, success_at,
           CASE WHEN outcome_state IS NULL OR outcome_state = 'succeeded' THEN 0
                ELSE LEAST(failures, :max_failures) END
      FROM job_run_stats
     WHERE CAST(:names AS text[]) IS NULL OR job_name = ANY(CAST(:names AS text[]))
    """
)


def healths(
    conn: Connection, rows: list[ScheduleRow], every: bool = False
) -> tuple[datetime, list[JobHealth]]:
    """The database's clock and the health of each of `rows` (schedules the caller read, in
    its order): one read of the stats table (all of it when `every`: the caller read every
    schedule) and the rules applied, with no per-job object but the answer."""
    now = conn.execute(text("SELECT now()")).scalar_one()
    names = None if every else [row.name for row in rows]
    params = {"names": names, "max_failures": MAX_COUNTED_FAILURES}
    stats = {r[0]: r for r in conn.execute(RUN_STATS, params)}  # by position: many rows
    out = []
    for row in rows:
        found = stats.get(row.name)
        if found is None:
            out.append(job_health(row, None, None, 0, now))
        else:
            out.append(job_health(row, found[1], found[2], found[3], now))
    return now, out


def job_health(
    row: ScheduleRow,
    state: str | None,
    success_at: datetime | None,
    failures: int,
    now: datetime,
) -> JobHealth:
    """A job's health from its stats row's values (`state`: its outcome state, None when no
    run has an outcome yet; `failures` as RUN_STATS caps them)."""
    if state is None:
        health, stale_after, _ = judge(row, None, None, now)
        return JobHealth(health, None, 0, stale_after)
    outcome = "succeeded" if state == "succeeded" else "failed"
    health, stale_after, _ = judge(row, success_at, outcome, now)
    return JobHealth(health, success_at, failures, stale_after)


ERROR_CHARS = 100  # of a run's error, what recent_runs reads
RECENT = text(
    """
    SELECT j.name AS job_name, r.state,
           -- The start of the error says what a picture needs (a cancel or a failure); the
           -- rest, up to 2,000 characters per failed run, stays in the server.
           left(r.error, :error_chars) AS error,
           CAST(EXTRACT(epoch FROM r.finished_at - r.started_at) AS float8) AS seconds
      FROM unnest(CAST(:names AS text[])) AS j(name)
     CROSS JOIN LATERAL (
           SELECT state, error, started_at, finished_at FROM job_runs
            WHERE job_name = j.name ORDER BY id DESC LIMIT :per_job) AS r
    """
)


def recent_runs(
    conn: Connection, names: list[str], per_job: int
) -> dict[str, list[tuple[str, str | None, float | None]]]:
    """Each named job's newest runs, oldest first: (state, the first ERROR_CHARS characters of
    its error, seconds it ran or None)."""
    out: dict[str, list[tuple[str, str | None, float | None]]] = {name: [] for name in names}
    if not names:
        return out
    params = {"names": names, "per_job": per_job, "error_chars": ERROR_CHARS}
    for name, state, error, seconds in conn.execute(RECENT, params):  # by position: many rows
        out[name].append((state, error, seconds))
    for runs in out.values():
        runs.reverse()
    return out
