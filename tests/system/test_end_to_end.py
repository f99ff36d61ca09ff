"""The thin path through all three services, as real processes."""

import httpx
from sqlalchemy import text

from shared import runs
from srjobs.dev import free_port
from tests.support.spans import insert_trace
from tests.support.waiting import wait_for


def succeeded_runs(engine, job="refresh_trace_summaries"):
    with engine.connect() as conn:
        return [r for r in runs.list_runs(conn, job, limit=20) if r.state == "succeeded"]


def test_scheduler_fires_worker_refreshes_admin_shows(services, engine):
    with engine.begin() as conn:
        conn.execute(text("UPDATE job_schedules SET cron = '@every 1s'"))
    trace_id = insert_trace(engine, services=("checkout", "payments", "db"), error=True)
    port = free_port()
    services.start("scheduler", "scheduler")
    services.start("worker", "worker", "--threads", "2")
    admin = services.start("webadmin", "webadmin", "--port", str(port))

    done = wait_for(lambda: succeeded_runs(engine), 60, "a succeeded refresh run")[0]
    assert done.trigger == "cron" and done.scheduled_at is not None
    assert done.scheduled_at.microsecond == 0 and done.attempt == 1 and done.node
    assert done.scheduled_at <= done.enqueued_at <= done.started_at <= done.finished_at

    with engine.connect() as conn:
        summary = conn.execute(
            text(
                "SELECT root_service_name, span_count, error_count, service_set"
                " FROM otel_trace_summaries WHERE trace_id = :t"
            ),
            {"t": trace_id},
        ).one()
    assert tuple(summary) == ("checkout", 3, 1, ["checkout", "db", "payments"])

    base = f"http://127.0.0.1:{port}"
    jobs = wait_for(
        lambda: httpx.get(f"{base}/api/jobs", timeout=5).json(), 30, "the admin API", interval=0.2
    )
    job = jobs[0]
    assert job["name"] == "refresh_trace_summaries"
    assert job["description"] == "Every second"
    assert job["last_run"]["job_name"] == "refresh_trace_summaries"
    page = httpx.get(f"{base}/jobs", timeout=5)
    assert page.status_code == 200 and "refresh_trace_summaries" in page.text
    assert "succeeded" in page.text or "running" in page.text or "enqueued" in page.text
    assert admin.proc.poll() is None
