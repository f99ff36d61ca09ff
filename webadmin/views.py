"""What the admin shows of a job: its schedule row, description, next fire and last run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Connection

from shared import job_listing, run_stats, runs, schedules
from shared.cron import Schedule, parse_schedule
from shared.errors import InvalidSchedule, UnknownJob
from shared.freshness import judge
from shared.run_stats import JobHealth
from shared.runs import Run
from shared.schedules import ScheduleRow, common_fields


@dataclass(frozen=True)
class JobView:
    schedule: ScheduleRow
    description: str
    next_run_at: datetime | None
    last_run: Run | None
    freshness: JobHealth

    def as_json(self) -> dict:
        """JSON-ready dict; times in ISO 8601 with offset."""
        out = self.as_data()
        for key in TIME_FIELDS:
            value = out[key]
            if value is not None:
                out[key] = value.isoformat()
        out["last_run"] = self.last_run.as_json() if self.last_run else None
        return out

    def as_data(self) -> dict:
        """`as_json` with times as datetimes and `args` not copied: for a serialiser that
        writes datetimes as ISO 8601 itself, at once (webadmin.fastjson)."""
        s = self.schedule
        fresh = self.freshness
        return {
            **common_fields(s),
            "description": self.description,
            "job_description": s.description,
            "next_run_at": self.next_run_at,
            "last_run": self.last_run.as_data() if self.last_run else None,
            "updated_at": s.updated_at,
            "health": fresh.health,
            "last_success_at": fresh.last_success_at,
            "consecutive_failures": fresh.consecutive_failures,
            "stale_after_seconds": fresh.stale_after_seconds,
            "args": s.args,
            "declared": s.declared,
        }


TIME_FIELDS = ("next_run_at", "updated_at", "last_success_at")


def job_view(row: ScheduleRow, fresh: JobHealth, last_run: Run | None, now: datetime) -> JobView:
    """Compose a job's view; an invalid stored schedule says so instead of failing."""
    try:
        schedule = parsed(row.cron, row.timezone)
    except InvalidSchedule as exc:
        return JobView(row, f"invalid schedule: {exc}", None, last_run, fresh)
    upcoming = next_fire(schedule, now) if row.enabled else None
    return JobView(row, describe(schedule), upcoming, last_run, fresh)


# Per schedule: (since, fire), the first fire strictly after `since`. It stays the first fire
# strictly after any moment in [since, fire), so a page of jobs sharing a handful of schedules
# computes a handful of fires, and the next page within the same slot none.
# Keyed by (expression, zone), which define the schedule and hash faster than it.
_NEXT_FIRES: dict[tuple[str, str], tuple[datetime, datetime]] = {}
_NEXT_FIRES_KEPT = 4096


def next_fire(schedule: Schedule, now: datetime) -> datetime:
    """`schedule.next_fire_times(now, 1)[0]`, remembered while it stays the answer."""
    key = (schedule.expr, schedule.timezone)
    known = _NEXT_FIRES.get(key)
    if known is not None and known[0] <= now < known[1]:
        return known[1]
    fire = schedule.next_fire_times(now, 1)[0]
    if len(_NEXT_FIRES) >= _NEXT_FIRES_KEPT:
        _NEXT_FIRES.clear()
    _NEXT_FIRES[key] = (now, fire)
    return fire


@lru_cache(maxsize=1024)
def parsed(expr: str, timezone: str) -> Schedule:
    """parse_schedule, cached: stored schedules repeat on every page."""
    return parse_schedule(expr, timezone)


@lru_cache(maxsize=1024)
def describe(schedule: Schedule) -> str:
    """The schedule in words; cached, since wording an expression costs more than a query."""
    return schedule.describe()


def list_jobs(conn: Connection, names: list[str] | None = None) -> list[JobView]:
    """Every job (or the named ones) with health, by the database's clock."""
    if names is None:
        now, every = job_listing.every_job(conn)
        return [job_view(row, fresh, last, now) for row, fresh, last in every]
    return _views(conn, schedules.get_schedules(conn, set(names)))


def page_jobs(
    conn: Connection, *, contains: str, limit: int, offset: int
) -> tuple[list[JobView], int]:
    """A page of jobs by name (those whose name contains `contains`), and how many match."""
    rows, total = schedules.page_schedules(conn, contains=contains, limit=limit, offset=offset)
    return _views(conn, rows), total


def _views(conn: Connection, rows: list[ScheduleRow]) -> list[JobView]:
    """The views of the schedules the caller read: their stats and newest runs probed."""
    now, found = run_stats.healths(conn, rows)
    last = runs.last_runs(conn, [row.name for row in rows])
    return [
        job_view(row, fresh, last.get(row.name), now)
        for row, fresh in zip(rows, found, strict=True)
    ]


def new_job(conn: Connection, row: ScheduleRow, had_runs: bool) -> JobView:
    """A schedule just created in this transaction: with no runs, its health needs no query
    (its `created_at` is the transaction's `now()`, the clock `list_jobs` would read)."""
    if had_runs:
        return get_job(conn, row.name)
    now = row.created_at
    health, stale_after, _ = judge(row, None, None, now)
    return job_view(row, JobHealth(health, None, 0, stale_after), None, now)


def get_job(conn: Connection, name: str) -> JobView:
    """One job; raises UnknownJob."""
    found = list_jobs(conn, [name])
    if not found:
        raise UnknownJob(f"unknown job {name!r}")
    return found[0]
