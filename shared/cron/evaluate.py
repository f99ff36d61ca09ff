"""When a schedule fires: the expanded cron fields and the search for the next slot.

Time zones follow standard (Vixie) cron: when the clock springs forward, a job at a fixed
time that falls in the gap runs once, at the same offset past the jump, and wildcard times in
the gap are skipped; when the clock falls back, a fixed-time job runs once (the first pass)
and wildcard jobs keep running through the repeated hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.errors import InvalidSchedule

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SEARCH_YEARS = 8  # a valid schedule fires well within this; parsing rejects dates that never occur
CLOCK_CHANGE_WINDOW = timedelta(hours=3)


@dataclass(frozen=True)
class CronSpec:
    """The five expanded fields of a standard cron expression."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # cron numbering, Sunday = 0
    any_day: bool  # day of month is `*`
    any_weekday: bool  # day of week is `*`
    fixed_time: bool  # neither minute nor hour is a wildcard

    def day_matches(self, day: datetime) -> bool:
        dom = day.day in self.days
        dow = (day.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow  # both restricted: either one fires (standard cron)

    def next_wall(self, wall: datetime) -> datetime:
        """The first naive wall-clock time at or after `wall` (whole minutes) that matches."""
        limit = wall.year + SEARCH_YEARS
        while wall.year <= limit:
            if wall.month not in self.months:
                wall = (wall.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
            elif not self.day_matches(wall):
                wall = (wall + timedelta(days=1)).replace(hour=0, minute=0)
            elif wall.hour not in self.hours:
                wall = (wall + timedelta(hours=1)).replace(minute=0)
            elif wall.minute not in self.minutes:
                wall += timedelta(minutes=1)
            else:
                return wall
        raise InvalidSchedule("the schedule never fires")


def wall_instants(spec: CronSpec, wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants a wall-clock time stands for: none (skipped), one, or two (repeat)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    exists = first.astimezone(zone).replace(tzinfo=None) == wall
    if not exists:  # in the spring-forward gap
        return [max(first, second)] if spec.fixed_time else []
    if first == second or spec.fixed_time:
        return [first]
    return [first, second]


def _steady(zone: ZoneInfo, instant: datetime) -> bool:
    """True when the zone's offset does not change within three hours of `instant`."""
    before = (instant - CLOCK_CHANGE_WINDOW).astimezone(zone).utcoffset()
    return (
        before
        == instant.astimezone(zone).utcoffset()
        == ((instant + CLOCK_CHANGE_WINDOW).astimezone(zone).utcoffset())
    )


def next_cron_fire(spec: CronSpec, zone: ZoneInfo, at: datetime) -> datetime:
    """The first slot at or after the instant `at`, in UTC."""
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    ceiling = at.astimezone(UTC)
    if ceiling.second or ceiling.microsecond:
        ceiling = ceiling.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # Near a clock change, start three hours of wall time early: a repeated hour maps later
    # walls to earlier instants. Instants only grow with the wall time on each fold, so stop
    # once the earliest instant of a wall time is past the best candidate.
    wall = ceiling.astimezone(zone).replace(tzinfo=None)
    if not _steady(zone, ceiling):
        wall -= CLOCK_CHANGE_WINDOW
    best: datetime | None = None
    while True:
        wall = spec.next_wall(wall)
        instants = wall_instants(spec, wall, zone)
        earliest = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if best is not None and min([earliest, *instants]) > best:
            return best
        for instant in instants:
            if instant >= ceiling and (best is None or instant < best):
                best = instant
        if best is not None and _steady(zone, best):
            return best  # no clock change near it: no later wall can map before it
        wall += timedelta(minutes=1)


def next_every_fire(interval_seconds: int, at: datetime) -> datetime:
    """The first multiple of the interval since the Unix epoch at or after `at`."""
    elapsed = (at.astimezone(UTC) - EPOCH).total_seconds()
    return EPOCH + timedelta(seconds=math.ceil(elapsed / interval_seconds) * interval_seconds)
