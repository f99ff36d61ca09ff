"""Pure scheduler decisions: catch-up after a gap, notification payloads, send retries."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.health_watch import HealthWatch
from scheduler.listener import min_time, parse_payload
from scheduler.outbox import MAX_SEND_ATTEMPTS, retry_delay
from scheduler.slots import catch_up_from, misfire_grace_seconds
from shared.cron import parse_schedule
from shared.errors import ConfigError
from shared.settings import Settings

NOW = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)


def test_catch_up_leaves_slots_within_the_grace_to_coalescing():
    every = parse_schedule("@every 1s")
    assert catch_up_from(every, NOW - timedelta(seconds=59), NOW, 60) is None


def test_catch_up_skips_to_the_first_slot_within_the_grace():
    every = parse_schedule("@every 10s")
    resume = catch_up_from(every, NOW - timedelta(hours=5), NOW, 60)
    assert resume == datetime(2026, 1, 1, 11, 59, 30, tzinfo=UTC)
    hourly = parse_schedule("@hourly")
    grace = misfire_grace_seconds(hourly, NOW, 60)
    assert catch_up_from(hourly, NOW - timedelta(days=2), NOW, grace) == datetime(
        2026, 1, 1, 12, 0, tzinfo=UTC
    )


def test_grace_minimum_is_configurable():
    assert misfire_grace_seconds(parse_schedule("@every 1s"), NOW, 5) == 5
    assert misfire_grace_seconds(parse_schedule("@every 2m"), NOW, 5) == 120


def test_notification_payloads():
    assert parse_payload('{"name": "a", "at": 1767225600.25}') == ("a", 1767225600.25)
    assert parse_payload("plain_name") == ("plain_name", None)
    assert parse_payload('{"name": "a"}') == ("a", None)
    assert parse_payload("[1]") == ("[1]", None)
    assert min_time(None, 2.0) == 2.0 and min_time(3.0, 2.0) == 2.0 and min_time(None, None) is None


def test_send_retries_back_off_and_give_up():
    assert [retry_delay(n) for n in (1, 2, 3, 8)] == [1, 2, 4, 60]
    assert retry_delay(MAX_SEND_ATTEMPTS - 1) == 60
    assert retry_delay(MAX_SEND_ATTEMPTS) is None


def test_misfire_grace_setting():
    assert Settings.from_env({}).misfire_grace_seconds == 60
    assert Settings.from_env({"SRJOBS_MISFIRE_GRACE_SECONDS": "5"}).misfire_grace_seconds == 5
    with pytest.raises(ConfigError, match="SRJOBS_MISFIRE_GRACE_SECONDS"):
        Settings.from_env({"SRJOBS_MISFIRE_GRACE_SECONDS": "soon"})


def test_health_deadlines_due_in_time_order_superseded_ones_ignored():
    watch = HealthWatch(Settings(), engine=None, on_alert=lambda: None)  # type: ignore[arg-type]
    now = time.time()
    watch._set_deadline("a", now - 5)
    watch._set_deadline("b", now + 100)
    watch._set_deadline("c", now - 1)
    watch._set_deadline("a", now + 50)  # re-evaluated: its old entry is superseded
    assert watch._due_names() == {"c"}
    assert watch._due_names() == {"c"}  # still due until evaluated
    watch.deadlines.pop("c")  # evaluated: no deadline any more
    assert 49 < watch._until_deadline() <= 50
    for i in range(5000):  # superseded entries are dropped, not kept forever
        watch._set_deadline("b", now + 100 + i)
    assert len(watch._heap) <= 2 * len(watch.deadlines) + 1000
    assert watch._due_names() == set()
