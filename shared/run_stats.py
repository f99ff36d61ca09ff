"""What health needs of every job's runs, read in one statement (schedules and aggregates).

Per job: the newest run with an outcome, and only when that one did not succeed, the last
success and the failures since (each one probe of a partial or per-job index). Cancelled runs
(`discarded` with an error beginning `cancelled`) are left out.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from shared.freshness import RunStats
from shared.schedules import ScheduleRow

# Counting stops here: a job failing every second for days would otherwise scan all of it.
MAX_COUNTED_FAILURES = 10_000

STATS = text(
    """
    SELECT s.*, lo.id AS stats_outcome_id, lo.state AS stats_outcome_state,
           CASE WHEN lo.state = 'succeeded' THEN lo.finished_at ELSE (
                SELECT finished_at FROM job_runs r
                 WHERE r.job_name = s.name AND r.state = 'succeeded'
                 ORDER BY r.id DESC LIMIT 1) END AS stats_last_success_at,
           CASE WHEN lo.state IS NULL OR lo.state = 'succeeded' THEN 0 ELSE (
                SELECT count(*) FROM (
                    SELECT 1 FROM job_runs f
                     WHERE f.job_name = s.name
                       AND f.id > COALESCE((
                            SELECT id FROM job_runs r
                             WHERE r.job_name = s.name AND r.state = 'succeeded'
                             ORDER BY r.id DESC LIMIT 1), 0)
                       AND f.state IN ('failed', 'discarded')
                       AND (f.state = 'failed' OR f.error IS NULL
                            OR f.error NOT LIKE 'cancelled%')
                     LIMIT :max_failures) AS counted) END AS stats_failures
      FROM job_schedules s
      -- The newest run with an outcome: when it succeeded it is also the last success, and
      -- the other two probes are skipped (the common case).
      LEFT JOIN LATERAL (
            SELECT id, state, finished_at FROM job_runs r
             WHERE r.job_name = s.name
               AND (r.state IN ('succeeded', 'failed')
                    OR (r.state = 'discarded'
                        AND (r.error IS NULL OR r.error NOT LIKE 'cancelled%'))
                    OR (r.state = 'running' AND r.attempt > 1))
             ORDER BY r.id DESC LIMIT 1) lo ON true
     WHERE CAST(:names AS text[]) IS NULL OR s.name = ANY(CAST(:names AS text[]))
     ORDER BY s.name
    """
)
OUTCOMES = {"succeeded": "succeeded"}
SCHEDULE_FIELDS = tuple(ScheduleRow.__dataclass_fields__)
STATS_COLUMNS = (
    "stats_outcome_id",
    "stats_outcome_state",
    "stats_last_success_at",
    "stats_failures",
)


def job_stats(
    conn: Connection, names: list[str] | None = None
) -> tuple[datetime, list[tuple[ScheduleRow, RunStats]]]:
    """The database's clock and every job's (or the named jobs') schedule with its run stats."""
    # Compiling this many-probe plan costs more than running it.
    now = conn.execute(text("SELECT now(), set_config('jit', 'off', true)")).scalar_one()
    result = conn.execute(STATS, {"names": names, "max_failures": MAX_COUNTED_FAILURES})
    keys = list(result.keys())
    schedule = [keys.index(name) for name in SCHEDULE_FIELDS]
    outcome_id, outcome, success, failures = (keys.index(k) for k in STATS_COLUMNS)
    found = []
    for row in result:  # by position: ten thousand rows, so no per-row mapping
        state = row[outcome]  # a retry in progress counts as its failed attempt
        stats = RunStats(
            last_success_at=row[success],
            consecutive_failures=row[failures],
            last_outcome=None if state is None else OUTCOMES.get(state, "failed"),
            last_outcome_run_id=row[outcome_id],
        )
        found.append((ScheduleRow(*[row[i] for i in schedule]), stats))
    return now, found


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
