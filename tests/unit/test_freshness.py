"""Health rules, default staleness and alert transitions: pure functions at fixed times."""

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.cron import parse_schedule
from shared.freshness import (
    RunStats,
    alert_event,
    assess,
    default_stale_after,
    next_alerted,
)
from shared.gaps import longest_gap
from shared.schedules import ScheduleRow

CREATED = datetime(2026, 11, 1, tzinfo=UTC)


def job(cron="*/5 * * * *", tz="UTC", enabled=True, stale_after=None, enabled_at=CREATED):
    return ScheduleRow(
        "j", "j", "default", cron, tz, enabled, "", CREATED, CREATED, stale_after, enabled_at
    )


def brute_longest_gap(schedule, now, window=timedelta(days=7)):
    """Walk every fire from 32 days back to the first one past the window."""
    fires, at = [], now - timedelta(days=32)
    while True:
        at = schedule.next_fire_at_or_after(at + timedelta(microseconds=1))
        fires.append(at)
        if at > now + window:
            break
    inside = [f for f in fires if now < f <= now + window]
    if len(inside) < 2:
        first, second = schedule.next_fire_times(now, 2)
        return (second - first).total_seconds()
    before = [f for f in fires if f <= now]
    overlapping = [before[-1], *[f for f in fires if f > now]] if before else fires
    return max((b - a).total_seconds() for a, b in itertools.pairwise(overlapping))


@pytest.mark.parametrize(
    ("cron", "zone"),
    [
        ("0 9 * * 1-5", "UTC"),
        ("*/7 * * * *", "Europe/Berlin"),
        ("30 2 * * *", "Europe/Berlin"),
        ("* 2 * * *", "America/New_York"),
        ("0,30 1-3 * * 0", "America/New_York"),
        ("0 9,17 * * 1", "Australia/Lord_Howe"),
        ("0 0 29 2 *", "UTC"),
        ("0 12 1,15 * 1", "America/Santiago"),
    ],
)
@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 3, 26, 22, 17, tzinfo=UTC),  # Berlin springs forward on the 29th
        datetime(2026, 10, 23, 1, 0, tzinfo=UTC),  # and falls back on the 25th
        datetime(2026, 3, 6, 12, 0, tzinfo=UTC),  # New York springs forward on the 8th
        datetime(2026, 11, 28, 9, 0, 30, tzinfo=UTC),
    ],
)
def test_longest_gap_matches_walking_every_fire(cron, zone, now):
    schedule = parse_schedule(cron, zone)
    assert longest_gap(schedule, now, timedelta(days=7)) == brute_longest_gap(schedule, now)


def test_default_stale_after_is_twice_the_longest_gap_and_at_least_a_minute():
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)  # a Wednesday
    assert default_stale_after(parse_schedule("*/5 * * * *"), now) == 600
    assert default_stale_after(parse_schedule("@every 10s"), now) == 60
    assert default_stale_after(parse_schedule("@every 2h"), now) == 4 * 3600
    # Weekdays at 9: the weekend's gap is Friday 9:00 -> Monday 9:00.
    assert default_stale_after(parse_schedule("0 9 * * 1-5"), now) == 2 * 72 * 3600
    # Fewer than two fires in 7 days: the gap between the next two.
    assert default_stale_after(parse_schedule("@monthly"), now) == 2 * 31 * 86400


def test_a_spring_forward_night_lengthens_the_gap_of_a_wildcard_hour():
    # `* 2 * * *` in New York skips 2:00-2:59 on 8 March: Saturday's last fire (2:59 EST) to
    # Monday's first (2:00 EDT) is 46 hours and a minute, instead of 23 hours and a minute.
    now = datetime(2026, 3, 6, 12, tzinfo=UTC)
    gap = longest_gap(parse_schedule("* 2 * * *", "America/New_York"), now, timedelta(days=7))
    assert gap == timedelta(hours=46, minutes=1).total_seconds()


def test_weekday_job_is_not_stale_on_saturday_morning_but_is_after_the_weekend_gap():
    friday_run = datetime(2026, 11, 27, 9, 0, 5, tzinfo=UTC)
    stats = RunStats(last_success_at=friday_run, last_outcome="succeeded", last_outcome_run_id=1)
    row = job("0 9 * * 1-5")
    saturday = datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert assess(row, stats, saturday).health == "ok"
    sunday = datetime(2026, 11, 29, 23, tzinfo=UTC)
    assert assess(row, stats, sunday).health == "ok"
    monday_noon = datetime(2026, 11, 30, 12, tzinfo=UTC)  # Monday's run did not happen
    assert assess(row, stats, monday_noon).health == "ok"
    fresh = assess(row, stats, saturday)
    assert fresh.stale_at == friday_run + timedelta(hours=144)
    assert assess(row, stats, fresh.stale_at + timedelta(seconds=1)).health == "stale"


def test_rules_first_match_wins():
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    recent = now - timedelta(minutes=1)
    failed = RunStats(recent, 2, "failed", 9)
    assert assess(job(enabled=False), failed, now).health == "paused"
    # stale beats failing: no success for longer than the limit
    old = RunStats(now - timedelta(hours=2), 3, "failed", 9)
    assert assess(job(stale_after=3600), old, now).health == "stale"
    assert assess(job(stale_after=3600), failed, now).health == "failing"
    fresh_job = job(enabled_at=now - timedelta(minutes=2))
    assert assess(fresh_job, RunStats(), now).health == "new"
    assert assess(job(), RunStats(recent, 0, "succeeded", 10), now).health == "ok"


def test_staleness_counts_from_the_later_of_last_success_and_enabling():
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    long_ago = RunStats(now - timedelta(days=3), 0, "succeeded", 1)
    just_enabled = job(stale_after=3600, enabled_at=now - timedelta(minutes=30))
    assert assess(just_enabled, long_ago, now).health == "ok"
    assert assess(just_enabled, long_ago, now).stale_at == now + timedelta(minutes=30)
    never_ran = job(stale_after=3600, enabled_at=now - timedelta(hours=2))
    assert assess(never_ran, RunStats(), now).health == "stale"
    assert assess(job(stale_after=3600), long_ago, now).health == "stale"


def test_the_default_is_reported_and_an_explicit_value_wins():
    now = datetime(2026, 11, 29, 12, 34, tzinfo=UTC)
    stats = RunStats(now, 0, "succeeded", 1)
    assert assess(job("*/5 * * * *"), stats, now).stale_after_seconds == 600
    assert assess(job("*/5 * * * *", stale_after=90), stats, now).stale_after_seconds == 90
    invalid = job("not a cron")
    assert assess(invalid, stats, now).stale_after_seconds is None
    assert assess(invalid, stats, now).health == "ok"


def test_local_time_zone_and_dst_in_the_default():
    # Daily at 02:30 Berlin: on the spring-forward night 02:30 does not exist and runs at
    # 03:30 CEST (= 01:30 UTC), 23 h after the day before: the longest gap stays 24 h.
    now = datetime(2026, 3, 26, tzinfo=ZoneInfo("Europe/Berlin"))
    assert default_stale_after(parse_schedule("30 2 * * *", "Europe/Berlin"), now) == 48 * 3600
    # On the fall-back week the repeated hour makes one gap 25 h.
    autumn = datetime(2026, 10, 22, tzinfo=UTC)
    assert default_stale_after(parse_schedule("30 3 * * *", "Europe/Berlin"), autumn) == 50 * 3600


@pytest.mark.parametrize(
    ("alerted", "health", "event", "after"),
    [
        ("ok", "failing", "job.failing", "failing"),
        ("ok", "stale", "job.stale", "stale"),
        ("failing", "failing", None, "failing"),
        ("failing", "stale", "job.stale", "stale"),
        ("stale", "failing", "job.failing", "failing"),
        ("failing", "ok", "job.recovered", "ok"),
        ("stale", "ok", "job.recovered", "ok"),
        ("ok", "ok", None, "ok"),
        ("failing", "paused", None, "failing"),  # pausing a failing job says nothing
        ("ok", "paused", None, "ok"),
        ("ok", "new", None, "ok"),
        ("failing", "new", None, "failing"),
    ],
)
def test_alert_transitions(alerted, health, event, after):
    assert alert_event(alerted, health) == event
    assert next_alerted(alerted, health) == after
