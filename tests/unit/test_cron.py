from datetime import UTC, datetime

import pytest

from shared.cron import parse_schedule
from shared.errors import InvalidSchedule

NOW = datetime(2026, 3, 28, 12, 0, 30, tzinfo=UTC)  # a Saturday


def iso(times):
    return [t.isoformat() for t in times]


def test_every_two_minutes():
    s = parse_schedule("*/2 * * * *")
    assert s.describe() == "Every 2 minutes"
    assert iso(s.next_fire_times(NOW, 3)) == [
        "2026-03-28T12:02:00+00:00",
        "2026-03-28T12:04:00+00:00",
        "2026-03-28T12:06:00+00:00",
    ]


def test_sunday_is_zero_and_seven_in_day_of_week():
    zero = parse_schedule("0 9 * * 0").next_fire_times(NOW, 2)
    seven = parse_schedule("0 9 * * 7").next_fire_times(NOW, 2)
    assert zero == seven
    assert [t.strftime("%A") for t in zero] == ["Sunday", "Sunday"]
    weekdays = parse_schedule("0 9 * * 1-5").next_fire_times(NOW, 5)
    assert [t.strftime("%a") for t in weekdays] == ["Mon", "Tue", "Wed", "Thu", "Fri"]


def test_day_of_month_or_day_of_week_like_standard_cron():
    fires = parse_schedule("0 0 13 * 5").next_fire_times(datetime(2026, 4, 1, tzinfo=UTC), 3)
    assert iso(fires) == [
        "2026-04-03T00:00:00+00:00",  # Friday
        "2026-04-10T00:00:00+00:00",  # Friday
        "2026-04-13T00:00:00+00:00",  # the 13th, a Monday
    ]


def test_every_interval_slots_are_multiples_since_the_epoch():
    s = parse_schedule("@every 7m")
    for t in s.next_fire_times(NOW, 5):
        assert int(t.timestamp()) % 420 == 0
    assert s.describe() == "Every 7 minutes"
    assert parse_schedule("@every 1s").describe() == "Every second"


def test_macros():
    assert parse_schedule("@hourly").next_fire_times(NOW, 1)[0].isoformat() == (
        "2026-03-28T13:00:00+00:00"
    )
    assert parse_schedule("@weekly").next_fire_times(NOW, 1)[0].strftime("%A %H:%M") == (
        "Sunday 00:00"
    )


def test_spring_forward_gap_fires_once_after_the_gap():
    # Europe/Berlin skips 02:00-03:00 on 2026-03-29.
    fires = parse_schedule("30 2 * * *", "Europe/Berlin").next_fire_times(NOW, 2)
    assert [t.utcoffset().total_seconds() / 3600 for t in fires] == [2.0, 2.0]
    assert fires[0].astimezone(UTC).isoformat() == "2026-03-29T01:30:00+00:00"
    assert fires[1].isoformat() == "2026-03-30T02:30:00+02:00"


def test_fall_back_does_not_fire_twice():
    # Europe/Berlin repeats 02:00-03:00 on 2026-10-25.
    start = datetime(2026, 10, 24, 12, tzinfo=UTC)
    fires = parse_schedule("30 2 * * *", "Europe/Berlin").next_fire_times(start, 2)
    assert [f.date().isoformat() for f in fires] == ["2026-10-25", "2026-10-26"]


@pytest.mark.parametrize(
    ("expr", "tz", "message"),
    [
        ("* * *", "UTC", "5 fields"),
        ("61 * * * *", "UTC", "minute: 61 is out of range"),
        ("* 24 * * *", "UTC", "hour"),
        ("5-1 * * * *", "UTC", "backwards"),
        ("*/0 * * * *", "UTC", "step"),
        ("0 0 31 2 *", "UTC", "never occurs"),
        ("0 0 * * mon#2", "UTC", "not valid cron syntax"),
        ("@every 0s", "UTC", "at least 1s"),
        ("@every 5d", "UTC", "unit s, m or h"),
        ("@reboot", "UTC", "unknown macro"),
        ("", "UTC", "non-empty"),
        ("* * * * *", "Mars/Olympus", "unknown time zone"),
        ("* * * * *", "../etc/passwd", "unknown time zone"),
        ("* * * * *", "", "non-empty"),
        ("* " * 150, "UTC", "longer than"),
    ],
)
def test_invalid_input_says_what_is_wrong(expr, tz, message):
    with pytest.raises(InvalidSchedule, match=message):
        parse_schedule(expr, tz)


def test_fall_back_keeps_wildcard_jobs_running_through_the_repeated_hour():
    start = datetime(2026, 10, 25, 0, 50, tzinfo=UTC)  # 02:50 CEST, before the repeat
    fires = parse_schedule("*/30 * * * *", "Europe/Berlin").next_fire_times(start, 3)
    utc = [f.astimezone(UTC).strftime("%H:%M") for f in fires]
    assert utc == ["01:00", "01:30", "02:00"]  # 02:00 CET, 02:30 CET, 03:00 CET


def test_wildcard_hour_skips_the_spring_forward_gap():
    # 01:30 CET fires; 02:30 does not exist on 2026-03-29 and is skipped; next is 03:30 CEST.
    at = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    s = parse_schedule("30 * * * *", "Europe/Berlin")
    assert s.next_fire_at_or_after(at) == at
    assert [t.isoformat() for t in s.next_fire_times(at, 2)] == [
        "2026-03-29T03:30:00+02:00",
        "2026-03-29T04:30:00+02:00",
    ]
