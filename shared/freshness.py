"""A job's health (paused, stale, failing, new, ok) and the alert a change of it raises.

Pure functions of the schedule, aggregates of its runs and `now`; the contract's rules, first
match wins:

1. `paused`: the schedule is disabled.
2. `stale`: no run succeeded for longer than `stale_after_seconds`, counted from the later of
   the last success and the moment the job was last enabled or created.
3. `failing`: its newest run with an outcome (cancelled runs left out) did not succeed.
4. `new`: no run has an outcome yet.
5. `ok`.

A run has an outcome once it `succeeded`, `failed` (waits for its retry) or was `discarded`
(not cancelled); a run running again after a failed attempt still counts as that failure, so
a retry in progress does not look like a recovery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from shared.cron import Schedule, parse_schedule
from shared.errors import InvalidSchedule
from shared.gaps import longest_gap
from shared.schedules import ScheduleRow

HEALTHS = ("paused", "stale", "failing", "new", "ok")
ALERTED = ("failing", "stale")  # a change into these alerts; back to ok is a recovery
QUIET = "ok"  # the alerted state of a job that never alerted, or recovered
WINDOW = timedelta(days=7)
MIN_STALE_AFTER = 60
EVENTS = {"failing": "job.failing", "stale": "job.stale", "ok": "job.recovered"}


@dataclass(frozen=True)
class RunStats:
    """What health needs of a job's runs (see shared.run_stats)."""

    last_success_at: datetime | None = None
    consecutive_failures: int = 0
    last_outcome: str | None = None  # "succeeded", "failed" or None (no outcome yet)
    last_outcome_run_id: int | None = None


@dataclass(frozen=True)
class Freshness:
    """A job's health at one moment, with the numbers behind it."""

    health: str
    stale_after_seconds: int | None  # in force (None: the schedule is invalid, no default)
    last_success_at: datetime | None
    consecutive_failures: int
    stale_at: datetime | None  # when it turns stale if nothing succeeds (None: cannot or is)
    cause_run_id: int | None  # the run with the newest outcome


def default_stale_after(schedule: Schedule, now: datetime) -> int:
    """Twice the longest gap between consecutive fires in the 7 days from `now` (or between
    the next two fires when fewer fall in them), at least 60 seconds."""
    return max(MIN_STALE_AFTER, math.ceil(2 * longest_gap(schedule, now, WINDOW)))


@lru_cache(maxsize=4096)
def _default_for_hour(expr: str, timezone: str, hour: datetime) -> int | None:
    try:
        schedule = parse_schedule(expr, timezone)
    except InvalidSchedule:
        return None
    return default_stale_after(schedule, hour)


# The defaults of the `now` last asked about, by (expression, zone): a list of ten thousand
# jobs shares one `now`, and hashing it (an aware datetime) per job costs more than the rest.
_LAST: tuple[datetime | None, dict[tuple[str, str], int | None]] = (None, {})


def stale_after_for(configured: int | None, cron: str, timezone: str, now: datetime) -> int | None:
    """The configured value, or the default computed from the start of `now`'s hour (shared by
    every job of that schedule for the hour); None for a schedule that cannot be read."""
    global _LAST
    if configured is not None:
        return configured
    last = _LAST
    if last[0] is not now:
        last = _LAST = (now, {})  # one tuple swapped whole: threads see this one or the last
    known = last[1]
    key = (cron, timezone)
    if key not in known:
        known[key] = _default_for_hour(cron, timezone, _hour(now))
    return known[key]


@lru_cache(maxsize=8)
def _hour(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def assess(row: ScheduleRow, stats: RunStats, now: datetime) -> Freshness:
    """The job's health at `now`, first matching rule wins (see the module's docstring)."""
    health, stale_after, stale_at = judge(row, stats.last_success_at, stats.last_outcome, now)
    return Freshness(
        health=health,
        stale_after_seconds=stale_after,
        last_success_at=stats.last_success_at,
        consecutive_failures=stats.consecutive_failures,
        stale_at=stale_at if health not in ("paused", "stale") else None,
        cause_run_id=stats.last_outcome_run_id,
    )


def judge(
    row: ScheduleRow, last_success_at: datetime | None, last_outcome: str | None, now: datetime
) -> tuple[str, int | None, datetime | None]:
    """`(health, stale_after_seconds in force, when it turns stale)` of a job whose last
    success and newest outcome are given: the rules, without building a Freshness."""
    stale_after = stale_after_for(row.stale_after_seconds, row.cron, row.timezone, now)
    stale_at = None
    if stale_after is not None:
        since = row.enabled_at or row.created_at
        if last_success_at is not None and last_success_at > since:
            since = last_success_at
        stale_at = since + timedelta(seconds=stale_after)
    return health_of(row.enabled, stale_at, now, last_outcome), stale_after, stale_at


def health_of(
    enabled: bool, stale_at: datetime | int | None, now: datetime | int, last_outcome: str | None
) -> str:
    """The rules of the module's docstring, from the moment the job turns stale (a datetime,
    or like `now` whole microseconds since the epoch; None when it cannot)."""
    if not enabled:
        return "paused"
    if stale_at is not None and now > stale_at:  # type: ignore[operator]
        return "stale"
    if last_outcome == "failed":
        return "failing"
    if last_outcome is None:
        return "new"
    return "ok"


def alert_event(alerted: str, health: str) -> str | None:
    """The event a job last alerted as `alerted` (ok, failing or stale) raises when its health
    is now `health`: None when nothing is to be said. Paused and new jobs keep their state,
    so pausing a failing job and resuming it still failing says nothing twice."""
    if health in ALERTED and health != alerted:
        return EVENTS[health]
    if health == QUIET and alerted in ALERTED:
        return EVENTS[QUIET]
    return None


def next_alerted(alerted: str, health: str) -> str:
    """The alerted state after `alert_event(alerted, health)`."""
    return health if health in (*ALERTED, QUIET) else alerted
