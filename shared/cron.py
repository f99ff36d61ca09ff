"""Schedules: parse and validate the contract's cron forms; fire times and descriptions.

Pure functions only. The scheduler turns a Schedule into an APScheduler trigger; the admin
uses the same object for validation, the description and the next fire times.

Time zones follow standard (Vixie) cron: when the clock springs forward, a job at a fixed
time that falls in the gap runs once, at the same offset past the jump, and wildcard times in
the gap are skipped; when the clock falls back, a fixed-time job runs once (the first pass)
and wildcard jobs keep running through the repeated hour.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from cron_descriptor import Options, get_description

from shared.errors import InvalidSchedule

MAX_EXPR_LENGTH = 200
MAX_TZ_LENGTH = 64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SEARCH_YEARS = 8  # a valid schedule fires well within this; parsing rejects dates that never occur

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
EVERY = re.compile(r"@every\s+(\d{1,7})\s*([smh])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
UNIT_WORDS = {"s": "second", "m": "minute", "h": "hour"}

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
# Standard cron numbers days of the week from Sunday = 0 (7 is Sunday too), Python from
# Monday = 0 (and APScheduler likewise): all day-of-week values here are cron's.
WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
LONGEST_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30}
LONGEST_MONTH[12] = 31


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


FIELDS = (
    Field("minute", 0, 59),
    Field("hour", 0, 23),
    Field("day of month", 1, 31),
    Field("month", 1, 12, tuple(MONTHS), 1),
    Field("day of week", 0, 7, tuple(WEEKDAYS), 0),
)
ITEM = re.compile(r"^(?:(\*)|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/(\d+))?$")


def _value(token: str, spec: Field) -> int:
    if token.isdigit():
        value = int(token)
    elif token in spec.names:
        value = spec.names.index(token) + spec.name_base
    else:
        raise InvalidSchedule(f"{spec.name}: {token!r} is not a number or a valid name")
    if not spec.low <= value <= spec.high:
        raise InvalidSchedule(f"{spec.name}: {value} is out of range {spec.low}-{spec.high}")
    return value


def expand_field(text: str, spec: Field) -> frozenset[int]:
    """The set of values a standard cron field selects; raises InvalidSchedule."""
    values: set[int] = set()
    for item in text.lower().split(","):
        match = ITEM.match(item)
        if not match:
            raise InvalidSchedule(f"{spec.name}: {item!r} is not valid cron syntax")
        star, first, last, step = match.groups()
        if star:
            low, high = spec.low, spec.high
        else:
            low = _value(first, spec)
            high = _value(last, spec) if last else (spec.high if step else low)
        if high < low:
            raise InvalidSchedule(f"{spec.name}: range {item!r} runs backwards")
        stride = int(step) if step else 1
        if stride < 1:
            raise InvalidSchedule(f"{spec.name}: step in {item!r} must be at least 1")
        values.update(range(low, high + 1, stride))
    return frozenset(values)


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


def _instants(spec: CronSpec, wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants a wall-clock time stands for: none (skipped), one, or two (repeat)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    exists = first.astimezone(zone).replace(tzinfo=None) == wall
    if not exists:  # in the spring-forward gap
        return [max(first, second)] if spec.fixed_time else []
    if first == second or spec.fixed_time:
        return [first]
    return [first, second]


CLOCK_CHANGE_WINDOW = timedelta(hours=3)


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
        instants = _instants(spec, wall, zone)
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


class ScheduleTrigger(BaseTrigger):
    """An APScheduler trigger over a Schedule; pickled into the job store with its job."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # As APScheduler's own triggers: from just after the previous fire when it is older
        # than now, so that the scheduler can see (and coalesce or skip) missed slots.
        start = now
        if previous_fire_time is not None:
            start = min(now, previous_fire_time + timedelta(microseconds=1))
        return self.schedule.next_fire_at_or_after(start)

    def __str__(self) -> str:
        return f"srjobs[{self.schedule.expr} {self.schedule.timezone}]"


@dataclass(frozen=True)
class Schedule:
    """A validated schedule: the expression as given and its IANA time zone."""

    expr: str
    timezone: str
    interval_seconds: int | None = None  # set for @every
    cron: CronSpec | None = None  # set otherwise

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def trigger(self) -> BaseTrigger:
        """An APScheduler trigger that fires exactly on this schedule's slots."""
        return ScheduleTrigger(self)

    def next_fire_at_or_after(self, at: datetime) -> datetime:
        """The first slot at or after `at`, in UTC."""
        if self.interval_seconds is not None:
            return next_every_fire(self.interval_seconds, at)
        assert self.cron is not None
        return next_cron_fire(self.cron, self.zone, at)

    def next_fire_times(self, now: datetime, count: int = 5) -> list[datetime]:
        """The next `count` slots strictly after `now`, in the schedule's zone."""
        times: list[datetime] = []
        current = now + timedelta(microseconds=1)
        zone = self.zone
        for _ in range(count):
            nxt = self.next_fire_at_or_after(current)
            times.append(nxt.astimezone(zone))
            current = nxt + timedelta(microseconds=1)
        return times

    def period_seconds(self, now: datetime) -> float:
        """The gap between the next two slots: the schedule's interval, for misfire grace."""
        if self.interval_seconds is not None:
            return float(self.interval_seconds)
        first, second = self.next_fire_times(now, 2)
        return (second - first).total_seconds()

    def describe(self) -> str:
        """A human-readable sentence, e.g. "Every 2 minutes"."""
        if self.interval_seconds is not None:
            match = EVERY.fullmatch(self.expr.strip().lower())
            assert match
            n, unit = int(match.group(1)), match.group(2)
            return f"Every {UNIT_WORDS[unit]}" if n == 1 else f"Every {n} {UNIT_WORDS[unit]}s"
        options = Options()
        options.use_24hour_time_format = True
        text = str(get_description(_source_fields(self.expr), options))
        return text if self.timezone == "UTC" else f"{text} ({self.timezone})"


def _source_fields(expr: str) -> str:
    expr = expr.strip().lower()
    return MACROS.get(expr, " ".join(expr.split()))


def validate_timezone(timezone: str) -> str:
    """The zone name if it is a known IANA zone; raises InvalidSchedule."""
    if not isinstance(timezone, str) or not timezone:
        raise InvalidSchedule("timezone must be a non-empty IANA zone name such as 'UTC'")
    if len(timezone) > MAX_TZ_LENGTH:
        raise InvalidSchedule(f"timezone is longer than {MAX_TZ_LENGTH} characters")
    if timezone.startswith(("/", ".")) or ".." in timezone or "\\" in timezone:
        raise InvalidSchedule(f"unknown time zone {timezone!r}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidSchedule(f"unknown time zone {timezone!r}") from None
    return timezone


def parse_schedule(expr: str, timezone: str = "UTC") -> Schedule:
    """Validate a cron expression and zone; raises InvalidSchedule saying what is wrong."""
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidSchedule("cron must be a non-empty string")
    if len(expr) > MAX_EXPR_LENGTH:
        raise InvalidSchedule(f"cron is longer than {MAX_EXPR_LENGTH} characters")
    validate_timezone(timezone)
    text = expr.strip().lower()
    if text.startswith("@every"):
        match = EVERY.fullmatch(text)
        if not match:
            raise InvalidSchedule(
                "@every takes a whole number and a unit s, m or h, e.g. '@every 30s'"
            )
        seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
        if seconds < 1:
            raise InvalidSchedule("@every needs an interval of at least 1s")
        return Schedule(expr.strip(), timezone, interval_seconds=seconds)
    if text.startswith("@"):
        if text not in MACROS:
            known = ", ".join(sorted(set(MACROS) - {"@midnight", "@annually"}))
            raise InvalidSchedule(
                f"unknown macro {expr.strip()!r}; use {known} or '@every N[s|m|h]'"
            )
        text = MACROS[text]
    parts = text.split()
    if len(parts) != 5:
        raise InvalidSchedule(
            f"cron needs 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    minutes, hours, days, months, weekdays = (
        expand_field(part, spec) for part, spec in zip(parts, FIELDS, strict=True)
    )
    spec = CronSpec(
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=frozenset(d % 7 for d in weekdays),
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
        fixed_time=not (parts[0].startswith("*") or parts[1].startswith("*")),
    )
    if (spec.any_weekday or spec.any_day) and not any(
        day <= LONGEST_MONTH[m] for day in days for m in months
    ):
        raise InvalidSchedule("that day of month never occurs in the given month(s)")
    return Schedule(expr.strip(), timezone, cron=spec)
