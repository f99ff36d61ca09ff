"""Schedules: parse and validate the contract's cron forms; fire times and descriptions.

Pure functions only. The scheduler turns a Schedule into an APScheduler trigger; the admin
uses the same object for validation, the description and the next fire times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from cron_descriptor import Options, get_description

from shared.errors import InvalidSchedule

MAX_EXPR_LENGTH = 200
MAX_TZ_LENGTH = 64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

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
# Standard cron numbers days of the week from Sunday = 0 (7 is Sunday too); APScheduler
# from Monday = 0. Day fields are expanded to names so the two never get mixed up.
WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


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


def expand_field(text: str, spec: Field) -> set[int]:
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
    return values


def _compact(values: set[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


@dataclass(frozen=True)
class Schedule:
    """A validated schedule: the expression as given and its IANA time zone."""

    expr: str
    timezone: str
    interval_seconds: int | None = None  # set for @every
    fields: tuple[str, ...] = ()  # the five expanded cron fields otherwise

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def trigger(self) -> BaseTrigger:
        """An APScheduler trigger that fires exactly on this schedule's slots."""
        if self.interval_seconds is not None:
            return IntervalTrigger(seconds=self.interval_seconds, start_date=EPOCH, timezone=UTC)
        minute, hour, dom, month, dow = self.fields
        zone = self.zone

        def cron(day: str, day_of_week: str) -> CronTrigger:
            return CronTrigger(
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=day_of_week,
                timezone=zone,
            )

        # Standard cron: when both day fields are restricted, a day matching either fires.
        if dom != "*" and dow != "*":
            return OrTrigger([cron(dom, "*"), cron("*", dow)])
        return cron(dom, dow)

    def next_fire_times(self, now: datetime, count: int = 5) -> list[datetime]:
        """The next `count` slots strictly after `now`, in the schedule's zone."""
        trigger = self.trigger()
        times: list[datetime] = []
        previous = None
        current = now + timedelta(microseconds=1)
        for _ in range(count):
            nxt = trigger.get_next_fire_time(previous, current)
            if nxt is None:
                break
            # Through UTC: astimezone() to the same zone object would keep a wall time that
            # does not exist (the spring-forward gap).
            times.append(nxt.astimezone(UTC).astimezone(self.zone))
            previous = nxt
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
            n, unit = self._every_parts()
            text = f"Every {UNIT_WORDS[unit]}" if n == 1 else f"Every {n} {UNIT_WORDS[unit]}s"
        else:
            options = Options()
            options.use_24hour_time_format = True
            text = str(get_description(_source_fields(self.expr), options))
        if self.interval_seconds is None and self.timezone != "UTC":
            text += f" ({self.timezone})"
        return text

    def _every_parts(self) -> tuple[int, str]:
        match = EVERY.fullmatch(self.expr.strip().lower())
        assert match
        return int(match.group(1)), match.group(2)


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
    expanded = []
    for part, spec in zip(parts, FIELDS, strict=True):
        values = expand_field(part, spec)
        if spec.name == "day of week":
            days = {v % 7 for v in values}
            expanded.append("*" if part == "*" else ",".join(WEEKDAYS[d] for d in sorted(days)))
        else:
            expanded.append("*" if part == "*" else _compact(values))
    if expanded[2] != "*" and expanded[3] != "*" and not _day_exists(parts):
        raise InvalidSchedule("that day of month never occurs in the given month(s)")
    return Schedule(expr.strip(), timezone, fields=tuple(expanded))


def _day_exists(parts: list[str]) -> bool:
    days = expand_field(parts[2], FIELDS[2])
    months = expand_field(parts[3], FIELDS[3])
    longest = {
        1: 31,
        2: 29,
        3: 31,
        4: 30,
        5: 31,
        6: 30,
        7: 31,
        8: 31,
        9: 30,
        10: 31,
        11: 30,
        12: 31,
    }
    return any(day <= longest[m] for day in days for m in months)
