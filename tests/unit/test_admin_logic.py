"""Pure parts of the admin: leader staleness, Basic auth, CSRF tokens, input rules."""

import base64
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import InvalidInput
from shared.nodes import SchedulerNode
from webadmin import inputs, views
from webadmin.cluster import current_leader
from webadmin.security import Csrf, check_basic, loopback_host

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
STALE = timedelta(seconds=7)


def node(name: str, role: str, seen_ago: float) -> SchedulerNode:
    seen = NOW - timedelta(seconds=seen_ago)
    return SchedulerNode(name, role, seen, NOW - timedelta(hours=1), None)


def test_leader_is_the_fresh_node_that_leads():
    found = [node("a", "follower", 0.5), node("b", "leader", 1)]
    assert current_leader(found, NOW, STALE).node == "b"


def test_a_stale_leader_row_means_no_leader():
    found = [node("a", "follower", 0.5), node("b", "leader", 8)]
    assert current_leader(found, NOW, STALE) is None
    assert current_leader([], NOW, STALE) is None


def test_of_two_leader_rows_the_freshest_wins():
    found = [node("old", "leader", 6), node("new", "leader", 0.2)]
    assert current_leader(found, NOW, STALE).node == "new"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_accepts_only_the_right_pair():
    assert check_basic(basic("admin", "s3cret"), "admin", "s3cret") == "admin"
    assert check_basic(basic("admin", "wrong"), "admin", "s3cret") is None
    assert check_basic(basic("root", "s3cret"), "admin", "s3cret") is None
    assert check_basic("Basic !!!notbase64", "admin", "s3cret") is None
    assert check_basic("Bearer abc", "admin", "s3cret") is None
    assert check_basic(None, "admin", "s3cret") is None
    no_colon = "Basic " + base64.b64encode(b"admins3cret").decode()
    assert check_basic(no_colon, "admin", "s3cret") is None


def test_csrf_tokens_are_signed_by_the_key():
    csrf, other = Csrf("k1"), Csrf("k2")
    token = csrf.new_token()
    assert csrf.valid(token)
    assert not other.valid(token)
    nonce = token.split(".")[0]
    assert not csrf.valid(nonce + ".forged")
    assert not csrf.valid("") and not csrf.valid(None)


def test_schedule_change_rejects_wrong_types_unknown_fields_and_oversized_values():
    assert inputs.schedule_change({"cron": "@hourly", "enabled": False}) == inputs.ScheduleChange(
        cron="@hourly", enabled=False
    )
    assert inputs.schedule_change({}).is_empty()
    for bad in (
        [],
        "x",
        {"cron": 5},
        {"enabled": "yes"},
        {"enabled": 1},
        {"timezone": None},
        {"name": "x"},
        {"cron": "*" * 201},
        {"timezone": "U" * 65},
        {"cron": "* * * * *\x00"},
    ):
        with pytest.raises(InvalidInput):
            inputs.schedule_change(bad)


def test_run_query_validates_limit_state_and_before():
    assert inputs.run_query({}) == inputs.RunQuery(50, None, None)
    assert inputs.run_query({"limit": "500", "state": "failed", "before": "9"}) == (
        inputs.RunQuery(500, "failed", 9)
    )
    for bad in (
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"state": "done"},
        {"before": "x"},
        {"before": "0"},
        {"before": str(2**63)},
    ):
        with pytest.raises(InvalidInput):
            inputs.run_query(bad)


def test_path_ids_and_names():
    assert inputs.run_id("42") == 42
    assert inputs.run_id("0") is None
    assert inputs.run_id("-1") is None
    assert inputs.run_id("1e3") is None
    assert inputs.run_id("٣") is None  # a non-ASCII digit
    assert inputs.run_id("9" * 30) is None
    assert inputs.job_name("a\x00b") is None
    assert inputs.job_name("x" * 201) is None


def test_admin_secret_setting():
    from shared.settings import Settings

    assert Settings.from_env({"SRJOBS_ADMIN_SECRET": "k"}).admin_secret == "k"
    assert Settings.from_env({}).admin_secret is None


def test_loopback_host_names():
    for host in ("localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "[::1]", "::1"):
        assert loopback_host(host), host
    for host in (
        "",
        "evil.example",
        "127.0.0.1.evil.example:80",
        "localhost.evil:8000",
        "10.0.0.1",
    ):
        assert not loopback_host(host), host


def test_durations_under_a_second_are_shown_in_milliseconds():
    from webadmin.rendering import seconds_in_words

    assert seconds_in_words(0.0) == "0 ms"
    assert seconds_in_words(0.0844) == "84 ms"
    assert seconds_in_words(0.9994) == "999 ms"
    assert seconds_in_words(1.0) == "1.00 s"
    assert seconds_in_words(59.5) == "59.50 s"
    assert seconds_in_words(125) == "2 min 5 s"


def test_new_schedule_fields_and_types():
    from webadmin.inputs import new_schedule

    made = new_schedule({"name": "a.b-c_1", "actor": "x", "cron": "@hourly", "args": {"v": 1}})
    assert (made.timezone, made.enabled, made.args) == ("UTC", True, {"v": 1})
    for body, field in (
        ({"actor": "x", "cron": "@hourly"}, "name is required"),
        ({"name": "n", "cron": "@hourly"}, "actor is required"),
        ({"name": "n", "actor": "x"}, "cron is required"),
        ({"name": "n/1", "actor": "x", "cron": "@hourly"}, "name must be"),
        ({"name": "n", "actor": "x", "cron": "@hourly", "args": None}, "args must be"),
        ({"name": "n", "actor": 1, "cron": "@hourly"}, "actor must be"),
    ):
        with pytest.raises(InvalidInput, match=field):
            new_schedule(body)


def test_run_query_times_and_filters():
    from webadmin.inputs import run_query

    query = run_query({"since": "2026-11-29T12:00:00 01:00", "until": "2026-11-30", "job": "j"})
    assert query.since == datetime(2026, 11, 29, 11, tzinfo=UTC)  # a `+` read back from a space
    assert query.until == datetime(2026, 11, 30, tzinfo=UTC)  # no offset: UTC
    assert query.filters() == {
        "job": "j",
        "since": "2026-11-29T11:00:00+00:00",
        "until": "2026-11-30T00:00:00+00:00",
    }
    for params in ({"since": "soon"}, {"trigger": "x"}, {"until": "0001-01-01T00:00+05:00"}):
        with pytest.raises(InvalidInput):
            run_query(params)


@pytest.mark.parametrize(
    ("expr", "zone"),
    [("*/5 * * * *", "UTC"), ("0 9 * * 1-5", "Europe/Berlin"), ("@every 10m", "UTC")],
)
def test_remembered_next_fire_equals_the_computed_one_as_time_moves(expr, zone):
    schedule = views.parsed(expr, zone)
    moments = [NOW + timedelta(minutes=m, seconds=s) for m in range(0, 3000, 7) for s in (0, 59)]
    moments += [fire - timedelta(microseconds=1) for fire in schedule.next_fire_times(NOW, 5)]
    moments += schedule.next_fire_times(NOW, 5)  # exactly at a fire: the one after it
    for at in sorted(moments) + sorted(moments, reverse=True)[:50]:  # and going back in time
        assert views.next_fire(schedule, at) == schedule.next_fire_times(at, 1)[0], at
