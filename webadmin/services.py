"""What the admin does: read views, change schedules, start runs, report leadership.

Plain functions over an engine (called from a thread pool); every SQL statement lives in the
shared data-access modules, every HTTP concern in the routes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Connection, Engine

from shared import actors, alerts, audit, run_stats, runs, schedules
from shared.alerts import Alert
from shared.audit import AuditEntry
from shared.cron import parse_schedule
from shared.dispatch import dispatch
from shared.errors import UnknownJob, UnknownRun
from shared.runs import Run
from webadmin import views
from webadmin.charts import Point, outcome
from webadmin.inputs import RunQuery, ScheduleChange
from webadmin.job_list import PER_PAGE, JobsQuery, Pager
from webadmin.jobs_body import JobsBody
from webadmin.views import JobView

logger = logging.getLogger(__name__)

PREVIEW_COUNT = 5
AUDIT_SHOWN = 20
CHART_RUNS = 100
SPARK_RUNS = 20


def list_jobs(engine: Engine) -> list[JobView]:
    """Every job with its description, next fire and last run."""
    with engine.connect() as conn:
        return views.list_jobs(conn)


def jobs_json(engine: Engine, kept: JobsBody | None = None) -> bytes:
    """Every job, as the JSON body of GET /api/jobs (`kept`: the pieces of the last body)."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")  # one snapshot
        return (kept or JobsBody()).body(conn)


def jobs_with_sparks(
    engine: Engine, query: JobsQuery
) -> tuple[list[JobView], dict[str, list[Point]], Pager]:
    """A page of jobs, each one's newest runs for its sparkline, and where the page sits."""
    with engine.connect() as conn:
        jobs, total = views.page_jobs(
            conn, contains=query.contains, limit=PER_PAGE, offset=query.offset
        )
        recent = run_stats.recent_runs(conn, [j.schedule.name for j in jobs], SPARK_RUNS)
    points = {
        name: [Point("run", outcome(state, error), seconds) for state, error, seconds in found]
        for name, found in recent.items()
    }
    return jobs, points, Pager(query, total, len(jobs))


def get_job(engine: Engine, name: str) -> JobView:
    """One job; raises UnknownJob."""
    with engine.connect() as conn:
        return views.get_job(conn, name)


@dataclass(frozen=True)
class JobDetail:
    """Everything the job page shows."""

    job: JobView
    runs: list[Run]
    audit: list[AuditEntry]
    preview: list[datetime]
    chart: list[Point]  # the newest CHART_RUNS runs, oldest first
    alerts: list[Alert]
    actor: actors.ActorInfo | None = None


def job_detail(engine: Engine, name: str, query: RunQuery) -> JobDetail:
    """Everything the job page shows; raises UnknownJob."""
    with engine.connect() as conn:
        job = views.get_job(conn, name)
        newest = runs.list_runs(conn, name, limit=CHART_RUNS)
        # The first page of an unfiltered history is the chart's newest runs: read once.
        plain = query.limit <= CHART_RUNS and query == RunQuery(limit=query.limit, job=query.job)
        history = newest[: query.limit] if plain else _page(conn, query, name)
        entries = audit.list_for_job(conn, name, limit=AUDIT_SHOWN)
        job_alerts = alerts.list_alerts(conn, limit=AUDIT_SHOWN, job=name)
        actor = actors.find_actor(conn, job.schedule.actor)
    preview = []
    if job.next_run_at is not None:
        schedule = parse_schedule(job.schedule.cron, job.schedule.timezone)
        preview = schedule.next_fire_times(datetime.now(UTC), PREVIEW_COUNT)
    chart = [
        Point(f"run #{r.id}", outcome(r.state, r.error), _ran_for(r)) for r in reversed(newest)
    ]
    return JobDetail(job, history, entries, preview, chart, job_alerts, actor)


def _ran_for(run: Run) -> float | None:
    if run.started_at is None or run.finished_at is None:
        return None
    return max(0.0, (run.finished_at - run.started_at).total_seconds())


def list_alerts(engine: Engine, limit: int) -> list[Alert]:
    """The newest alerts first."""
    with engine.connect() as conn:
        return alerts.list_alerts(conn, limit=limit)


def update_job(engine: Engine, name: str, change: ScheduleChange, who: str) -> JobView:
    """Validate and store a schedule change with its audit entry, in one transaction.

    Raises UnknownJob or InvalidSchedule; nothing is stored then.
    """
    with engine.begin() as conn:
        if change.is_empty():
            return views.get_job(conn, name)
        args = change.args
        if args is not None:
            current = schedules.get_schedule(conn, name)
            if args == current.args:  # unchanged (the form always sends it)
                args = None
            else:
                args = actors.check_args(actors.get_actor(conn, current.actor), args)
        old, new = schedules.update_schedule(conn, name, **{**change.values(), "args": args})
        before = _schedule_values(old)
        after = _schedule_values(new)
        changed = {k for k in after if after[k] != before[k]}
        if changed:
            audit.record(
                conn,
                who=who,
                action="schedule.update",
                job_name=name,
                old_values={k: before[k] for k in sorted(changed)},
                new_values={k: after[k] for k in sorted(changed)},
            )
            logger.info("schedule of %s changed by %s: %s -> %s", name, who, before, after)
        return views.get_job(conn, name)


def _schedule_values(row: schedules.ScheduleRow) -> dict:
    return {
        "cron": row.cron,
        "timezone": row.timezone,
        "enabled": row.enabled,
        "stale_after_seconds": row.stale_after_seconds,
        "args": row.args,
    }


def run_now(engine: Engine, broker: RedisBroker, name: str, who: str) -> Run:
    """Record a manual run and hand it to the broker, the scheduler's own path.

    Raises UnknownJob, or RunConflict carrying the active run. When the broker is down the
    run stays pending and the scheduler's outbox sends it later.
    """
    with engine.begin() as conn:
        job = schedules.get_schedule(conn, name)
        run = runs.create_manual_run(conn, name, args=job.args)
        audit.record(
            conn, who=who, action="run.manual", job_name=name, new_values={"run_id": run.id}
        )
    logger.info("manual run %d of %s requested by %s", run.id, name, who)
    dispatch(engine, broker, run, job.actor, job.queue)
    with engine.connect() as conn:
        return runs.get_run(conn, run.id)


def job_runs(engine: Engine, name: str, query: RunQuery) -> list[Run]:
    """A page of one job's runs, newest first; raises UnknownJob."""
    with engine.connect() as conn:
        schedules.get_schedule(conn, name)
        return _page(conn, query, name)


def _page(conn: Connection, query: RunQuery, job: str | None) -> list[Run]:
    return runs.list_runs(conn, job, **query.page())


def recent_runs(engine: Engine, query: RunQuery) -> list[Run]:
    """A page of every job's runs (or of `query.job`), newest first, filtered."""
    with engine.connect() as conn:
        return _page(conn, query, query.job)


def get_run(engine: Engine, run_id: int | None) -> Run:
    """One run; raises UnknownRun."""
    if run_id is None:
        raise UnknownRun("unknown run")
    with engine.connect() as conn:
        return runs.get_run(conn, run_id)


def run_detail(engine: Engine, run_id: int | None) -> tuple[Run, str | None, list[Run]]:
    """One run, its traceback and the runs that retry it; raises UnknownRun."""
    run = get_run(engine, run_id)
    with engine.connect() as conn:
        return run, runs.get_traceback(conn, run.id), runs.retries_of(conn, run.id)


def require_run(run_id: int | None) -> int:
    """The id, or UnknownRun when a path cannot name a run."""
    if run_id is None:
        raise UnknownRun("unknown run")
    return run_id


def require_job(name: str | None) -> str:
    """The name, or UnknownJob when a path cannot name a job."""
    if name is None:
        raise UnknownJob("unknown job")
    return name


def preview(expr: str, timezone: str, now: datetime) -> dict:
    """Validate a schedule and describe it with its next fire times; raises InvalidSchedule."""
    schedule = parse_schedule(expr, timezone or "UTC")
    return {
        "cron": schedule.expr,
        "timezone": schedule.timezone,
        "description": views.describe(schedule),
        "next_fire_times": [t.isoformat() for t in schedule.next_fire_times(now, PREVIEW_COUNT)],
    }
