"""Runtime schedules, cancel and retry with real scheduler, worker and admin processes."""

import time

import httpx
import pytest
import redis
from sqlalchemy import text

from shared import runs
from shared.dispatch import dispatch, make_sender
from tests.support.admin import start_webadmin
from tests.support.runs import EXAMPLES, get, wait_state
from tests.support.schedulers import start_scheduler, stored_jobs
from tests.support.waiting import wait_for

VIEW_ACTOR = "refresh_materialized_view"
CANCEL_WITHIN = 5.0  # seconds, the contract's bound
SLOW_VIEW = """
CREATE MATERIALIZED VIEW slow_view AS
SELECT g AS id FROM generate_series(1, 1) g CROSS JOIN LATERAL (SELECT pg_sleep(60)) s
WITH NO DATA
"""


def run_sql(engine, sql, **params):
    with engine.begin() as conn:
        result = conn.execute(text(sql), params)
        return result.all() if result.returns_rows else result.rowcount


def runs_of(engine, job):
    with engine.connect() as conn:
        return runs.list_runs(conn, job, limit=500)


def refreshing(engine, view) -> list[int]:
    """Backends of this database running a REFRESH of `view` now."""
    rows = run_sql(
        engine,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'active' AND query ILIKE :q AND pid <> pg_backend_pid()",
        q=f"REFRESH MATERIALIZED VIEW%{view}%",
    )
    return [row[0] for row in rows]


def no_retry_waiting(settings) -> bool:
    """No message waits in the delay queue (where Retries puts a retry)."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        return client.hlen(f"{settings.redis_namespace}:default.DQ.msgs") == 0
    finally:
        client.close()


def start_worker(services):
    services.start("worker", "worker", "--threads", "2", env={"SRJOBS_JOB_MODULES": EXAMPLES})


@pytest.fixture
def client(services):
    """A worker (with the example jobs) and an admin process; an HTTP client to the admin."""
    start_worker(services)
    _, base = start_webadmin(services)
    with httpx.Client(base_url=base, timeout=10) as http:

        def catalogued() -> bool:
            return "example_spin" in {a["name"] for a in http.get("/api/actors").json()}

        wait_for(catalogued, 60, "the worker to write the actor catalogue")
        yield http


def test_schedules_inserted_and_deleted_by_sql_reach_the_leader_with_their_args(services, engine):
    start_worker(services)
    start_scheduler(services, "node-a")
    wait_for(lambda: "refresh_trace_summaries" in stored_jobs(engine), 30, "the first sync")
    wait_for(
        lambda: run_sql(engine, "SELECT 1 FROM job_actors WHERE name = :a", a=VIEW_ACTOR),
        30,
        "the catalogue",
    )
    run_sql(
        engine,
        "INSERT INTO job_schedules (name, actor, cron, args)"
        " VALUES ('views_by_sql', :a, '@every 1s', '{\"view\": \"public.otel_trace_summaries\"}')",
        a=VIEW_ACTOR,
    )
    wait_for(lambda: "views_by_sql" in stored_jobs(engine), 1.0, "the INSERT in the leader")

    def a_succeeded_cron_run():
        return [r for r in runs_of(engine, "views_by_sql") if r.state == "succeeded"]

    done = wait_for(a_succeeded_cron_run, 30, "a cron run of the SQL schedule to succeed")[0]
    assert done.trigger == "cron" and done.args == {"view": "public.otel_trace_summaries"}

    run_sql(engine, "DELETE FROM job_schedules WHERE name = 'views_by_sql'")
    wait_for(lambda: "views_by_sql" not in stored_jobs(engine), 1.0, "the DELETE in the leader")
    fired = len(runs_of(engine, "views_by_sql"))
    # A second schedule firing twice shows time passing on the leader; the deleted one no more.
    run_sql(
        engine,
        "INSERT INTO job_schedules (name, actor, cron) VALUES ('ticker', :a, '@every 1s')",
        a="example_count_traces",
    )
    wait_for(lambda: len(runs_of(engine, "ticker")) >= 3, 30, "three fires of another schedule")
    assert len(runs_of(engine, "views_by_sql")) == fired


def test_cancel_a_running_refresh_stops_the_statement_in_the_server(client, settings, engine):
    run_sql(engine, SLOW_VIEW)  # the admin resolves nothing: the worker finds it at run time
    body = {"name": "slow", "actor": VIEW_ACTOR, "cron": "0 0 1 1 *", "args": {"view": "slow_view"}}
    assert client.post("/api/jobs", json=body).status_code == 201
    run_id = client.post("/api/jobs/slow/runs", json={}).json()["id"]
    wait_state(engine, run_id, "running")
    backends = wait_for(lambda: refreshing(engine, "slow_view"), 30, "the REFRESH in the server")

    asked = time.monotonic()
    answer = client.post(f"/api/runs/{run_id}/cancel", json={})
    assert answer.status_code == 202, answer.text
    assert answer.json()["state"] == "running" and answer.json()["cancel_requested_at"]
    wait_for(lambda: not refreshing(engine, "slow_view"), CANCEL_WITHIN, "the statement to end")
    run = wait_state(engine, run_id, "discarded", timeout=CANCEL_WITHIN)
    assert time.monotonic() - asked < CANCEL_WITHIN
    assert run.error.startswith("cancelled") and run.attempt == 1
    assert backends  # it was seen running before
    assert no_retry_waiting(settings)
    assert client.post(f"/api/runs/{run_id}/cancel", json={}).status_code == 409


def test_cancel_a_python_loop_then_retry_it(client, settings, engine):
    body = {"name": "spin", "actor": "example_spin", "cron": "@yearly", "args": {"seconds": 120}}
    assert client.post("/api/jobs", json=body).status_code == 201
    run_id = client.post("/api/jobs/spin/runs", json={}).json()["id"]
    wait_state(engine, run_id, "running")
    assert client.post(f"/api/runs/{run_id}/cancel", json={}).status_code == 202
    run = wait_state(engine, run_id, "discarded", timeout=CANCEL_WITHIN)
    assert run.error.startswith("cancelled") and run.attempt == 1
    assert no_retry_waiting(settings)

    retry = client.post(f"/api/runs/{run_id}/retry", json={})
    assert retry.status_code == 202, retry.text
    again = retry.json()
    assert again["retry_of"] == run_id and again["args"] == {"seconds": 120}
    wait_state(engine, again["id"], "running")
    assert client.post(f"/api/runs/{again['id']}/cancel", json={}).status_code == 202
    wait_state(engine, again["id"], "discarded", timeout=CANCEL_WITHIN)

    # The worker keeps serving, and new args reach the function as keyword arguments.
    assert client.patch("/api/jobs/spin", json={"args": {"seconds": 0.01}}).status_code == 200
    quick = client.post("/api/jobs/spin/runs", json={}).json()
    done = wait_state(engine, quick["id"], ("succeeded", "discarded", "failed"))
    assert done.state == "succeeded" and done.args == {"seconds": 0.01}
    assert get(engine, run_id).state == "discarded"


def test_cancel_a_pending_run_skips_its_late_message(client, settings, engine):
    body = {"name": "spin", "actor": "example_spin", "cron": "@yearly", "args": {"seconds": 0}}
    assert client.post("/api/jobs", json=body).status_code == 201
    with engine.begin() as conn:
        late = runs.create_manual_run(conn, "spin", args={"seconds": 60})
    assert client.post(f"/api/runs/{late.id}/cancel", json={}).json()["state"] == "discarded"
    broker = make_sender(settings)
    try:
        dispatch(engine, broker, late, "example_spin", "default")  # as a slow outbox would
    finally:
        broker.close()
    after = client.post("/api/jobs/spin/runs", json={}).json()["id"]
    assert wait_state(engine, after, ("succeeded", "failed", "discarded")).state == "succeeded"
    skipped = get(engine, late.id)
    assert skipped.state == "discarded" and skipped.started_at is None
