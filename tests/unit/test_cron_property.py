"""Property: the next fire time equals a brute-force minute-by-minute search, around the
clock changes of a few zones (spring-forward gaps, repeated hours, a 30-minute shift)."""

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.cron import CronSpec, parse_schedule

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]
MINUTES = ["*", "*/15", "0", "30", "0,30", "5-10", "59"]
HOURS = ["*", "*/2", "0", "1", "2", "1-3", "3", "23"]
WEEKDAYS = ["*", "*", "1-5", "0,3,6"]
MINUTE = timedelta(minutes=1)


@cache
def transitions(zone_name: str) -> list[datetime]:
    """The UTC hours in 2026 at which the zone's offset changes."""
    zone, out = ZoneInfo(zone_name), []
    t = datetime(2026, 1, 1, tzinfo=UTC)
    while t.year == 2026:
        if t.astimezone(zone).utcoffset() != (t + timedelta(hours=1)).astimezone(zone).utcoffset():
            out.append(t + timedelta(hours=1))
        t += timedelta(hours=1)
    return out


def matches(spec: CronSpec, wall: datetime) -> bool:
    weekday = (wall.weekday() + 1) % 7
    return wall.minute in spec.minutes and wall.hour in spec.hours and weekday in spec.weekdays


def fires_at(spec: CronSpec, zone: ZoneInfo, t: datetime) -> bool:
    """Standard cron's rule for one UTC minute, spelled out directly."""
    local = t.astimezone(zone)
    wall = local.replace(tzinfo=None)
    first_pass = wall.replace(tzinfo=zone, fold=0).astimezone(UTC) == t
    if matches(spec, wall) and (first_pass or not spec.fixed_time):
        return True
    if spec.fixed_time:  # a fixed time skipped by a jump forward runs just after the jump
        jump = local.utcoffset() - (t - timedelta(hours=3)).astimezone(zone).utcoffset()
        if jump > timedelta(0):
            skipped = wall - jump
            back = skipped.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
            if back.replace(tzinfo=None) != skipped and matches(spec, skipped):
                return True
    return False


def brute_force_next(spec: CronSpec, zone: ZoneInfo, at: datetime) -> datetime:
    t = at.replace(second=0, microsecond=0)
    if t < at:
        t += MINUTE
    for _ in range(9 * 24 * 60):
        if fires_at(spec, zone, t):
            return t
        t += MINUTE
    raise AssertionError("no fire within nine days")


@settings(max_examples=150, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    which=st.integers(0, 1),
    offset_minutes=st.integers(-26 * 60, 3 * 60),
    seconds=st.integers(0, 59),
    minute=st.sampled_from(MINUTES),
    hour=st.sampled_from(HOURS),
    weekday=st.sampled_from(WEEKDAYS),
)
def test_next_fire_matches_a_minute_by_minute_search_around_clock_changes(
    zone_name, which, offset_minutes, seconds, minute, hour, weekday
):
    at = transitions(zone_name)[which] + timedelta(minutes=offset_minutes, seconds=seconds)
    schedule = parse_schedule(f"{minute} {hour} * * {weekday}", zone_name)
    assert schedule.cron is not None
    expected = brute_force_next(schedule.cron, ZoneInfo(zone_name), at)
    assert schedule.next_fire_at_or_after(at) == expected
