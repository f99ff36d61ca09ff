"""The longest gap between consecutive fire times of a schedule over a window of time.

Pure functions over shared.cron's schedules. A cron fires at the same wall times on every day
that matches, so the window is walked a day at a time: a day without a clock change is its
wall times shifted by one offset (a slice of a sorted list); a day with one is expanded fire by
fire with the cron evaluator's own rules for skipped and repeated wall times.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from shared.cron import CronSpec, Schedule, wall_instants

DAY = timedelta(days=1)
LOOK_BACK_DAYS = 366


@dataclass(frozen=True)
class DayFires:
    """The fires of one day inside the window, as epoch seconds."""

    first: int
    last: int
    widest: int  # the longest gap between two fires of this day (0 for a single fire)


@lru_cache(maxsize=1024)
def minutes_of_day(spec: CronSpec) -> tuple[tuple[int, ...], int]:
    """The wall times a matching day fires at (minutes since midnight, ascending) and the
    longest gap between two of them, in minutes."""
    times = tuple(sorted(h * 60 + m for h in spec.hours for m in spec.minutes))
    return times, _widest(times)


def _widest(values: tuple[int, ...] | list[int]) -> int:
    return max((b - a for a, b in pairwise(values)), default=0)


def _epoch(wall: datetime, zone: ZoneInfo) -> tuple[int, bool]:
    """The epoch of a naive wall time in `zone` (first fold) and whether its offset holds all
    day long (no clock change between this midnight and the next)."""
    start = wall.replace(tzinfo=zone)
    end = (wall + DAY).replace(tzinfo=zone)
    steady = (
        start.utcoffset() == end.utcoffset() == (wall + DAY / 2).replace(tzinfo=zone).utcoffset()
    )
    return int(start.timestamp()), steady


def day_fires(spec: CronSpec, zone: ZoneInfo, day: date, lo: int, hi: int) -> DayFires | None:
    """The fires of `day` (in the schedule's zone) at epochs in (lo, hi]; None when none."""
    if day.month not in spec.months:
        return None
    midnight = datetime(day.year, day.month, day.day)
    if not spec.day_matches(midnight):
        return None
    times, widest = minutes_of_day(spec)
    base, steady = _epoch(midnight, zone)
    if steady:
        i = bisect_left(times, (lo - base) // 60 + 1)
        j = bisect_right(times, (hi - base) // 60)
        if i >= j:
            return None
        if i > 0 or j < len(times):
            widest = _widest(times[i:j])
        return DayFires(base + times[i] * 60, base + times[j - 1] * 60, widest * 60)
    instants = sorted(
        int(instant.timestamp())
        for t in times
        for instant in wall_instants(spec, midnight + timedelta(minutes=t), zone)
    )
    inside = [x for x in instants if lo < x <= hi]
    if not inside:
        return None
    return DayFires(inside[0], inside[-1], _widest(inside))


def _days(zone: ZoneInfo, lo: int, hi: int) -> Iterator[date]:
    day = datetime.fromtimestamp(lo, zone).date() - DAY
    last = datetime.fromtimestamp(hi, zone).date() + DAY
    while day <= last:
        yield day
        day += DAY


def longest_gap_within(schedule: Schedule, start: datetime, end: datetime) -> float | None:
    """The longest gap between consecutive fires in (start, end], in seconds; None when fewer
    than two fires fall inside."""
    if schedule.interval_seconds is not None:
        span = (end - start).total_seconds()
        return float(schedule.interval_seconds) if span >= 2 * schedule.interval_seconds else None
    assert schedule.cron is not None
    lo, hi = int(start.timestamp()), int(end.timestamp())
    zone = schedule.zone
    widest, previous, fires = 0, None, 0
    for day in _days(zone, lo, hi):
        found = day_fires(schedule.cron, zone, day, lo, hi)
        if found is None:
            continue
        fires += 1 if found.first == found.last else 2
        widest = max(widest, found.widest)
        if previous is not None:
            widest = max(widest, found.first - previous)
        previous = found.last
    return float(widest) if fires >= 2 else None


def previous_fire(schedule: Schedule, now: datetime) -> datetime | None:
    """The last fire at or before `now` (None when there is none in the last year)."""
    at = int(now.timestamp())
    if schedule.interval_seconds is not None:
        return datetime.fromtimestamp(at - at % schedule.interval_seconds, UTC)
    assert schedule.cron is not None
    zone = schedule.zone
    day = datetime.fromtimestamp(at, zone).date() + DAY
    for _ in range(LOOK_BACK_DAYS):
        found = day_fires(schedule.cron, zone, day, at - (LOOK_BACK_DAYS + 2) * 86400, at)
        if found is not None:
            return datetime.fromtimestamp(found.last, UTC)
        day -= DAY
    return None


def longest_gap(schedule: Schedule, now: datetime, window: timedelta) -> float:
    """The longest gap between consecutive fires over the `window` after `now`, in seconds.

    Counted are the gaps that overlap the window, the one in progress at `now` included (on a
    Saturday, the weekend's gap of a weekday job). When fewer than two fires fall inside the
    window: the gap between the next two fires."""
    end = now + window
    if longest_gap_within(schedule, now, end) is None:
        first, second = schedule.next_fire_times(now.astimezone(UTC), 2)
        return (second - first).total_seconds()
    before = previous_fire(schedule, now)
    start = now if before is None else before - timedelta(seconds=1)
    after = schedule.next_fire_at_or_after(end + timedelta(microseconds=1))
    gap = longest_gap_within(schedule, start, after)
    assert gap is not None
    return gap
