"""Alerts on real Postgres: one per change of health, delivered to a real HTTP receiver."""

import hashlib
import hmac
import time
from dataclasses import replace

import pytest
from sqlalchemy import text

from scheduler.courier import Courier
from scheduler.health_watch import HealthWatch
from shared import alerts, run_stats
from shared.freshness import assess
from tests.support.health import JOB, add_run, alert_rows, enabled_now, events
from tests.support.receiver import Receiver
from tests.support.waiting import wait_for

SECRET = "s3cret"


@pytest.fixture(autouse=True)
def _fresh_schedules(engine):
    enabled_now(engine)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def couriers():
    """Makes couriers (driven pass by pass, not as threads) and closes them."""
    made = []

    def make(settings, engine):
        made.append(Courier(settings, engine))
        return made[-1]

    yield make
    for courier in made:
        courier.stop()


def watch(settings, engine):
    w = HealthWatch(settings, engine, lambda: None)
    with engine.connect() as conn:
        w.alerted = alerts.alerted_states(conn)
    return w


def alert_settings(settings, receiver, **extra):
    return replace(
        settings,
        alert_webhook_urls=(receiver.url,),
        alert_webhook_secret=SECRET,
        admin_url="https://admin.example.com",
        alert_retry_seconds=0.2,
        alert_retry_max_seconds=0.5,
        alert_timeout_seconds=1.0,
        **extra,
    )


def deliver_until(courier, engine, alert_id, timeout=20):
    """Run delivery passes (as the courier's loop does) until the alert is delivered."""

    def delivered():
        courier.deliver_due()
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT delivered_at IS NOT NULL FROM alerts WHERE id = :id"), {"id": alert_id}
            ).scalar()

    wait_for(delivered, timeout, f"alert {alert_id} to be delivered", interval=0.1)


def test_failing_then_recovered_alerts_once_each_and_delivers_signed(
    settings, engine, receiver, couriers
):
    settings = alert_settings(settings, receiver)
    w = watch(settings, engine)
    assert w.evaluate(None) == 0  # the seeded job never ran: new, nothing to say
    failed = add_run(engine, "discarded", error="RuntimeError: the view is gone\nline 2")
    assert w.evaluate([JOB]) == 1
    add_run(engine, "failed", error="again")
    assert w.evaluate([JOB]) == 0  # still failing: one alert per change, not per run
    assert w.evaluate(None) == 0
    ok = add_run(engine, "succeeded")
    assert w.evaluate([JOB]) == 1
    assert events(engine, JOB) == ["job.failing", "job.recovered"]

    courier = couriers(settings, engine)
    rows = alert_rows(engine, JOB)
    for row in rows:
        deliver_until(courier, engine, row["id"])
    got = {r.json["id"]: r for r in receiver.accepted()}
    assert set(got) == {row["id"] for row in rows}
    failing, recovered = (got[row["id"]] for row in rows)
    body = failing.json
    assert body["event"] == "job.failing" and body["job"] == JOB and body["health"] == "failing"
    assert body["run"]["id"] == failed and body["consecutive_failures"] == 1
    assert body["last_success_at"] is None and body["at"]
    assert body["url"] == f"https://admin.example.com/jobs/{JOB}"
    assert "\n" not in body["text"] and JOB in body["text"] and body["url"] in body["text"]
    expected = hmac.new(SECRET.encode(), failing.body, hashlib.sha256).hexdigest()
    assert failing.headers["X-Srjobs-Signature"] == f"sha256={expected}"
    assert recovered.json["event"] == "job.recovered" and recovered.json["run"]["id"] == ok
    assert recovered.json["last_success_at"] is not None
    row = alert_rows(engine, JOB)[0]
    assert row["delivered_at"] is not None and row["attempts"] == 1 and row["last_error"] is None


def test_cancelled_runs_never_make_a_job_failing(settings, engine):
    w = watch(settings, engine)
    add_run(engine, "succeeded")
    for _ in range(3):
        add_run(engine, "discarded", error="cancelled by admin")
    assert w.evaluate(None) == 0
    with engine.connect() as conn:
        now, found = run_stats.job_stats(conn, [JOB])
    fresh = assess(*found[0], now)
    assert fresh.health == "ok" and fresh.consecutive_failures == 0
    assert events(engine) == []
    add_run(engine, "discarded", error="RuntimeError: real")
    assert w.evaluate([JOB]) == 1


def test_a_retry_in_progress_is_not_a_recovery(settings, engine):
    w = watch(settings, engine)
    add_run(engine, "succeeded")
    run = add_run(engine, "failed", error="flaky")
    assert w.evaluate([JOB]) == 1
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE job_runs SET state = 'running', attempt = 2 WHERE id = :id"), {"id": run}
        )
    assert w.evaluate([JOB]) == 0
    assert events(engine) == ["job.failing"]


def test_two_evaluators_record_a_transition_once(settings, engine):
    first, second = watch(settings, engine), watch(settings, engine)
    add_run(engine, "discarded", error="boom")
    assert first.evaluate(None) + second.evaluate(None) == 1
    assert second.alerted[JOB] == "failing"  # adopted what the other recorded
    add_run(engine, "succeeded")
    assert second.evaluate(None) + first.evaluate(None) == 1
    assert events(engine) == ["job.failing", "job.recovered"]


def test_a_stale_job_alerts_when_its_deadline_passes(settings, engine):
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE job_schedules SET stale_after_seconds = 60,"
                " enabled_at = now() - interval '59 seconds' WHERE name = :n"
            ),
            {"n": JOB},
        )
    w = watch(settings, engine)
    assert w.evaluate(None) == 0
    deadline = w.deadlines[JOB]
    assert 0 < deadline - time.time() < 2
    wait_for(lambda: w.evaluate(sorted(w._due_names())), 5, "the stale alert")
    assert events(engine) == ["job.stale"]
    assert JOB not in w.deadlines  # stale now: nothing more to wait for


def test_500_and_a_hanging_receiver_are_retried_until_accepted(
    settings, engine, receiver, couriers
):
    settings = alert_settings(settings, receiver)
    w = watch(settings, engine)
    add_run(engine, "discarded", error="boom")
    w.evaluate(None)
    alert_id = alert_rows(engine)[0]["id"]
    courier = couriers(settings, engine)

    receiver.mode = "error"
    courier.deliver_due()
    row = alert_rows(engine)[0]
    assert row["delivered_at"] is None and row["attempts"] == 1
    assert "HTTP 500" in row["last_error"] and row["next_attempt_at"] is not None
    (entry,) = row["deliveries"].values()
    assert "secret-token" not in entry["target"] and entry["attempts"] == 1  # URL masked

    receiver.mode = "hang"
    wait_for(lambda: alert_rows(engine)[0]["next_attempt_at"] is not None, 5, "a retry")
    started = time.monotonic()
    wait_for(lambda: courier.deliver_due(), 5, "a due retry", interval=0.1)
    assert time.monotonic() - started < 4  # cut off after the 1 s timeout
    assert "no answer within" in alert_rows(engine)[0]["last_error"]

    receiver.mode = "ok"
    deliver_until(courier, engine, alert_id)
    assert len(receiver.accepted()) == 1 and receiver.ids() == {alert_id}
    assert len(receiver.requests) >= 3


def test_a_receiver_down_for_a_while_gets_its_alert_from_a_new_courier(
    settings, engine, receiver, couriers
):
    settings = alert_settings(settings, receiver)
    receiver.stop()
    w = watch(settings, engine)
    add_run(engine, "discarded", error="boom")
    w.evaluate(None)
    alert_id = alert_rows(engine)[0]["id"]
    first = couriers(settings, engine)
    for _ in range(3):
        wait_for(lambda: first.deliver_due(), 5, "a due retry", interval=0.05)
    row = alert_rows(engine)[0]
    assert row["attempts"] == 3 and row["delivered_at"] is None
    assert "Connection" in row["last_error"] or "refused" in row["last_error"]
    receiver.start()
    deliver_until(couriers(settings, engine), engine, alert_id)  # as after a restart
    assert receiver.ids() == {alert_id}


def test_without_urls_alerts_are_recorded_and_not_sent(settings, engine, couriers):
    w = watch(settings, engine)
    add_run(engine, "discarded", error="boom")
    w.evaluate(None)
    couriers(settings, engine).deliver_due()
    row = alert_rows(engine)[0]
    assert row["delivered_at"] is None and row["next_attempt_at"] is None
    assert "SRJOBS_ALERT_WEBHOOK_URLS" in row["last_error"]


def test_many_changes_at_once_are_recorded_in_batches_once_each(settings, engine):
    """450 jobs stale in one pass (more than one batch), one deleted before its alert: every
    other job gets exactly one alert, a second evaluator records none and adopts them."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO job_schedules (name, actor, cron, timezone, enabled, args,"
                " stale_after_seconds, enabled_at)"
                " SELECT 'many_' || g, actor, cron, timezone, true, args, 60,"
                " now() - interval '2 minutes'"
                " FROM job_schedules, generate_series(1, 450) AS g WHERE name = :n"
            ),
            {"n": JOB},
        )
    first, second = watch(settings, engine), watch(settings, engine)
    with engine.connect() as conn:
        now, found = run_stats.job_stats(conn, None)
    changes = [
        (row, fresh, "job.stale")
        for row, stats in found
        if (fresh := assess(row, stats, now)).health == "stale"
    ]
    assert len(changes) == 450
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM job_schedules WHERE name = 'many_7'"))
    changes.sort(key=lambda change: change[0].name != "many_7")
    assert first._record(changes[:10]) == 9  # the deleted job's savepoint alone rolled back
    assert first.evaluate(None) == 440  # the rest, in batches
    assert first.evaluate(None) == 0
    assert second.evaluate(None) == 0
    assert second.alerted["many_8"] == "stale"  # adopted what the first recorded
    rows = alert_rows(engine)
    assert sorted(r["job_name"] for r in rows) == sorted(
        f"many_{g}" for g in range(1, 451) if g != 7
    )
    assert {r["event"] for r in rows} == {"job.stale"}
