"""Alerts with real processes: two schedulers, two workers and two admins send one alert per
change of health; a Postgres restart in the middle of a change loses and doubles nothing."""

import signal
from datetime import datetime

import httpx
import pytest
from sqlalchemy import create_engine, text

from shared.db import sqlalchemy_url
from tests.support.admin import start_webadmin
from tests.support.health import add_run, alert_rows, events
from tests.support.logs import events as log_events
from tests.support.receiver import Receiver
from tests.support.runs import EXAMPLES, wait_state
from tests.support.schedulers import lock_holder, start_scheduler
from tests.support.throwaway import throwaway_postgres
from tests.support.waiting import wait_for

pytestmark = pytest.mark.system
JOB = "example_outcome"


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def alert_env(receiver: Receiver) -> dict[str, str]:
    return {
        "SRJOBS_ALERT_WEBHOOK_URLS": receiver.url,
        "SRJOBS_ALERT_RETRY_SECONDS": "0.5",
        "SRJOBS_JOB_MODULES": EXAMPLES,
    }


def run_once(engine, base: str, outcome_file, outcome: str) -> dict:
    """Set the job's outcome, start a run through an admin, wait for it to finish."""
    outcome_file.write_text(outcome)
    answer = httpx.post(f"{base}/api/jobs/{JOB}/runs", json={}, timeout=10)
    assert answer.status_code == 202, answer.text
    state = "succeeded" if outcome == "ok" else "discarded"
    return wait_state(engine, answer.json()["id"], state).as_json()


def test_two_schedulers_workers_and_admins_send_one_alert_per_change(
    services, engine, receiver, tmp_path
):
    outcome_file = tmp_path / "outcome"
    outcome_file.write_text("ok")
    env = {**alert_env(receiver), "EXAMPLE_OUTCOME_FILE": str(outcome_file)}
    assert services.run("migrate", env=env).returncode == 0
    with engine.begin() as conn:  # only the job under test may change health
        conn.execute(text("UPDATE job_schedules SET enabled = false WHERE name <> :n"), {"n": JOB})
    nodes = {name: start_scheduler(services, name, **env) for name in ("node-a", "node-b")}
    for k in range(2):
        services.start(f"worker-{k}", "worker", "--threads", "2", env=env)
    bases = [start_webadmin(services, env)[1] for _ in range(2)]
    leader = wait_for(lambda: lock_holder(engine), 30, "a leader")
    wait_for(lambda: log_events(nodes[leader], "health_watch_ready"), 30, "the health watch")

    failed = run_once(engine, bases[0], outcome_file, "fail")
    wait_for(lambda: events(engine, JOB) == ["job.failing"], 10, "the failing alert")
    first = alert_rows(engine, JOB)[0]
    lag = first["created_at"] - datetime.fromisoformat(failed["finished_at"])
    assert lag.total_seconds() < 10
    wait_for(lambda: first["id"] in receiver.ids(), 10, "the webhook")
    for k in range(3):  # more failures, through both admins: no new alert
        run_once(engine, bases[k % 2], outcome_file, "fail")
    run_once(engine, bases[1], outcome_file, "ok")
    wait_for(lambda: events(engine, JOB) == ["job.failing", "job.recovered"], 10, "recovery")
    body = next(b for b in receiver.bodies() if b["id"] == first["id"])
    assert body["run"]["id"] == failed["id"] and body["job"] == JOB

    nodes[leader].signal(signal.SIGKILL)  # the follower takes over and remembers
    follower = next(n for n in nodes if n != leader)
    wait_for(lambda: log_events(nodes[follower], "health_watch_ready"), 30, "the new leader")
    assert events(engine, JOB) == ["job.failing", "job.recovered"]
    run_once(engine, bases[0], outcome_file, "fail")
    wait_for(lambda: len(events(engine, JOB)) == 3, 10, "the second failing alert")
    rows = alert_rows(engine, JOB)
    assert [r["event"] for r in rows] == ["job.failing", "job.recovered", "job.failing"]
    wait_for(lambda: receiver.ids() == {r["id"] for r in rows}, 15, "every alert delivered")
    assert {r["id"] for r in alert_rows(engine)} == {r["id"] for r in rows}  # no other job


def test_a_postgres_restart_mid_change_neither_loses_nor_doubles_alerts(services, receiver):
    with throwaway_postgres() as server:
        url = server.url
        env = {**alert_env(receiver), "DATABASE_URL": url}
        assert services.run("migrate", env=env, timeout=120).returncode == 0
        engine = create_engine(sqlalchemy_url(url), pool_pre_ping=True)
        try:
            with engine.begin() as conn:  # failing and recovering only, never stale here
                conn.execute(text("UPDATE job_schedules SET stale_after_seconds = 86400"))
            scheduler = start_scheduler(services, "node-a", **env)
            wait_for(lambda: log_events(scheduler, "health_watch_ready"), 30, "the watch")
            expected = []
            for outcome in ("discarded", "succeeded", "discarded", "succeeded"):
                error = "boom" if outcome == "discarded" else None
                add_run(engine, outcome, job="refresh_trace_summaries", error=error)
                server.restart()  # while the leader records the change, or just before
                expected.append("job.failing" if outcome == "discarded" else "job.recovered")
                wait_for(lambda: len(events(engine)) >= len(expected), 30, "the alert")
                assert events(engine) == expected
            rows = alert_rows(engine)
            wait_for(lambda: receiver.ids() == {r["id"] for r in rows}, 30, "deliveries")
            with engine.connect() as conn:
                state = conn.execute(text("SELECT health FROM job_alert_state")).scalar()
            assert state == "ok"
        finally:
            engine.dispose()


def test_a_webhook_url_that_is_not_http_stops_every_service_at_start(services):
    env = {"SRJOBS_ALERT_WEBHOOK_URLS": "https://ok.example.com/h, ftp://files.example.com/x"}
    for command in ("scheduler", "worker", "webadmin"):
        result = services.run(command, env=env, timeout=60)
        assert result.returncode != 0
        assert "SRJOBS_ALERT_WEBHOOK_URLS" in result.stderr + result.stdout
