"""Pure decisions: fire slots, store plans, run outcomes."""

from datetime import UTC, datetime, timedelta

from scheduler.slots import is_missed, misfire_grace_seconds
from scheduler.sync import Signer, make_plan, row_signature
from shared.cron import parse_schedule
from shared.dispatch import send_backoff_seconds
from shared.schedules import ScheduleRow, ScheduleTarget
from shared.settings import Settings
from worker.middleware.run_outcome import describe_error, outcome

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def row(name, cron="* * * * *", enabled=True, tz="UTC"):
    return ScheduleRow(name, name, "default", cron, tz, enabled, "", NOW, NOW)


def test_grace_is_one_interval_at_least_a_minute():
    minimum = Settings().misfire_grace_seconds
    assert minimum == 60
    assert misfire_grace_seconds(parse_schedule("@every 1s"), NOW, minimum) == 60
    assert misfire_grace_seconds(parse_schedule("@hourly"), NOW, minimum) == 3600


def test_missed_only_beyond_grace():
    slot = NOW
    assert not is_missed(slot, NOW + timedelta(seconds=59), 60)
    assert is_missed(slot, NOW + timedelta(seconds=61), 60)


def test_plan_adds_changes_and_removes():
    a, b, c = row("a"), row("b", "*/5 * * * *"), row("c", enabled=False)
    stored = {"b": row_signature(row("b")), "c": row_signature(c), "gone": "x"}
    plan = make_plan(stored, [a, b, c], None)
    assert [r.name for r in plan.add] == ["a"]
    assert [r.name for r in plan.change] == ["b"]
    assert sorted(plan.remove) == ["c", "gone"]


def test_plan_scope_limits_the_change():
    plan = make_plan({"gone": "x"}, [row("a"), row("b")], {"a"})
    assert [r.name for r in plan.add] == ["a"] and plan.remove == []
    assert not make_plan({"a": row_signature(row("a"))}, [row("a")], None)


def test_plan_skips_names_applied_meanwhile():
    plan = make_plan({"gone": "x", "kept": "y"}, [row("a"), row("b")], None, skip={"a", "kept"})
    assert [r.name for r in plan.add] == ["b"] and plan.remove == ["gone"]


def test_a_stored_args_text_signs_as_the_row_does():
    sign = Signer()
    for args, text in (({}, "{}"), ({"b": [1, 2], "a": "x"}, '{"a": "x", "b": [1, 2]}')):
        full = ScheduleRow("j", "act", "q", "@hourly", "UTC", True, "", NOW, NOW, args=args)
        lean = ScheduleTarget("j", "act", "q", "@hourly", "UTC", True, text)
        assert sign(lean) == sign(lean) == row_signature(full)
        assert sign.args(lean) == args


def test_outcomes():
    assert outcome(None, False) == "succeeded"
    assert outcome(ValueError("x"), False) == "failed"
    assert outcome(ValueError("x"), True) == "discarded"
    assert outcome(None, True) == "discarded"
    assert describe_error(ValueError("bad")) == "ValueError: bad"
    assert describe_error(KeyError()) == "KeyError"


def test_send_backoff_grows_and_is_capped():
    assert [send_backoff_seconds(n) for n in (1, 2, 3, 10)] == [1, 2, 4, 60]
