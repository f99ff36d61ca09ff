"""Parse and validate the contract's cron forms into a Schedule; raises InvalidSchedule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.cron.evaluate import CronSpec
from shared.cron.schedule import Schedule
from shared.cron.syntax import EVERY, MACROS, MAX_EXPR_LENGTH, MAX_TZ_LENGTH, UNIT_SECONDS
from shared.errors import InvalidSchedule

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
