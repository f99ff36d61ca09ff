"""Hot reload: schedule changes reach the leader's job store within a second."""

import re

import httpx
from sqlalchemy import text

from shared.schedules import update_schedule
from srjobs.dev import free_port
from tests.support.logs import events, wait_event
from tests.support.schedulers import cron_slots, set_cron, start_scheduler, stored_jobs
from tests.support.waiting import wait_for

JOB = "refresh_trace_summaries"
IN_FORCE = 1.0  # seconds from the commit


def expr(engine, name=JOB):
    return stored_jobs(engine).get(name, (None, None))[0]


def run_sql(engine, sql, **params):
    with engine.begin() as conn:
        return conn.execute(text(sql), params).rowcount


def test_changes_by_sql_and_by_the_api_path_are_in_force_within_a_second(services, engine):
    port = free_port()
    leader = start_scheduler(services, "node-a", SRJOBS_HEALTH_PORT=str(port))
    wait_for(lambda: expr(engine) == "*/2 * * * *", 30, "the first sync")
    # Changes made before the listener listens are applied by its first full resync instead.
    wait_event(leader, "listener_connected", 10)

    set_cron(engine, "0 0 1 1 *")
    wait_for(lambda: expr(engine) == "0 0 1 1 *", IN_FORCE, "the SQL change in the store")
    with engine.begin() as conn:
        update_schedule(conn, JOB, cron="@every 1s", timezone="Europe/Berlin")
    wait_for(lambda: expr(engine) == "@every 1s", IN_FORCE, "the update_schedule change")
    wait_for(lambda: cron_slots(engine), 5, "a fire on the new schedule")

    run_sql(
        engine,
        "INSERT INTO job_schedules (name, actor, cron) VALUES ('nightly', :a, '0 3 * * *')",
        a=JOB,
    )
    wait_for(lambda: expr(engine, "nightly") == "0 3 * * *", IN_FORCE, "the new row")
    run_sql(engine, "UPDATE job_schedules SET enabled = false WHERE name = 'nightly'")
    wait_for(lambda: "nightly" not in stored_jobs(engine), IN_FORCE, "disabling")
    run_sql(engine, "UPDATE job_schedules SET enabled = true WHERE name = 'nightly'")
    wait_for(lambda: "nightly" in stored_jobs(engine), IN_FORCE, "enabling")
    run_sql(engine, "DELETE FROM job_schedules WHERE name = 'nightly'")
    wait_for(lambda: "nightly" not in stored_jobs(engine), IN_FORCE, "the deleted row")

    # The store shows a change a moment before the leader logs it. One pass may apply several
    # notified changes at once: match the jobs each pass names, not a number of passes.
    applied = wait_for(
        lambda: (
            (found := events(leader, "schedule_applied"))
            and {JOB, "nightly"} <= {job for e in found for job in e["jobs"]}
            and found
        ),
        5,
        "schedule_applied events naming both jobs",
    )
    assert all(0 <= e["reload_ms"] < IN_FORCE * 1000 for e in applied)

    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    ready = httpx.get(f"{base}/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json() | {"node": None} == {
        "ready": True,
        "role": "leader",
        "node": None,
        "database": "ok",
        "redis": "ok",
    }
    metrics = httpx.get(f"{base}/metrics", timeout=5).text
    assert f'srjobs_scheduler_fires_total{{job="{JOB}"}}' in metrics
    assert "srjobs_scheduler_leader 1.0" in metrics
    reloads = re.search(r"^srjobs_scheduler_reloads_total (\S+)$", metrics, re.M)
    assert reloads and float(reloads.group(1)) >= 2  # counted per job and pass
    for series in (
        "srjobs_scheduler_fire_lag_seconds_bucket",
        "srjobs_scheduler_reload_latency_seconds_count",
        "srjobs_scheduler_leadership_changes_total 1.0",
        "srjobs_scheduler_outbox_pending",
    ):
        assert series in metrics


def test_changes_apply_after_the_listening_connection_was_killed(services, engine):
    leader = start_scheduler(services, "node-a")
    wait_for(lambda: expr(engine) == "*/2 * * * *", 30, "the first sync")
    wait_event(leader, "listener_connected", 10)
    killed = run_sql(
        engine,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'srjobs-listener' AND datname = current_database()",
    )
    assert killed == 1
    set_cron(engine, "0 0 1 1 *")  # its notification is lost with the connection
    wait_for(lambda: expr(engine) == "0 0 1 1 *", IN_FORCE, "the change, by the resync")
    wait_for(lambda: len(events(leader, "listener_connected")) >= 2, 5, "the listener to reconnect")
    set_cron(engine, "@every 5m")
    wait_for(lambda: expr(engine) == "@every 5m", IN_FORCE, "the next change")
