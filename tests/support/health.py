"""Runs with outcomes written as plain SQL, and reads of the alerts they cause."""

from __future__ import annotations

from sqlalchemy import Engine, text

JOB = "refresh_trace_summaries"


def add_run(
    engine: Engine, state: str, job: str = JOB, error: str | None = None, attempt: int = 1
) -> int:
    """A finished (or running) run of `job`, recorded as a worker would leave it."""
    with engine.begin() as conn:
        return conn.execute(
            text(
                "INSERT INTO job_runs (job_name, trigger, state, started_at, finished_at,"
                " attempt, error, enqueued_at)"
                " VALUES (:job, 'manual', :state, now() - interval '1 second',"
                " CASE WHEN :state = 'running' THEN NULL ELSE now() END, :attempt, :error, now())"
                " RETURNING id"
            ),
            {"job": job, "state": state, "error": error, "attempt": attempt},
        ).scalar_one()


def alert_rows(engine: Engine, job: str | None = None) -> list[dict]:
    """Every alert (of `job`), oldest first, as dicts."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT * FROM alerts WHERE CAST(:job AS text) IS NULL OR job_name = :job"
                " ORDER BY id"
            ),
            {"job": job},
        )
        return [dict(r._mapping) for r in rows]


def events(engine: Engine, job: str | None = None) -> list[str]:
    return [row["event"] for row in alert_rows(engine, job)]


def enabled_now(engine: Engine) -> None:
    """Count staleness from now: the session's template database may be minutes old."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE job_schedules SET enabled_at = now()"))
