"""What the admin shows of a job: its schedule row, description, next fire and last run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import Connection

from shared import runs, schedules
from shared.cron import Schedule, parse_schedule
from shared.errors import InvalidSchedule
from shared.runs import Run
from shared.schedules import ScheduleRow


@dataclass(frozen=True)
class JobView:
    schedule: ScheduleRow
    description: str
    next_run_at: datetime | None
    last_run: Run | None

    def as_json(self) -> dict:
        s = self.schedule
        return {
            "name": s.name,
            "actor": s.actor,
            "queue": s.queue,
            "cron": s.cron,
            "timezone": s.timezone,
            "enabled": s.enabled,
            "description": self.description,
            "job_description": s.description,
            "next_run_at": self.next_run_at.isoformat() if self.next_run_at else None,
            "last_run": self.last_run.as_json() if self.last_run else None,
            "updated_at": s.updated_at.isoformat(),
        }


def job_view(row: ScheduleRow, last_run: Run | None, now: datetime) -> JobView:
    """Compose a job's view; an invalid stored schedule says so instead of failing."""
    try:
        schedule = parsed(row.cron, row.timezone)
    except InvalidSchedule as exc:
        return JobView(row, f"invalid schedule: {exc}", None, last_run)
    upcoming = schedule.next_fire_times(now, 1) if row.enabled else []
    return JobView(row, describe(schedule), upcoming[0] if upcoming else None, last_run)


@lru_cache(maxsize=1024)
def parsed(expr: str, timezone: str) -> Schedule:
    """parse_schedule, cached: stored schedules repeat on every page."""
    return parse_schedule(expr, timezone)


@lru_cache(maxsize=1024)
def describe(schedule: Schedule) -> str:
    """The schedule in words; cached, since wording an expression costs more than a query."""
    return schedule.describe()


def list_jobs(conn: Connection, now: datetime | None = None) -> list[JobView]:
    now = now or datetime.now(UTC)
    rows = schedules.list_schedules(conn)
    last = runs.last_runs(conn, [r.name for r in rows])
    return [job_view(r, last.get(r.name), now) for r in rows]


def get_job(conn: Connection, name: str, now: datetime | None = None) -> JobView:
    row = schedules.get_schedule(conn, name)
    last = runs.last_runs(conn, [name]).get(name)
    return job_view(row, last, now or datetime.now(UTC))
